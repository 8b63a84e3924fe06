"""``wajah import``: bulk import of a legacy photo archive
(see :mod:`wajah.enrollment.bulk_import`).

Registered in ``api/cli/main.py`` as ``app.command("import")(import_photos)``; also runnable on its
own as ``python -m wajah.api.cli.bulk_import DIR [options]``.

Exit codes: 0 when every photo was processed (refused and unreadable photos included: the
report says which), 1 when some photos ended in ``error`` (e.g. identity data the store
refuses), 2 for bad input (missing folder, bad manifest, unknown profile), 130 when interrupted
(run the same command again to resume: stored photos are skipped).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import IO, TYPE_CHECKING, Annotated

import typer
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.table import Table

from wajah.api.cli.support import (
    PROFILE_NAMES,
    Exit,
    audit_cli_write,
    emit_json,
    fail,
    run_guarded,
    stderr_console,
    stdout_console,
)

# The store, the index and the HTTP models are imported inside the commands that use them, so
# that registering every command costs little and a one-shot command starts quickly.
if TYPE_CHECKING:
    from wajah.enrollment.bulk_import import (
        ImportItem,
        ImportResult,
        ImportRow,
    )
    from wajah.enrollment.service import IdentityService


def import_photos(
    directory: Annotated[
        Path,
        typer.Argument(
            help="The archive: one sub-folder per subject (folder name = subject reference), "
            "or the base folder of the manifest's relative paths.",
            show_default=False,
        ),
    ],
    manifest: Annotated[
        Path | None,
        typer.Option(
            "--manifest",
            help="CSV with columns path, subject_id, full_name, date_of_birth, nationality, "
            "document_number (path and subject_id required).",
        ),
    ] = None,
    profile: Annotated[
        str, typer.Option("--profile", help=f"Quality profile: {', '.join(PROFILE_NAMES)}.")
    ] = "scan",
    workers: Annotated[
        int, typer.Option("--workers", min=0, help="Face worker processes (0 = in process).")
    ] = 2,
    report: Annotated[
        Path | None,
        typer.Option("--report", help="Report CSV [default: <data dir>/imports/import-<UTC>.csv]."),
    ] = None,
    done_log: Annotated[
        Path | None,
        typer.Option(
            "--done-log",
            help="Append one JSON line per photo once its outcome is final (after the "
            "database commit for stored photos).",
        ),
    ] = None,
    json_output: Annotated[
        bool, typer.Option("--json", help="Print one JSON document on stdout.")
    ] = False,
) -> None:
    """Import a legacy photo archive: one subject per folder (or manifest row), resumable."""
    from wajah.api.runtime import build_service
    from wajah.api.settings import Settings
    from wajah.biometric.quality import PROFILES
    from wajah.enrollment.bulk_import import ImportOutcome, default_report_path, write_report

    if profile not in PROFILES:
        fail(f"unknown quality profile {profile!r}; choose one of {', '.join(PROFILES)}")

    def body() -> Exit:
        items = _read_items(directory, manifest)
        settings = Settings()
        report_path = report or default_report_path(settings.data_dir)
        service, opened = build_service(settings, workers=workers)
        log_handle = done_log.open("a", encoding="utf-8") if done_log is not None else None
        try:
            service.warm_up()  # load the models before the clock starts
            result = _run_with_progress(service, items, profile, log_handle, json_output)
        except KeyboardInterrupt:
            stderr_console.print(
                "wajah: import interrupted; run the same command again to "
                "resume (stored photos are skipped)",
                markup=False,
            )
            raise typer.Exit(130) from None
        finally:
            if log_handle is not None:
                log_handle.close()
            service.close()
        write_report(result.rows, report_path)
        summary = result.summary
        if json_output:
            emit_json(
                {
                    "report": str(report_path),
                    "summary": summary.to_dict(),
                    "index": {
                        "loaded_from_file": opened.loaded_from_file,
                        "rebuilt_reason": opened.rebuilt_reason,
                    },
                }
            )
        else:
            stdout_console.print(_summary_table(result, report_path))
        return Exit.NEGATIVE if summary.counts[ImportOutcome.ERROR.value] else Exit.OK

    run_guarded(body)


def _read_items(directory: Path, manifest: Path | None) -> list[ImportItem]:
    from wajah.enrollment.bulk_import import ManifestError, items_from_folders, items_from_manifest

    if not directory.is_dir():
        raise ManifestError(f"not a directory: {directory}")
    if manifest is None:
        return items_from_folders(directory)
    if not manifest.is_file():
        raise ManifestError(f"manifest not found: {manifest}")
    return items_from_manifest(manifest, base_dir=directory)


def _run_with_progress(
    service: IdentityService,
    items: list[ImportItem],
    profile: str,
    log_handle: IO[str] | None,
    quiet: bool,
) -> ImportResult:
    from wajah.enrollment.bulk_import import STORED_OUTCOMES, run_import

    columns = (
        TextColumn("importing"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[rate]} photos/s"),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
    )
    with Progress(*columns, console=stderr_console, transient=quiet) as bar:
        task = bar.add_task("import", total=len(items), rate="—")

        def on_done(row: ImportRow) -> None:
            if row.outcome in STORED_OUTCOMES:
                # The same record an enrollment over HTTP leaves, once the photo is stored.
                audit_cli_write(
                    service.audit_log,
                    "face.enroll",
                    subject_ref=row.subject_id,
                    station="import",
                    decision=row.outcome.value,
                    details={"profile": profile, "source": "import"},
                )
            if log_handle is not None:
                log_handle.write(
                    json.dumps(
                        {
                            "path": str(row.path),
                            "subject_id": row.subject_id,
                            "outcome": row.outcome.value,
                            "image_sha256": row.image_sha256,
                        }
                    )
                    + "\n"
                )
                log_handle.flush()  # in the OS's hands: survives the process being killed

        def progress(done: int, total: int) -> None:
            elapsed = bar.tasks[0].elapsed or 0.0
            bar.update(task, completed=done, rate=f"{done / elapsed:.1f}" if elapsed > 0 else "—")

        return run_import(service, items, profile=profile, on_done=on_done, progress=progress)


def _summary_table(result: ImportResult, report_path: Path) -> Table:
    summary = result.summary
    table = Table(
        title=f"import summary ({summary.profile} profile, {summary.workers} workers)",
        title_justify="left",
    )
    table.add_column("outcome")
    table.add_column("photos", justify="right")
    for outcome, count in summary.counts.items():
        table.add_row(outcome, str(count))
    table.add_row("[bold]total[/]", f"[bold]{summary.total}[/]")
    table.caption = (
        f"{summary.photos_per_s:.2f} photos/s over {summary.elapsed_s:.1f} s; report: {report_path}"
    )
    table.caption_justify = "left"
    return table


if __name__ == "__main__":
    typer.run(import_photos)
