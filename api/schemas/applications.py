"""Applications and the applicant's public status lookup."""

from __future__ import annotations

import datetime as dt
from typing import Literal

from pydantic import ConfigDict, Field

from wajah.api.schemas.common import SubjectRef, _Model
from wajah.enrollment.applications import PublicStatus
from wajah.enrollment.records import ApplicationRecord

ApplicationStatusName = Literal[
    "submitted", "biometrics_captured", "verified", "needs_review", "approved", "rejected"
]


class ApplicationCreate(_Model):
    model_config = ConfigDict(
        frozen=True,
        extra="forbid",
        json_schema_extra={
            "example": {"subject_id": "A-2024-000123", "application_type": "passport_new"}
        },
    )

    subject_id: str = Field(min_length=1, max_length=64, description="the applicant")
    application_type: str = Field(
        min_length=1, max_length=32, description="one of the office's types (settings)"
    )


class ApplicationDecide(_Model):
    model_config = ConfigDict(
        frozen=True,
        extra="forbid",
        json_schema_extra={"example": {"decision": "approved", "reason": "documents in order"}},
    )

    decision: Literal["approved", "rejected"]
    reason: str = Field(min_length=1, max_length=500, description="kept in the timeline")


class ApplicationStep(_Model):
    at: dt.datetime
    from_status: ApplicationStatusName | None
    to_status: ApplicationStatusName
    station: str
    key_id: int | None
    reason: str


class Application(_Model):
    number: str
    application_type: str
    subject_id: SubjectRef | None = Field(description="null once the subject was erased")
    status: ApplicationStatusName
    created_at: dt.datetime
    updated_at: dt.datetime
    timeline: list[ApplicationStep]

    @classmethod
    def from_record(cls, record: ApplicationRecord) -> Application:
        return cls(
            number=record.number,
            application_type=record.application_type,
            subject_id=record.subject_ref,
            status=record.status.value,
            created_at=record.created_at,
            updated_at=record.updated_at,
            timeline=[
                ApplicationStep(
                    at=step.at,
                    from_status=step.from_status.value if step.from_status else None,
                    to_status=step.to_status.value,
                    station=step.station,
                    key_id=step.key_id,
                    reason=step.reason,
                )
                for step in record.timeline
            ],
        )


class ApplicationPage(_Model):
    items: list[Application]
    total: int
    offset: int
    limit: int


class StatusLookup(_Model):
    model_config = ConfigDict(
        frozen=True,
        extra="forbid",
        json_schema_extra={
            "example": {"number": "KANIM-2026-000042", "date_of_birth": "1990-05-17"}
        },
    )

    number: str = Field(min_length=1, max_length=64)
    date_of_birth: str = Field(min_length=1, max_length=32, description="YYYY-MM-DD")


class PublicStep(_Model):
    status: ApplicationStatusName
    at: dt.datetime


class PublicApplicationStatus(_Model):
    """What the applicant sees: never a name, a photo, a score, a station or a staff note."""

    number: str
    application_type: str
    status: ApplicationStatusName
    timeline: list[PublicStep]

    @classmethod
    def from_status(cls, status: PublicStatus) -> PublicApplicationStatus:
        return cls(
            number=status.number,
            application_type=status.application_type,
            status=status.status.value,
            timeline=[PublicStep(status=s.value, at=at) for s, at in status.steps],
        )
