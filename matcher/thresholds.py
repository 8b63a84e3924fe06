"""The operating points Wajah decides with, per model: one table, in one JSON file.

* ``verify``: 1:1 verification at the counter.
* ``identify``: 1:N search whose candidates an officer reviews.
* ``duplicate``: the enrolment duplicate-identity search over the whole gallery; strictest,
  because its false positives grow with the gallery size (see ``matcher.calibration``).

``default_thresholds.json`` ships with the package; ``calibrated_on`` says what the numbers rest
on. The ``identify`` and ``duplicate`` points in the file hold for the gallery size the
calibration assumed; a file with an ``impostor_curve`` (and the FPIR targets) lets the service
recompute both for the *current* gallery size (:meth:`Thresholds.identification_point`,
:mod:`wajah.matcher.impostor_curve`). Files without one keep their fixed points.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

from wajah.matcher.atomic_files import atomic_write
from wajah.matcher.decision import OperatingPoint
from wajah.matcher.errors import ThresholdsError
from wajah.matcher.impostor_curve import (
    ImpostorCurve,
    fpir_of_fmr,
    mosip_target_from_fpir,
    per_comparison_fmr,
)

DEFAULT_THRESHOLDS_RESOURCE = "default_thresholds.json"


@dataclass(frozen=True)
class GalleryOperatingPoint:
    """A 1:N threshold for one gallery size and FPIR target, and what it stands for."""

    threshold: float  # cosine similarity; a candidate scoring >= it clears the threshold
    target_fpir: float | None  # FPIR asked for (None: a fixed point with no measured FMR)
    gallery_size: int  # subjects searched
    false_match_rate: float | None  # per comparison at the threshold (None: not measured)
    scaled: bool  # True: computed for this gallery size from the impostor curve
    measurable: bool  # False: the target is below what the calibration's trials can show
    description: str

    @property
    def target_fpir_db(self) -> float | None:
        """The target in MOSIP's ``targetFPIR`` convention, -10 log10(FPIR)."""
        if self.target_fpir is None or self.target_fpir <= 0:
            return None
        return mosip_target_from_fpir(self.target_fpir)

    def as_operating_point(self) -> OperatingPoint:
        return OperatingPoint(self.threshold, self.false_match_rate, None, self.description)


