"""Writing a file so that readers see the old contents or the new, never a part.

The bytes go to a temporary file in the target's directory (``.<name>.<random>.tmp``), which is
flushed, fsynced and renamed over the target with ``os.replace`` (atomic on POSIX). With
``sync_directory`` the directory is fsynced too, so the rename itself survives a power cut.
A process killed mid-write leaves the previous file intact and at most a ``.tmp`` file behind;
an error inside the ``with`` block removes the temporary file and leaves the target untouched.

The matcher is the lowest layer that writes files, so the helper lives here for it and for
``enrollment`` (which sits above it) alike.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any


@contextlib.contextmanager
def atomic_write(
    path: Path | str,
    mode: str = "w",
    *,
    encoding: str | None = None,
    newline: str | None = None,
    permissions: int | None = None,
    prefix: str | None = None,
    sync_directory: bool = False,
) -> Iterator[IO[Any]]:
    """Open a temporary file for writing (``mode`` "w" or "wb") that replaces ``path`` when the
    block ends without an error. ``permissions`` (e.g. ``0o600``) are set before anything is
    written; ``prefix`` names the temporary file (default ``.<name>.``)."""
    if mode not in ("w", "wb"):
        raise ValueError(f"atomic_write writes whole files: mode 'w' or 'wb', not {mode!r}")
    target = Path(path)
    descriptor, temporary_name = tempfile.mkstemp(
        dir=target.parent, prefix=prefix or f".{target.name}.", suffix=".tmp"
    )
    temporary = Path(temporary_name)
    try:
        if permissions is not None:
            os.fchmod(descriptor, permissions)
        with os.fdopen(descriptor, mode, encoding=encoding, newline=newline) as handle:
            yield handle
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temporary, target)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            temporary.unlink()
        raise
    if sync_directory:
        fsync_directory(target.parent)


def fsync_directory(directory: Path) -> None:
    """Make a rename or a new name in ``directory`` durable (no-op where not POSIX)."""
    if os.name != "posix":
        return
    descriptor = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)
