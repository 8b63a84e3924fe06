"""1:N thresholds that scale with the gallery, from the measured impostor score distribution.

A probe of a person who is not enrolled is compared with each of the G enrolled subjects; it is
falsely identified when any of those G comparisons scores at or above the threshold t. With
independent comparisons (ISO/IEC 19795-1; NIST FRTE 1:N reports use the same model for the
small-FMR regime)

    FPIR(G, t) = 1 - (1 - FMR(t))^G                      (~= G * FMR(t) when that is small)

so the threshold for a target FPIR at the *current* gallery size G is the one whose FMR is
1 - (1 - FPIR)^(1/G). FMR(t) is read from the impostor curve kept in the calibration file: the
upper tail of the impostor scores measured by ``wajah calibrate`` (points at log-spaced FMRs),
interpolated linearly in log(FMR) between points. Above the highest impostor score no false
match was seen; the rate there is only bounded by the rule of three (3 / trials).

MOSIP's ABIS interface states the target as ``targetFPIR = -10 * log10(FPIR)`` (30 means an
FPIR of 1e-3); :func:`fpir_from_mosip_target` converts.

Pure numpy; an :class:`ImpostorCurve` is immutable and safe to share between threads.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

RULE_OF_THREE = 3.0  # 95 % upper bound on a rate after zero events in N trials is 3 / N
CURVE_POINTS = 160  # log-spaced FMR points kept in the calibration file (about 6 kB of JSON)


def fpir_from_mosip_target(target_fpir: float) -> float:
    """MOSIP's ``targetFPIR`` (``-10 * log10(FPIR)``, e.g. 30) as a rate (1e-3)."""
    if not math.isfinite(target_fpir) or target_fpir < 0:
        raise ValueError(f"targetFPIR {target_fpir} must be a finite number >= 0")
    return float(10.0 ** (-target_fpir / 10.0))


def mosip_target_from_fpir(fpir: float) -> float:
    """An FPIR (1e-3) in MOSIP's ``targetFPIR`` convention (30)."""
    if not 0.0 < fpir <= 1.0:
        raise ValueError(f"FPIR {fpir} is not in (0, 1]")
    return float(-10.0 * math.log10(fpir))


def per_comparison_fmr(fpir: float, gallery_size: int) -> float:
    """The FMR each comparison may have so that a search over ``gallery_size`` subjects has
    false-positive identification rate ``fpir``: 1 - (1 - FPIR)^(1/G)."""
    if not 0.0 <= fpir <= 1.0:
        raise ValueError(f"FPIR {fpir} is not in [0, 1]")
    if gallery_size < 1:
        raise ValueError("gallery_size must be >= 1")
    if fpir >= 1.0:
        return 1.0
    return float(-np.expm1(np.log1p(-fpir) / gallery_size))


def fpir_of_fmr(false_match_rate: float, gallery_size: int) -> float:
    """FPIR of a search over ``gallery_size`` subjects whose comparisons each have FMR f:
    1 - (1 - f)^G."""
    if not 0.0 <= false_match_rate <= 1.0:
        raise ValueError(f"FMR {false_match_rate} is not in [0, 1]")
    if false_match_rate >= 1.0:
        return 1.0
    return float(-np.expm1(max(gallery_size, 0) * np.log1p(-false_match_rate)))


