"""Reading the audit trail (supervisor, ops)."""

from __future__ import annotations

import datetime as dt
from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request

from wajah.api.http.audit_trail import audited, entry_of
from wajah.api.http.auth import Caller, require
from wajah.api.http.errors import ApiProblem
from wajah.api.http.routes._support import AUTH_PROBLEMS, blocking, problems
from wajah.api.schemas import AuditPage, AuditRecord
from wajah.enrollment.access import Role
from wajah.enrollment.audit import AuditEvent, AuditLog

router = APIRouter(prefix="/v1/audit", tags=["audit"])


def _record(event: AuditEvent) -> AuditRecord:
    return AuditRecord(
        id=event.id,
        at=event.at,
        key_id=event.key_id,
        key_name=event.key_name,
        station=event.station,
        role=event.role.value if event.role is not None else None,
        action=event.action,
        subject_id=event.subject_ref,
        decision=event.decision,
        score=event.score,
        threshold=event.threshold,
        request_id=event.request_id,
        outcome=event.outcome,
        details=dict(event.details),
        prev_hash=event.prev_hash,
        hash=event.hash,
    )


def _aware(value: dt.datetime | None, name: str) -> dt.datetime | None:
    if value is not None and value.tzinfo is None:
        raise ApiProblem(
            "invalid-request",
            f"{name} must carry a time zone (e.g. 2026-11-30T09:00:00Z)",
            extensions={
                "errors": [{"loc": ["query", name], "msg": "naive datetime", "type": "value_error"}]
            },
        )
    return value


@router.get(
    "",
    response_model=AuditPage,
    summary="Audit records, newest first",
    responses=problems(*AUTH_PROBLEMS),
    dependencies=[Depends(audited("audit.read"))],
)
async def query_audit(
    *,
    request: Request,
    since: Annotated[dt.datetime | None, Query(description="inclusive, with time zone")] = None,
    until: Annotated[dt.datetime | None, Query(description="exclusive, with time zone")] = None,
    station: str | None = Query(None, max_length=64),
    subject_id: str | None = Query(None, max_length=64),
    action: str | None = Query(None, max_length=64),
    offset: int = Query(0, ge=0, le=2**31),
    limit: int = Query(100, ge=1, le=1000),
    _: Annotated[Caller, Depends(require(Role.SUPERVISOR, Role.OPS))],
) -> AuditPage:
    since, until = _aware(since, "since"), _aware(until, "until")
    entry = entry_of(request)
    entry.subject_ref = subject_id
    audit_log: AuditLog = request.app.state.audit_log
    events, total = await blocking(
        request,
        lambda: audit_log.query(
            since=since,
            until=until,
            station=station,
            subject_ref=subject_id,
            action=action,
            offset=offset,
            limit=limit,
        ),
    )
    entry.details = {"returned": len(events), "total": total}
    return AuditPage(items=[_record(event) for event in events], total=total)
