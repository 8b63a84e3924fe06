"""Shared fixtures. Real face photos come from ../shared/faces (or WAJAH_FACES_DIR); they are
never copied into the repository. Under CI a missing photo folder fails the tests that need it
instead of skipping them."""

from __future__ import annotations

import csv
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

PROJECT_ROOT = Path(__file__).resolve().parents[1]


def faces_root() -> Path:
    configured = os.environ.get("WAJAH_FACES_DIR")
    return Path(configured) if configured else PROJECT_ROOT.parent / "shared" / "faces"


@dataclass(frozen=True)
class FacePhoto:
    path: Path
    identity: str
    width: int
    height: int
    note: str


@pytest.fixture(scope="session")
def faces_dir() -> Path:
    root = faces_root()
    if not (root / "README.md").is_file():
        message = f"real face photos not found at {root} (set WAJAH_FACES_DIR)"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    return root


def read_manifest(root: Path, folder: str) -> list[FacePhoto]:
    with (root / folder / "manifest.csv").open(newline="") as handle:
        return [
            FacePhoto(
                path=root / row["path"],
                identity=row["identity"],
                width=int(row["width"] or 0),
                height=int(row["height"] or 0),
                note=row.get("note", ""),
            )
            for row in csv.DictReader(handle)
        ]


@pytest.fixture(scope="session")
def manifest(faces_dir: Path) -> Iterator[object]:
    """``manifest(folder)`` -> list of FacePhoto for that folder of ../shared/faces."""
    yield lambda folder: read_manifest(faces_dir, folder)
