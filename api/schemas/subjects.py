"""Subjects and their samples."""

from __future__ import annotations

import datetime as dt
from typing import Any, Literal

from pydantic import ConfigDict, Field

from wajah.api.schemas.common import SubjectRef, _Model
from wajah.enrollment.records import SampleRecord, SubjectRecord

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
