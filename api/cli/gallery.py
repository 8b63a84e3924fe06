"""``wajah`` commands over the gallery: enroll, verify, identify, subjects, review, index,
calibrate. Each builds the settings at the edge and the service from them."""

from __future__ import annotations

import contextlib
import datetime as dt
from collections.abc import Iterator
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn
from rich.table import Table

from wajah.api.cli.support import Exit, emit_json, fail, run_guarded, stderr_console, stdout_console
from wajah.api.runtime import build_service, engine_config, open_store
from wajah.api.settings import Settings
from wajah.biometric.datasets import list_labeled_photos, read_lfw_pairs
from wajah.biometric.pool import EnginePool, PoolConfig
from wajah.biometric.quality import PROFILES
from wajah.enrollment.errors import SubjectNotFound
from wajah.enrollment.records import ReviewRecord, SubjectRecord
from wajah.enrollment.service import EnrollmentOutcome, IdentityService, MatchCandidate
from wajah.matcher.photo_calibration import (
    calibrate_thresholds,
    embed_labeled_photos,
    load_labeled_templates,
    save_labeled_templates,
)
from wajah.matcher.thresholds import save_thresholds

JsonOption = Annotated[bool, typer.Option("--json", help="Print one JSON document on stdout.")]


@contextlib.contextmanager
def progress_bar(description: str) -> Iterator[Any]:
    """A rich progress bar on stderr; yields a ``(done, total)`` callback."""
    with Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeRemainingColumn(),
        console=stderr_console,
        transient=True,
        disable=not stderr_console.is_terminal,
    ) as bar:
        task = bar.add_task(description, total=None)

        def update(done: int, total: int) -> None:
            bar.update(task, completed=done, total=total)

        yield update


@contextlib.contextmanager
def service_from_settings(workers: int = 0) -> Iterator[IdentityService]:
    settings = Settings()
    with progress_bar("opening the gallery") as update:
        service, _ = build_service(settings, workers=workers, progress=update)
    try:
        yield service
    finally:
        service.close()


def subject_to_dict(subject: SubjectRecord) -> dict[str, Any]:
    return {
        "subject_id": subject.subject_ref,
        "full_name": subject.full_name,
        "date_of_birth": subject.date_of_birth.isoformat() if subject.date_of_birth else None,
        "nationality": subject.nationality,
        "document_number": subject.document_number,
        "status": str(subject.status),
        "sample_count": subject.sample_count,
        "created_at": subject.created_at.isoformat(),
        "updated_at": subject.updated_at.isoformat(),
    }


def candidate_to_dict(candidate: MatchCandidate) -> dict[str, Any]:
    return {
        "subject_id": candidate.subject_ref,
        "score": round(candidate.score, 4),
        "status": candidate.status,
    }


def review_to_dict(review: ReviewRecord) -> dict[str, Any]:
    return {
        "review_id": review.id,
        "subject_id": review.subject_ref,
        "status": str(review.status),
        "candidates": [
            {"subject_id": c.subject_ref, "score": round(c.score, 4)} for c in review.candidates
        ],
        "resolution": None if review.resolution is None else str(review.resolution),
        "resolved_by": review.resolved_by,
        "comment": review.comment,
        "created_at": review.created_at.isoformat(),
        "resolved_at": review.resolved_at.isoformat() if review.resolved_at else None,
    }


def enrollment_to_dict(outcome: EnrollmentOutcome) -> dict[str, Any]:
    return {
        "status": outcome.status.value,
        "subject_id": outcome.subject.subject_ref,
        "sample_id": outcome.sample.id if outcome.sample else None,
        "template_id": outcome.template_id,
        "review_id": outcome.review.id if outcome.review else None,
        "candidates": [candidate_to_dict(c) for c in outcome.candidates],
        "duplicate_threshold": outcome.duplicate_threshold,
        "reasons": list(outcome.reasons),
        "quality": outcome.quality.to_dict(),
    }


