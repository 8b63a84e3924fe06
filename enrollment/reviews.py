"""Duplicate-identity review cases: opened when a new enrollment looks like other subjects,
resolved by a supervisor. The decision's consequence (merge, erase) is the workflow's."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

from sqlalchemy import delete, select, update
from sqlalchemy.orm import Session

from wajah.enrollment.clock import utcnow
from wajah.enrollment.db import ACTOR_MAX, Review
from wajah.enrollment.errors import InvalidSubjectData, ReviewAlreadyResolved, ReviewNotFound
from wajah.enrollment.records import ReviewCandidate, ReviewRecord, ReviewResolution, ReviewStatus
from wajah.enrollment.session_scope import SessionScope, require_subject
from wajah.enrollment.validation import check_page, clean_text, parse_choice

__all__ = ["ReviewRepository", "detach_erased_subject"]


class ReviewRepository:
    """The review cases, inside one transaction."""

    def __init__(self, scope: SessionScope) -> None:
        self._scope = scope
        self._session = scope.session

    def open(self, subject_id: int, candidates: Sequence[ReviewCandidate]) -> ReviewRecord:
        """Open a case for ``subject_id`` against ``candidates`` (the subject's status is the
        caller's to set, in the same transaction)."""
        candidate_json = [_candidate_json(candidate) for candidate in candidates]
        subject = require_subject(self._session, subject_id)
        review = Review(
            subject_id=subject_id,
            subject_ref=subject.subject_ref,
            candidates=candidate_json,
            status=ReviewStatus.OPEN.value,
            created_at=utcnow(),
        )
        self._session.add(review)
        self._session.flush()
        self._scope.note("review_created", review_id=review.id, subject_id=subject_id)
        return _review_record(review)

    def get(self, review_id: int) -> ReviewRecord:
        review = self._session.get(Review, review_id, populate_existing=True)
        if review is None:
            raise ReviewNotFound("no such review", review_id=review_id)
        return _review_record(review)

    def list(
        self, status: ReviewStatus | str | None = None, offset: int = 0, limit: int = 100
    ) -> list[ReviewRecord]:
        """Reviews in id order (oldest case first), optionally of one status."""
        check_page(offset, limit)
        query = select(Review).order_by(Review.id).offset(offset).limit(limit)
        if status is not None:
            query = query.where(Review.status == parse_choice(ReviewStatus, status, "status").value)
        return [_review_record(review) for review in self._session.execute(query).scalars()]

    def resolve(
        self,
        review_id: int,
        resolution: ReviewResolution | str,
        resolved_by: str,
        comment: str | None = None,
    ) -> ReviewRecord:
        """Record a supervisor's decision. Only the first of two concurrent resolutions
        wins; the other gets :class:`ReviewAlreadyResolved`."""
        decided = parse_choice(ReviewResolution, resolution, "resolution")
        actor = clean_text(resolved_by, "resolved_by", ACTOR_MAX, required=True)
        # Conditional on the case still being open: the database picks the one winner.
        result = self._session.execute(
            update(Review)
            .where(Review.id == review_id, Review.status == ReviewStatus.OPEN.value)
            .values(
                status=ReviewStatus.RESOLVED.value,
                resolution=decided.value,
                resolved_by=actor,
                comment=comment,
                resolved_at=utcnow(),
            )
            .execution_options(synchronize_session=False)
        )
        if result.rowcount != 1:  # type: ignore[attr-defined]
            if self._session.get(Review, review_id) is None:
                raise ReviewNotFound("no such review", review_id=review_id)
            raise ReviewAlreadyResolved("the review is already resolved", review_id=review_id)
        self._scope.note("review_resolved", review_id=review_id, resolution=decided.value)
        return self.get(review_id)


def detach_erased_subject(session: Session, subject_id: int) -> int:
    """Before erasing a subject: delete its open cases (moot), unlink its resolved ones (the
    supervisor's record stays, without the erased id and reference), and drop its reference
    from other cases' candidate lists (keeping id and score, so the history of the decision
    stays readable). Returns the other cases changed."""
    session.execute(
        delete(Review).where(
            Review.subject_id == subject_id, Review.status == ReviewStatus.OPEN.value
        )
    )
    session.execute(
        update(Review)
        .where(Review.subject_id == subject_id)
        .values(subject_id=None, subject_ref=None)
        .execution_options(synchronize_session=False)
    )
    changed = 0
    for review in session.execute(select(Review)).scalars():
        if any(candidate.get("subject_id") == subject_id for candidate in review.candidates):
            review.candidates = [
                {**candidate, "subject_ref": None}
                if candidate.get("subject_id") == subject_id
                else candidate
                for candidate in review.candidates
            ]
            changed += 1
    return changed


def _review_record(review: Review) -> ReviewRecord:
    return ReviewRecord(
        id=review.id,
        subject_id=review.subject_id,
        subject_ref=review.subject_ref,
        candidates=tuple(
            ReviewCandidate(
                subject_id=int(candidate["subject_id"]),
                subject_ref=candidate.get("subject_ref"),
                score=float(candidate["score"]),
            )
            for candidate in review.candidates
        ),
        status=ReviewStatus(review.status),
        resolution=ReviewResolution(review.resolution) if review.resolution else None,
        resolved_by=review.resolved_by,
        comment=review.comment,
        created_at=review.created_at,
        resolved_at=review.resolved_at,
    )


def _candidate_json(candidate: ReviewCandidate) -> dict[str, Any]:
    score = float(candidate.score)
    if not math.isfinite(score):
        raise InvalidSubjectData("candidate score must be finite", field="candidates")
    return {
        "subject_id": int(candidate.subject_id),
        "subject_ref": candidate.subject_ref,
        "score": score,
    }
