"""``wajah`` commands over the records the gallery keeps: ``subjects`` (applicant records),
``review`` (the duplicate-identity queue) and ``index`` (the gallery index, a rebuildable view
of the database). Each builds the settings at the edge and the store or the service from
them."""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.table import Table

from wajah.api.cli.support import (
    Exit,
    JsonOption,
    audit_cli_write,
    emit_json,
    fail,
    opened_store,
    progress_bar,
    run_guarded,
    service_from_settings,
    stdout_console,
)

# The store, the service and the HTTP models are imported inside the commands that use them, so
# that registering every command costs little and a one-shot command starts quickly.
if TYPE_CHECKING:
    from wajah.enrollment.records import ReviewRecord, SubjectRecord


def subject_to_dict(subject: SubjectRecord) -> dict[str, Any]:
    """The subject as the HTTP API shows it (``GET /v1/subjects/{id}``): one model for both."""
    from wajah.api.schemas import Subject

    return Subject.from_record(subject).model_dump(mode="json")


subjects_app = typer.Typer(help="Applicant records.", no_args_is_help=True)


@subjects_app.command("list")
def subjects_list(
    offset: int = 0,
    limit: Annotated[int, typer.Option(min=1, max=1000)] = 50,
    status: str | None = None,
    json_output: JsonOption = False,
) -> None:
    """List subjects (paged)."""

    def body() -> Exit:
        with opened_store() as store:
            items, total = store.list_subjects(offset=offset, limit=limit, status=status)
        if json_output:
            emit_json(
                {
                    "items": [subject_to_dict(s) for s in items],
                    "total": total,
                    "offset": offset,
                    "limit": limit,
                }
            )
        else:
            table = Table("subject", "status", "samples", "created", title=f"{total} subjects")
            for subject in items:
                table.add_row(
                    subject.subject_ref,
                    str(subject.status),
                    str(subject.sample_count),
                    subject.created_at.strftime("%Y-%m-%d %H:%M"),
                )
            stdout_console.print(table)
        return Exit.OK

    run_guarded(body)


@subjects_app.command("show")
def subjects_show(subject: str, json_output: JsonOption = False) -> None:
    """Show one subject's record."""

    def body() -> Exit:
        with opened_store() as store:
            record = store.get_subject_by_ref(subject)
        payload = subject_to_dict(record)
        if json_output:
            emit_json(payload)
        else:
            for key, value in payload.items():
                stdout_console.print(f"{key:>16}: {value}")
        return Exit.OK

    run_guarded(body)


@subjects_app.command("delete")
def subjects_delete(subject: str, json_output: JsonOption = False) -> None:
    """Erase a subject: record, photos, templates and index entries."""

    def body() -> Exit:
        with service_from_settings() as service:
            removed = service.delete_subject(subject)
            audit_cli_write(
                service.audit_log,
                "subject.delete",
                subject_ref=subject,
                details={"templates_removed": removed},
            )
        if json_output:
            emit_json({"subject_id": subject, "deleted": True, "templates_removed": removed})
        else:
            stdout_console.print(f"subject {subject} erased ({removed} templates)")
        return Exit.OK

    run_guarded(body)


def review_to_dict(review: ReviewRecord) -> dict[str, Any]:
    """The review as the HTTP API shows it (``GET /v1/reviews/{id}``)."""
    from wajah.api.schemas import Review

    return Review.from_record(review, review.subject_ref).model_dump(mode="json")


review_app = typer.Typer(help="The duplicate-identity review queue.", no_args_is_help=True)


@review_app.command("list")
def review_list(status: str = "open", json_output: JsonOption = False) -> None:
    """List review cases (open by default)."""

    def body() -> Exit:
        with service_from_settings() as service:
            reviews = [review_to_dict(r) for r in service.list_reviews(status)]
        if json_output:
            emit_json({"items": reviews})
        else:
            table = Table("review", "new subject", "looks like", "status", "resolution")
            for review in reviews:
                looks_like = ", ".join(
                    f"{c['subject_id']} ({c['score']:.3f})" for c in review["candidates"]
                )
                table.add_row(
                    str(review["review_id"]),
                    str(review["subject_id"]),
                    looks_like,
                    review["status"],
                    str(review["resolution"] or ""),
                )
            stdout_console.print(table)
        return Exit.OK

    run_guarded(body)


