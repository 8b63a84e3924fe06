"""Request and response bodies of the HTTP API (docs/api.md), as pydantic models.

Subjects are named by the office's reference (``subject_id`` on the wire), never by the
database's row ids. Responses are built from the core's frozen dataclasses by the ``from_*``
constructors here, so the routes stay thin.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from wajah.biometric.engine import ProcessedImage
from wajah.biometric.quality import QualityComponent, QualityReport
from wajah.enrollment.access import ApiKey
from wajah.enrollment.records import ReviewRecord, SampleRecord, SubjectRecord
from wajah.enrollment.service import EnrollmentOutcome, IdentificationOutcome, VerificationOutcome

SubjectRef = str
QualityProfileName = Literal["enrollment", "verification", "scan"]
CaptureSourceName = Literal["camera", "scan"]


class _Model(BaseModel):
    model_config = ConfigDict(frozen=True)


# -- problems -----------------------------------------------------------------------------


class ProblemDetails(BaseModel):
    """RFC 9457 problem; extensions (``errors``, ``components``, ``limit`` …) per type."""

    model_config = ConfigDict(
        extra="allow",
        json_schema_extra={
            "example": {
                "type": "urn:wajah:problem:subject-not-found",
                "title": "No such subject",
                "status": 404,
                "detail": "no such subject",
                "instance": "/v1/subjects/A-2024-000123",
                "request_id": "5f0c6f0e8e0e4b7c9b1d1e0f2a3b4c5d",
            }
        },
    )

    type: str
    title: str
    status: int
    detail: str
    instance: str
    request_id: str


# -- keys ---------------------------------------------------------------------------------


class Me(_Model):
    model_config = ConfigDict(
        frozen=True,
        json_schema_extra={"example": {"key_id": "3", "name": "counter-2", "role": "officer"}},
    )

    key_id: str
    name: str
    role: str


class KeyCreate(_Model):
    model_config = ConfigDict(
        frozen=True, json_schema_extra={"example": {"name": "enrollment-1", "role": "clerk"}}
    )

    name: str = Field(min_length=1, max_length=128)
    role: Literal["clerk", "officer", "supervisor", "ops", "admin"]


class KeyInfo(_Model):
    key_id: str
    name: str
    role: str
    key_prefix: str
    created_at: dt.datetime
    revoked_at: dt.datetime | None
    last_used_at: dt.datetime | None

    @classmethod
    def from_key(cls, key: ApiKey) -> KeyInfo:
        return cls(
            key_id=str(key.id),
            name=key.name,
            role=str(key.role),
            key_prefix=key.key_prefix,
            created_at=key.created_at,
            revoked_at=key.revoked_at,
            last_used_at=key.last_used_at,
        )


class KeyCreated(KeyInfo):
    secret: str = Field(description="Shown once; only its hash is kept.")


class KeyList(_Model):
    items: list[KeyInfo]


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


# -- subjects -----------------------------------------------------------------------------

_SUBJECT_EXAMPLE: dict[str, Any] = {
    "subject_id": "A-2024-000123",
    "full_name": "Siti Rahmawati",
    "date_of_birth": "1990-04-17",
    "nationality": "IDN",
    "document_number": "X1234567",
}


class SubjectCreate(_Model):
    model_config = ConfigDict(frozen=True, json_schema_extra={"example": _SUBJECT_EXAMPLE})

    subject_id: SubjectRef = Field(min_length=1, max_length=64, pattern=r"^[^/\s]+$")
    full_name: str = Field(min_length=1, max_length=200)
    date_of_birth: dt.date | None = None
    nationality: str | None = Field(
        default=None, description="ISO 3166-1 alpha-3", pattern=r"^[A-Za-z]{3}$"
    )
    document_number: str | None = Field(default=None, max_length=64)


class SubjectUpdate(_Model):
    """Only the fields present change; ``null`` clears an optional field."""

    model_config = ConfigDict(
        frozen=True, json_schema_extra={"example": {"nationality": "MYS", "document_number": None}}
    )

    full_name: str | None = Field(default=None, min_length=1, max_length=200)
    date_of_birth: dt.date | None = None
    nationality: str | None = Field(default=None, pattern=r"^[A-Za-z]{3}$")
    document_number: str | None = Field(default=None, max_length=64)


class Subject(_Model):
    model_config = ConfigDict(
        frozen=True,
        json_schema_extra={
            "example": {
                **_SUBJECT_EXAMPLE,
                "status": "active",
                "sample_count": 1,
                "created_at": "2026-11-30T09:12:44Z",
                "updated_at": "2026-11-30T09:13:02Z",
            }
        },
    )

    subject_id: SubjectRef
    full_name: str
    date_of_birth: dt.date | None
    nationality: str | None
    document_number: str | None
    status: Literal["active", "pending_review", "deleted"]
    sample_count: int
    created_at: dt.datetime
    updated_at: dt.datetime

    @classmethod
    def from_record(cls, record: SubjectRecord) -> Subject:
        return cls(
            subject_id=record.subject_ref,
            full_name=record.full_name,
            date_of_birth=record.date_of_birth,
            nationality=record.nationality,
            document_number=record.document_number,
            status=record.status.value,
            sample_count=record.sample_count,
            created_at=record.created_at,
            updated_at=record.updated_at,
        )


class SubjectPage(_Model):
    items: list[Subject]
    total: int
    offset: int
    limit: int


class Sample(_Model):
    sample_id: int
    capture_source: str
    captured_at: dt.datetime
    station: str
    usable: bool | None

    @classmethod
    def from_record(cls, record: SampleRecord) -> Sample:
        usable = record.quality.get("usable")
        return cls(
            sample_id=record.id,
            capture_source=record.capture_source.value,
            captured_at=record.captured_at,
            station=record.station,
            usable=bool(usable) if usable is not None else None,
        )


class SampleList(_Model):
    items: list[Sample]


# -- enrollment and matching --------------------------------------------------------------


class Candidate(_Model):
    subject_id: SubjectRef | None = Field(description="null once that subject was erased")
    score: float


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


class VerifyJson(_Model):
    model_config = ConfigDict(
        frozen=True,
        json_schema_extra={
            "example": {"subject_id": "A-2024-000123", "image_base64": "/9j/4AAQSkZJRg..."}
        },
    )

    subject_id: SubjectRef = Field(min_length=1, max_length=64)
    image_base64: str


class Verification(_Model):
    model_config = ConfigDict(
        frozen=True,
        json_schema_extra={
            "example": {
                "decision": "match",
                "score": 0.94,
                "threshold": 0.82,
                "false_match_rate": 0.0124,
                "reasons": ["The face matches the enrolled subject: ..."],
                "subject_id": "A-2024-000123",
                "quality": {"usable": True, "profile": "verification", "failing": []},
                "time_ms": 380.5,
            }
        },
    )

    decision: Literal["match", "no_match", "inconclusive"]
    score: float
    threshold: float
    false_match_rate: float | None
    reasons: list[str]
    subject_id: SubjectRef
    quality: QualitySummary
    time_ms: float

    @classmethod
    def from_outcome(cls, outcome: VerificationOutcome, time_ms: float) -> Verification:
        verification = outcome.verification
        return cls(
            decision=verification.decision.value,
            score=round(verification.score, 6),
            threshold=verification.threshold,
            false_match_rate=verification.false_match_rate,
            reasons=list(verification.reasons),
            subject_id=outcome.subject.subject_ref,
            quality=QualitySummary.from_report(outcome.quality),
            time_ms=round(time_ms, 2),
        )


class IdentifyCandidate(_Model):
    rank: int = Field(description="1 = most similar")
    subject_id: SubjectRef
    full_name: str
    score: float = Field(description="cosine similarity of the subject's best template")
    false_positive_identification_rate: float | None = Field(
        description="the share of searches for a person NOT enrolled whose best score is at "
        "least this high, at the current gallery size (null: not measured)"
    )
    clears_threshold: bool = Field(description="score >= the identification threshold")


class Identification(_Model):
    model_config = ConfigDict(
        frozen=True,
        json_schema_extra={
            "example": {
                "mode": "investigation",
                "decision": "not_identified",
                "statement": "No candidate clears the identification threshold 0.912 (FPIR "
                "0.01 over 1,204 enrolled subjects). These are possible candidates for "
                "review, not an identification.",
                "candidates": [
                    {
                        "rank": 1,
                        "subject_id": "A-2024-000123",
                        "full_name": "Siti Rahmawati",
                        "score": 0.905,
                        "false_positive_identification_rate": 0.031,
                        "clears_threshold": False,
                    }
                ],
                "threshold": 0.912,
                "false_match_rate": 8.3e-06,
                "target_fpir": 0.01,
                "target_fpir_db": 20.0,
                "gallery_size": 1204,
                "threshold_scaled": True,
                "recapture_advised": False,
                "reasons": [],
                "time_ms": 402.1,
            }
        },
    )

    mode: Literal["investigation", "identification"]
    decision: Literal["identified", "not_identified", "inconclusive"]
    statement: str = Field(description="one plain sentence for the officer")
    candidates: list[IdentifyCandidate] = Field(
        description="investigation: the top k, ranked, always; identification: only those "
        "that clear the threshold"
    )
    threshold: float = Field(description="identification threshold at this gallery size")
    false_match_rate: float | None = Field(description="per comparison at the threshold")
    target_fpir: float | None = Field(description="FPIR the threshold is set for (null: unknown)")
    target_fpir_db: float | None = Field(description="the same in MOSIP's -10·log10(FPIR)")
    gallery_size: int = Field(description="enrolled subjects searched")
    threshold_scaled: bool = Field(
        description="false: the thresholds file has no impostor curve, the threshold is fixed"
    )
    recapture_advised: bool = Field(description="the probe photo is too poor: take a new one")
    reasons: list[str]
    time_ms: float

    @classmethod
    def from_outcome(
        cls, outcome: IdentificationOutcome, names: Mapping[str, str], time_ms: float
    ) -> Identification:
        point = outcome.point
        assert point is not None  # the service always sets it
        return cls(
            mode=outcome.mode.value,
            decision=outcome.decision.value,
            statement=outcome.statement,
            candidates=[
                IdentifyCandidate(
                    rank=c.rank,
                    subject_id=c.subject_ref,
                    full_name=names.get(c.subject_ref, ""),
                    score=c.score,
                    false_positive_identification_rate=c.false_positive_identification_rate,
                    clears_threshold=c.clears_threshold,
                )
                for c in outcome.candidates
            ],
            threshold=outcome.threshold,
            false_match_rate=outcome.false_match_rate,
            target_fpir=point.target_fpir,
            target_fpir_db=None if point.target_fpir_db is None else round(point.target_fpir_db, 3),
            gallery_size=point.gallery_size,
            threshold_scaled=point.scaled,
            recapture_advised=not outcome.quality.usable and not outcome.cleared,
            reasons=list(outcome.reasons),
            time_ms=round(time_ms, 2),
        )


# -- reviews ------------------------------------------------------------------------------


class Review(_Model):
    model_config = ConfigDict(
        frozen=True,
        json_schema_extra={
            "example": {
                "review_id": 4,
                "subject_id": "A-2024-000124",
                "status": "open",
                "candidates": [{"subject_id": "A-2024-000123", "score": 0.931}],
                "resolution": None,
                "resolved_by": None,
                "comment": None,
                "created_at": "2026-11-30T09:13:02Z",
                "resolved_at": None,
            }
        },
    )

    review_id: int
    subject_id: SubjectRef | None = Field(description="null once the subject was erased")
    status: Literal["open", "resolved"]
    candidates: list[Candidate]
    resolution: Literal["confirm_distinct", "merge", "reject"] | None
    resolved_by: str | None
    comment: str | None
    created_at: dt.datetime
    resolved_at: dt.datetime | None

    @classmethod
    def from_record(cls, record: ReviewRecord, subject_ref: str | None) -> Review:
        return cls(
            review_id=record.id,
            subject_id=subject_ref,
            status=record.status.value,
            candidates=[
                Candidate(subject_id=c.subject_ref, score=c.score) for c in record.candidates
            ],
            resolution=record.resolution.value if record.resolution else None,
            resolved_by=record.resolved_by,
            comment=record.comment,
            created_at=record.created_at,
            resolved_at=record.resolved_at,
        )


class ReviewList(_Model):
    items: list[Review]


class ReviewResolve(_Model):
    model_config = ConfigDict(
        frozen=True,
        json_schema_extra={
            "example": {
                "resolution": "confirm_distinct",
                "comment": "Twins; birth certificates checked at the counter.",
            }
        },
    )

    resolution: Literal["confirm_distinct", "merge", "reject"]
    comment: str = Field(min_length=1, max_length=2000)
    merge_into: SubjectRef | None = Field(
        default=None, description="subject to merge into (default: the top candidate)"
    )


# -- audit and ops ------------------------------------------------------------------------


class AuditRecord(_Model):
    id: int
    at: dt.datetime
    key_id: int | None
    key_name: str | None
    station: str | None
    role: str | None
    action: str
    subject_id: SubjectRef | None
    decision: str | None
    score: float | None
    threshold: float | None
    request_id: str | None
    outcome: str
    details: dict[str, Any]
    prev_hash: str
    hash: str


class AuditPage(_Model):
    items: list[AuditRecord]
    total: int


class LatencyPercentiles(_Model):
    p50: float
    p95: float
    p99: float
    count: int


class RecentErrorOut(_Model):
    type: str
    status: int
    method: str
    path: str
    request_id: str
    time: dt.datetime


class OpsSummary(_Model):
    gallery_size: int = Field(description="templates in the gallery index")
    subjects: int
    open_reviews: int
    face_queue_depth: int
    requests_total: int
    decisions: dict[str, dict[str, int]]
    latency_ms: dict[str, LatencyPercentiles]
    recent_errors: list[RecentErrorOut]


class Health(_Model):
    status: str


class Readiness(_Model):
    status: Literal["ready", "starting", "failed"]
    models_loaded: bool
    index_open: bool
    face_workers_ready: bool = False  # the pool can take a job now (not rebuilding, warm)
    face_worker_restarts: int = 0  # workers replaced since start (died or past the deadline)
    detail: str | None = None


def _timings(timings: Mapping[str, float]) -> dict[str, float]:
    return {name: round(float(value), 2) for name, value in timings.items()}