@dataclass(frozen=True)
class Thresholds:
    verify: OperatingPoint
    identify: OperatingPoint
    duplicate: OperatingPoint
    model_tag: str
    calibrated_on: str  # data set and trial counts, or "PROVISIONAL: ..."
    calibrated_at: str  # ISO 8601 date
    notes: str = ""
    impostor_curve: ImpostorCurve | None = None  # the impostor tail, for 1:N at any size
    identify_fpir: float | None = None  # FPIR target of the identify point
    duplicate_fpir: float | None = None  # FPIR target of the duplicate point
    gallery_size: int | None = None  # subjects the fixed identify/duplicate points assume

    def identification_point(
        self, gallery_size: int, fpir: float | None = None
    ) -> GalleryOperatingPoint:
        """The identification threshold for a search over ``gallery_size`` subjects at
        ``fpir`` (default: the calibrated identify target)."""
        return self._scaled(self.identify, self.identify_fpir, gallery_size, fpir, "1:N")

    def duplicate_point(self, gallery_size: int) -> GalleryOperatingPoint:
        """The duplicate-search threshold for an enrolment against ``gallery_size`` subjects:
        the calibrated one, raised when the gallery outgrows the calibration's size so the
        FPIR stays at its target.

        Never lowered below the calibrated point for a small gallery: every enrolment is a
        search, so a constant per-search FPIR of 10 % would send one new applicant in ten to
        a supervisor in a young gallery (measured: 24 flags in 200 LFW enrolments against 2
        expected at the calibrated FMR, tests/enrollment/test_service.py)."""
        scaled = self._scaled(self.duplicate, self.duplicate_fpir, gallery_size, None, "Duplicate")
        if scaled.threshold >= self.duplicate.threshold:
            return scaled
        return dataclasses.replace(
            scaled,
            threshold=self.duplicate.threshold,
            false_match_rate=self.duplicate.false_match_rate,
            scaled=False,
            description=(
                f"Duplicate threshold of the calibration (per-comparison FMR "
                f"{self.duplicate.false_match_rate}); the gallery ({scaled.gallery_size:,}) is "
                "smaller than the size it was set for, so it is not lowered."
            ),
        )

    def _scaled(
        self,
        fixed: OperatingPoint,
        calibrated_fpir: float | None,
        gallery_size: int,
        fpir: float | None,
        what: str,
    ) -> GalleryOperatingPoint:
        size = max(int(gallery_size), 1)  # an empty gallery answers nothing; keep G >= 1
        target = calibrated_fpir if fpir is None else fpir
        if target is not None and not 0.0 < target <= 1.0:
            raise ValueError(f"FPIR {target} is not in (0, 1]")
        curve = self.impostor_curve
        if curve is None or target is None:
            # An older file: one fixed point, calibrated for an assumed gallery size.
            assumed = self.gallery_size or size
            implied = (
                fpir_of_fmr(fixed.false_match_rate, size)
                if fixed.false_match_rate is not None
                else None
            )
            return GalleryOperatingPoint(
                threshold=fixed.threshold,
                target_fpir=target if target is not None else implied,
                gallery_size=size,
                false_match_rate=fixed.false_match_rate,
                scaled=False,
                measurable=True,
                description=(
                    f"{what} threshold fixed by the calibration (for {assumed:,} subjects); the "
                    "thresholds file has no impostor curve to scale it to this gallery."
                ),
            )
        threshold, measurable = curve.threshold_for_fpir(target, size)
        fmr = curve.false_match_rate(threshold)
        note = (
            ""
            if measurable
            else (
                f" The per-comparison FMR this needs ({per_comparison_fmr(target, size):.2g}) "
                f"is below what {curve.impostor_trials:,} impostor trials can show: the "
                "strictest measured threshold is used."
            )
        )
        return GalleryOperatingPoint(
            threshold=round(threshold, 6),
            target_fpir=target,
            gallery_size=size,
            false_match_rate=fmr,
            scaled=True,
            measurable=measurable,
            description=(
                f"{what} threshold for FPIR {target:.3g} over {size:,} subjects: per-comparison "
                f"FMR {per_comparison_fmr(target, size):.3g} on the calibration's impostor "
                f"scores.{note}"
            ),
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "model_tag": self.model_tag,
            "calibrated_on": self.calibrated_on,
            "calibrated_at": self.calibrated_at,
            "notes": self.notes,
            "verify": self.verify.to_dict(),
            "identify": self.identify.to_dict(),
            "duplicate": self.duplicate.to_dict(),
            **({"identify_fpir": self.identify_fpir} if self.identify_fpir is not None else {}),
            **({"duplicate_fpir": self.duplicate_fpir} if self.duplicate_fpir is not None else {}),
            **({"gallery_size": self.gallery_size} if self.gallery_size is not None else {}),
            **(
                {"impostor_curve": self.impostor_curve.to_dict()}
                if self.impostor_curve is not None
                else {}
            ),
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
                impostor_curve=(
                    ImpostorCurve.from_dict(data["impostor_curve"])
                    if data.get("impostor_curve") is not None
                    else None
                ),
                identify_fpir=_optional_float(data.get("identify_fpir")),
                duplicate_fpir=_optional_float(data.get("duplicate_fpir")),
                gallery_size=(
                    int(data["gallery_size"]) if data.get("gallery_size") is not None else None
                ),
            )
        except (KeyError, IndexError, TypeError, ValueError) as error:
            raise ThresholdsError(f"invalid thresholds: {error}") from error


def _optional_float(value: Any) -> float | None:
    return None if value is None else float(value)


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
