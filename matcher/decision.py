"""1:1 verification: is the person in front of the officer the enrolled subject?

The probe is compared with every enrolled template of the subject and the best score decides
(a subject enrolled with several photos is matched by the most similar one). A probe whose
quality is too low gives ``inconclusive`` whatever its score: the officer takes a new photo
instead of trusting a decision made on a bad one.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

import numpy as np


class Decision(StrEnum):
    MATCH = "match"
    NO_MATCH = "no_match"
    INCONCLUSIVE = "inconclusive"


@dataclass(frozen=True)
class OperatingPoint:
    """A threshold on cosine similarity and the error rates measured (or bounded) there.

    A rate of ``None`` means not measured; ``description`` says where the numbers come from.
    """

    threshold: float  # cosine similarity; scores >= threshold are matches
    false_match_rate: float | None
    false_non_match_rate: float | None
    description: str

    def __post_init__(self) -> None:
        if not -1.0 <= self.threshold <= 1.0:
            raise ValueError(f"threshold {self.threshold} is not a cosine similarity")
        for name in ("false_match_rate", "false_non_match_rate"):
            rate = getattr(self, name)
            if rate is not None and not 0.0 <= rate <= 1.0:
                raise ValueError(f"{name} {rate} is not a rate in [0, 1]")

    def to_dict(self) -> dict[str, Any]:
        return {
            "threshold": self.threshold,
            "false_match_rate": self.false_match_rate,
            "false_non_match_rate": self.false_non_match_rate,
            "description": self.description,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> OperatingPoint:
        def rate(name: str) -> float | None:
            value = data.get(name)
            return None if value is None else float(value)

        return cls(
            threshold=float(data["threshold"]),
            false_match_rate=rate("false_match_rate"),
            false_non_match_rate=rate("false_non_match_rate"),
            description=str(data.get("description", "")),
        )


@dataclass(frozen=True)
class Verification:
    decision: Decision
    score: float  # best cosine similarity over the subject's templates
    threshold: float
    false_match_rate: float | None  # of the operating point used
    reasons: tuple[str, ...]  # sentences for the officer's screen
    templates_compared: int


def _rate_text(rate: float | None) -> str:
    if rate is None:
        return "not yet measured"
    if rate == 0:
        return "0"
    return f"about 1 in {round(1 / rate):,}"


def decide(
    reference_scores: np.ndarray,
    operating_point: OperatingPoint,
    *,
    probe_usable: bool = True,
    probe_quality_reasons: Sequence[str] = (),
) -> Verification:
    """Decision from the probe's scores (M,) against the subject's M templates
    (``GalleryIndex.subject_scores``)."""
    scores = np.asarray(reference_scores, dtype=np.float64).reshape(-1)
    if scores.size == 0:
        raise ValueError("no reference scores: the subject has no enrolled template")
    if not np.isfinite(scores).all():
        raise ValueError("reference scores contain NaN or infinite values")
    best = float(scores.max())
    threshold = operating_point.threshold
    compared = f"Compared with {scores.size} enrolled photo(s); the most similar one counts."
    if not probe_usable:
        quality = tuple(f"Photo quality: {reason.rstrip('.')}." for reason in probe_quality_reasons)
        reasons = (
            "No decision: the new photo is not good enough to compare reliably.",
            *quality,
            "Take a new photo and verify again.",
        )
        decision = Decision.INCONCLUSIVE
    elif best >= threshold:
        decision = Decision.MATCH
        reasons = (
            f"The face matches the enrolled subject: similarity {best:.3f} is at or above the "
            f"threshold {threshold:.3f}.",
            f"At this threshold a different person is accepted "
            f"{_rate_text(operating_point.false_match_rate)} times.",
            compared,
        )
    else:
        decision = Decision.NO_MATCH
        reasons = (
            f"The face does not match the enrolled subject: similarity {best:.3f} is below the "
            f"threshold {threshold:.3f}.",
            compared,
        )
    return Verification(
        decision=decision,
        score=best,
        threshold=threshold,
        false_match_rate=operating_point.false_match_rate,
        reasons=reasons,
        templates_compared=int(scores.size),
    )


def verify(
    probe: np.ndarray,
    references: np.ndarray,
    operating_point: OperatingPoint,
    *,
    probe_usable: bool = True,
    probe_quality_reasons: Sequence[str] = (),
) -> Verification:
    """Decision for a probe (128,) float32 against reference templates (M, 128) float32, both
    L2-normalised (same model)."""
    probe_vector = np.asarray(probe, dtype=np.float32).reshape(-1)
    reference_matrix = np.asarray(references, dtype=np.float32)
    if reference_matrix.ndim == 1:
        reference_matrix = reference_matrix[None, :]
    if reference_matrix.ndim != 2 or reference_matrix.shape[1] != probe_vector.shape[0]:
        raise ValueError(
            f"references of shape {reference_matrix.shape} do not fit a probe of "
            f"shape {probe_vector.shape}"
        )
    return decide(
        reference_matrix @ probe_vector,
        operating_point,
        probe_usable=probe_usable,
        probe_quality_reasons=probe_quality_reasons,
    )
