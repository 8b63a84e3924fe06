"""The operating points Wajah decides with, per model: one table, in one JSON file.

* ``verify``: 1:1 verification at the counter.
* ``identify``: 1:N search whose candidates an officer reviews.
* ``duplicate``: the enrolment duplicate-identity search over the whole gallery; strictest,
  because its false positives grow with the gallery size (see ``matcher.calibration``).

``default_thresholds.json`` ships with the package; ``calibrated_on`` says what the numbers rest
on (the shipped ones are provisional, derived from dlib's published threshold).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

from wajah.matcher.atomic_files import atomic_write
from wajah.matcher.decision import OperatingPoint
from wajah.matcher.errors import ThresholdsError

DEFAULT_THRESHOLDS_RESOURCE = "default_thresholds.json"


@dataclass(frozen=True)
class Thresholds:
    verify: OperatingPoint
    identify: OperatingPoint
    duplicate: OperatingPoint
    model_tag: str
    calibrated_on: str  # data set and trial counts, or "PROVISIONAL: ..."
    calibrated_at: str  # ISO 8601 date
    notes: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {
            "model_tag": self.model_tag,
            "calibrated_on": self.calibrated_on,
            "calibrated_at": self.calibrated_at,
            "notes": self.notes,
            "verify": self.verify.to_dict(),
            "identify": self.identify.to_dict(),
            "duplicate": self.duplicate.to_dict(),
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Thresholds:
        try:
            return cls(
                verify=OperatingPoint.from_dict(data["verify"]),
                identify=OperatingPoint.from_dict(data["identify"]),
                duplicate=OperatingPoint.from_dict(data["duplicate"]),
                model_tag=str(data["model_tag"]),
                calibrated_on=str(data["calibrated_on"]),
                calibrated_at=str(data["calibrated_at"]),
                notes=str(data.get("notes", "")),
            )
        except (KeyError, TypeError, ValueError) as error:
            raise ThresholdsError(f"invalid thresholds: {error}") from error


def parse_thresholds(text: str, expected_model_tag: str | None = None) -> Thresholds:
    try:
        data = json.loads(text)
    except json.JSONDecodeError as error:
        raise ThresholdsError(f"thresholds are not valid JSON: {error}") from error
    if not isinstance(data, dict):
        raise ThresholdsError("thresholds JSON must be an object")
    thresholds = Thresholds.from_dict(data)
    if expected_model_tag is not None and thresholds.model_tag != expected_model_tag:
        raise ThresholdsError(
            f"thresholds are for {thresholds.model_tag}, the templates are {expected_model_tag}"
        )
    return thresholds


def load_thresholds(path: Path | str, expected_model_tag: str | None = None) -> Thresholds:
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as error:
        raise ThresholdsError(f"cannot read thresholds file {path}: {error}") from error
    return parse_thresholds(text, expected_model_tag)


def default_thresholds(expected_model_tag: str | None = None) -> Thresholds:
    """The thresholds shipped with the package (``matcher/default_thresholds.json``)."""
    text = resources.files("wajah.matcher").joinpath(DEFAULT_THRESHOLDS_RESOURCE).read_text("utf-8")
    return parse_thresholds(text, expected_model_tag)


def save_thresholds(thresholds: Thresholds, path: Path | str) -> None:
    """Write the thresholds as indented JSON, atomically (temp file + rename)."""
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    with atomic_write(target, "w", encoding="utf-8") as handle:
        json.dump(thresholds.to_dict(), handle, indent=2)
        handle.write("\n")
