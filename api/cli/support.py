"""What every ``wajah`` command shares: the exit-code convention, one-line errors on stderr,
``--json`` output, progress on stderr, and building the settings, the engine and the service
at the edge."""

from __future__ import annotations

import contextlib
import getpass
import json
import sys
from collections.abc import Callable, Iterator
from enum import IntEnum
from typing import TYPE_CHECKING, Annotated, Any, NoReturn

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

if TYPE_CHECKING:  # the command modules import this one at start-up: keep it light
    from wajah.api.settings import Settings
    from wajah.enrollment.audit import AuditLog
    from wajah.enrollment.service import IdentityService
    from wajah.enrollment.store import RecordStore

from wajah.biometric.errors import WajahError, WajahInputError

# The quality profiles' names, for the commands' help (``biometric.quality`` needs numpy and
# OpenCV, too heavy to import for ``--help``); tests/api/test_cli.py checks it names exactly
# ``PROFILES``.
PROFILE_NAMES = ("enrollment", "verification", "scan")

stdout_console = Console()
stderr_console = Console(stderr=True)


class Exit(IntEnum):
    OK = 0  # success or positive verdict (usable, same person, match)
    NEGATIVE = 1  # negative verdict (not usable, different people, no match)
    BAD_INPUT = 2  # bad input or usage
    INTERNAL = 3  # the service's own fault (a bug or a broken installation)


def error_line(message: str) -> None:
    """One readable line on stderr (never wrapped: scripts read it line by line)."""
    sys.stderr.write(f"wajah: {' '.join(message.split())}\n")
    sys.stderr.flush()


def fail(message: str, code: Exit = Exit.BAD_INPUT) -> NoReturn:
    """Print one readable line on stderr and exit."""
    error_line(message)
    raise typer.Exit(int(code))


def emit_json(payload: Any) -> None:
    """Write exactly one JSON document on stdout."""
    sys.stdout.write(json.dumps(payload, indent=2, default=str, ensure_ascii=False) + "\n")


def run_guarded(action: Callable[[], Exit]) -> NoReturn:
    """Run a command body, mapping domain errors to one line on stderr: exit 2 for the
    caller's mistakes, 3 for the service's own faults (a broken installation, a corrupt
    database, a face worker that died)."""
    try:
        code = action()
    except WajahError as error:
        message = str(error) or type(error).__name__
        subject_ref = getattr(error, "subject_ref", None)
        if subject_ref:  # the operator typed it; the core keeps references out of messages
            message = f"{message}: {subject_ref}"
        fail(message, Exit.BAD_INPUT if isinstance(error, WajahInputError) else Exit.INTERNAL)
    except (FileNotFoundError, IsADirectoryError, PermissionError) as error:
        fail(f"{error.strerror}: {error.filename}")
    raise typer.Exit(int(code))


def cli_actor() -> str:
    """Who runs this command, for the audit trail: ``cli:<login name>``."""
    try:
        user = getpass.getuser()
    except (KeyError, OSError):  # no login name in some containers
        user = "unknown"
    return f"cli:{user}"


def audit_cli_write(audit: AuditLog, action: str, **fields: Any) -> None:
    """Record a write the CLI made (the same actions the HTTP service records), as the login
    name on this machine. A write that cannot be audited has still happened: say so on stderr
    and exit 3, so a script notices."""
    try:
        audit.append(action, key_name=cli_actor(), **fields)
    except WajahError as error:
        fail(f"{action} was done but not audited: {error}", Exit.INTERNAL)


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
def opened_store(settings: Settings | None = None) -> Iterator[RecordStore]:
    """The record store alone (no gallery, no face workers), for the commands that only read
    or write records; ``settings`` defaults to the environment's."""
    from wajah.api.runtime import open_store
    from wajah.api.settings import Settings

    store = open_store(settings if settings is not None else Settings())
    try:
        yield store
    finally:
        store.dispose()


@contextlib.contextmanager
def service_from_settings(workers: int = 0) -> Iterator[IdentityService]:
    from wajah.api.runtime import build_service
    from wajah.api.settings import Settings

    settings = Settings()
    with progress_bar("opening the gallery") as update:
        service, _ = build_service(settings, workers=workers, progress=update)
    try:
        yield service
    finally:
        service.close()
