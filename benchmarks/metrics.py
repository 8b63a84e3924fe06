"""Biometric error-rate arithmetic in the terms of ISO/IEC 19795-1:2021, pure numpy.

Scores are "higher is more alike" (a cosine similarity; for a distance pass its negative). A
comparison is a *match decision* when ``score >= threshold``.

* FMR(t)  = weighted share of impostor scores >= t   (false match rate)
* FNMR(t) = weighted share of genuine scores  <  t   (false non-match rate)

Weights let the subject bootstrap (Bolle, Ratha & Pankanti 2004, "Error analysis of pattern
recognition systems -- the subsets bootstrap") reuse one sort: resampling subjects with
replacement is the same as weighting each comparison by how often its subject(s) were drawn.
Where no error is seen in N trials the rate is reported as "< 3/N", the rule of three, a 95 %
upper bound (Jovanovic & Levy 1997; ISO/IEC 19795-1 clause on zero-error estimates).

matcher/calibration.py did not exist when this was written; if it lands, these functions
should be checked against it on the same scores (tests/benchmarks/test_metrics.py is the place).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

RULE_OF_THREE_CONFIDENCE = 0.95  # 3/N is the 95 % one-sided upper bound for 0 errors in N


def rule_of_three(trials: int) -> float:
    """95 % upper bound of a rate when no error was seen in ``trials`` trials."""
    if trials <= 0:
        return float("nan")
    return 3.0 / trials


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
class EqualErrorRate:
    rate: float  # mean of FMR and FNMR where they are closest
    threshold: float


@dataclass(frozen=True)
class OperatingPoint:
    """FNMR at the lowest threshold whose FMR does not exceed the target."""

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
    fmr, fnmr = scores.rates(genuine_weight, impostor_weight)
    best = int(np.nanargmin(np.abs(fmr - fnmr)))
    return EqualErrorRate(float((fmr[best] + fnmr[best]) / 2.0), float(scores.thresholds[best]))


def _operating_index(fmr: np.ndarray, target_fmr: float) -> int:
    allowed = np.flatnonzero(fmr <= target_fmr)  # FMR falls as the threshold rises
    return int(allowed[0]) if allowed.size else len(fmr) - 1


def fnmr_at_fmr(scores: ScoreSet, target_fmr: float) -> OperatingPoint:
    fmr, fnmr = scores.rates()
    index = _operating_index(fmr, target_fmr)
    threshold = float(scores.thresholds[index])
    return OperatingPoint(
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
        best = int(np.nanargmin(np.abs(fmr - fnmr)))
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


# --- 1:N identification (ISO/IEC 19795-1; NIST FRVT 1:N terms) -----------------------------


@dataclass(frozen=True)
class IdentificationPoint:
    target_fpir: float
    threshold: float
    fpir: float
    fnir: float
    false_positives: int
    non_mated_searches: int
    misses: int
    mated_searches: int

    @property
    def resolvable(self) -> bool:
        return rule_of_three(self.non_mated_searches) <= self.target_fpir


@dataclass(frozen=True)
class IdentificationResult:
    rank1_hits: int
    mated_searches: int
    points: tuple[IdentificationPoint, ...]

    @property
    def rank1_rate(self) -> float:
        return self.rank1_hits / self.mated_searches if self.mated_searches else float("nan")


def open_set_identification(
    mated_scores: np.ndarray,
    mated_column: np.ndarray,
    non_mated_scores: np.ndarray,
    fpir_targets: Sequence[float],
) -> IdentificationResult:
    """Rank-1 rate and FNIR at FPIR targets from full score matrices.

    mated_scores: (M, E) scores of each mated search against every enrolled subject;
    mated_column: (M,) int64 column of the mate; non_mated_scores: (N, E).
    A search "hits" at threshold t when its mate is ranked first AND scores >= t (rank-1
    identification); a non-mated search is a false positive when its best score >= t.
    The threshold for a target FPIR is the lowest one whose FPIR does not exceed it.
    """
    mated_scores = np.asarray(mated_scores, np.float64)
    non_mated_scores = np.asarray(non_mated_scores, np.float64)
    mated_column = np.asarray(mated_column, np.int64)
    mated_count = mated_scores.shape[0]
    mate_score = mated_scores[np.arange(mated_count), mated_column]
    best_other = mated_scores.copy()
    best_other[np.arange(mated_count), mated_column] = -np.inf
    rank1 = (
        mate_score > best_other.max(axis=1)
        if mated_scores.shape[1] > 1
        else np.ones(mated_count, bool)
    )
    hit_scores = np.sort(np.where(rank1, mate_score, -np.inf))  # misses never hit
    non_mated_best = np.sort(non_mated_scores.max(axis=1))
    # Every non-mated best score and the value just above it (FPIR steps down there), so the
    # target can be met by a finite threshold even when it is below 1 / searches.
    candidates = np.unique(np.concatenate([non_mated_best, np.nextafter(non_mated_best, np.inf)]))
    non_mated_count = non_mated_best.shape[0]
    fpir = 1.0 - np.searchsorted(non_mated_best, candidates, side="left") / max(non_mated_count, 1)
    points = []
    for target in fpir_targets:
        allowed = np.flatnonzero(fpir <= target)
        index = int(allowed[0]) if allowed.size else len(candidates) - 1
        threshold = float(candidates[index])
        misses = int(np.searchsorted(hit_scores, threshold, side="left"))
        false_positives = int(
            non_mated_count - np.searchsorted(non_mated_best, threshold, side="left")
        )
        points.append(
            IdentificationPoint(
                target_fpir=target,
                threshold=threshold,
                fpir=false_positives / max(non_mated_count, 1),
                fnir=misses / max(mated_count, 1),
                false_positives=false_positives,
                non_mated_searches=non_mated_count,
                misses=misses,
                mated_searches=mated_count,
            )
        )
    return IdentificationResult(int(rank1.sum()), mated_count, tuple(points))


# --- LFW protocol ----------------------------------------------------------------------------


@dataclass(frozen=True)
class TenFoldResult:
    fold_accuracies: tuple[float, ...]
    fold_thresholds: tuple[float, ...]

    @property
    def mean(self) -> float:
        return float(np.mean(self.fold_accuracies))

    @property
    def std(self) -> float:
        return float(np.std(self.fold_accuracies))


def best_threshold(scores: np.ndarray, same: np.ndarray) -> float:
    """The threshold with the highest accuracy (match when score >= t); midpoints between
    neighbouring distinct scores, so the choice does not sit on a training score."""
    values = np.unique(scores[np.isfinite(scores)])
    if values.size == 0:
        return 0.0
    candidates = np.concatenate(
        [[values[0] - 1e-6], (values[1:] + values[:-1]) / 2, [values[-1] + 1e-6]]
    )
    accuracy = [np.mean((scores >= t) == same) for t in candidates]
    return float(candidates[int(np.argmax(accuracy))])


def lfw_ten_fold(scores: np.ndarray, same: np.ndarray, folds: int = 10) -> TenFoldResult:
    """LFW "unrestricted" style accuracy: the threshold for each fold is chosen on the other
    folds. Pairs are dealt to folds round-robin within each class (a pairs file lists the
    matched pairs first), so every fold has both kinds. A score of -inf (no template) always
    decides "different"."""
    scores = np.asarray(scores, np.float64)
    same = np.asarray(same, bool)
    fold_of = np.empty(scores.shape[0], np.int64)
    for label in (True, False):
        members = np.flatnonzero(same == label)
        fold_of[members] = np.arange(members.shape[0]) % folds
    accuracies, thresholds = [], []
    for fold in range(folds):
        test = fold_of == fold
        if not test.any():
            continue
        threshold = best_threshold(scores[~test], same[~test])
        accuracies.append(float(np.mean((scores[test] >= threshold) == same[test])))
        thresholds.append(threshold)
    return TenFoldResult(tuple(accuracies), tuple(thresholds))
