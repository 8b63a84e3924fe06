"""Applications (passport, visa, stay permit) and their status: clerks create them, the
biometric steps move them, officers and supervisors decide. The applicant's own lookup is
public (``routes/public.py``)."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Query, Request
from fastapi import Path as FastApiPath

from wajah.api.http.audit_trail import audited, entry_of
from wajah.api.http.auth import Caller, require
from wajah.api.http.routes._support import AUTH_PROBLEMS, blocking, metrics_of, problems, service_of
from wajah.api.schemas import Application, ApplicationCreate, ApplicationDecide, ApplicationPage
from wajah.enrollment.access import Role
from wajah.enrollment.applications import ApplicationPolicy

router = APIRouter(prefix="/v1/applications", tags=["applications"])
READERS = (Role.CLERK, Role.OFFICER, Role.SUPERVISOR)
DECIDERS = (Role.OFFICER, Role.SUPERVISOR)
NumberPath = FastApiPath(min_length=1, max_length=32)


def policy_of(request: Request) -> ApplicationPolicy:
    policy: ApplicationPolicy = request.app.state.application_policy
    return policy


@router.post(
    "",
    response_model=Application,
    status_code=201,
    summary="Open an application for a subject (clerk)",
    description=(
        "The subject must have a date of birth: the applicant's status lookup asks for it. "
        "The number is issued in the office's format (`WAJAH_APPLICATION_NUMBER_FORMAT`); the "
        "type is one of `WAJAH_APPLICATION_TYPES`. Enrolling the applicant's face then marks it "
        "`biometrics_captured` by itself."
    ),
    responses=problems(*AUTH_PROBLEMS, 409),
    dependencies=[Depends(audited("application.create"))],
)
async def create_application(
    *,
    request: Request,
    body: ApplicationCreate,
    caller: Annotated[Caller, Depends(require(Role.CLERK))],
) -> Application:
    service = service_of(request)
    entry = entry_of(request)
    entry.subject_ref = body.subject_id
    entry.details = {"application_type": body.application_type}
    record = await blocking(
        request,
        lambda: service.create_application(
            body.subject_id, body.application_type, policy=policy_of(request), actor=caller.actor
        ),
    )
    entry.decision = record.status.value
    entry.details["application_id"] = record.id
    return Application.from_record(record)


@router.get(
    "",
    response_model=ApplicationPage,
    summary="Applications, newest first",
    responses=problems(*AUTH_PROBLEMS),
)
async def list_applications(
    *,
    request: Request,
    subject_id: str | None = Query(None, min_length=1, max_length=64),
    status: Literal[
        "submitted", "biometrics_captured", "verified", "needs_review", "approved", "rejected"
    ]
    | None = Query(None),
    offset: int = Query(0, ge=0, le=2**31),
    limit: int = Query(50, ge=1, le=500),
    _: Annotated[Caller, Depends(require(*READERS))],
) -> ApplicationPage:
    service = service_of(request)

    def load() -> ApplicationPage:
        items, total = service.list_applications(
            subject_ref=subject_id, status=status, offset=offset, limit=limit
        )
        return ApplicationPage(
            items=[Application.from_record(r) for r in items],
            total=total,
            offset=offset,
            limit=limit,
        )

    return await blocking(request, load)


@router.get(
    "/{number}",
    response_model=Application,
    summary="One application with its timeline",
    responses=problems(*AUTH_PROBLEMS),
    dependencies=[Depends(audited("application.read"))],
)
async def get_application(
    *,
    request: Request,
    number: str = NumberPath,
    _: Annotated[Caller, Depends(require(*READERS))],
) -> Application:
    service = service_of(request)
    record = await blocking(request, lambda: service.get_application(number))
    entry = entry_of(request)
    entry.subject_ref = record.subject_ref
    entry.details = {"application_id": record.id}
    return Application.from_record(record)


@router.post(
    "/{number}/decision",
    response_model=Application,
    summary="Approve or reject an application (officer, supervisor)",
    description=(
        "`approved` only from `verified`; `rejected` from any open status. A move the "
        "transition table does not allow is 409 `illegal-transition` and changes nothing."
    ),
    responses=problems(*AUTH_PROBLEMS, 409),
    dependencies=[Depends(audited("application.decide"))],
)
async def decide_application(
    *,
    request: Request,
    body: ApplicationDecide,
    number: str = NumberPath,
    caller: Annotated[Caller, Depends(require(*DECIDERS))],
) -> Application:
    service = service_of(request)
    entry = entry_of(request)
    entry.decision = body.decision

    def run() -> Application:
        current = service.get_application(number)
        entry.subject_ref = current.subject_ref
        entry.details = {"application_id": current.id, "from_status": current.status.value}
        record = service.decide_application(
            number, body.decision, actor=caller.actor, reason=body.reason
        )
        return Application.from_record(record)

    application = await blocking(request, run)
    metrics_of(request).count_decision("application", body.decision)
    return application
