"""The enrollment and matching workflows: what a clerk, an officer and a supervisor do.

``IdentityService`` is the one front door to the core: it ties the face engine (through the
bounded worker pool), the record store (source of truth) and the gallery index together, and
offers the edges (HTTP routes, CLI, bulk import) the reads they need, so none of them reaches
the store, the index or the pool itself. It is safe to share between threads: face work runs
in parallel; every write that touches both the database and the index (enroll, resolve,
delete) holds one lock, so a duplicate search always sees every enrollment committed before
it, and the index never misses a committed template.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import logging
import threading
import time
from concurrent.futures import Future
from typing import Any

from wajah.biometric.engine import ProcessedImage
from wajah.biometric.errors import NoFaceFound
from wajah.biometric.pool import EnginePool
from wajah.biometric.quality import PROFILES, QualityProfile
from wajah.enrollment.applications import ApplicationPolicy, PublicStatus
from wajah.enrollment.errors import SubjectNotActive
from wajah.enrollment.gallery import GalleryKeeper, Progress
from wajah.enrollment.identification import describe_candidates, identify_processed
from wajah.enrollment.outcomes import (
    EnrollmentOutcome,
    EnrollmentStatus,
    IdentificationOutcome,
    MatchCandidate,
    QualityOutcome,
    RankedMatch,
    ResolutionOutcome,
    VerificationOutcome,
)
from wajah.enrollment.records import (
    UNSET,
    Actor,
    ApplicationRecord,
    ApplicationStatus,
    Capture,
    CaptureSource,
    ReviewCandidate,
    ReviewRecord,
    ReviewResolution,
    SubjectRecord,
    SubjectStatus,
)
from wajah.enrollment.replication import ChangeFollower
from wajah.enrollment.reports import Period, Report, build_report
from wajah.enrollment.service_reads import ServiceReads
from wajah.enrollment.store import RecordStore
from wajah.enrollment.structured_log import log_event
from wajah.matcher.decision import Decision, decide
from wajah.matcher.errors import SubjectHasNoTemplates
from wajah.matcher.identification import IdentifyMode
from wajah.matcher.thresholds import Thresholds

# The outcomes are re-exported: the edges name them with the service that returns them.
__all__ = [
    "DUPLICATE_CANDIDATES",
    "EnrollmentOutcome",
    "EnrollmentStatus",
    "IdentificationOutcome",
    "IdentityService",
    "MatchCandidate",
    "QualityOutcome",
    "RankedMatch",
    "ResolutionOutcome",
    "VerificationOutcome",
]

logger = logging.getLogger("wajah.enrollment")

DUPLICATE_CANDIDATES = 5  # how many look-alikes a review case lists


class IdentityService(ServiceReads):
    """The workflows and the reads the edges need (the reads in :class:`ServiceReads`). The
    store, the gallery keeper and the face pool are private: every use of them goes through a
    method here."""

    def __init__(
        self, store: RecordStore, gallery: GalleryKeeper, pool: EnginePool, thresholds: Thresholds
    ) -> None:
        self._store = store
        self._gallery = gallery
        self._pool = pool
        self.thresholds = thresholds
        self._write_lock = threading.Lock()
        self._follower: ChangeFollower | None = None

    # -- face work -----------------------------------------------------------------------

    def _process(self, image: bytes, profile: QualityProfile) -> tuple[ProcessedImage, float]:
        start = time.perf_counter()
        processed = self._pool.process(image, profile)
        return processed, (time.perf_counter() - start) * 1000.0

    def check_quality(self, image: bytes, profile: str = "enrollment") -> QualityOutcome:
        processed = self._pool.process(image, PROFILES[profile], embed=False)
        return QualityOutcome(processed)

    def submit_face_work(self, image: bytes, profile: QualityProfile) -> Future[ProcessedImage]:
        """Queue one photo's face work (quality and template) on the worker pool; raises
        ``EngineOverloaded`` when the pool is full (for pipelines such as the bulk import)."""
        return self._pool.submit(image, profile)

    def warm_up(self) -> None:
        """Start the face workers (loading their models) before the first request."""
        self._pool.warm_up()

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
        actor: Actor | None = None,
    ) -> EnrollmentOutcome:
        """Quality gate, duplicate-identity search, store. Never silently merges or rejects:
        a look-alike of another subject puts this subject in ``pending_review``."""
        self._store.get_subject_by_ref(subject_ref)  # fail fast, before the face work
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
            actor=actor,
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
        actor: Actor | None = None,
    ) -> EnrollmentOutcome:
        """The second half of :meth:`enroll`, for callers that ran the face work themselves
        (the bulk import pipelines many photos through the worker pool)."""
        subject = self._store.get_subject_by_ref(subject_ref)
        timings = {**processed.timings_ms, "face_total": face_ms}
        # The duplicate threshold for the gallery as it is now (FPIR grows with it).
        duplicate = self.thresholds.duplicate_point(max(self._gallery.stats().subjects, 1))
        if processed.template is None or processed.chip is None or not processed.quality.usable:
            log_event(logger, "enroll_refused", subject_id=subject.id)
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
        capture = Capture(
            subject_id=subject.id,
            capture_source=source,
            quality=processed.quality.to_dict(),
            chip=processed.chip,
            image_bytes=image if keep_image else None,
            image_sha256=hashlib.sha256(image).hexdigest(),
            station=station,
            captured_at=captured_at,
            template=template,
        )
        who = actor or Actor(station=station)
        with self._write_lock:
            review: ReviewRecord | None = None
            status = EnrollmentStatus.ACCEPTED
            # Sample, case and pending status in one transaction: a crash can never leave a
            # stored look-alike without its case (a resumed import would skip it).
            with self._store.transaction() as tx:
                # Enrollments of every process (replicas, the CLI) take turns from here to
                # their commit, and the index first takes in every enrollment committed
                # before: the duplicate search sees them all, as on one server.
                tx.serialise_enrollments()
                start = time.perf_counter()
                self._gallery.catch_up()
                found = self._gallery.identify(
                    template.vector,
                    DUPLICATE_CANDIDATES + 1,
                    duplicate.threshold,
                    model_tag=template.model_tag,
                )
                others = [c for c in found if c.subject_id != subject.id][:DUPLICATE_CANDIDATES]
                candidates = describe_candidates(self._store, others)
                timings["duplicate_search"] = (time.perf_counter() - start) * 1000.0
                sample, stored = tx.samples.add(capture)
                if candidates:
                    status = EnrollmentStatus.PENDING_REVIEW
                    review = tx.reviews.open(
                        subject.id,
                        [ReviewCandidate(c.subject_id, c.subject_ref, c.score) for c in candidates],
                    )
                    tx.subjects.set_status(subject.id, SubjectStatus.PENDING_REVIEW)
                    # The applications wait for the supervisor with the subject.
                    moved = tx.applications.mark_needs_review(
                        subject.id, f"duplicate-identity review {review.id} opened", who
                    )
                else:
                    moved = tx.applications.on_face_enrolled(subject.id, who)
                subject = tx.subjects.get(subject.id)
            # The index takes the template from the change log, as every replica does: a
            # direct add could re-insert a template another replica erased meanwhile.
            self._gallery.catch_up()
        self._gallery.note_writes()  # a periodic save, outside the write lock
        log_event(
            logger,
            "enrolled",
            subject_id=subject.id,
            template_id=stored.template_id,
            status=status.value,
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
            tuple(moved),
        )

    # -- matching ------------------------------------------------------------------------

    def verify(
        self, subject_ref: str, image: bytes, *, actor: Actor | None = None
    ) -> VerificationOutcome:
        """1:1: the probe against every sample of the claimed subject. ``actor``: the counter
        (station and key) that asked, for what the decision sets off."""
        subject = self._store.get_subject_by_ref(subject_ref)
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
        scores = self._gallery.subject_scores(
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
        moved: list[str] = []
        if verification.decision is Decision.MATCH:
            # The counter's match verifies the applicant's captured applications.
            with self._store.transaction() as tx:
                moved = tx.applications.on_verified(subject.id, actor or Actor(station="unknown"))
        return VerificationOutcome(subject, verification, processed.quality, timings, tuple(moved))

    def identify(
        self,
        image: bytes,
        k: int = 5,
        *,
        mode: IdentifyMode | str = IdentifyMode.INVESTIGATION,
        fpir: float | None = None,
        actor: Actor | None = None,
    ) -> IdentificationOutcome:
        """1:N over the active subjects (:mod:`wajah.matcher.identification`).

        ``investigation`` (default): the top-k always, ranked, each with the FPIR its score
        stands for and whether it clears the threshold; ``identification``: only those that
        clear it. The threshold is computed for the current gallery size at ``fpir`` (default:
        the calibrated identify target).
        """
        mode = IdentifyMode(mode)
        processed, face_ms = self._process(image, PROFILES["verification"])
        return identify_processed(
            self._store, self._gallery, self.thresholds, processed, face_ms, k, mode, fpir
        )

    # -- subjects ------------------------------------------------------------------------

    def create_subject(
        self,
        subject_ref: str,
        full_name: str,
        date_of_birth: dt.date | str | None = None,
        nationality: str | None = None,
        document_number: str | None = None,
    ) -> SubjectRecord:
        """A new subject, no face yet; :class:`SubjectAlreadyExists` for a used reference."""
        return self._store.create_subject(
            subject_ref, full_name, date_of_birth, nationality, document_number
        )

    def update_subject(self, subject_ref: str, **changes: Any) -> SubjectRecord:
        """Correct identity fields (``full_name``, ``date_of_birth``, ``nationality``,
        ``document_number``); ``None`` clears an optional one."""
        subject = self._store.get_subject_by_ref(subject_ref)
        fields = {
            name: changes.get(name, UNSET)
            for name in ("full_name", "date_of_birth", "nationality", "document_number")
        }
        return self._store.update_subject(subject.id, **fields)

    def delete_subject(self, subject_ref: str) -> int:
        """Erase a subject (a data-subject request): records, samples, images, templates and
        index entries. Returns how many templates were removed."""
        with self._write_lock:
            subject = self._store.get_subject_by_ref(subject_ref)
            template_ids = self._store.delete_subject(subject.id)
            self._gallery.catch_up()
            self._gallery.remove_subject(subject.id)  # a no-op unless the log was bypassed
        self._gallery.note_erasure()  # the erased templates leave the index file at once
        log_event(logger, "subject_deleted", subject_id=subject.id, templates=len(template_ids))
        return len(template_ids)

    # -- applications --------------------------------------------------------------------

    def create_application(
        self,
        subject_ref: str,
        application_type: str,
        *,
        policy: ApplicationPolicy,
        actor: Actor,
    ) -> ApplicationRecord:
        """A new application of the subject, ``submitted``, numbered by ``policy``
        (:meth:`RecordStore.create_application`)."""
        return self._store.create_application(subject_ref, application_type, policy, actor)

    def decide_application(
        self, number: str, decision: ApplicationStatus | str, *, actor: Actor, reason: str
    ) -> ApplicationRecord:
        """An officer's or a supervisor's decision (:meth:`RecordStore.decide_application`)."""
        return self._store.decide_application(number, decision, actor, reason)

    def get_application(self, number: str) -> ApplicationRecord:
        return self._store.get_application(number)

    def list_applications(
        self,
        *,
        subject_ref: str | None = None,
        status: ApplicationStatus | str | None = None,
        offset: int = 0,
        limit: int = 50,
    ) -> tuple[list[ApplicationRecord], int]:
        subject_id = None
        if subject_ref is not None:
            subject_id = self._store.get_subject_by_ref(subject_ref).id
        return self._store.list_applications(
            subject_id=subject_id, status=status, offset=offset, limit=limit
        )

    def lookup_application(self, number: str, date_of_birth: dt.date | str) -> PublicStatus:
        """The applicant's view (public); :class:`ApplicationLookupFailed` alike for an
        unknown number and a wrong date of birth."""
        return self._store.lookup_application(number, date_of_birth)

    def report(
        self,
        since: dt.datetime,
        until: dt.datetime,
        *,
        period: Period = "day",
        utc_offset_minutes: int = 0,
    ) -> Report:
        """The monitoring and evaluation report of ``[since, until)``
        (:mod:`wajah.enrollment.reports`)."""
        return build_report(
            self._store.engine,
            since,
            until,
            period=period,
            utc_offset_minutes=utc_offset_minutes,
        )

    # -- duplicate-identity reviews ------------------------------------------------------

    def resolve_review(
        self,
        review_id: int,
        resolution: ReviewResolution | str,
        *,
        resolved_by: str,
        comment: str,
        merge_into_ref: str | None = None,
        actor: Actor | None = None,
    ) -> ResolutionOutcome:
        """Supervisor's decision on a possible duplicate.

        ``confirm_distinct``: two different people; the new subject becomes active.
        ``merge``: the same person; the new subject's samples join the existing subject
        (the top candidate, or ``merge_into_ref``) and the new record is erased.
        ``reject``: a fraudulent or mistaken enrollment; the new subject is erased.

        The subject's applications held in ``needs_review`` by the case move in the same
        transaction: ``confirm_distinct`` and ``merge`` (the applicant is who the surviving
        record says) send them back to where the biometric step had left them, and ``merge``
        moves them to the surviving subject; ``reject`` rejects every open one.

        The database side is one transaction; the index follows once it has committed.
        """
        choice = ReviewResolution(resolution)
        who = actor or Actor(station=resolved_by)
        why = f"duplicate-identity review {review_id}: {choice.value}"
        with self._write_lock:
            review = self._store.get_review(review_id)
            target = (
                self._merge_target(review, merge_into_ref)
                if choice is ReviewResolution.MERGE
                else None
            )
            subject_id = review.subject_id
            surviving: SubjectRecord | None = None
            with self._store.transaction() as tx:
                # Claim the case first: of two concurrent resolutions only one gets past here.
                tx.reviews.resolve(review_id, choice, resolved_by, comment)
                assert subject_id is not None, "an open review always has its subject"
                if choice is ReviewResolution.REJECT:
                    moved = tx.applications.on_review_rejected(subject_id, who, why)
                else:
                    moved = tx.applications.on_review_cleared(subject_id, who, why)
                if choice is ReviewResolution.CONFIRM_DISTINCT:
                    surviving = tx.subjects.set_status(subject_id, SubjectStatus.ACTIVE)
                elif target is not None:
                    tx.applications.move_to_subject(subject_id, target.id)
                    tx.samples.move(subject_id, target.id)
                    tx.subjects.erase(subject_id)
                    surviving = tx.subjects.get(target.id)
                else:
                    tx.subjects.erase(subject_id)
                resolved = tx.reviews.get(review_id)  # as it stands after the erasure
            # The merge's re-linked templates and the erasure arrive through the change log.
            self._gallery.catch_up()
        # merge and reject erased a subject: its templates leave the index file at once
        if choice is ReviewResolution.CONFIRM_DISTINCT:
            self._gallery.note_writes()
        else:
            self._gallery.note_erasure()
        log_event(logger, "review_resolved", review_id=review_id, resolution=choice.value)
        return ResolutionOutcome(resolved, surviving, tuple(moved))

    def _merge_target(self, review: ReviewRecord, merge_into_ref: str | None) -> SubjectRecord:
        if merge_into_ref is not None:
            return self._store.get_subject_by_ref(merge_into_ref)
        for candidate in review.candidates:
            if candidate.subject_ref is not None:
                return self._store.get_subject(candidate.subject_id)
        raise SubjectNotActive(
            "every candidate of this review has been erased; "
            "resolve it as confirm_distinct or reject",
            status="deleted",
        )

    # -- the gallery index ---------------------------------------------------------------

    def rebuild_index(self, progress: Progress | None = None) -> int:
        """Rebuild the index from the database and save it; returns its size."""
        with self._write_lock:
            return self._gallery.rebuild(progress)

    def follow_changes(self, poll_s: float, retention_s: float | None = None) -> None:
        """Keep the index in step with other processes' writes to the database (replicas, the
        CLI) from now until :meth:`close`: a follower thread applies the change log every
        ``poll_s`` seconds and, on PostgreSQL, at once on each writer's NOTIFY; with
        ``retention_s`` it also prunes the log's older entries hourly."""
        if self._follower is None:
            self._follower = ChangeFollower(
                self._gallery, self._store.engine, poll_s, retention_s=retention_s
            )
            self._follower.start()

    def catch_up(self) -> int:
        """Apply the other processes' logged template changes now; returns how many."""
        return self._gallery.catch_up()

    def close(self) -> None:
        """Save the index if it has unsaved writes, stop the face workers, close the
        database connections."""
        try:
            if self._follower is not None:
                self._follower.stop()
            self._gallery.close()
            self._pool.close()
        finally:
            self._store.dispose()
