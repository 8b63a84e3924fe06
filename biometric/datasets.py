"""Labeled photo folders, as used by calibration, benchmarks and bulk import.

A folder is either described by a ``manifest.csv`` (columns ``path`` relative to the folder's
parent or to the folder itself, and ``identity``; the layout of ../shared/faces) or laid out as
one sub-folder per identity. LFW pairs files follow the LFW protocol: the first line holds the
counts, ``name<TAB>i<TAB>j`` is a matched pair, ``name1<TAB>i<TAB>name2<TAB>j`` a mismatched one.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path

IMAGE_SUFFIXES = frozenset({".jpg", ".jpeg", ".png", ".webp", ".bmp", ".tif", ".tiff"})


@dataclass(frozen=True)
class LabeledPhoto:
    path: Path
    identity: str


@dataclass(frozen=True)
class PhotoPair:
    first: Path
    second: Path
    same_identity: bool


def _resolve(folder: Path, relative: str) -> Path:
    direct = folder / relative
    return direct if direct.exists() else folder.parent / relative


def list_labeled_photos(folder: Path) -> list[LabeledPhoto]:
    """Every photo of a labeled folder, sorted by identity then path."""
    manifest = folder / "manifest.csv"
    photos: list[LabeledPhoto] = []
    if manifest.is_file():
        with manifest.open(newline="") as handle:
            for row in csv.DictReader(handle):
                if row.get("decodes", "1") in ("0", "false", "False"):
                    continue
                photos.append(LabeledPhoto(_resolve(folder, row["path"]), row["identity"]))
    else:
        for identity_dir in sorted(p for p in folder.iterdir() if p.is_dir()):
            photos.extend(
                LabeledPhoto(path, identity_dir.name)
                for path in sorted(identity_dir.iterdir())
                if path.suffix.lower() in IMAGE_SUFFIXES
            )
    photos.sort(key=lambda photo: (photo.identity, str(photo.path)))
    return photos


def read_lfw_pairs(pairs_file: Path, images_dir: Path) -> list[PhotoPair]:
    """Pairs of an LFW pairs file; images are ``images_dir/name/name_%04d.jpg``."""

    def image(name: str, number: str) -> Path:
        return images_dir / name / f"{name}_{int(number):04d}.jpg"

    pairs: list[PhotoPair] = []
    lines = pairs_file.read_text().splitlines()
    for line in lines[1:]:
        fields = line.strip().split("\t")
        if len(fields) == 3:
            pairs.append(PhotoPair(image(fields[0], fields[1]), image(fields[0], fields[2]), True))
        elif len(fields) == 4:
            pairs.append(PhotoPair(image(fields[0], fields[1]), image(fields[2], fields[3]), False))
        elif line.strip():
            raise ValueError(f"{pairs_file}: not an LFW pairs line: {line!r}")
    return pairs