def _read(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except FileNotFoundError:
        fail(f"no such file: {path}")
    except IsADirectoryError:
        fail(f"{path} is a directory, not an image")


def enroll(
    image: Annotated[Path, typer.Argument(help="Photo of the applicant.")],
    subject: Annotated[str, typer.Option("--subject", help="The office's subject id.")],
    name: Annotated[str | None, typer.Option("--name", help="Full name (new subjects).")] = None,
    date_of_birth: Annotated[str | None, typer.Option("--dob", help="YYYY-MM-DD")] = None,
    nationality: Annotated[str | None, typer.Option(help="ISO 3166 alpha-3, e.g. IDN")] = None,
    document_number: Annotated[str | None, typer.Option("--document")] = None,
    source: Annotated[str, typer.Option(help="camera, scan or import")] = "camera",
    profile: Annotated[str, typer.Option(help="Quality profile.")] = "enrollment",
    station: Annotated[str, typer.Option(help="Enrollment station name.")] = "cli",
    json_output: JsonOption = False,
) -> None:
    """Enroll a photo for a subject (creating the subject when --name is given).
    Exit 0 accepted or sent to review, 1 refused by the quality gate."""
    if profile not in PROFILES:
        fail(f"unknown quality profile {profile!r}; choose one of {', '.join(PROFILES)}")
    data = _read(image)

    def body() -> Exit:
        with service_from_settings() as service:
            try:
                service.get_subject_by_ref(subject)
            except SubjectNotFound:
                if name is None:
                    fail(f"subject {subject} does not exist; give --name to create it")
                service.create_subject(subject, name, date_of_birth, nationality, document_number)
            outcome = service.enroll(subject, data, source=source, station=station, profile=profile)
        payload = enrollment_to_dict(outcome)
        if json_output:
            emit_json(payload)
        else:
            status = outcome.status.value.upper().replace("_", " ")
            stdout_console.print(f"[bold]{status}[/]  subject {subject}")
            for reason in outcome.reasons:
                stdout_console.print(f"  - {reason}")
            for candidate in outcome.candidates:
                stdout_console.print(
                    f"  looks like subject {candidate.subject_ref} "
                    f"(similarity {candidate.score:.3f}): sent to review "
                    f"#{outcome.review.id if outcome.review else '?'}"
                )
        return Exit.NEGATIVE if outcome.status.value == "refused" else Exit.OK

    run_guarded(body)


def verify(
    image: Annotated[Path, typer.Argument(help="Photo of the person at the counter.")],
    subject: Annotated[str, typer.Option("--subject", help="The claimed subject id.")],
    json_output: JsonOption = False,
) -> None:
    """1:1 verification against the claimed subject. Exit 0 match, 1 no match or inconclusive."""
    data = _read(image)

    def body() -> Exit:
        with service_from_settings() as service:
            outcome = service.verify(subject, data)
        result = outcome.verification
        payload = {
            "subject_id": subject,
            "decision": result.decision.value,
            "score": round(result.score, 4),
            "threshold": result.threshold,
            "false_match_rate": result.false_match_rate,
            "reasons": list(result.reasons),
            "quality": {
                "usable": outcome.quality.usable,
                "failing": [c.name for c in outcome.quality.failing],
            },
            "timings_ms": {k: round(v, 1) for k, v in outcome.timings_ms.items()},
        }
        if json_output:
            emit_json(payload)
        else:
            colour = {"match": "green", "no_match": "red"}.get(result.decision.value, "yellow")
            stdout_console.print(
                f"[bold {colour}]{result.decision.value.upper()}[/]  "
                f"score {result.score:.3f}, threshold {result.threshold:.3f}"
            )
            for reason in result.reasons:
                stdout_console.print(f"  - {reason}")
        return Exit.OK if result.decision.value == "match" else Exit.NEGATIVE

    run_guarded(body)


def identify(
    image: Annotated[Path, typer.Argument(help="Photo of the person to search for.")],
    k: Annotated[int, typer.Option("-k", min=1, max=100, help="Candidates to return.")] = 5,
    json_output: JsonOption = False,
) -> None:
    """1:N search. Exit 0 when a candidate is above the threshold, 1 when none is."""
    data = _read(image)

    def body() -> Exit:
        with service_from_settings() as service:
            outcome = service.identify(data, k)
        payload = {
            "candidates": [candidate_to_dict(c) for c in outcome.candidates],
            "threshold": outcome.threshold,
            "false_match_rate": outcome.false_match_rate,
        }
        if json_output:
            emit_json(payload)
        elif outcome.candidates:
            table = Table("rank", "subject", "similarity")
            for rank, candidate in enumerate(outcome.candidates, start=1):
                table.add_row(str(rank), candidate.subject_ref, f"{candidate.score:.3f}")
            stdout_console.print(table)
        else:
            stdout_console.print(f"no enrolled subject above the threshold {outcome.threshold:.3f}")
        return Exit.OK if outcome.candidates else Exit.NEGATIVE

    run_guarded(body)


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
        store = open_store(Settings())
        try:
            items, total = store.list_subjects(offset=offset, limit=limit, status=status)
        finally:
            store.dispose()
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
        store = open_store(Settings())
        try:
            record = store.get_subject_by_ref(subject)
        finally:
            store.dispose()
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
        if json_output:
            emit_json({"subject_id": subject, "deleted": True, "templates_removed": removed})
        else:
            stdout_console.print(f"subject {subject} erased ({removed} templates)")
        return Exit.OK

    run_guarded(body)


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


def calibrate(
    data: Annotated[
        Path,
        typer.Option(
            "--data", help="Labeled photo folder (manifest.csv or one folder per identity)."
        ),
    ],
    target_fmr: Annotated[float, typer.Option(help="1:1 false-match rate target.")] = 1e-3,
    identify_fpir: Annotated[float, typer.Option(help="1:N false-positive target.")] = 1e-2,
    duplicate_fpir: Annotated[float, typer.Option(help="Duplicate-search target.")] = 5e-2,
    gallery_size: Annotated[int, typer.Option(help="Gallery size for 1:N points.")] = 10_000,
    pairs: Annotated[
        Path | None,
        typer.Option(
            help="Only identities named in this LFW pairs file (e.g. the development set)."
        ),
    ] = None,
    max_per_identity: Annotated[int, typer.Option(help="Photos per identity, at most.")] = 6,
    out: Annotated[
        Path | None,
        typer.Option(help="Thresholds JSON to write (default: <data dir>/thresholds.json)."),
    ] = None,
    workers: Annotated[int, typer.Option(help="Face worker processes.")] = 2,
    templates_file: Annotated[
        Path | None,
        typer.Option(
            "--templates",
            help="An .npz of the photos' templates: reused when it exists (same "
            "model tag), written after embedding when it does not.",
        ),
    ] = None,
    json_output: JsonOption = False,
) -> None:
    """Measure genuine and impostor scores on labeled photos and write the thresholds."""
    if not data.is_dir():
        fail(f"{data} is not a folder")

    def body() -> Exit:
        settings = Settings()
        photos = list_labeled_photos(data)
        if pairs is not None:
            named = {p.first.parent.name for p in read_lfw_pairs(pairs, data)} | {
                p.second.parent.name for p in read_lfw_pairs(pairs, data)
            }
            photos = [p for p in photos if p.identity in named]
        counts: dict[str, int] = {}
        kept = []
        for photo in photos:
            counts[photo.identity] = counts.get(photo.identity, 0) + 1
            if counts[photo.identity] <= max_per_identity:
                kept.append(photo)
        if not kept:
            fail(f"no labeled photos found in {data}")
        if templates_file is not None and templates_file.is_file():
            templates = load_labeled_templates(templates_file)
        else:
            pool = EnginePool(engine_config(settings), PoolConfig(workers=workers, max_pending=8))
            try:
                with progress_bar(f"embedding {len(kept)} photos") as update:
                    templates = embed_labeled_photos(kept, pool, PROFILES["verification"], update)
            finally:
                pool.close()
            if templates_file is not None:
                save_labeled_templates(templates, templates_file)
        thresholds, calibration = calibrate_thresholds(
            templates,
            source=str(data),
            target_fmr=target_fmr,
            identify_fpir=identify_fpir,
            duplicate_fpir=duplicate_fpir,
            gallery_size=gallery_size,
        )
        target = out or settings.ensure_data_dir() / "thresholds.json"
        save_thresholds(thresholds, target)
        payload = {
            "written": str(target),
            **thresholds.to_dict(),
            "genuine_trials": calibration.genuine_trials,
            "impostor_trials": calibration.impostor_trials,
        }
        if json_output:
            emit_json(payload)
        else:
            table = Table("operating point", "threshold", "FMR", "FNMR", title=str(target))
            for name in ("verify", "identify", "duplicate"):
                point = getattr(thresholds, name)
                table.add_row(
                    name,
                    f"{point.threshold:.4f}",
                    f"{point.false_match_rate:.2e}",
                    f"{point.false_non_match_rate:.4f}",
                )
            stdout_console.print(table)
            stdout_console.print(thresholds.calibrated_on)
            stdout_console.print(f"use it with WAJAH_THRESHOLDS_FILE={target}")
        return Exit.OK

    run_guarded(body)
