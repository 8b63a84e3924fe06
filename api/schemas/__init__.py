"""Request and response bodies of the HTTP API (docs/api.md), as pydantic models.

Subjects are named by the office's reference (``subject_id`` on the wire), never by the
database's row ids. Responses are built from the core's frozen dataclasses by the ``from_*``
constructors here, so the routes stay thin.
"""

from __future__ import annotations

from wajah.api.schemas.applications import (
    Application,
    ApplicationCreate,
    ApplicationDecide,
    ApplicationPage,
    PublicApplicationStatus,
    StatusLookup,
)
from wajah.api.schemas.audit import AuditPage, AuditRecord
from wajah.api.schemas.common import (
    Candidate,
    CaptureSourceName,
    Health,
    ProblemDetails,
    QualityProfileName,
    Readiness,
    SubjectRef,
)
from wajah.api.schemas.faces import (
    Component,
    Enrollment,
    FaceBoxOut,
    ImageInfo,
    QualityResult,
    QualitySummary,
)
from wajah.api.schemas.keys import KeyCreate, KeyCreated, KeyInfo, KeyList, Me
from wajah.api.schemas.matching import Identification, IdentifyCandidate, Verification, VerifyJson
from wajah.api.schemas.ops import LatencyPercentiles, OpsSummary, RecentErrorOut
from wajah.api.schemas.reviews import Review, ReviewList, ReviewResolve
from wajah.api.schemas.subjects import (
    Sample,
    SampleList,
    Subject,
    SubjectCreate,
    SubjectPage,
    SubjectUpdate,
)

__all__ = [
    "Application",
    "ApplicationCreate",
    "ApplicationDecide",
    "ApplicationPage",
    "AuditPage",
    "AuditRecord",
    "Candidate",
    "CaptureSourceName",
    "Component",
    "Enrollment",
    "FaceBoxOut",
    "Health",
    "Identification",
    "IdentifyCandidate",
    "ImageInfo",
    "KeyCreate",
    "KeyCreated",
    "KeyInfo",
    "KeyList",
    "LatencyPercentiles",
    "Me",
    "OpsSummary",
    "ProblemDetails",
    "PublicApplicationStatus",
    "QualityProfileName",
    "QualityResult",
    "QualitySummary",
    "Readiness",
    "RecentErrorOut",
    "Review",
    "ReviewList",
    "ReviewResolve",
    "Sample",
    "SampleList",
    "StatusLookup",
    "Subject",
    "SubjectCreate",
    "SubjectPage",
    "SubjectRef",
    "SubjectUpdate",
    "Verification",
    "VerifyJson",
]
