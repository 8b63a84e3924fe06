"""What the workflows of :class:`~wajah.enrollment.service.IdentityService` return: frozen results
for the edges to map (HTTP bodies, CLI output)."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum

from wajah.biometric.engine import ProcessedImage
from wajah.biometric.quality import QualityReport
from wajah.enrollment.records import ReviewRecord, SampleRecord, SubjectRecord
from wajah.matcher.decision import Verification

__all__ = [
    "EnrollmentOutcome",
    "EnrollmentStatus",
    "IdentificationOutcome",
    "MatchCandidate",
    "QualityOutcome",
    "ResolutionOutcome",
    "VerificationOutcome",
]


class EnrollmentStatus(StrEnum):
    ACCEPTED = "accepted"  # stored; the subject is searchable
    REFUSED = "refused"  # quality gate said no; nothing stored; retake
    PENDING_REVIEW = "pending_review"  # stored, but looks like another subject: supervisor


@dataclass(frozen=True)
class MatchCandidate:
    subject_id: int
    subject_ref: str
    score: float  # cosine similarity of the subject's best template
    status: str


@dataclass(frozen=True)
class EnrollmentOutcome:
    status: EnrollmentStatus
    subject: SubjectRecord
    quality: QualityReport
    sample: SampleRecord | None
    template_id: int | None
    review: ReviewRecord | None
    candidates: tuple[MatchCandidate, ...]
    duplicate_threshold: float
    timings_ms: dict[str, float] = field(default_factory=dict)

    @property
    def reasons(self) -> tuple[str, ...]:
        return tuple(component.reason for component in self.quality.failing)


@dataclass(frozen=True)
class VerificationOutcome:
    subject: SubjectRecord
    verification: Verification
    quality: QualityReport
    timings_ms: dict[str, float]


@dataclass(frozen=True)
class IdentificationOutcome:
    candidates: tuple[MatchCandidate, ...]
    threshold: float
    false_match_rate: float | None  # None when the calibration could not measure it
    quality: QualityReport
    timings_ms: dict[str, float]


@dataclass(frozen=True)
class QualityOutcome:
    processed: ProcessedImage

    @property
    def quality(self) -> QualityReport:
        return self.processed.quality


@dataclass(frozen=True)
class ResolutionOutcome:
    review: ReviewRecord
    surviving_subject: SubjectRecord | None  # None after 'reject'
