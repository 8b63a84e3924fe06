"""Monitoring and evaluation reports (ops, supervisors): computed from the audit trail and the
applications' timeline (``enrollment/reports.py``), as JSON or CSV."""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Query, Request, Response

from wajah.api.http.audit_trail import audited, entry_of
from wajah.api.http.auth import Caller, require
from wajah.api.http.errors import ApiProblem
from wajah.api.http.routes._support import (
    AUTH_PROBLEMS,
    blocking,
    problems,
    service_of,
    settings_of,
)
from wajah.enrollment.access import Role
from wajah.enrollment.reports import report_csv, report_window

router = APIRouter(prefix="/v1/reports", tags=["reports"])


@router.get(
    "/operations",
    summary="The office's operations report: per day or week, per station and key",
    description=(
        "Enrollments, verifications and searches with their decisions; failure-to-acquire and "
        "quality-refusal rates with the top refusal reasons; decision latency; applications "
        "decided and the time from application to decision (median, p90); the open duplicate "
        "review backlog with its age. `format=csv`: one line per period and station, then the "
        "totals. Days and weeks are in the office's time zone (`WAJAH_REPORT_UTC_OFFSET_MINUTES`)."
    ),
    responses={
        200: {"content": {"application/json": {}, "text/csv": {}}, "description": "the report"},
        **problems(*AUTH_PROBLEMS),
    },
    dependencies=[Depends(audited("report.read"))],
)
async def operations_report(
    *,
    request: Request,
    since: Annotated[
        dt.datetime | None, Query(description="inclusive; default: until - 7 days")
    ] = None,
    until: Annotated[dt.datetime | None, Query(description="exclusive; default: now")] = None,
    period: Literal["day", "week"] = Query("day"),
    format: Literal["json", "csv"] = Query("json"),
    _: Annotated[Caller, Depends(require(Role.OPS, Role.SUPERVISOR))],
) -> Any:
    try:
        start, end = report_window(since, until)
    except ValueError as error:
        raise ApiProblem(
            "invalid-request",
            str(error),
            extensions={"errors": [{"loc": ["query"], "msg": str(error), "type": "value_error"}]},
        ) from None
    service = service_of(request)
    offset = settings_of(request).report_utc_offset_minutes
    report = await blocking(
        request,
        lambda: service.report(start, end, period=period, utc_offset_minutes=offset),
    )
    entry_of(request).details = {
        "period": period,
        "format": format,
        "audit_events_read": report.audit_events_read,
    }
    if format == "csv":
        return Response(
            report_csv(report),
            media_type="text/csv; charset=utf-8",
            headers={"Content-Disposition": 'attachment; filename="wajah-report.csv"'},
        )
    return report.to_dict()
