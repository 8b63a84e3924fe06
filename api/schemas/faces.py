"""Face photos: quality results and enrollment."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal

from pydantic import ConfigDict, Field

from wajah.api.schemas.common import Candidate, SubjectRef, _Model, _timings
from wajah.biometric.engine import ProcessedImage
from wajah.biometric.quality import QualityComponent, QualityReport
from wajah.enrollment.service import EnrollmentOutcome

# -- quality ------------------------------------------------------------------------------


class Component(_Model):
    name: str
    value: float | None
    unit: str
    threshold: str
    passed: bool | None
    required: bool
    reason: str

    @classmethod
    def from_component(cls, component: QualityComponent) -> Component:
        return cls(
            name=component.name,
            value=component.value,
            unit=component.unit,
            threshold=component.threshold,
            passed=component.passed,
            required=component.required,
            reason=component.reason,
        )

    @classmethod
    def from_stored(cls, stored: Mapping[str, Any]) -> Component:
        return cls(
            name=str(stored.get("name", "")),
            value=stored.get("value"),
            unit=str(stored.get("unit", "")),
            threshold=str(stored.get("threshold", "")),
            passed=stored.get("passed"),
            required=bool(stored.get("required", False)),
            reason=str(stored.get("reason", "")),
        )


class FaceBoxOut(_Model):
    box: tuple[int, int, int, int] = Field(description="[left, top, right, bottom] in pixels")
    score: float


class ImageInfo(_Model):
    width: int
    height: int
    format: str


class QualityResult(_Model):
    model_config = ConfigDict(
        frozen=True,
        json_schema_extra={
            "example": {
                "usable": False,
                "profile": "enrollment",
                "face_count": 1,
                "faces": [{"box": [88, 96, 178, 186], "score": 2.1}],
                "image": {"width": 640, "height": 480, "format": "JPEG"},
                "components": [
                    {
                        "name": "inter_eye_distance",
                        "value": 41.2,
                        "unit": "px",
                        "threshold": ">= 60 px",
                        "passed": False,
                        "required": True,
                        "reason": "Face too small: 41 px between the eyes, need 60 - move closer",
                    }
                ],
                "timings_ms": {"decode": 3.1, "detect": 48.0},
            }
        },
    )

    usable: bool
    profile: str
    face_count: int
    faces: list[FaceBoxOut]
    image: ImageInfo
    components: list[Component]
    timings_ms: dict[str, float]

    @classmethod
    def from_processed(cls, processed: ProcessedImage) -> QualityResult:
        report = processed.quality
        return cls(
            usable=report.usable,
            profile=report.profile,
            face_count=report.face_count,
            faces=[
                FaceBoxOut(box=(f.left, f.top, f.right, f.bottom), score=round(f.score, 4))
                for f in processed.faces
            ],
            image=ImageInfo(
                width=processed.width, height=processed.height, format=processed.image_format
            ),
            components=[Component.from_component(c) for c in report.components],
            timings_ms=_timings(processed.timings_ms),
        )


class QualitySummary(_Model):
    usable: bool
    profile: str
    failing: list[Component] = Field(description="required components that did not pass")

    @classmethod
    def from_report(cls, report: QualityReport) -> QualitySummary:
        return cls(
            usable=report.usable,
            profile=report.profile,
            failing=[Component.from_component(c) for c in report.failing],
        )


# -- enrollment ---------------------------------------------------------------------------


class Enrollment(_Model):
    model_config = ConfigDict(
        frozen=True,
        json_schema_extra={
            "example": {
                "status": "pending_review",
                "subject_id": "A-2024-000124",
                "sample_id": 17,
                "template_id": 17,
                "review_id": 4,
                "candidates": [{"subject_id": "A-2024-000123", "score": 0.931}],
                "duplicate_threshold": 0.875,
                "second_capture_advised": False,
                "quality": {"usable": True, "profile": "enrollment", "failing": []},
                "timings_ms": {"face_total": 412.0},
            }
        },
    )

    status: Literal["accepted", "pending_review"]
    subject_id: SubjectRef
    sample_id: int
    template_id: int
    review_id: int | None
    candidates: list[Candidate]
    duplicate_threshold: float
    second_capture_advised: bool = Field(
        False, description="accepted with one photo: a second photo makes search more reliable"
    )
    quality: QualitySummary
    timings_ms: dict[str, float]

    @classmethod
    def from_outcome(cls, outcome: EnrollmentOutcome) -> Enrollment:
        assert outcome.sample is not None and outcome.template_id is not None
        return cls(
            status=outcome.status.value,  # type: ignore[arg-type]
            subject_id=outcome.subject.subject_ref,
            sample_id=outcome.sample.id,
            template_id=outcome.template_id,
            review_id=outcome.review.id if outcome.review is not None else None,
            candidates=[
                Candidate(subject_id=c.subject_ref, score=c.score) for c in outcome.candidates
            ],
            duplicate_threshold=outcome.duplicate_threshold,
            second_capture_advised=outcome.second_capture_advised,
            quality=QualitySummary.from_report(outcome.quality),
            timings_ms=_timings(outcome.timings_ms),
        )
