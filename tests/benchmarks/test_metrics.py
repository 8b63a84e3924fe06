"""The error-rate arithmetic on data small enough to check by hand."""

from __future__ import annotations

import numpy as np
import pytest

from wajah.benchmarks import metrics
from wajah.matcher import calibration

GENUINE = [0.9, 0.8, 0.7, 0.4]
IMPOSTOR = [0.1, 0.2, 0.3, 0.6]


def test_eer_where_the_rates_cross() -> None:
    scores = calibration.ScoreSet.build(np.array(GENUINE), np.array(IMPOSTOR))
    eer = calibration.equal_error_rate(scores)
    # At t = 0.6: one genuine (0.4) below, one impostor (0.6) at or above -> 1/4 each.
    assert eer.rate == pytest.approx(0.25)
    assert eer.threshold == pytest.approx(0.6)


def test_fnmr_at_fmr_takes_the_lowest_threshold_within_the_target() -> None:
    scores = calibration.ScoreSet.build(np.array(GENUINE), np.array(IMPOSTOR))
    zero = calibration.fnmr_at_fmr(scores, 0.0)
    assert zero.threshold == pytest.approx(0.7)  # just above the highest impostor
    assert zero.fmr == 0.0
    assert zero.fnmr == pytest.approx(0.25)
    quarter = calibration.fnmr_at_fmr(scores, 0.25)
    assert quarter.threshold == pytest.approx(0.4)
    assert quarter.false_matches == 1
    assert quarter.false_non_matches == 0
    assert quarter.fnmr_text().startswith("< 0.75 (0/4")
    assert not quarter.resolvable  # 3/4 impostor trials cannot resolve 0.25


def test_rates_at_fixed_threshold() -> None:
    scores = calibration.ScoreSet.build(np.array(GENUINE), np.array(IMPOSTOR))
    assert calibration.rates_at_threshold(scores, 0.5) == (1, 1)


def test_rule_of_three() -> None:
    assert calibration.rule_of_three(300) == pytest.approx(0.01)
    assert calibration.format_rate(0, 300) == "< 0.01 (0/300, rule of three)"
    assert calibration.format_rate(3, 300) == "0.01 (3/300)"
    point = calibration.ErrorRatesAtTarget(1e-3, 0.5, 0.0, 0.1, 0, 10, 3000, 100)
    assert point.resolvable
    assert not calibration.ErrorRatesAtTarget(1e-4, 0.5, 0.0, 0.1, 0, 10, 3000, 100).resolvable


def test_weights_equal_repeating_the_comparisons() -> None:
    scores = calibration.ScoreSet.build(np.array(GENUINE), np.array(IMPOSTOR))
    weighted_fmr, weighted_fnmr = scores.rates(np.array([2.0, 1, 1, 1]), np.array([1.0, 1, 1, 3]))
    # genuine 0.4 (weight 2 after sorting puts it first) and impostor 0.6 (weight 3, last).
    repeated = calibration.ScoreSet.build(
        np.array([*GENUINE, 0.4]), np.array([*IMPOSTOR, 0.6, 0.6])
    )
    fmr, fnmr = repeated.rates()
    assert np.allclose(weighted_fmr, fmr)
    assert np.allclose(weighted_fnmr, fnmr)


def _subjects_scores(
    genuine_by_subject: list[list[float]], impostor: float
) -> calibration.ScoreSet:
    genuine, genuine_subject, impostors, pairs = [], [], [], []
    count = len(genuine_by_subject)
    for subject, values in enumerate(genuine_by_subject):
        genuine += values
        genuine_subject += [subject] * len(values)
    for a in range(count):
        for b in range(a + 1, count):
            impostors += [impostor, impostor - 0.5]
            pairs += [(a, b), (a, b)]
    return calibration.ScoreSet.build(
        np.array(genuine), np.array(impostors), np.array(genuine_subject), np.array(pairs)
    )


