"""The composition root of the service: from the one :class:`Settings` object, the store,
the gallery index and the face worker pool (the engine alone: ``engine_setup.py``)."""

from __future__ import annotations

from dataclasses import dataclass

from wajah.api.engine_setup import engine_config, load_settings_thresholds
from wajah.api.settings import Settings
from wajah.biometric.pool import EnginePool, PoolConfig
from wajah.biometric.templates import MODEL_TAG
from wajah.enrollment.applications import ApplicationPolicy
from wajah.enrollment.clock import utcnow
from wajah.enrollment.gallery import GalleryKeeper, GalleryOpenReport, Progress
from wajah.enrollment.service import IdentityService
from wajah.enrollment.store import RecordStore, open_record_store
from wajah.matcher.index import IndexConfig
from wajah.matcher.persistence import PayloadCipher
from wajah.matcher.thresholds import Thresholds


def index_config(settings: Settings) -> IndexConfig:
    kind = settings.resolved_index_kind
    if kind != "milvus":
        return IndexConfig(kind=settings.index_kind)
    (settings.data_dir / "index").mkdir(parents=True, exist_ok=True, mode=0o700)
    return IndexConfig(
        kind="milvus",
        milvus_uri=settings.resolved_milvus_uri,
        milvus_collection=settings.milvus_collection,
        milvus_index_type=settings.milvus_index_type,
        milvus_nprobe=settings.milvus_nprobe,
    )


def application_policy(settings: Settings) -> ApplicationPolicy:
    """The office's application types and number format, checked (ValueError for a format
    that cannot make a valid number)."""
    policy = ApplicationPolicy(
        types=tuple(settings.application_types),
        number_format=settings.application_number_format,
        office_code=settings.office_code,
    )
    policy.number(1, utcnow())  # fail at start-up, not on the first application
    return policy


def open_store(settings: Settings) -> RecordStore:
    settings.ensure_data_dir()
    return open_record_store(
        settings.resolved_database_url,
        settings.encryption_key,
        settings.key_file_path,
        audit_anchor_file=settings.audit_anchor_path,
    )


def records_cipher(store: RecordStore) -> PayloadCipher:
    """The store's records cipher, which also seals the index file."""
    return store.cipher


@dataclass(frozen=True)
class ServiceParts:
    """What :func:`build_service` composes. Tests build the parts themselves to keep a handle
    on one (the store to check rows, the keeper to check the index, the pool to wrap it)."""

    store: RecordStore
    gallery: GalleryKeeper
    pool: EnginePool
    thresholds: Thresholds
    opened: GalleryOpenReport


def build_service(
    settings: Settings, *, workers: int | None = None, progress: Progress | None = None
) -> tuple[IdentityService, GalleryOpenReport]:
    """Open the store, load or rebuild the index, start the face workers.

    ``workers`` overrides ``settings.face_workers`` (0 = face work in the calling thread)."""
    parts = build_service_parts(settings, workers=workers, progress=progress)
    return IdentityService(parts.store, parts.gallery, parts.pool, parts.thresholds), parts.opened


def build_service_parts(
    settings: Settings, *, workers: int | None = None, progress: Progress | None = None
) -> ServiceParts:
    """The parts of :func:`build_service`; the caller owns them (``IdentityService.close``
    closes all three)."""
    store = open_store(settings)
    try:
        config = engine_config(settings)
        gallery = GalleryKeeper(
            store,
            settings.index_path,
            index_config(settings),
            MODEL_TAG,
            cipher=records_cipher(store),
        )
        report = gallery.open(progress)
        pool = EnginePool(
            config,
            PoolConfig(
                workers=settings.face_workers if workers is None else workers,
                max_pending=settings.face_queue_limit,
                job_timeout_s=settings.face_job_timeout_s,
            ),
        )
        thresholds = load_settings_thresholds(settings)
        return ServiceParts(store, gallery, pool, thresholds, report)
    except BaseException:
        store.dispose()
        raise
