"""What a quality check returns: one :class:`QualityComponent` per measured aspect, gathered
in a :class:`QualityReport`, and the stable component names the API and the UI use."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

# Component names: stable, used by the API and the UI.
FACE_COUNT = "face_count"
INTER_EYE_DISTANCE = "inter_eye_distance"
FACE_SIZE = "face_size"
FACE_MARGIN = "face_margin"
SHARPNESS = "sharpness"
EXPOSURE = "exposure"
UNDEREXPOSURE = "underexposure"
OVEREXPOSURE = "overexposure"
CONTRAST = "contrast"
ILLUMINATION_UNIFORMITY = "illumination_uniformity"
YAW = "yaw"
PITCH = "pitch"
ROLL = "roll"
EYES_OPEN = "eyes_open"
MOUTH_CLOSED = "mouth_closed"

COMPONENT_NAMES: tuple[str, ...] = (
    FACE_COUNT,
    INTER_EYE_DISTANCE,
    FACE_SIZE,
    FACE_MARGIN,
    SHARPNESS,
    EXPOSURE,
    UNDEREXPOSURE,
    OVEREXPOSURE,
    CONTRAST,
    ILLUMINATION_UNIFORMITY,
    YAW,
    PITCH,
    ROLL,
    EYES_OPEN,
    MOUTH_CLOSED,
)


@dataclass(frozen=True)
class QualityComponent:
    """One measured aspect of the capture."""

    name: str  # one of COMPONENT_NAMES
    value: float | None  # raw measured value in ``unit``; None if it could not be measured
    unit: str
    threshold: str  # human readable, e.g. ">= 60 px"; "" if the profile does not check it
    passed: bool | None  # None: not assessed (or not checked by the profile)
    reason: str  # a sentence for the clerk: what is wrong and what to do, or what was measured
    required: bool = False  # the profile refuses the capture when this does not pass

    @property
    def assessed(self) -> bool:
        """True when the component was measured and judged."""
        return self.value is not None and self.passed is not None


@dataclass(frozen=True)
class QualityReport:
    """All components of one capture under one profile."""

    profile: str
    face_count: int
    components: tuple[QualityComponent, ...]

    @property
    def usable(self) -> bool:
        """True iff every component the profile requires was assessed and passed."""
        return all(c.passed is True for c in self.components if c.required)

    @property
    def failing(self) -> tuple[QualityComponent, ...]:
        """Required components that failed or could not be assessed."""
        return tuple(c for c in self.components if c.required and c.passed is not True)

    @property
    def warnings(self) -> tuple[QualityComponent, ...]:
        """Components the profile checks but does not require, and that failed."""
        return tuple(c for c in self.components if not c.required and c.passed is False)

    def component(self, name: str) -> QualityComponent:
        for candidate in self.components:
            if candidate.name == name:
                return candidate
        raise KeyError(name)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict (plain str, int, float, bool and None)."""
        return {
            "profile": self.profile,
            "face_count": self.face_count,
            "usable": self.usable,
            "failing": [c.name for c in self.failing],
            "components": [
                {
                    "name": c.name,
                    "value": c.value,
                    "unit": c.unit,
                    "threshold": c.threshold,
                    "passed": c.passed,
                    "required": c.required,
                    "reason": c.reason,
                }
                for c in self.components
            ],
        }
