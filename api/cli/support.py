"""What every ``wajah`` command shares: the exit-code convention, one-line errors on stderr,
``--json`` output, and building the settings and the engine at the edge."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from enum import IntEnum
from typing import Any, NoReturn

import typer
from rich.console import Console

from wajah.biometric.errors import WajahError, WajahInputError

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
