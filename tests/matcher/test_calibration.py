from __future__ import annotations

import numpy as np
import pytest

from wajah.matcher.calibration import ScoreCalibration

# 1,000 impostor scores 0.000, 0.001, ..., 0.999 and 100 genuine scores 0.900, ..., 0.999:
# every rate below can be counted by hand.
IMPOSTORS = np.arange(1_000) / 1_000
GENUINE = 0.9 + np.arange(100) / 1_000


def test_rates_at_a_threshold_count_scores_on_each_side() -> None:
    calibration = ScoreCalibration(GENUINE, IMPOSTORS)
    assert float(calibration.false_match_rate(0.99)) == pytest.approx(10 / 1_000)  # 0.990..0.999
    assert float(calibration.false_non_match_rate(0.95)) == pytest.approx(50 / 100)  # 0.900..0.949
    np.testing.assert_allclose(calibration.false_match_rate(np.array([-1.0, 2.0])), [1.0, 0.0])


def test_threshold_for_a_target_false_match_rate_is_the_smallest_that_meets_it() -> None:
    calibration = ScoreCalibration(GENUINE, IMPOSTORS)
    choice = calibration.threshold_for_false_match_rate(0.01)
    # 10 false matches allowed: just above the 11th highest impostor score (0.989)
    assert choice.threshold == pytest.approx(0.989) and choice.threshold > 0.989
    assert choice.false_match_rate == pytest.approx(0.01)
    assert choice.false_non_match_rate == pytest.approx(0.9)  # 0.900..0.989 are below
    assert choice.measurable
    next_lower = np.nextafter(np.float32(choice.threshold), np.float32(0))  # thresholds: float32
    assert float(calibration.false_match_rate(float(next_lower))) > 0.01


def test_zero_observed_false_matches_are_reported_with_the_rule_of_three() -> None:
    calibration = ScoreCalibration(GENUINE, IMPOSTORS)
    choice = calibration.threshold_for_false_match_rate(1e-4)  # below 3 / 1,000
    assert choice.threshold > 0.999 and choice.false_match_rate == 0.0
    assert choice.false_match_rate_upper_bound == pytest.approx(3 / 1_000)
    assert not choice.measurable
    assert "rule of three" in choice.note and "30,000" in choice.note


def test_equal_error_rate_where_the_two_rates_cross() -> None:
    genuine = np.array([0.6, 0.7, 0.8, 0.9])
    impostor = np.array([0.1, 0.2, 0.3, 0.65])
    eer = ScoreCalibration(genuine, impostor).equal_error_rate()
    assert eer.rate == pytest.approx(0.25)  # one error of four on each side
    assert 0.6 < eer.threshold <= 0.65
    separated = ScoreCalibration(np.array([0.9, 0.95]), np.array([0.1, 0.2]))
    assert separated.equal_error_rate().rate == 0.0


def test_det_curve_is_monotone_and_spans_the_measurable_range() -> None:
    rng = np.random.default_rng(0)
    calibration = ScoreCalibration(rng.normal(0.9, 0.03, 5_000), rng.normal(0.55, 0.08, 50_000))
    curve = calibration.det_curve(points=100)
    assert np.all(np.diff(curve.thresholds) > 0)
    assert np.all(np.diff(curve.false_match_rates) <= 0)
    assert np.all(np.diff(curve.false_non_match_rates) >= 0)
    assert curve.false_match_rates.min() == 0.0 and curve.false_match_rates.max() >= 0.99


def test_duplicate_threshold_divides_the_target_by_the_gallery_size() -> None:
    calibration = ScoreCalibration(GENUINE, IMPOSTORS)
    # FPIR 0.1 over 10 subjects: FMR = 1 - 0.9 ** (1 / 10) = 0.01048 -> 10 of 1,000 allowed
    choice = calibration.duplicate_threshold(0.1, gallery_size=10)
    assert choice.target_false_match_rate == pytest.approx(1 - 0.9**0.1)
    assert choice.threshold == calibration.threshold_for_false_match_rate(0.01).threshold
    big = calibration.duplicate_threshold(0.01, gallery_size=1_000_000)
    assert not big.measurable and big.false_match_rate == 0.0
    assert big.threshold > IMPOSTORS.max()
    assert "1,000,000 subjects" in big.note


def test_ten_million_impostor_scores_give_an_exact_threshold() -> None:
    rng = np.random.default_rng(1)
    impostor = rng.normal(0.55, 0.08, 10_000_000).astype(np.float32)
    genuine = rng.normal(0.9, 0.03, 100_000).astype(np.float32)
    calibration = ScoreCalibration(genuine, impostor)
    choice = calibration.threshold_for_false_match_rate(1e-5)
    calibration.equal_error_rate()
    calibration.det_curve()
    assert choice.false_match_rate <= 1e-5
    assert float(np.mean(impostor >= choice.threshold)) <= 1e-5  # checked by brute force


def test_empty_or_invalid_scores_are_refused() -> None:
    with pytest.raises(ValueError):
        ScoreCalibration(np.array([]), IMPOSTORS)
    with pytest.raises(ValueError):
        ScoreCalibration(GENUINE, np.array([0.1, np.nan]))
    with pytest.raises(ValueError):
        ScoreCalibration(GENUINE, IMPOSTORS).threshold_for_false_match_rate(1.5)
