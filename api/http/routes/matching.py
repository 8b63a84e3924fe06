"""1:1 verification and 1:N identification (officer, at the counter)."""

from __future__ import annotations

import dataclasses
import time
from typing import Annotated

from fastapi import APIRouter, Depends, Request, Response
from fastapi import Path as FastApiPath
from pydantic import BaseModel, ConfigDict, Field, model_validator

from wajah.api.http.audit_trail import MAX_LISTED_REFS, audited, entry_of
from wajah.api.http.auth import Caller, require
from wajah.api.http.routes._support import (
    AUTH_PROBLEMS,
    IMAGE_PROBLEMS,
    blocking,
    failed_verifications_of,
    image_request_body,
    metrics_of,
    parse_fields,
    problems,
    read_image_upload,
    service_of,
)
from wajah.api.schemas import Identification, Verification
from wajah.enrollment.access import Role
from wajah.enrollment.errors import SubjectNotFound
from wajah.enrollment.service import IdentificationOutcome, VerificationOutcome
from wajah.enrollment.validation import normalised_subject_ref
from wajah.matcher.decision import Decision
from wajah.matcher.errors import SubjectHasNoTemplates
from wajah.matcher.identification import IdentifyMode
from wajah.matcher.impostor_curve import fpir_from_mosip_target

router = APIRouter(prefix="/v1", tags=["matching"])


class VerifyFields(BaseModel):
    model_config = ConfigDict(
        extra="forbid", json_schema_extra={"example": {"subject_id": "A-2024-000123"}}
    )

    subject_id: str = Field(min_length=1, max_length=64, description="the claimed subject")


class IdentifyFields(BaseModel):
    model_config = ConfigDict(
        extra="forbid", json_schema_extra={"example": {"k": 5, "mode": "investigation"}}
    )

    k: int = Field(5, ge=1, le=50, description="most candidates to return")
    mode: IdentifyMode = Field(
        IdentifyMode.INVESTIGATION,
        description="investigation: the top k always, for an officer's review; "
        "identification: a decision, only candidates that clear the threshold",
    )
    fpir: float | None = Field(
        None,
        gt=0,
        le=0.5,
        description="false-positive identification rate the threshold is set for, at the "
        "current gallery size (default: the calibrated target)",
    )
    target_fpir: float | None = Field(
        None,
        ge=3,
        le=100,
        description="the same in MOSIP's convention, -10·log10(FPIR) (20 = FPIR 0.01)",
    )

    @model_validator(mode="after")
    def _one_fpir(self) -> IdentifyFields:
        if self.fpir is not None and self.target_fpir is not None:
            raise ValueError("give fpir or target_fpir, not both")
        return self

    @property
    def requested_fpir(self) -> float | None:
        if self.target_fpir is not None:
            return fpir_from_mosip_target(self.target_fpir)
        return self.fpir


@router.post(
    "/verify",
    response_model=Verification,
    summary="1:1: is this the claimed subject?",
    description=(
        "`inconclusive` when the probe photo is not good enough to decide. After "
        "`failed_verify_limit` `no_match` results for one subject from one key (counter) "
        "within the window, that counter is locked for the subject, and after "
        "`failed_verify_subject_limit` across counters every counter is: 429 "
        "`too-many-failed-attempts` with Retry-After. A supervisor can clear the lock."
    ),
    responses=problems(*IMAGE_PROBLEMS, 409),
    openapi_extra=image_request_body(VerifyFields, "the probe photo and the claimed subject"),
    dependencies=[Depends(audited("verify"))],
)
async def verify(
    *, request: Request, caller: Annotated[Caller, Depends(require(Role.OFFICER))]
) -> Verification:
    upload = await read_image_upload(request)
    fields = parse_fields(VerifyFields, upload.fields)
    # The stored form: a look-alike spelling (full-width, say) must count against the same lock.
    subject_ref = normalised_subject_ref(fields.subject_id)
    entry = entry_of(request)
    entry.subject_ref = subject_ref
    attempts = failed_verifications_of(request)
    attempts.check(subject_ref, caller.key_id)
    service = service_of(request)
    started = time.perf_counter()

    def run() -> VerificationOutcome:
        subject = service.get_subject_by_ref(subject_ref)
        if subject.sample_count == 0:  # spare the face work: nothing to compare with
            raise SubjectHasNoTemplates("the subject has no enrolled face", subject_id=subject.id)
        return service.verify(subject_ref, upload.image, actor=caller.actor)

    outcome = await blocking(request, run)
    time_ms = (time.perf_counter() - started) * 1000.0
    verification = outcome.verification
    entry.decision = verification.decision.value
    entry.score = round(verification.score, 6)
    entry.threshold = verification.threshold
    entry.details = {
        "templates_compared": verification.templates_compared,
        "probe_usable": outcome.quality.usable,
        "applications_moved": len(outcome.applications_moved),
    }
    if not outcome.quality.usable:
        entry.details["failing"] = [c.name for c in outcome.quality.failing]
    metrics_of(request).count_decision("verify", verification.decision.value)
    if verification.decision is Decision.MATCH:
        attempts.record_match(subject_ref)
    elif verification.decision is Decision.NO_MATCH:
        attempts.record_failure(subject_ref, caller.key_id)
    return Verification.from_outcome(outcome, time_ms)


