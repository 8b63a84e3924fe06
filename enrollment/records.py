"""What the record store hands out and takes in: domain enums, frozen records, and the
:class:`Capture` a new sample is stored from.

The ORM (``enrollment/db.py``) imports the enums from here for its CHECK constraints; nothing
here knows SQL. Names, birth dates and document numbers stay out of ``repr`` so that an
accidental log line does not leak them.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import Enum, StrEnum
from typing import Any, Final, NamedTuple

import numpy as np

from wajah.biometric.templates import Template
from wajah.enrollment.roles import Role

__all__ = [
    "UNSET",
    "Actor",
    "ApplicationEvent",
    "ApplicationRecord",
    "ApplicationStatus",
    "Capture",
    "CaptureSource",
    "MovedSamples",
    "ReviewCandidate",
    "ReviewRecord",
    "ReviewResolution",
    "ReviewStatus",
    "Role",
    "SampleRecord",
    "StoredTemplate",
    "SubjectRecord",
    "SubjectStatus",
    "TemplateBatch",
    "Unset",
]


@dataclass(frozen=True)
class Actor:
    """Who did something, as the records keep it: the station (an API key's name, or
    ``cli:<login>`` for the command line), the key's id and its role when an API key did it."""

    station: str
    key_id: int | None = None
    role: str | None = None


class ApplicationStatus(StrEnum):
    """Where an application stands (the transitions are in ``enrollment/application_states.py``)."""

    SUBMITTED = "submitted"
    BIOMETRICS_CAPTURED = "biometrics_captured"
    VERIFIED = "verified"
    NEEDS_REVIEW = "needs_review"
    APPROVED = "approved"
    REJECTED = "rejected"


class SubjectStatus(StrEnum):
    ACTIVE = "active"
    PENDING_REVIEW = "pending_review"  # a possible duplicate waits for a supervisor
    DELETED = "deleted"  # tombstone state kept for the spec; erasure is a hard delete


class CaptureSource(StrEnum):
    CAMERA = "camera"
    SCAN = "scan"
    IMPORT = "import"


class ReviewStatus(StrEnum):
    OPEN = "open"
    RESOLVED = "resolved"


class ReviewResolution(StrEnum):
    CONFIRM_DISTINCT = "confirm_distinct"
    MERGE = "merge"
    REJECT = "reject"


class Unset(Enum):
    """Marks a field that a partial update leaves alone (``None`` means "clear it")."""

    UNSET = "unset"


UNSET: Final = Unset.UNSET


@dataclass(frozen=True, kw_only=True)
class Capture:
    """One photo to store as a sample with its template; validated by the store.

    ``chip`` is the aligned (150, 150, 3) uint8 RGB face chip (kept as an encrypted PNG);
    ``image_bytes`` the original upload, kept encrypted when given; ``image_sha256`` the hex
    SHA-256 of the upload as received (makes bulk import resumable); ``captured_at`` an aware
    datetime, or None for the time of storing.
    """

    subject_id: int
    capture_source: CaptureSource | str
    quality: Mapping[str, Any]  # the quality report (numpy scalars allowed; stored as JSON)
    chip: np.ndarray = field(repr=False)  # (150, 150, 3) uint8 RGB
    image_bytes: bytes | None = field(repr=False)
    image_sha256: str
    station: str
    captured_at: dt.datetime | None
    template: Template = field(repr=False)


@dataclass(frozen=True)
class SubjectRecord:
    """A subject with its identity."""

    id: int
    subject_ref: str
    status: SubjectStatus
    full_name: str = field(repr=False)
    date_of_birth: dt.date | None = field(repr=False)
    nationality: str | None
    document_number: str | None = field(repr=False)
    created_at: dt.datetime
    updated_at: dt.datetime
    sample_count: int


@dataclass(frozen=True)
class SampleRecord:
    id: int
    subject_id: int
    capture_source: CaptureSource
    quality: Mapping[str, Any]  # the quality report, as stored (JSON types)
    image_sha256: str  # of the image bytes as received
    has_image: bool  # whether the original image is kept
    station: str
    captured_at: dt.datetime


@dataclass(frozen=True, eq=False)
class StoredTemplate:
    template_id: int  # also the FAISS id
    subject_id: int
    sample_id: int
    model_tag: str
    vector: np.ndarray = field(repr=False)  # (128,) float32, L2-normalised, read-only

    def as_template(self) -> Template:
        return Template(vector=self.vector, model_tag=self.model_tag)


class TemplateBatch(NamedTuple):
    """One batch of ``RecordStore.iter_templates``, in ascending template id."""

    template_ids: np.ndarray  # (N,) int64
    subject_ids: np.ndarray  # (N,) int64
    vectors: np.ndarray  # (N, 128) float32, L2-normalised


@dataclass(frozen=True)
class ReviewCandidate:
    subject_id: int
    subject_ref: str | None  # None once that subject has been erased
    score: float  # similarity that raised the case


@dataclass(frozen=True)
class ReviewRecord:
    id: int
    subject_id: int | None  # the new enrollment (pending_review while open); None once erased
    subject_ref: str | None  # its reference; None once erased
    candidates: tuple[ReviewCandidate, ...]
    status: ReviewStatus
    resolution: ReviewResolution | None
    resolved_by: str | None
    comment: str | None = field(repr=False)
    created_at: dt.datetime
    resolved_at: dt.datetime | None


@dataclass(frozen=True, eq=False)
class MovedSamples:
    """What a review's merge re-linked; the index must follow."""

    sample_ids: tuple[int, ...]
    template_ids: np.ndarray  # (N,) int64, now belonging to the target subject


@dataclass(frozen=True)
class ApplicationEvent:
    """One step of an application's timeline. ``from_status`` is None for its creation."""

    at: dt.datetime
    from_status: ApplicationStatus | None
    to_status: ApplicationStatus
    station: str
    key_id: int | None
    reason: str


@dataclass(frozen=True)
class ApplicationRecord:
    """An application (passport, visa, stay permit) of one subject, with its timeline (oldest
    step first). ``subject_id`` and ``subject_ref`` are None once the subject was erased (a
    rejected duplicate): the decision stays readable."""

    id: int
    number: str
    application_type: str
    subject_id: int | None
    subject_ref: str | None
    status: ApplicationStatus
    created_at: dt.datetime
    updated_at: dt.datetime
    timeline: tuple[ApplicationEvent, ...]
