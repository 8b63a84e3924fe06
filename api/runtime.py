"""The composition root: turns the one :class:`Settings` object into the core's plain
configuration objects and builds the long-lived parts (engine, store, gallery)."""

from __future__ import annotations

from dataclasses import dataclass

from wajah.api.settings import Settings
from wajah.biometric.decode import DecodeLimits
from wajah.biometric.detect import DetectionPolicy, DetectorKind
from wajah.biometric.engine import EngineConfig, FaceEngine
from wajah.biometric.pool import EnginePool, PoolConfig
from wajah.biometric.templates import MODEL_TAG
from wajah.enrollment.gallery import GalleryKeeper, GalleryOpenReport, Progress
from wajah.enrollment.service import IdentityService
from wajah.enrollment.store import RecordStore, open_record_store
from wajah.matcher.index import IndexConfig
from wajah.matcher.persistence import PayloadCipher
from wajah.matcher.thresholds import Thresholds, default_thresholds, load_thresholds


def engine_config(settings: Settings) -> EngineConfig:
    return EngineConfig(
        detector=DetectorKind(settings.detector),
        detection=DetectionPolicy(max_detect_side_px=settings.max_detect_side_px),
        decode_limits=DecodeLimits(
            max_bytes=settings.max_image_bytes, max_pixels=settings.max_image_pixels
        ),
        template_jitter=settings.template_jitter,
    )


def build_engine(settings: Settings, *, warm_up: bool = True) -> FaceEngine:
    engine = FaceEngine(engine_config(settings))
    if warm_up:
        engine.warm_up()
    return engine


def index_config(settings: Settings) -> IndexConfig:
    return IndexConfig(kind=settings.index_kind)


def open_store(settings: Settings) -> RecordStore:
    settings.ensure_data_dir()
    return open_record_store(
        settings.resolved_database_url, settings.encryption_key, settings.key_file_path
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


def load_settings_thresholds(settings: Settings) -> Thresholds:
    """The calibration in ``settings.thresholds_file``, or the one shipped with the package."""
    if settings.thresholds_file is not None:
        return load_thresholds(settings.thresholds_file, MODEL_TAG)
    return default_thresholds(MODEL_TAG)
