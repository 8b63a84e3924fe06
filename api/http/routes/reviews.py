"""Duplicate-identity reviews (supervisor): a new enrollment that looks like another subject."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Path, Query, Request

from wajah.api.http.audit_trail import audited, entry_of
from wajah.api.http.auth import Caller, require
from wajah.api.http.routes._support import AUTH_PROBLEMS, blocking, metrics_of, problems, service_of
from wajah.api.schemas import Review, ReviewList, ReviewResolve
from wajah.enrollment.access import Role

router = APIRouter(prefix="/v1/reviews", tags=["reviews"])
ReviewIdPath = Path(ge=1, le=2**62)


@router.get(
    "",
    response_model=ReviewList,
    summary="Review cases, oldest first",
    responses=problems(*AUTH_PROBLEMS),
)
async def list_reviews(
    *,
    request: Request,
    status: Literal["open", "resolved"] | None = Query(None),
    offset: int = Query(0, ge=0, le=2**31),
    limit: int = Query(100, ge=1, le=1000),
    _: Annotated[Caller, Depends(require(Role.SUPERVISOR))],
) -> ReviewList:
    service = service_of(request)

    def load() -> ReviewList:
        records = service.list_reviews(status=status, offset=offset, limit=limit)
        return ReviewList(items=[Review.from_record(r, r.subject_ref) for r in records])

    return await blocking(request, load)


@router.get(
    "/{review_id}",
    response_model=Review,
    summary="One review case",
    responses=problems(*AUTH_PROBLEMS),
    dependencies=[Depends(audited("review.read"))],
)
async def get_review(
    *,
    request: Request,
    review_id: int = ReviewIdPath,
    _: Annotated[Caller, Depends(require(Role.SUPERVISOR))],
) -> Review:
    service = service_of(request)

    def load() -> Review:
        record = service.get_review(review_id)
        return Review.from_record(record, record.subject_ref)

    review = await blocking(request, load)
    entry = entry_of(request)
    entry.subject_ref = review.subject_id
    entry.details = {"review_id": review_id}
    return review


@router.post(
    "/{review_id}/resolve",
    response_model=Review,
    summary="Resolve a case: confirm_distinct, merge or reject",
    description=(
        "`confirm_distinct`: two people; the new subject becomes active. `merge`: the same "
        "person; the new subject's photos join `merge_into` (default: the top candidate) and "
        "the new record is erased. `reject`: the new subject is erased. After `merge` and "
        "`reject` the case is erased with the subject, so this response is its last copy."
    ),
    responses=problems(*AUTH_PROBLEMS, 409),
    dependencies=[Depends(audited("review.resolve"))],
)
async def resolve_review(
    *,
    request: Request,
    body: ReviewResolve,
    review_id: int = ReviewIdPath,
    caller: Annotated[Caller, Depends(require(Role.SUPERVISOR))],
) -> Review:
    service = service_of(request)
    entry = entry_of(request)
    entry.decision = body.resolution
    entry.details = {"review_id": review_id}
    if body.merge_into is not None:
        entry.details["merge_into"] = body.merge_into

    def run() -> Review:
        subject_ref = service.get_review(review_id).subject_ref
        entry.subject_ref = subject_ref
        outcome = service.resolve_review(
            review_id,
            body.resolution,
            resolved_by=caller.name,
            comment=body.comment,
            merge_into_ref=body.merge_into,
            actor=caller.actor,
        )
        entry.details["applications_moved"] = len(outcome.applications_moved)
        if outcome.surviving_subject is not None:
            entry.details["surviving_subject"] = outcome.surviving_subject.subject_ref
        return Review.from_record(outcome.review, subject_ref)

    review = await blocking(request, run)
    metrics_of(request).count_decision("review", body.resolution)
    return review
