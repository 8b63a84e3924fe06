"""A subject's face samples: list, aligned chip, and enrollment of a new photo."""

from __future__ import annotations

from typing import Annotated

import cv2
from fastapi import APIRouter, Depends, Path, Request, Response
from pydantic import BaseModel, ConfigDict

from wajah.api.http.audit_trail import audited, entry_of
from wajah.api.http.auth import Caller, require
from wajah.api.http.errors import LowQuality
from wajah.api.http.routes._support import (
    AUTH_PROBLEMS,
    IMAGE_PROBLEMS,
    blocking,
    image_request_body,
    metrics_of,
    parse_fields,
    problems,
    read_image_upload,
    service_of,
)
from wajah.api.http.routes.subjects import READERS, SubjectIdPath
from wajah.api.schemas import CaptureSourceName, Enrollment, QualityProfileName, SampleList
from wajah.api.schemas import Sample as SampleOut
from wajah.enrollment.access import Role
from wajah.enrollment.db import STATION_MAX
from wajah.enrollment.errors import SampleNotFound
from wajah.enrollment.service import EnrollmentStatus

router = APIRouter(prefix="/v1/subjects/{subject_id}/faces", tags=["faces"])


class EnrollFields(BaseModel):
    model_config = ConfigDict(extra="forbid", json_schema_extra={"example": {"source": "camera"}})

    source: CaptureSourceName = "camera"
    profile: QualityProfileName | None = None  # default: scan for scans, else enrollment


@router.get(
    "",
    response_model=SampleList,
    summary="The subject's face samples",
    responses=problems(*AUTH_PROBLEMS),
    dependencies=[Depends(audited("face.list"))],
)
async def list_faces(
    *,
    request: Request,
    subject_id: str = SubjectIdPath,
    _: Annotated[Caller, Depends(require(*READERS))],
) -> SampleList:
    service = service_of(request)

    def load() -> SampleList:
        subject = service.get_subject_by_ref(subject_id)
        return SampleList(
            items=[SampleOut.from_record(s) for s in service.list_samples(subject.id)]
        )

    return await blocking(request, load)


@router.get(
    "/{sample_id}/chip",
    response_class=Response,
    summary="The sample's aligned face chip, 150 x 150 PNG",
    responses={
        200: {
            "content": {"image/png": {"schema": {"type": "string", "format": "binary"}}},
            "description": "PNG",
        },
        **problems(*AUTH_PROBLEMS),
    },
    dependencies=[Depends(audited("face.chip"))],
)
async def get_chip(
    *,
    request: Request,
    subject_id: str = SubjectIdPath,
    sample_id: int = Path(ge=1, le=2**62),
    _: Annotated[Caller, Depends(require(*READERS))],
) -> Response:
    entry_of(request).details = {"sample_id": sample_id}
    service = service_of(request)

    def load() -> bytes:
        subject = service.get_subject_by_ref(subject_id)
        if service.get_sample(sample_id).subject_id != subject.id:
            raise SampleNotFound("no such sample for this subject", sample_id=sample_id)
        chip = service.get_chip(sample_id)
        ok, encoded = cv2.imencode(".png", cv2.cvtColor(chip, cv2.COLOR_RGB2BGR))
        if not ok:
            raise RuntimeError("the chip could not be encoded as PNG")
        return bytes(encoded.tobytes())

    png = await blocking(request, load)
    return Response(png, media_type="image/png", headers={"Cache-Control": "no-store"})


@router.post(
    "",
    response_model=Enrollment,
    status_code=201,
    summary="Enroll a photo: quality gate, duplicate search, store",
    description=(
        "`accepted`: stored and searchable. `pending_review`: stored, but the face looks like "
        "another subject's; a supervisor resolves the review. A photo the quality gate refuses "
        "is not stored: 422 `low-quality` with the failing `components`."
    ),
    responses=problems(*IMAGE_PROBLEMS, 409),
    openapi_extra=image_request_body(EnrollFields, "the photo and how it was captured"),
    dependencies=[Depends(audited("face.enroll"))],
)
async def enroll_face(
    *,
    request: Request,
    subject_id: str = SubjectIdPath,
    caller: Annotated[Caller, Depends(require(Role.CLERK))],
) -> Enrollment:
    upload = await read_image_upload(request)
    fields = parse_fields(EnrollFields, upload.fields)
    profile = fields.profile or ("scan" if fields.source == "scan" else "enrollment")
    service = service_of(request)
    outcome = await blocking(
        request,
        lambda: service.enroll(
            subject_id,
            upload.image,
            source=fields.source,
            station=caller.name[:STATION_MAX],
            profile=profile,
            actor=caller.actor,
        ),
    )
    entry = entry_of(request)
    entry.decision = outcome.status.value
    entry.threshold = outcome.duplicate_threshold
    entry.details = {"profile": profile, "source": fields.source}
    metrics_of(request).count_decision("enroll", outcome.status.value)
    if outcome.status is EnrollmentStatus.REFUSED:
        failing = [c.name for c in outcome.quality.failing]
        entry.details["failing"] = failing
        raise LowQuality(
            "the photo is not good enough to enroll: " + "; ".join(outcome.reasons),
            components=[
                component
                for component in outcome.quality.to_dict()["components"]
                if component["name"] in failing
            ],
        )
    entry.score = outcome.candidates[0].score if outcome.candidates else None
    entry.details.update(
        sample_id=outcome.sample.id if outcome.sample else None,
        template_id=outcome.template_id,
        review_id=outcome.review.id if outcome.review else None,
        candidates=[c.subject_ref for c in outcome.candidates],
        applications_moved=len(outcome.applications_moved),
    )
    return Enrollment.from_outcome(outcome)
