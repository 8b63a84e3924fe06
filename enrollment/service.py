"""The enrollment and matching workflows: what a clerk, an officer and a supervisor do.

``IdentityService`` ties the face engine (through the bounded worker pool), the record store
(source of truth) and the gallery index together. It is safe to share between threads: face
work runs in parallel; every write that touches both the database and the index (enroll,
resolve, delete) holds one lock, so a duplicate search always sees every enrollment committed
before it, and the index never misses a committed template.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import logging
import threading
import time
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

import numpy as np

from biometric.engine import ProcessedImage
from biometric.errors import NoFaceFound
from biometric.pool import EnginePool, PoolHealth
from biometric.quality import PROFILES, QualityProfile, QualityReport
from enrollment.db import CaptureSource, ReviewResolution, SubjectStatus
from enrollment.errors import SubjectNotActive
from enrollment.gallery import GalleryKeeper
from enrollment.store import (
    UNSET,
    RecordStore,
    ReviewCandidate,
    ReviewRecord,
    SampleRecord,
    SubjectRecord,
)
from matcher.decision import Verification, decide
from matcher.errors import SubjectHasNoTemplates
from matcher.thresholds import Thresholds

logger = logging.getLogger("wajah.enrollment")

DUPLICATE_CANDIDATES = 5  # how many look-alikes a review case lists


class EnrollmentStatus(StrEnum):
    ACCEPTED = "accepted"  # stored; the subject is searchable
    REFUSED = "refused"  # quality gate said no; nothing stored; retake
    PENDING_REVIEW = "pending_review"  # stored, but looks like another subject: supervisor


@dataclass(frozen=True)
class MatchCandidate:
    subject_id: int
    subject_ref: str
    score: float  # cosine similarity of the subject's best template
    status: str


@dataclass(frozen=True)
class EnrollmentOutcome:
    status: EnrollmentStatus
    subject: SubjectRecord
    quality: QualityReport
    sample: SampleRecord | None
    template_id: int | None
    review: ReviewRecord | None
    candidates: tuple[MatchCandidate, ...]
    duplicate_threshold: float
    timings_ms: dict[str, float] = field(default_factory=dict)

    @property
    def reasons(self) -> tuple[str, ...]:
        return tuple(component.reason for component in self.quality.failing)


@dataclass(frozen=True)
class VerificationOutcome:
    subject: SubjectRecord
    verification: Verification
    quality: QualityReport
    timings_ms: dict[str, float]


@dataclass(frozen=True)
class IdentificationOutcome:
    candidates: tuple[MatchCandidate, ...]
    threshold: float
    false_match_rate: float | None  # None when the calibration could not measure it
    quality: QualityReport
    timings_ms: dict[str, float]


@dataclass(frozen=True)
class QualityOutcome:
    processed: ProcessedImage

    @property
    def quality(self) -> QualityReport:
        return self.processed.quality


@dataclass(frozen=True)
class ResolutionOutcome:
    review: ReviewRecord
    surviving_subject: SubjectRecord | None  # None after 'reject'


class IdentityService:
    def __init__(
        self, store: RecordStore, gallery: GalleryKeeper, pool: EnginePool, thresholds: Thresholds
    ) -> None:
        self.store = store
        self.gallery = gallery
        self.pool = pool
        self.thresholds = thresholds
        self._write_lock = threading.Lock()

    # -- face work -----------------------------------------------------------------------

    def _process(self, image: bytes, profile: QualityProfile) -> tuple[ProcessedImage, float]:
        start = time.perf_counter()
        processed = self.pool.process(image, profile)
        return processed, (time.perf_counter() - start) * 1000.0

    def check_quality(self, image: bytes, profile: str = "enrollment") -> QualityOutcome:
        processed = self.pool.process(image, PROFILES[profile], embed=False)
        return QualityOutcome(processed)

    # -- enrollment ----------------------------------------------------------------------

    def enroll(
        self,
        subject_ref: str,
        image: bytes,
        *,
        source: CaptureSource | str,
        station: str,
        profile: str = "enrollment",
        keep_image: bool = True,
        captured_at: dt.datetime | None = None,
    ) -> EnrollmentOutcome:
        """Quality gate, duplicate-identity search, store. Never silently merges or rejects:
        a look-alike of another subject puts this subject in ``pending_review``."""
        self.store.get_subject_by_ref(subject_ref)  # fail fast, before the face work
        processed, face_ms = self._process(image, PROFILES[profile])
        return self.enroll_processed(
            subject_ref,
            processed,
            image,
            source=source,
            station=station,
            keep_image=keep_image,
            captured_at=captured_at,
            face_ms=face_ms,
        )

    def enroll_processed(
        self,
        subject_ref: str,
        processed: ProcessedImage,
        image: bytes,
        *,
        source: CaptureSource | str,
        station: str,
        keep_image: bool = True,
        captured_at: dt.datetime | None = None,
        face_ms: float = 0.0,
    ) -> EnrollmentOutcome:
        """The second half of :meth:`enroll`, for callers that ran the face work themselves
        (the bulk import pipelines many photos through the worker pool)."""
        subject = self.store.get_subject_by_ref(subject_ref)
        timings = {**processed.timings_ms, "face_total": face_ms}
        duplicate = self.thresholds.duplicate
        if processed.template is None or processed.chip is None or not processed.quality.usable:
            logger.info('{"event": "enroll_refused", "subject_id": %d}', subject.id)
            return EnrollmentOutcome(
                EnrollmentStatus.REFUSED,
                subject,
                processed.quality,
                None,
                None,
                None,
                (),
                duplicate.threshold,
                timings,
            )
        template = processed.template
        digest = hashlib.sha256(image).hexdigest()
        with self._write_lock:
            start = time.perf_counter()
            found = self.gallery.index.identify(
                template.vector,
                DUPLICATE_CANDIDATES + 1,
                duplicate.threshold,
                model_tag=template.model_tag,
            )
            others = [c for c in found if c.subject_id != subject.id][:DUPLICATE_CANDIDATES]
            candidates = self._describe(others)
            timings["duplicate_search"] = (time.perf_counter() - start) * 1000.0
            capture = (
                subject.id,
                source,
                processed.quality.to_dict(),
                processed.chip,
                image if keep_image else None,
                digest,
                station,
                captured_at,
                template,
            )
            review: ReviewRecord | None = None
            status = EnrollmentStatus.ACCEPTED
            if candidates:
                # Sample, case and pending status in one transaction (see the store).
                status = EnrollmentStatus.PENDING_REVIEW
                sample, stored, review = self.store.add_sample_for_review(
                    *capture,
                    [ReviewCandidate(c.subject_id, c.subject_ref, c.score) for c in candidates],
                )
            else:
                sample, stored = self.store.add_sample(*capture)
            self.gallery.index.add(
                np.array([stored.template_id], dtype=np.int64),
                np.array([subject.id], dtype=np.int64),
                stored.vector[None, :],
                model_tag=stored.model_tag,
            )
            subject = self.store.get_subject(subject.id)
        self.gallery.note_writes()  # a periodic save, outside the write lock
        logger.info(
            '{"event": "enrolled", "subject_id": %d, "template_id": %d, "status": "%s"}',
            subject.id,
            stored.template_id,
            status.value,
        )
        return EnrollmentOutcome(
            status,
            subject,
            processed.quality,
            sample,
            stored.template_id,
            review,
            tuple(candidates),
            duplicate.threshold,
            timings,
        )

    def _describe(self, found: list[Any]) -> list[MatchCandidate]:
        described = []
        for candidate in found:
            record = self.store.get_subject(candidate.subject_id)
            described.append(
                MatchCandidate(
                    record.id,
                    record.subject_ref,
                    round(float(candidate.score), 6),
                    str(record.status),
                )
            )
        return described

    # -- matching ------------------------------------------------------------------------

    def verify(self, subject_ref: str, image: bytes) -> VerificationOutcome:
        """1:1: the probe against every sample of the claimed subject."""
        subject = self.store.get_subject_by_ref(subject_ref)
        if subject.status != SubjectStatus.ACTIVE:
            raise SubjectNotActive(
                f"subject {subject_ref} is {subject.status}; it cannot be verified until a "
                "supervisor resolves it",
                status=str(subject.status),
            )
        if subject.sample_count == 0:  # before the face work, not after it
            raise SubjectHasNoTemplates("the subject has no enrolled face", subject_id=subject.id)
        processed, face_ms = self._process(image, PROFILES["verification"])
        if processed.template is None:
            raise NoFaceFound("no face found in the probe image")
        start = time.perf_counter()
        scores = self.gallery.index.subject_scores(
            processed.template.vector, subject.id, model_tag=processed.template.model_tag
        )
        verification = decide(
            scores,
            self.thresholds.verify,
            probe_usable=processed.quality.usable,
            probe_quality_reasons=[c.reason for c in processed.quality.failing],
        )
        timings = {
            **processed.timings_ms,
            "face_total": face_ms,
            "match": (time.perf_counter() - start) * 1000.0,
        }
        return VerificationOutcome(subject, verification, processed.quality, timings)

    def identify(self, image: bytes, k: int = 5) -> IdentificationOutcome:
        """1:N: the top-k active subjects above the identification threshold."""
        processed, face_ms = self._process(image, PROFILES["verification"])
        if processed.template is None:
            raise NoFaceFound("no face found in the probe image")
        operating_point = self.thresholds.identify
        start = time.perf_counter()
        found = self.gallery.index.identify(
            processed.template.vector,
            k,
            operating_point.threshold,
            model_tag=processed.template.model_tag,
        )
        candidates = [c for c in self._describe(found) if c.status == SubjectStatus.ACTIVE]
        timings = {
            **processed.timings_ms,
            "face_total": face_ms,
            "search": (time.perf_counter() - start) * 1000.0,
        }
        return IdentificationOutcome(
            tuple(candidates),
            operating_point.threshold,
            operating_point.false_match_rate,
            processed.quality,
            timings,
        )

    # -- subjects ------------------------------------------------------------------------

    def delete_subject(self, subject_ref: str) -> int:
        """Erase a subject (a data-subject request): records, samples, images, templates and
        index entries. Returns how many templates were removed."""
        with self._write_lock:
            subject = self.store.get_subject_by_ref(subject_ref)
            template_ids = self.store.delete_subject(subject.id)
            self.gallery.index.remove_subject(subject.id)
        self.gallery.note_erasure()  # the erased templates leave the index file at once
        logger.info(
            '{"event": "subject_deleted", "subject_id": %d, "templates": %d}',
            subject.id,
            len(template_ids),
        )
        return len(template_ids)

    # -- duplicate-identity reviews ------------------------------------------------------

    def resolve_review(
        self,
        review_id: int,
        resolution: ReviewResolution | str,
        *,
        resolved_by: str,
        comment: str,
        merge_into_ref: str | None = None,
    ) -> ResolutionOutcome:
        """Supervisor's decision on a possible duplicate.

        ``confirm_distinct``: two different people; the new subject becomes active.
        ``merge``: the same person; the new subject's samples join the existing subject
        (the top candidate, or ``merge_into_ref``) and the new record is erased.
        ``reject``: a fraudulent or mistaken enrollment; the new subject is erased.
        """
        choice = ReviewResolution(resolution)
        with self._write_lock:
            review = self.store.get_review(review_id)
            target = (
                self._merge_target(review, merge_into_ref)
                if choice is ReviewResolution.MERGE
                else None
            )
            # Claim the case first: of two concurrent resolutions only one gets past here.
            resolved = self.store.resolve_review(review_id, choice, resolved_by, comment)
            subject_id = review.subject_id
            assert subject_id is not None, "an open review always has its subject"
            surviving: SubjectRecord | None
            if choice is ReviewResolution.CONFIRM_DISTINCT:
                surviving = self.store.set_status(subject_id, SubjectStatus.ACTIVE)
            elif target is not None:
                moved = self.store.move_samples(subject_id, target.id)
                moved_ids = set(moved.template_ids.tolist())
                self.gallery.index.remove_templates(moved.template_ids)
                for stored in self.store.subject_templates(target.id, self.gallery.model_tag):
                    if stored.template_id in moved_ids:
                        self.gallery.index.add(
                            np.array([stored.template_id], dtype=np.int64),
                            np.array([target.id], dtype=np.int64),
                            stored.vector[None, :],
                            model_tag=stored.model_tag,
                        )
                self.store.delete_subject(subject_id)
                surviving = self.store.get_subject(target.id)
            else:
                self.store.delete_subject(subject_id)
                self.gallery.index.remove_subject(subject_id)
                surviving = None
            resolved = self.store.get_review(review_id)  # as it stands after the erasure
        # merge and reject erased a subject: its templates leave the index file at once
        if choice is ReviewResolution.CONFIRM_DISTINCT:
            self.gallery.note_writes()
        else:
            self.gallery.note_erasure()
        logger.info(
            '{"event": "review_resolved", "review_id": %d, "resolution": "%s"}',
            review_id,
            choice.value,
        )
        return ResolutionOutcome(resolved, surviving)

    def _merge_target(self, review: ReviewRecord, merge_into_ref: str | None) -> SubjectRecord:
        if merge_into_ref is not None:
            return self.store.get_subject_by_ref(merge_into_ref)
        for candidate in review.candidates:
            if candidate.subject_ref is not None:
                return self.store.get_subject(candidate.subject_id)
        raise SubjectNotActive(
            "every candidate of this review has been erased; "
            "resolve it as confirm_distinct or reject",
            status="deleted",
        )

    # -- passthroughs the edges use --------------------------------------------------------

    def update_subject(self, subject_ref: str, **changes: Any) -> SubjectRecord:
        subject = self.store.get_subject_by_ref(subject_ref)
        fields = {
            name: changes.get(name, UNSET)
            for name in ("full_name", "date_of_birth", "nationality", "document_number")
        }
        return self.store.update_subject(subject.id, **fields)

    def face_workers_health(self) -> PoolHealth:
        """Whether the face worker pool can take work now (readiness, metrics)."""
        return self.pool.health()

    def close(self) -> None:
        self.gallery.close()
        self.pool.close()