@review_app.command("resolve")
def review_resolve(
    review_id: int,
    resolution: Annotated[str, typer.Option(help="confirm_distinct, merge or reject")],
    comment: Annotated[str, typer.Option(help="Why (goes into the record).")],
    by: Annotated[str, typer.Option("--by", help="Supervisor's name or id.")] = "cli",
    merge_into: Annotated[str | None, typer.Option(help="Subject to merge into.")] = None,
    json_output: JsonOption = False,
) -> None:
    """Resolve a duplicate-identity case."""
    if resolution not in ("confirm_distinct", "merge", "reject"):
        fail("resolution must be confirm_distinct, merge or reject")
    if not comment.strip():
        fail("a comment is required")

    def body() -> Exit:
        with service_from_settings() as service:
            outcome = service.resolve_review(
                review_id, resolution, resolved_by=by, comment=comment, merge_into_ref=merge_into
            )
            payload = review_to_dict(outcome.review)
        payload["surviving_subject"] = (
            outcome.surviving_subject.subject_ref if outcome.surviving_subject else None
        )
        if json_output:
            emit_json(payload)
        else:
            stdout_console.print(f"review {review_id} resolved: {resolution}")
        return Exit.OK

    run_guarded(body)


index_app = typer.Typer(
    help="The gallery index (a rebuildable view of the database).", no_args_is_help=True
)


@index_app.command("rebuild")
def index_rebuild(json_output: JsonOption = False) -> None:
    """Rebuild the index from the database (ivfpq lists retrained for its size) and save it."""

    def body() -> Exit:
        start = dt.datetime.now()
        with service_from_settings() as service, progress_bar("rebuilding") as update:
            count = service.rebuild_index(update)
        seconds = (dt.datetime.now() - start).total_seconds()
        if json_output:
            emit_json({"templates": count, "seconds": round(seconds, 2)})
        else:
            stdout_console.print(f"index rebuilt: {count} templates in {seconds:.1f} s")
        return Exit.OK

    run_guarded(body)


@index_app.command("prune-changes")
def index_prune_changes(
    older_than_hours: Annotated[
        float | None,
        typer.Option(
            min=0.0,
            help="Prune entries older than this many hours (default: "
            "WAJAH_CHANGE_LOG_RETENTION_HOURS; 0 prunes every entry logged until now).",
        ),
    ] = None,
    json_output: JsonOption = False,
) -> None:
    """Delete the template change log's old entries (what replicas replay into their index;
    `wajah serve` prunes it hourly by itself). A replica that had not applied them
    reconciles its index with the database instead."""
    from wajah.api.settings import Settings
    from wajah.enrollment.clock import utcnow

    def body() -> Exit:
        settings = Settings()
        hours = older_than_hours
        if hours is None:
            hours = settings.change_log_retention_hours
            if hours == 0:
                fail(
                    "WAJAH_CHANGE_LOG_RETENTION_HOURS is 0 (keep the log forever); "
                    "pass --older-than-hours to prune anyway"
                )
        older_than = utcnow() - dt.timedelta(hours=hours)
        with opened_store(settings) as store:
            deleted = store.prune_template_changes(older_than)
            change_seq = store.last_template_change()
            audit_cli_write(
                store.audit,
                "change_log.prune",
                details={"deleted": deleted, "older_than_hours": hours},
            )
        if json_output:
            emit_json(
                {
                    "deleted": deleted,
                    "older_than": older_than.isoformat(),
                    "change_seq": change_seq,
                }
            )
        else:
            stdout_console.print(
                f"change log pruned: {deleted} entries older than {older_than:%Y-%m-%d %H:%M} UTC"
            )
        return Exit.OK

    run_guarded(body)


@index_app.command("stats")
def index_stats(json_output: JsonOption = False) -> None:
    """Size, kind and memory of the index, and whether it agrees with the database."""

    def body() -> Exit:
        with service_from_settings() as service:
            stats = service.index_stats()
            in_database = service.stored_templates()
        payload = {
            "kind": stats.kind,
            "templates": stats.count,
            "subjects": stats.subjects,
            "memory_bytes": stats.memory_bytes,
            "model_tag": stats.model_tag,
            "checkpoint_template_id": stats.last_template_id,
            "templates_in_database": in_database,
            "in_sync": in_database == stats.count,
        }
        if json_output:
            emit_json(payload)
        else:
            for key, value in payload.items():
                stdout_console.print(f"{key:>24}: {value}")
        return Exit.OK

    run_guarded(body)