@router.post(
    "/identify",
    response_model=Identification,
    summary="1:N: who, among active subjects, is this?",
    description=(
        "`investigation` (default): the top k candidates always, ranked, each with the "
        "false-positive identification rate its score stands for at the current gallery size "
        "and whether it clears the identification threshold; when none does, `decision` is "
        "`not_identified` and the list is possible candidates for review. `identification`: "
        "`identified` / `not_identified` at the threshold for the requested FPIR at the "
        "current gallery size, listing only the candidates that clear it. `inconclusive`: "
        "nothing clears it and the photo is too poor to trust that; take a new one."
    ),
    responses=problems(*IMAGE_PROBLEMS),
    openapi_extra=image_request_body(IdentifyFields, "the probe photo and how many candidates"),
    dependencies=[Depends(audited("identify"))],
)
async def identify(
    *, request: Request, caller: Annotated[Caller, Depends(require(Role.OFFICER))]
) -> Identification:
    upload = await read_image_upload(request)
    fields = parse_fields(IdentifyFields, upload.fields)
    service = service_of(request)
    started = time.perf_counter()

    def run() -> tuple[IdentificationOutcome, dict[str, str]]:
        outcome = service.identify(
            upload.image,
            fields.k,
            mode=fields.mode,
            fpir=fields.requested_fpir,
            actor=caller.actor,
        )
        names = {}
        for candidate in outcome.candidates:
            try:
                names[candidate.subject_ref] = service.get_subject(candidate.subject_id).full_name
            except SubjectNotFound:  # erased a moment ago
                continue
        kept = tuple(c for c in outcome.candidates if c.subject_ref in names)
        return dataclasses.replace(outcome, candidates=kept), names

    outcome, names = await blocking(request, run)
    time_ms = (time.perf_counter() - started) * 1000.0
    entry = entry_of(request)
    entry.decision = outcome.decision.value
    entry.score = outcome.candidates[0].score if outcome.candidates else None
    entry.threshold = outcome.threshold
    point = outcome.point
    entry.details = {
        "k": fields.k,
        "mode": outcome.mode.value,
        "gallery_size": point.gallery_size if point else None,
        "target_fpir": point.target_fpir if point else None,
        "threshold_scaled": point.scaled if point else None,
        "probe_usable": outcome.quality.usable,
        "candidate_count": len(outcome.candidates),
        "cleared_count": len(outcome.cleared),  # the top ranked ones: candidates[:count]
        "candidates": [c.subject_ref for c in outcome.candidates][:MAX_LISTED_REFS],
    }
    if not outcome.quality.usable:
        entry.details["failing"] = [c.name for c in outcome.quality.failing]
    metrics_of(request).count_decision("identify", entry.decision)
    return Identification.from_outcome(outcome, names, time_ms)


@router.delete(
    "/subjects/{subject_id}/verification-lock",
    status_code=204,
    response_class=Response,
    summary="Clear a subject's failed-verification lock (every counter)",
    responses=problems(*AUTH_PROBLEMS),
    dependencies=[Depends(audited("verify.unlock"))],
)
async def clear_verification_lock(
    *,
    request: Request,
    subject_id: str = FastApiPath(min_length=1, max_length=64),
    _: Annotated[Caller, Depends(require(Role.SUPERVISOR))],
) -> Response:
    cleared = failed_verifications_of(request).clear(normalised_subject_ref(subject_id))
    entry_of(request).details = {"was_locked": cleared}
    return Response(status_code=204)