def test_subject_bootstrap_is_degenerate_for_identical_subjects() -> None:
    scores = _subjects_scores([[0.9, 0.4]] * 4, impostor=0.6)
    eer = calibration.equal_error_rate(scores).rate
    intervals = calibration.subject_bootstrap(scores, 4, [0.1], replicates=50)
    assert intervals["eer"].low == pytest.approx(eer)
    assert intervals["eer"].high == pytest.approx(eer)


def test_subject_bootstrap_widens_when_subjects_differ() -> None:
    scores = _subjects_scores([[0.95, 0.9], [0.3, 0.2], [0.9, 0.85], [0.35, 0.25]], impostor=0.5)
    eer = calibration.equal_error_rate(scores).rate
    intervals = calibration.subject_bootstrap(scores, 4, [0.1], replicates=200, seed=1)
    assert intervals["eer"].low < intervals["eer"].high
    assert intervals["eer"].low <= eer <= intervals["eer"].high


def test_open_set_identification_by_hand() -> None:
    result = metrics.open_set_identification(
        mated_scores=np.array([[0.9, 0.1], [0.3, 0.5]]),
        mated_column=np.array([0, 0]),
        non_mated_scores=np.array([[0.2, 0.4], [0.6, 0.1]]),
        fpir_targets=[0.5],
    )
    assert result.rank1_hits == 1 and result.rank1_rate == 0.5
    point = result.points[0]
    # FPIR(0.4) = 1; just above 0.4 only the 0.6 search is a false positive: FPIR 0.5.
    assert point.threshold > 0.4
    assert point.threshold == pytest.approx(0.4)
    assert point.fpir == 0.5
    assert point.fnir == 0.5  # the second search's mate is not ranked first
    strict = metrics.open_set_identification(
        np.array([[0.9, 0.1]]), np.array([0]), np.array([[0.2, 0.4], [0.6, 0.1]]), [0.0]
    ).points[0]
    assert strict.fpir == 0.0 and strict.fnir == 0.0  # a threshold just above 0.6 still hits


def test_lfw_ten_fold_on_separable_scores() -> None:
    same = np.array([True] * 20 + [False] * 20)
    scores = np.where(same, 0.8, 0.2) + np.linspace(0, 0.01, 40)
    result = metrics.lfw_ten_fold(scores, same)
    assert len(result.fold_accuracies) == 10
    assert result.mean == 1.0
    # A pair without a template (-inf) is always decided "different".
    scores[0] = -np.inf
    assert metrics.lfw_ten_fold(scores, same).mean == pytest.approx(0.975)


def test_det_points_are_monotone() -> None:
    rng = np.random.default_rng(0)
    scores = calibration.ScoreSet.build(rng.normal(1, 1, 500), rng.normal(-1, 1, 5000))
    fmr, fnmr = calibration.det_points(scores, max_points=100)
    assert len(fmr) <= 100
    assert np.all(np.diff(fmr) <= 0) and np.all(np.diff(fnmr) >= 0)


def test_agrees_with_matcher_calibration_on_the_same_scores() -> None:
    calibration = pytest.importorskip("wajah.matcher.calibration")
    rng = np.random.default_rng(11)
    genuine, impostor = rng.normal(0.9, 0.03, 3000), rng.normal(0.8, 0.04, 30000)
    scores = calibration.ScoreSet.build(genuine, impostor)
    theirs = calibration.ScoreCalibration(genuine, impostor)
    for target in (1e-2, 1e-3):
        point = calibration.fnmr_at_fmr(scores, target)
        assert float(theirs.false_match_rate(point.threshold)) == pytest.approx(point.fmr)
        assert float(theirs.false_non_match_rate(point.threshold)) == pytest.approx(point.fnmr)
    assert theirs.equal_error_rate().rate == pytest.approx(
        calibration.equal_error_rate(scores).rate, abs=2e-3
    )
