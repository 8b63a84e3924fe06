"""Duplicate reviews."""

from __future__ import annotations

import datetime as dt
from typing import Literal

from pydantic import ConfigDict, Field

from wajah.api.schemas.common import Candidate, SubjectRef, _Model
from wajah.enrollment.records import ReviewRecord


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
