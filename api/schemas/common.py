"""What the API's bodies share: the frozen base model, the subject reference and shared
literals, problem details, duplicate candidates, health and readiness."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

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


class Candidate(_Model):
    subject_id: SubjectRef | None = Field(description="null once that subject was erased")
    score: float


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
