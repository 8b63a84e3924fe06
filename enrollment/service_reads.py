"""The reads :class:`~wajah.enrollment.service.IdentityService` offers the edges: subjects,
samples, review cases, the index's and the face pool's state, the keys and the audit trail.
Each passes through to the record store, the gallery keeper or the face pool, which stay
private to the service; the workflows that change them are in :mod:`wajah.enrollment.service`.
"""

from __future__ import annotations

import numpy as np

from wajah.biometric.pool import EnginePool, PoolConfig, PoolHealth
from wajah.enrollment.access import KeyStore
from wajah.enrollment.audit import AuditLog
from wajah.enrollment.gallery import GalleryKeeper
from wajah.enrollment.records import (
    ReviewRecord,
    ReviewStatus,
    SampleRecord,
    SubjectRecord,
    SubjectStatus,
)
from wajah.enrollment.store import RecordStore
from wajah.matcher.index import IndexStats


class ServiceReads:
    """The read-only half of :class:`~wajah.enrollment.service.IdentityService` (a mixin: the
    service sets the three attributes)."""

    _store: RecordStore
    _gallery: GalleryKeeper
    _pool: EnginePool

    # -- subjects ------------------------------------------------------------------------

    def get_subject(self, subject_id: int) -> SubjectRecord:
        return self._store.get_subject(subject_id)

    def get_subject_by_ref(self, subject_ref: str) -> SubjectRecord:
        return self._store.get_subject_by_ref(subject_ref)

    def list_subjects(
        self,
        offset: int = 0,
        limit: int = 50,
        status: SubjectStatus | str | None = None,
        nationality: str | None = None,
        name_contains: str | None = None,
    ) -> tuple[list[SubjectRecord], int]:
        """A page of subjects in id order, and the total matching the filters."""
        return self._store.list_subjects(offset, limit, status, nationality, name_contains)

    def has_image_sha256(self, image_sha256: str) -> str | None:
        """The reference of a subject already holding an image with this SHA-256, if any."""
        return self._store.has_image_sha256(image_sha256)

    # -- samples -------------------------------------------------------------------------

    def list_samples(self, subject_id: int) -> list[SampleRecord]:
        return self._store.list_samples(subject_id)

    def get_sample(self, sample_id: int) -> SampleRecord:
        return self._store.get_sample(sample_id)

    def get_chip(self, sample_id: int) -> np.ndarray:
        """The sample's aligned face chip, (150, 150, 3) uint8 RGB."""
        return self._store.get_chip(sample_id)

    # -- duplicate-identity reviews ------------------------------------------------------

    def get_review(self, review_id: int) -> ReviewRecord:
        return self._store.get_review(review_id)

    def list_reviews(
        self, status: ReviewStatus | str | None = None, offset: int = 0, limit: int = 100
    ) -> list[ReviewRecord]:
        """Review cases in id order (oldest first), optionally of one status."""
        return self._store.list_reviews(status, offset, limit)

    # -- the gallery index and the face pool ---------------------------------------------

    def index_stats(self) -> IndexStats:
        """Size, kind and memory of the in-memory index."""
        return self._gallery.stats()

    def indexed_templates(self) -> int:
        """How many templates the index holds."""
        return len(self._gallery)

    def stored_templates(self) -> int:
        """How many templates of the index's model the database holds."""
        return self._store.count_templates(self._gallery.model_tag)

    @property
    def applied_change_seq(self) -> int:
        """The last logged template change the index has applied."""
        return self._gallery.applied_change_seq

    def face_workers_health(self) -> PoolHealth:
        """Whether the face worker pool can take work now (readiness, metrics)."""
        return self._pool.health()

    @property
    def face_pool_config(self) -> PoolConfig:
        """Workers and admission limit of the face pool."""
        return self._pool.config

    @property
    def face_jobs_pending(self) -> int:
        """Face jobs admitted and not yet finished (the queue depth metric)."""
        return self._pool.pending

    # -- keys and audit, kept in the records database ------------------------------------

    @property
    def keys(self) -> KeyStore:
        return self._store.keys

    @property
    def audit_log(self) -> AuditLog:
        return self._store.audit
