from __future__ import annotations

import stat
from pathlib import Path

import pytest

from wajah.matcher.atomic_files import atomic_write


def test_the_new_contents_replace_the_old_only_when_the_block_succeeds(tmp_path: Path) -> None:
    target = tmp_path / "thresholds.json"
    target.write_text("old\n")
    with pytest.raises(RuntimeError), atomic_write(target, encoding="utf-8") as handle:
        handle.write("half of the new")
        raise RuntimeError("killed mid-write")
    assert target.read_text() == "old\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["thresholds.json"]  # no .tmp left
    with atomic_write(target, "wb", permissions=0o600, sync_directory=True) as handle:
        handle.write(b"new\n")
    assert target.read_bytes() == b"new\n"
    assert stat.S_IMODE(target.stat().st_mode) == 0o600


def test_only_whole_file_modes_are_accepted(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="mode"), atomic_write(tmp_path / "x", "a"):
        pass
