"""1:N answers in two modes, as NIST FRTE 1:N and police face services distinguish them.

* **investigation** (the default for officers): the top-k candidates always, ranked, each with
  its score, the false-positive identification rate that score stands for at the current
  gallery size, and whether it clears the identification threshold. When none clears it the
  answer says so plainly: the list is "possible candidates for review", not an identification.
* **identification** (automated flows): a decision, ``identified`` or ``not_identified``, at the
  threshold calibrated for a stated FPIR at the current gallery size; only candidates that
  clear it are listed.

A probe whose quality is too low and that clears nothing asks for a new photo
(``inconclusive``) instead of a ``not_identified`` made on a bad capture.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum

from wajah.matcher.impostor_curve import ImpostorCurve, fpir_of_fmr
from wajah.matcher.modes import IdentifyMode as IdentifyMode  # re-exported: its old home
from wajah.matcher.thresholds import GalleryOperatingPoint


class IdentifyDecision(StrEnum):
    IDENTIFIED = "identified"  # a candidate clears the identification threshold
    NOT_IDENTIFIED = "not_identified"  # none does (investigation: candidates for review)
    INCONCLUSIVE = "inconclusive"  # none does and the probe is too poor to trust that: recapture


@dataclass(frozen=True)
class ScoredSubject:
    """One subject found by the search (best template score), in rank order."""

    subject_id: int
    score: float  # cosine similarity of the subject's best template


@dataclass(frozen=True)
class RankedCandidate:
    rank: int  # 1 = most similar
    subject_id: int
    score: float
    false_positive_identification_rate: float | None  # a stranger scores this high at this G
    clears_threshold: bool


@dataclass(frozen=True)
class IdentificationResult:
    mode: IdentifyMode
    decision: IdentifyDecision
    candidates: tuple[RankedCandidate, ...]  # identification mode: only those clearing
    point: GalleryOperatingPoint
    statement: str  # one plain sentence for the officer's screen
    reasons: tuple[str, ...]  # quality reasons when a recapture is asked for

    @property
    def cleared(self) -> int:
        return sum(1 for c in self.candidates if c.clears_threshold)


def _score_fpir(
    score: float, point: GalleryOperatingPoint, curve: ImpostorCurve | None
) -> float | None:
    if curve is not None:
        return curve.fpir_at(score, point.gallery_size)
    if score >= point.threshold and point.false_match_rate is not None:
        return fpir_of_fmr(point.false_match_rate, point.gallery_size)  # at most that
    return None


def identification_result(
    found: Sequence[ScoredSubject],
    point: GalleryOperatingPoint,
    curve: ImpostorCurve | None,
    mode: IdentifyMode = IdentifyMode.INVESTIGATION,
    *,
    probe_usable: bool = True,
    probe_quality_reasons: Sequence[str] = (),
) -> IdentificationResult:
    """The answer for subjects ``found`` (best first) against the operating point ``point``
    (``Thresholds.identification_point`` for the current gallery size)."""
    ranked = tuple(
        RankedCandidate(
            rank=rank,
            subject_id=subject.subject_id,
            score=subject.score,
            false_positive_identification_rate=_score_fpir(subject.score, point, curve),
            clears_threshold=subject.score >= point.threshold,
        )
        for rank, subject in enumerate(sorted(found, key=lambda s: s.score, reverse=True), start=1)
    )
    cleared = [c for c in ranked if c.clears_threshold]
    reasons: tuple[str, ...] = ()
    rate = (
        f"FPIR {point.target_fpir:.2g} over {point.gallery_size:,} enrolled subjects"
        if point.target_fpir is not None
        else f"a fixed threshold; {point.gallery_size:,} enrolled subjects"
    )
    if cleared:
        decision = IdentifyDecision.IDENTIFIED
        statement = (
            f"{len(cleared)} candidate(s) clear the identification threshold "
            f"{point.threshold:.3f} ({rate}); confirm the identity before acting."
        )
    elif not probe_usable:
        decision = IdentifyDecision.INCONCLUSIVE
        reasons = tuple(f"Photo quality: {r.rstrip('.')}." for r in probe_quality_reasons)
        statement = (
            "No candidate clears the identification threshold, and the photo is not good "
            "enough to trust that: take a new photo and search again."
        )
    else:
        decision = IdentifyDecision.NOT_IDENTIFIED
        statement = (
            f"No candidate clears the identification threshold {point.threshold:.3f} ({rate})."
        )
        if mode is IdentifyMode.INVESTIGATION and ranked:
            statement += " These are possible candidates for review, not an identification."
    shown = ranked if mode is IdentifyMode.INVESTIGATION else tuple(cleared)
    return IdentificationResult(mode, decision, shown, point, statement, reasons)
