"""What ops watch: Prometheus metrics and a JSON summary for the console's ops page."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Request, Response
from prometheus_client import CONTENT_TYPE_LATEST

from wajah.api.http.auth import Caller, require
from wajah.api.http.routes._support import AUTH_PROBLEMS, blocking, metrics_of, problems, service_of
from wajah.api.schemas import OpsSummary
from wajah.enrollment.access import Role
from wajah.enrollment.records import ReviewStatus
from wajah.enrollment.service import IdentityService

router = APIRouter(tags=["ops"])

OPEN_REVIEWS_COUNTED_MAX = 1000  # the store has no count of reviews; one page is counted


def gallery_figures(service: IdentityService) -> dict[str, int]:
    """Gallery size, subjects and open reviews, read now (a few cheap queries)."""
    _, subjects = service.list_subjects(limit=1)
    open_reviews = len(
        service.list_reviews(status=ReviewStatus.OPEN, limit=OPEN_REVIEWS_COUNTED_MAX)
    )
    return {
        "gallery_templates": service.indexed_templates(),
        "subjects": subjects,
        "open_reviews": open_reviews,
        "queue_depth": service.face_jobs_pending,
        "face_worker_restarts": service.face_workers_health().restarts,
    }


@router.get(
    "/metrics",
    response_class=Response,
    summary="Prometheus metrics",
    responses={
        200: {
            "content": {"text/plain": {"schema": {"type": "string"}}},
            "description": "Prometheus text exposition format",
        },
        **problems(*AUTH_PROBLEMS),
    },
)
async def metrics(
    *, request: Request, _: Annotated[Caller, Depends(require(Role.OPS))]
) -> Response:
    service = service_of(request)
    collected = metrics_of(request)
    figures = await blocking(request, lambda: gallery_figures(service))
    collected.set_gauges(**figures)
    return Response(collected.exposition(), media_type=CONTENT_TYPE_LATEST)


@router.get(
    "/v1/ops/summary",
    response_model=OpsSummary,
    summary="Gallery, traffic, decisions, latency percentiles and recent errors",
    responses=problems(*AUTH_PROBLEMS),
)
async def summary(
    *, request: Request, _: Annotated[Caller, Depends(require(Role.OPS))]
) -> OpsSummary:
    service = service_of(request)
    collected = metrics_of(request)
    figures = await blocking(request, lambda: gallery_figures(service))
    collected.set_gauges(**figures)
    return OpsSummary(
        gallery_size=figures["gallery_templates"],
        subjects=figures["subjects"],
        open_reviews=figures["open_reviews"],
        face_queue_depth=figures["queue_depth"],
        **collected.snapshot(),
    )
