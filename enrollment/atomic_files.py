"""Writing a file so that readers see the old content or the new, never half of it."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import TextIO


def write_text_atomically(
    path: Path,
    write: Callable[[TextIO], object],
    *,
    encoding: str = "utf-8",
    newline: str | None = None,
    directory_mode: int = 0o777,
) -> Path:
    """Call ``write`` on a temporary file beside ``path`` (mode 0600 from the start, so never
    briefly world-readable), fsync it and rename it over ``path``; returns ``path``.

    The rename replaces a symlink planted at ``path`` rather than following it. A missing parent
    is created with ``directory_mode`` (0700 for secrets). On any failure the temporary file is
    removed and ``path`` is left as it was.
    """
    path.parent.mkdir(parents=True, exist_ok=True, mode=directory_mode)
    descriptor, temporary = tempfile.mkstemp(
        dir=path.parent, prefix=f".{path.name}.", suffix=".tmp"
    )
    try:
        os.fchmod(descriptor, 0o600)
        with os.fdopen(descriptor, "w", encoding=encoding, newline=newline) as handle:
            write(handle)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
    return path
