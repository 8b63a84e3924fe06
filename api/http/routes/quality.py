"""Is this photo good enough? (clerk, before enrolling)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request
from pydantic import BaseModel

from wajah.api.http.auth import Caller, require
from wajah.api.http.routes._support import (
    IMAGE_PROBLEMS,
    blocking,
    image_request_body,
    problems,
    read_image_upload,
    service_of,
)
from wajah.api.schemas import QualityProfileName, QualityResult
from wajah.enrollment.access import Role

router = APIRouter(prefix="/v1", tags=["quality"])


class _NoFields(BaseModel):
    pass


@router.post(
    "/quality",
    response_model=QualityResult,
    summary="Detect faces and assess quality",
    responses=problems(*IMAGE_PROBLEMS),
    openapi_extra=image_request_body(_NoFields, "the photo to check"),
)
async def check_quality(
    *,
    request: Request,
    profile: Annotated[QualityProfileName, Query(description="quality profile")] = "enrollment",
    _: Annotated[Caller, Depends(require(Role.CLERK))],
) -> QualityResult:
    upload = await read_image_upload(request)
    service = service_of(request)
    outcome = await blocking(request, lambda: service.check_quality(upload.image, profile))
    return QualityResult.from_processed(outcome.processed)
