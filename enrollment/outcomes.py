"""What the workflows of :class:`~wajah.enrollment.service.IdentityService` return: frozen results
for the edges to map (HTTP bodies, CLI output)."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum

from wajah.biometric.engine import ProcessedImage
from wajah.biometric.quality import QualityReport
from wajah.enrollment.records import ReviewRecord, SampleRecord, SubjectRecord
from wajah.matcher.decision import Verification
from wajah.matcher.identification import IdentifyDecision, IdentifyMode
from wajah.matcher.thresholds import GalleryOperatingPoint

__all__ = [
    "EnrollmentOutcome",
    "EnrollmentStatus",
    "IdentificationOutcome",
    "MatchCandidate",
    "QualityOutcome",
    "RankedMatch",
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
    applications_moved: tuple[str, ...] = ()  # numbers of the applications this moved

    @property
    def reasons(self) -> tuple[str, ...]:
        return tuple(component.reason for component in self.quality.failing)

    @property
    def second_capture_advised(self) -> bool:
        """An accepted subject with one photo only: a second capture makes 1:N markedly more
        reliable (held-out LFW, two photos, best-of-two scoring as the index does: FNIR at
        FPIR 1 % 20.0 % -> 8.8 %, rank-1 95.9 -> 98.8 %; benchmarks/results,
        identification-accuracy)."""
        return self.status is EnrollmentStatus.ACCEPTED and self.subject.sample_count == 1


@dataclass(frozen=True)
class VerificationOutcome:
    subject: SubjectRecord
    verification: Verification
    quality: QualityReport
    timings_ms: dict[str, float]
    applications_moved: tuple[str, ...] = ()  # numbers of the applications a match verified


@dataclass(frozen=True)
class RankedMatch:
    """A 1:N candidate: :class:`MatchCandidate` with its rank and what its score stands for."""

    rank: int  # 1 = most similar
    subject_id: int
    subject_ref: str
    score: float  # cosine similarity of the subject's best template
    status: str
    false_positive_identification_rate: float | None  # a stranger scores this high, at this G
    clears_threshold: bool


@dataclass(frozen=True)
class IdentificationOutcome:
    candidates: tuple[RankedMatch, ...]  # investigation: the top k; identification: clearing
    threshold: float  # the identification threshold for this gallery size and FPIR
    false_match_rate: float | None  # per comparison at it; None when not measured
    quality: QualityReport
    timings_ms: dict[str, float]
    mode: IdentifyMode = IdentifyMode.INVESTIGATION
    decision: IdentifyDecision = IdentifyDecision.NOT_IDENTIFIED
    point: GalleryOperatingPoint | None = None
    statement: str = ""
    reasons: tuple[str, ...] = ()  # quality reasons when a recapture is asked for

    @property
    def cleared(self) -> tuple[RankedMatch, ...]:
        return tuple(c for c in self.candidates if c.clears_threshold)


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
    applications_moved: tuple[str, ...] = ()  # numbers of the applications the decision moved
