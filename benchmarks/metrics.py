"""The benchmarks' protocols on top of :mod:`wajah.matcher.calibration`'s error rates: open-set 1:N
identification from full score matrices (ISO/IEC 19795-1; NIST FRVT 1:N terms) and the LFW
ten-fold protocol, pure numpy.

Scores are "higher is more alike" (a cosine similarity). The 1:1 error rates (FMR, FNMR, EER,
FNMR at a target FMR, the subject bootstrap, DET points, the rule of three) live in
:mod:`wajah.matcher.calibration`, the one place that defines them for the service and the benchmarks.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from wajah.matcher.calibration import rule_of_three

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
