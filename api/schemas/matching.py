"""Matching: verification (1:1) and identification (1:N)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Literal

from pydantic import ConfigDict, Field

from wajah.api.schemas.common import SubjectRef, _Model
from wajah.api.schemas.faces import QualitySummary
from wajah.enrollment.service import IdentificationOutcome, VerificationOutcome


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
