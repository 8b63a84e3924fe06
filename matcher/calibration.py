"""Choosing thresholds from measured genuine and impostor scores.

Definitions (ISO/IEC 19795-1): with impostor scores (different people) and genuine scores
(same person), at threshold t

* false match rate      FMR(t)  = #{impostor >= t} / #impostor
* false non-match rate  FNMR(t) = #{genuine  <  t} / #genuine

Zero observed errors in N independent trials do not mean a zero rate: the "rule of three"
bounds it at 3 / N with 95% confidence (Hanley & Lippman-Hand, JAMA 1983; ISO/IEC 19795-1
Annex). A target FMR below 3 / N therefore cannot be shown with N trials.

Duplicate search (1:N over a gallery of G subjects): a new person who is not enrolled is
wrongly flagged when ANY of G comparisons matches, so the false positive identification rate is

    FPIR = 1 - (1 - FMR)^G  ~=  G * FMR          (independent comparisons, small G * FMR)

and the per-comparison target is FMR = 1 - (1 - FPIR)^(1/G)  ~=  FPIR / G.

Scores are sorted once; every rate is then two ``searchsorted`` calls, so 10^7 impostor scores
cost one sort (about a second) and each query microseconds. Pure numpy, deterministic.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

RULE_OF_THREE = 3.0  # 95% upper bound on a rate after zero events in N trials is 3 / N


@dataclass(frozen=True)
class ThresholdChoice:
    threshold: float  # cosine similarity: scores >= threshold match
    target_false_match_rate: float
    false_match_rate: float  # measured at the threshold
    false_match_rate_upper_bound: float  # 3 / N when no false match was seen, else measured
    false_non_match_rate: float
    impostor_trials: int
    genuine_trials: int
    measurable: bool  # False when the target is below what the trials can show (3 / N)
    note: str


@dataclass(frozen=True)
class EqualErrorRate:
    rate: float  # mean of FMR and FNMR at the threshold where they are closest
    threshold: float
    false_match_rate: float  # at the threshold
    false_non_match_rate: float


@dataclass(frozen=True)
class DetCurve:
    thresholds: np.ndarray  # (P,) float64, ascending
    false_match_rates: np.ndarray  # (P,) float64, non-increasing
    false_non_match_rates: np.ndarray  # (P,) float64, non-decreasing


def _float32_above(values: float | np.ndarray) -> np.ndarray:
    """The smallest float32 strictly above each value, as float64.

    Scores are float32 in service (FAISS, numpy sgemv) and numpy compares a float32 array with a
    Python float in float32; a threshold that float32 cannot represent would round onto the
    score it was meant to exclude. Thresholds are therefore float32 numbers.
    """
    array = np.asarray(values, dtype=np.float64)
    rounded = array.astype(np.float32)
    rounded = np.where(
        rounded.astype(np.float64) > array, rounded, np.nextafter(rounded, np.float32(np.inf))
    )
    return np.asarray(rounded, dtype=np.float64)


def _sorted_scores(scores: np.ndarray, name: str) -> np.ndarray:
    array = np.asarray(scores, dtype=np.float64).reshape(-1)
    if array.size == 0:
        raise ValueError(f"{name} scores are empty")
    if not np.isfinite(array).all():
        raise ValueError(f"{name} scores contain NaN or infinite values")
    return np.sort(array, kind="stable")


class ScoreCalibration:
    """Error rates and thresholds from one set of genuine and impostor scores. Immutable after
    construction and safe to share between threads."""

    def __init__(self, genuine_scores: np.ndarray, impostor_scores: np.ndarray) -> None:
        self._genuine = _sorted_scores(genuine_scores, "genuine")  # (G,) float64 ascending
        self._impostor = _sorted_scores(impostor_scores, "impostor")  # (I,) float64 ascending

    @property
    def genuine_trials(self) -> int:
        return int(self._genuine.size)

    @property
    def impostor_trials(self) -> int:
        return int(self._impostor.size)

    def false_match_rate(self, threshold: float | np.ndarray) -> np.ndarray:
        """FMR at each threshold: share of impostor scores >= threshold."""
        below = np.searchsorted(self._impostor, threshold, side="left")
        return np.asarray((self._impostor.size - below) / self._impostor.size, dtype=np.float64)

    def false_non_match_rate(self, threshold: float | np.ndarray) -> np.ndarray:
        """FNMR at each threshold: share of genuine scores < threshold."""
        below = np.searchsorted(self._genuine, threshold, side="left")
        return np.asarray(below / self._genuine.size, dtype=np.float64)

    def threshold_for_false_match_rate(self, target: float) -> ThresholdChoice:
        """The smallest threshold whose measured FMR is <= ``target``.

        With m = floor(target * N) false matches allowed, that is the next float32 above the
        (m + 1)-th highest impostor score. When the target is below 3 / N the threshold is the
        strictest measurable one (just above the highest impostor score) and the FMR is only
        bounded by 3 / N; ``measurable`` is False and ``note`` says so.
        """
        if not 0.0 <= target <= 1.0:
            raise ValueError(f"target false match rate {target} is not in [0, 1]")
        trials = self._impostor.size
        allowed = int(np.floor(target * trials + 1e-9))  # tolerate 0.001 * 1000 = 0.99999
        if allowed >= trials:
            threshold = float(self._impostor[0])  # everything matches; FMR = 1 <= target
        else:
            threshold = float(_float32_above(self._impostor[trials - 1 - allowed]))
        measured = float(self.false_match_rate(threshold))
        bound = RULE_OF_THREE / trials
        measurable = target >= bound
        if measured == 0.0:
            upper = bound
            note = (
                f"No false match in {trials:,} impostor trials at this threshold: the false "
                f"match rate is below {bound:.3g} with 95% confidence (rule of three)."
            )
            if not measurable:
                note += (
                    f" The target {target:.3g} is below what {trials:,} trials can show; "
                    f"about {int(np.ceil(RULE_OF_THREE / target)):,} are needed."
                )
        else:
            upper = measured
            note = f"{round(measured * trials):,} false matches in {trials:,} trials."
        return ThresholdChoice(
            threshold=threshold,
            target_false_match_rate=target,
            false_match_rate=measured,
            false_match_rate_upper_bound=upper,
            false_non_match_rate=float(self.false_non_match_rate(threshold)),
            impostor_trials=trials,
            genuine_trials=self.genuine_trials,
            measurable=measurable,
            note=note,
        )

    def duplicate_threshold(
        self, target_false_positive_identification_rate: float, gallery_size: int
    ) -> ThresholdChoice:
        """Threshold for a duplicate search over ``gallery_size`` enrolled subjects.

        Per-comparison target FMR = 1 - (1 - FPIR)^(1 / G) (~= FPIR / G), then
        :meth:`threshold_for_false_match_rate`. When that is below 3 / N the strictest
        measurable threshold is returned with the rule-of-three note; the FPIR it guarantees is
        then only about G * 3 / N.
        """
        if gallery_size < 1:
            raise ValueError("gallery_size must be >= 1")
        fpir = target_false_positive_identification_rate
        if not 0.0 <= fpir <= 1.0:
            raise ValueError(f"target FPIR {fpir} is not in [0, 1]")
        per_comparison = float(-np.expm1(np.log1p(-fpir) / gallery_size)) if fpir < 1 else 1.0
        choice = self.threshold_for_false_match_rate(per_comparison)
        implied_fpir = float(
            -np.expm1(gallery_size * np.log1p(-choice.false_match_rate_upper_bound))
        )
        note = (
            f"1:N search over {gallery_size:,} subjects: target FPIR {fpir:.3g} needs a "
            f"per-comparison FMR of {per_comparison:.3g}. {choice.note} Implied FPIR at most "
            f"{implied_fpir:.3g}."
        )
        return ThresholdChoice(
            threshold=choice.threshold,
            target_false_match_rate=per_comparison,
            false_match_rate=choice.false_match_rate,
            false_match_rate_upper_bound=choice.false_match_rate_upper_bound,
            false_non_match_rate=choice.false_non_match_rate,
            impostor_trials=choice.impostor_trials,
            genuine_trials=choice.genuine_trials,
            measurable=choice.measurable,
            note=note,
        )

    def equal_error_rate(self) -> EqualErrorRate:
        """EER: the point where FMR and FNMR are closest, found by bisection on the threshold
        (FNMR - FMR is non-decreasing in it)."""
        low = min(self._genuine[0], self._impostor[0])
        high = float(_float32_above(max(self._genuine[-1], self._impostor[-1])))
        # invariant: FNMR(low) < FMR(low) or low is the minimum; FNMR(high) >= FMR(high)
        for _ in range(200):
            middle = (low + high) / 2.0
            if middle in (low, high):
                break
            if self.false_non_match_rate(middle) >= self.false_match_rate(middle):
                high = middle
            else:
                low = middle
        best: EqualErrorRate | None = None
        for threshold in (float(_float32_above(np.nextafter(low, -np.inf))), high):
            fmr = float(self.false_match_rate(threshold))
            fnmr = float(self.false_non_match_rate(threshold))
            point = EqualErrorRate((fmr + fnmr) / 2.0, float(threshold), fmr, fnmr)
            if best is None or abs(fmr - fnmr) < abs(
                best.false_match_rate - best.false_non_match_rate
            ):
                best = point
        assert best is not None
        return best

    def det_curve(self, points: int = 200) -> DetCurve:
        """DET points at FMR targets log-spaced from 1 / N to 1, and at FMR = 0."""
        if points < 2:
            raise ValueError("points must be >= 2")
        trials = self._impostor.size
        targets = np.logspace(np.log10(1.0 / trials), 0.0, points)
        allowed = np.minimum(np.floor(targets * trials + 1e-9).astype(np.int64), trials - 1)
        allowed = np.concatenate([[0], allowed])  # and the strictest point, FMR = 0
        thresholds = _float32_above(self._impostor[trials - 1 - allowed])
        thresholds = np.unique(thresholds)  # ascending, distinct
        return DetCurve(
            thresholds=thresholds,
            false_match_rates=self.false_match_rate(thresholds),
            false_non_match_rates=self.false_non_match_rate(thresholds),
        )


# --- Score sets with subjects: the benchmarks' report and its subject bootstrap ----------------
# The same FMR and FNMR as above, evaluated at every distinct score at once and optionally
# weighted: the subject bootstrap (Bolle, Ratha & Pankanti 2004, "Error analysis of pattern
# recognition systems -- the subsets bootstrap") reuses one sort, since resampling subjects
# with replacement is the same as weighting each comparison by how often its subject(s) were
# drawn. Where no error is seen in N trials the rate is reported as "< 3/N" (rule of three).


def rule_of_three(trials: int) -> float:
    """95 % upper bound of a rate when no error was seen in ``trials`` trials."""
    if trials <= 0:
        return float("nan")
    return RULE_OF_THREE / trials


def format_rate(errors: float, trials: int, digits: int = 3) -> str:
    """``"0.0123 (12/976)"``, or ``"< 0.0031 (0/976, rule of three)"`` when nothing was seen."""
    if trials <= 0:
        return "n/a (no trials)"
    if errors == 0:
        return f"< {rule_of_three(trials):.{digits}g} (0/{trials}, rule of three)"
    return f"{errors / trials:.{digits}g} ({errors:g}/{trials})"


@dataclass(frozen=True)
class ScoreSet:
    """Genuine and impostor scores, sorted ascending, with the subjects behind each.

    genuine: (G,) float64 ascending; genuine_subject: (G,) int64 subject index of each.
    impostor: (I,) float64 ascending; impostor_subjects: (I, 2) int64 the two subjects.
    thresholds: (T,) float64 ascending candidate thresholds (every distinct score, then +inf).
    """

    genuine: np.ndarray
    genuine_subject: np.ndarray
    impostor: np.ndarray
    impostor_subjects: np.ndarray
    thresholds: np.ndarray
    genuine_below: np.ndarray  # (T,) int64: genuine scores < thresholds[j]
    impostor_below: np.ndarray  # (T,) int64: impostor scores < thresholds[j]

    @classmethod
    def build(
        cls,
        genuine: np.ndarray,
        impostor: np.ndarray,
        genuine_subject: np.ndarray | None = None,
        impostor_subjects: np.ndarray | None = None,
    ) -> ScoreSet:
        genuine = np.asarray(genuine, dtype=np.float64)
        impostor = np.asarray(impostor, dtype=np.float64)
        if genuine.size == 0 or impostor.size == 0:
            raise ValueError("need at least one genuine and one impostor score")
        g_subject = (
            np.zeros(genuine.shape[0], np.int64)
            if genuine_subject is None
            else np.asarray(genuine_subject, np.int64)
        )
        i_subjects = (
            np.zeros((impostor.shape[0], 2), np.int64)
            if impostor_subjects is None
            else np.asarray(impostor_subjects, np.int64).reshape(-1, 2)
        )
        g_order = np.argsort(genuine, kind="stable")
        i_order = np.argsort(impostor, kind="stable")
        genuine, g_subject = genuine[g_order], g_subject[g_order]
        impostor, i_subjects = impostor[i_order], i_subjects[i_order]
        thresholds = np.concatenate([np.unique(np.concatenate([genuine, impostor])), [np.inf]])
        return cls(
            genuine=genuine,
            genuine_subject=g_subject,
            impostor=impostor,
            impostor_subjects=i_subjects,
            thresholds=thresholds,
            genuine_below=np.searchsorted(genuine, thresholds, side="left"),
            impostor_below=np.searchsorted(impostor, thresholds, side="left"),
        )

    def rates(
        self, genuine_weight: np.ndarray | None = None, impostor_weight: np.ndarray | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        """(FMR (T,), FNMR (T,)) at every candidate threshold, optionally weighted."""
        if genuine_weight is None:
            fnmr = self.genuine_below / self.genuine.shape[0]
        else:
            cumulative = np.concatenate([[0.0], np.cumsum(genuine_weight)])
            total = cumulative[-1]
            fnmr = (
                cumulative[self.genuine_below] / total
                if total > 0
                else np.full_like(self.thresholds, np.nan)
            )
        if impostor_weight is None:
            fmr = 1.0 - self.impostor_below / self.impostor.shape[0]
        else:
            cumulative = np.concatenate([[0.0], np.cumsum(impostor_weight)])
            total = cumulative[-1]
            fmr = (
                1.0 - cumulative[self.impostor_below] / total
                if total > 0
                else np.full_like(self.thresholds, np.nan)
            )
        return np.asarray(fmr, np.float64), np.asarray(fnmr, np.float64)


@dataclass(frozen=True)
class ErrorRatesAtTarget:
    """FNMR at the lowest candidate threshold whose FMR does not exceed the target (the
    benchmarks' report; :class:`ThresholdChoice` is the service's choice of a threshold)."""

    target_fmr: float
    threshold: float
    fmr: float
    fnmr: float
    false_matches: int
    false_non_matches: int
    impostor_trials: int
    genuine_trials: int

    @property
    def resolvable(self) -> bool:
        """Enough impostor trials to tell an FMR of target from 0 (rule of three)."""
        return rule_of_three(self.impostor_trials) <= self.target_fmr

    def fnmr_text(self) -> str:
        return format_rate(self.false_non_matches, self.genuine_trials)

    def fmr_text(self) -> str:
        return format_rate(self.false_matches, self.impostor_trials)


def equal_error_rate(
    scores: ScoreSet,
    genuine_weight: np.ndarray | None = None,
    impostor_weight: np.ndarray | None = None,
) -> EqualErrorRate:
    """EER over the candidate thresholds (every distinct score): where FMR and FNMR are
    closest, optionally weighted (the subject bootstrap). :meth:`ScoreCalibration.
    equal_error_rate` bisects to a float32 threshold instead, for the service."""
    fmr, fnmr = scores.rates(genuine_weight, impostor_weight)
    best = _closest(fmr, fnmr)
    return EqualErrorRate(
        float((fmr[best] + fnmr[best]) / 2.0),
        float(scores.thresholds[best]),
        float(fmr[best]),
        float(fnmr[best]),
    )


def _closest(fmr: np.ndarray, fnmr: np.ndarray) -> int:
    """Index of the candidate threshold where FMR and FNMR are closest (NaN ignored)."""
    return int(np.nanargmin(np.abs(fmr - fnmr)))


def _operating_index(fmr: np.ndarray, target_fmr: float) -> int:
    allowed = np.flatnonzero(fmr <= target_fmr)  # FMR falls as the threshold rises
    return int(allowed[0]) if allowed.size else len(fmr) - 1


def fnmr_at_fmr(scores: ScoreSet, target_fmr: float) -> ErrorRatesAtTarget:
    fmr, fnmr = scores.rates()
    index = _operating_index(fmr, target_fmr)
    threshold = float(scores.thresholds[index])
    return ErrorRatesAtTarget(
        target_fmr=target_fmr,
        threshold=threshold,
        fmr=float(fmr[index]),
        fnmr=float(fnmr[index]),
        false_matches=int(scores.impostor.shape[0] - scores.impostor_below[index]),
        false_non_matches=int(scores.genuine_below[index]),
        impostor_trials=int(scores.impostor.shape[0]),
        genuine_trials=int(scores.genuine.shape[0]),
    )


def rates_at_threshold(scores: ScoreSet, threshold: float) -> tuple[int, int]:
    """(false matches, false non-matches) at a fixed threshold."""
    false_non_matches = int(np.searchsorted(scores.genuine, threshold, side="left"))
    false_matches = int(scores.impostor.shape[0] - np.searchsorted(scores.impostor, threshold))
    return false_matches, false_non_matches


@dataclass(frozen=True)
class Interval:
    low: float
    high: float


def subject_bootstrap(
    scores: ScoreSet,
    subjects: int,
    fmr_targets: Sequence[float],
    replicates: int = 200,
    seed: int = 0,
) -> dict[str, Interval]:
    """95 % percentile intervals of the EER and of FNMR at each FMR target, resampling SUBJECTS
    with replacement (comparisons of one subject are correlated; resampling comparisons would
    make the intervals too narrow). ``subjects`` is the number of subjects, indices 0..n-1.

    A subject drawn m times weights its genuine comparisons by m and an impostor comparison of
    subjects a, b by m_a * m_b. Keys: "eer" and "fnmr@<target>".
    """
    rng = np.random.default_rng(seed)
    draws: dict[str, list[float]] = {"eer": []}
    for target in fmr_targets:
        draws[f"fnmr@{target:g}"] = []
    for _ in range(replicates):
        counts = np.bincount(rng.integers(0, subjects, subjects), minlength=subjects).astype(
            np.float64
        )
        genuine_weight = counts[scores.genuine_subject]
        impostor_weight = (
            counts[scores.impostor_subjects[:, 0]] * counts[scores.impostor_subjects[:, 1]]
        )
        if genuine_weight.sum() == 0 or impostor_weight.sum() == 0:
            continue
        fmr, fnmr = scores.rates(genuine_weight, impostor_weight)
        best = _closest(fmr, fnmr)
        draws["eer"].append(float((fmr[best] + fnmr[best]) / 2.0))
        for target in fmr_targets:
            draws[f"fnmr@{target:g}"].append(float(fnmr[_operating_index(fmr, target)]))
    return {
        key: Interval(float(np.percentile(values, 2.5)), float(np.percentile(values, 97.5)))
        if values
        else Interval(float("nan"), float("nan"))
        for key, values in draws.items()
    }


def det_points(scores: ScoreSet, max_points: int = 2000) -> tuple[np.ndarray, np.ndarray]:
    """(FMR, FNMR) along the DET curve, thinned to at most ``max_points`` for plotting."""
    fmr, fnmr = scores.rates()
    if fmr.shape[0] > max_points:
        keep = np.unique(np.linspace(0, fmr.shape[0] - 1, max_points).astype(np.int64))
        fmr, fnmr = fmr[keep], fnmr[keep]
    return fmr, fnmr