@dataclass(frozen=True)
class ImpostorCurve:
    """The upper tail of the measured impostor scores: FMR at each of P score points.

    scores: (P,) float64 strictly ascending cosine similarities;
    false_match_rates: (P,) float64 strictly descending, share of impostor scores >= the point.
    """

    scores: tuple[float, ...]
    false_match_rates: tuple[float, ...]
    impostor_trials: int

    def __post_init__(self) -> None:
        scores = np.asarray(self.scores, dtype=np.float64)
        rates = np.asarray(self.false_match_rates, dtype=np.float64)
        if scores.ndim != 1 or scores.size < 2 or scores.shape != rates.shape:
            raise ValueError("an impostor curve needs two or more (score, FMR) points")
        if not (np.diff(scores) > 0).all() or not (np.diff(rates) < 0).all():
            raise ValueError("impostor curve scores must ascend and FMRs descend strictly")
        if rates[-1] <= 0 or rates[0] > 1:
            raise ValueError("impostor curve FMRs must lie in (0, 1]")
        if self.impostor_trials < 1:
            raise ValueError("impostor_trials must be >= 1")

    @classmethod
    def from_scores(cls, impostor_scores: np.ndarray, points: int = CURVE_POINTS) -> ImpostorCurve:
        """The curve of measured impostor scores: for m = 1 .. N false matches allowed at
        log-spaced steps, the m-th highest score and FMR m / N."""
        ordered = np.sort(np.asarray(impostor_scores, dtype=np.float64).reshape(-1))
        trials = int(ordered.size)
        if trials < 2 or not np.isfinite(ordered).all():
            raise ValueError("need two or more finite impostor scores")
        counts = np.unique(np.round(np.logspace(0, np.log10(trials), points)).astype(np.int64))
        counts = counts[(counts >= 1) & (counts <= trials)]
        scores = ordered[trials - counts]  # the count-th highest score
        # Ties: FMR at a score is the share >= it, which counts every tied score.
        at_or_above = trials - np.searchsorted(ordered, scores, side="left")
        unique_scores, first = np.unique(scores, return_index=True)
        rates = at_or_above[first] / trials
        keep = np.concatenate([[True], np.diff(rates) < 0])
        return cls(
            tuple(float(s) for s in unique_scores[keep]),
            tuple(float(r) for r in rates[keep]),
            trials,
        )

    @property
    def rule_of_three_bound(self) -> float:
        return RULE_OF_THREE / self.impostor_trials

    def false_match_rate(self, score: float) -> float:
        """FMR at a score: interpolated in log(FMR) between curve points (the curve starts at
        the lowest impostor score, FMR 1); above its highest score, where no false match was
        seen, the rule-of-three bound."""
        scores = np.asarray(self.scores)
        log_rates = np.log(np.asarray(self.false_match_rates))
        if score > scores[-1]:
            return min(self.false_match_rates[-1], self.rule_of_three_bound)
        return float(np.exp(np.interp(score, scores, log_rates)))

    def threshold_for_false_match_rate(self, target: float) -> tuple[float, bool]:
        """(threshold, measurable): the lowest score whose FMR is <= ``target``.

        ``measurable`` is False when the target is below one false match in the measured
        trials; the threshold is then just above the highest measured impostor score."""
        if not 0.0 <= target <= 1.0:
            raise ValueError(f"target FMR {target} is not in [0, 1]")
        rates = np.asarray(self.false_match_rates)
        scores = np.asarray(self.scores)
        if target >= rates[0]:
            return float(scores[0]), True
        if target < rates[-1]:
            return float(np.nextafter(np.float32(scores[-1]), np.float32(np.inf))), False
        # log(FMR) descends with the score: interpolate on the reversed arrays.
        threshold = float(np.interp(np.log(target), np.log(rates[::-1]), scores[::-1]))
        return float(np.nextafter(np.float32(threshold), np.float32(np.inf))), True

    def threshold_for_fpir(self, fpir: float, gallery_size: int) -> tuple[float, bool]:
        """(threshold, measurable) for a target FPIR over ``gallery_size`` subjects."""
        return self.threshold_for_false_match_rate(per_comparison_fmr(fpir, gallery_size))

    def fpir_at(self, score: float, gallery_size: int) -> float:
        """The false-positive identification rate a score stands for at this gallery size: the
        share of searches for a person not enrolled whose best impostor scores >= it."""
        return fpir_of_fmr(self.false_match_rate(score), gallery_size)

    def to_dict(self) -> dict[str, Any]:
        return {
            "impostor_trials": self.impostor_trials,
            "points": [[s, r] for s, r in zip(self.scores, self.false_match_rates, strict=True)],
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ImpostorCurve:
        points = data["points"]
        return cls(
            tuple(float(p[0]) for p in points),
            tuple(float(p[1]) for p in points),
            int(data["impostor_trials"]),
        )
