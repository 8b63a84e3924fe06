"""``wajah application`` (create, show, list, decide) and ``wajah report``: the same records
and the same report as ``/v1/applications`` and ``/v1/reports/operations``, on the store
directly (no face work, so no gallery to open)."""

from __future__ import annotations

import datetime as dt
import sys
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.table import Table

from wajah.api.cli.support import (
    Exit,
    JsonOption,
    audit_cli_write,
    cli_actor,
    emit_json,
    fail,
    opened_store,
    run_guarded,
    stdout_console,
)

if TYPE_CHECKING:
    from wajah.enrollment.records import ApplicationRecord

application_app = typer.Typer(
    help="Applications (passport, visa, stay permit) and their status.", no_args_is_help=True
)


def application_to_dict(record: ApplicationRecord) -> dict[str, Any]:
    """The application as the HTTP API shows it (``GET /v1/applications/{number}``)."""
    from wajah.api.schemas import Application

    return Application.from_record(record).model_dump(mode="json")


def _print(payload: dict[str, Any]) -> None:
    stdout_console.print(
        f"{payload['number']}  {payload['application_type']}  {payload['status']}  "
        f"subject {payload['subject_id']}"
    )
    for step in payload["timeline"]:
        stdout_console.print(
            f"  {step['at']}  {step['from_status'] or '-':>19} -> {step['to_status']:<19} "
            f"{step['station']}  {step['reason']}"
        )


@application_app.command("create")
def application_create(
    subject: str,
    application_type: Annotated[str, typer.Option("--type", help="One of the office's types.")],
    json_output: JsonOption = False,
) -> None:
    """Open an application for a subject (it needs a date of birth)."""
    from wajah.api.runtime import application_policy
    from wajah.api.settings import Settings
    from wajah.enrollment.records import Actor

    settings = Settings()
    try:
        policy = application_policy(settings)
    except ValueError as error:
        fail(str(error))

    def body() -> Exit:
        with opened_store(settings) as store:
            record = store.create_application(
                subject, application_type, policy, Actor(station=cli_actor())
            )
            audit_cli_write(
                store.audit,
                "application.create",
                subject_ref=record.subject_ref,
                decision=record.status.value,
                details={"application_id": record.id, "application_type": application_type},
            )
        payload = application_to_dict(record)
        emit_json(payload) if json_output else _print(payload)
        return Exit.OK

    run_guarded(body)


@application_app.command("show")
def application_show(number: str, json_output: JsonOption = False) -> None:
    """One application with its timeline."""

    def body() -> Exit:
        with opened_store() as store:
            payload = application_to_dict(store.get_application(number))
        emit_json(payload) if json_output else _print(payload)
        return Exit.OK

    run_guarded(body)


@application_app.command("list")
def application_list(
    subject: Annotated[str | None, typer.Option(help="Only this subject's.")] = None,
    status: Annotated[str | None, typer.Option(help="Only of this status.")] = None,
    offset: int = 0,
    limit: Annotated[int, typer.Option(min=1, max=500)] = 50,
    json_output: JsonOption = False,
) -> None:
    """Applications, newest first."""

    def body() -> Exit:
        with opened_store() as store:
            subject_id = store.get_subject_by_ref(subject).id if subject is not None else None
            items, total = store.list_applications(
                subject_id=subject_id, status=status, offset=offset, limit=limit
            )
        payloads = [application_to_dict(record) for record in items]
        if json_output:
            emit_json({"items": payloads, "total": total, "offset": offset, "limit": limit})
        else:
            table = Table("number", "type", "subject", "status", "updated", title=f"{total}")
            for payload in payloads:
                table.add_row(
                    payload["number"],
                    payload["application_type"],
                    str(payload["subject_id"]),
                    payload["status"],
                    payload["updated_at"],
                )
            stdout_console.print(table)
        return Exit.OK

    run_guarded(body)


@application_app.command("decide")
def application_decide(
    number: str,
    decision: Annotated[str, typer.Option(help="approved or rejected")],
    reason: Annotated[str, typer.Option(help="Why (kept in the timeline).")],
    json_output: JsonOption = False,
) -> None:
    """Approve or reject an application (only a verified one can be approved)."""
    from wajah.enrollment.records import Actor

    if decision not in ("approved", "rejected"):
        fail("decision must be approved or rejected")

    def body() -> Exit:
        with opened_store() as store:
            before = store.get_application(number)
            record = store.decide_application(number, decision, Actor(station=cli_actor()), reason)
            audit_cli_write(
                store.audit,
                "application.decide",
                subject_ref=record.subject_ref,
                decision=decision,
                details={"application_id": record.id, "from_status": before.status.value},
            )
        payload = application_to_dict(record)
        emit_json(payload) if json_output else _print(payload)
        return Exit.OK

    run_guarded(body)


def report(
    since: Annotated[
        dt.datetime | None, typer.Option(help="Inclusive (UTC unless a zone is given).")
    ] = None,
    until: Annotated[dt.datetime | None, typer.Option(help="Exclusive; default: now.")] = None,
    period: Annotated[str, typer.Option(help="day or week")] = "day",
    csv_output: Annotated[bool, typer.Option("--csv", help="CSV on stdout.")] = False,
    json_output: JsonOption = False,
) -> None:
    """The operations report: enrollments, verifications and searches with their decisions,
    failure-to-acquire and quality-refusal rates, latency, applications decided and the time
    to decision, the review backlog. Default window: the last 7 days."""
    from wajah.api.settings import Settings
    from wajah.enrollment.reports import build_report, report_csv, report_window

    if period not in ("day", "week"):
        fail("period must be day or week")
    try:
        start, end = report_window(since, until)
    except ValueError as error:
        fail(str(error))
    settings = Settings()

    def body() -> Exit:
        with opened_store(settings) as store:
            result = build_report(
                store.engine,
                start,
                end,
                period="week" if period == "week" else "day",
                utc_offset_minutes=settings.report_utc_offset_minutes,
            )
        if csv_output:
            sys.stdout.write(report_csv(result))
        elif json_output:
            emit_json(result.to_dict())
        else:
            _print_report(result.to_dict())
        return Exit.OK

    run_guarded(body)


def _print_report(payload: dict[str, Any]) -> None:
    table = Table(
        "period",
        "station",
        "enroll",
        "verify",
        "search",
        "FTA",
        "refused",
        "decided",
        "to decision p50 s",
        title=f"{payload['since']} .. {payload['until']}",
    )
    for row in [*payload["rows"], payload["totals"]]:
        table.add_row(
            row["period"] or "total",
            row["station"] or "",
            str(sum(row["enrollments"].values())),
            str(sum(row["verifications"].values())),
            str(sum(row["searches"].values())),
            f"{row['failure_to_acquire']}",
            f"{row['quality_refusals']}",
            str(sum(row["applications_decided"].values())),
            str(row["time_to_decision_s"]["median"] or ""),
        )
    stdout_console.print(table)
    for backlog in payload["backlogs"]:
        stdout_console.print(
            f"{backlog['name']}: {backlog['open']} open, oldest {backlog['oldest_age_s']} s"
        )
