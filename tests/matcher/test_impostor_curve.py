from __future__ import annotations

import numpy as np
import pytest

from wajah.matcher.impostor_curve import (
    ImpostorCurve,
    fpir_from_mosip_target,
    fpir_of_fmr,
    mosip_target_from_fpir,
    per_comparison_fmr,
)
from wajah.matcher.thresholds import default_thresholds


@pytest.fixture(scope="module")
def impostor_scores() -> np.ndarray:
    # Shaped like dlib cosine impostor scores (mean ~0.72, sd ~0.05); the curve is statistics
    # over whatever scores it is given, so a seeded sample tests it exactly.
    return np.random.default_rng(7).normal(0.72, 0.05, 400_000).astype(np.float32)


def test_mosip_target_is_minus_ten_log10_fpir() -> None:
    assert fpir_from_mosip_target(30) == pytest.approx(1e-3)
    assert fpir_from_mosip_target(20) == pytest.approx(1e-2)
    assert mosip_target_from_fpir(1e-2) == pytest.approx(20.0)
    with pytest.raises(ValueError):
        fpir_from_mosip_target(-1)


def test_per_comparison_fmr_inverts_fpir() -> None:
    for gallery in (1, 10, 1000, 1_000_000):
        fmr = per_comparison_fmr(0.01, gallery)
        assert fpir_of_fmr(fmr, gallery) == pytest.approx(0.01, rel=1e-9)
    assert per_comparison_fmr(0.01, 1) == pytest.approx(0.01)
    assert per_comparison_fmr(0.01, 1000) == pytest.approx(1.00503e-5, rel=1e-4)


def test_curve_reads_back_the_measured_false_match_rate(impostor_scores: np.ndarray) -> None:
    curve = ImpostorCurve.from_scores(impostor_scores)
    ordered = np.sort(impostor_scores.astype(np.float64))
    for target in (1e-1, 1e-2, 1e-3, 1e-4):
        threshold, measurable = curve.threshold_for_false_match_rate(target)
        assert measurable
        measured = float((ordered >= threshold).mean())
        # Interpolation between log-spaced points: within 15 % of the target, never above it
        # by more than that.
        assert measured == pytest.approx(target, rel=0.15), (target, measured)
        assert curve.false_match_rate(threshold) == pytest.approx(measured, rel=0.15)


def test_threshold_rises_with_the_gallery(impostor_scores: np.ndarray) -> None:
    curve = ImpostorCurve.from_scores(impostor_scores)
    thresholds = [curve.threshold_for_fpir(0.01, size)[0] for size in (1, 10, 100, 1000)]
    assert thresholds == sorted(thresholds) and len(set(thresholds)) == 4
    # Beyond one false match in the trials the target cannot be shown.
    threshold, measurable = curve.threshold_for_fpir(0.01, 10_000_000)
    assert not measurable and threshold > float(impostor_scores.max())
    assert curve.false_match_rate(threshold) <= 3 / impostor_scores.size


def test_fpir_of_a_score_is_measured_on_simulated_searches(impostor_scores: np.ndarray) -> None:
    # 400 searches of a person not enrolled over a gallery of 1,000: the share whose best
    # impostor score is >= s is the FPIR the curve attributes to s.
    curve = ImpostorCurve.from_scores(impostor_scores)
    searches = impostor_scores[: 400 * 1000].reshape(400, 1000).max(axis=1)
    for score in np.quantile(searches, [0.5, 0.8, 0.95]):
        observed = float((searches >= score).mean())
        assert curve.fpir_at(float(score), 1000) == pytest.approx(observed, abs=0.06)


def test_curve_round_trips_and_refuses_bad_points(impostor_scores: np.ndarray) -> None:
    curve = ImpostorCurve.from_scores(impostor_scores)
    assert ImpostorCurve.from_dict(curve.to_dict()) == curve
    with pytest.raises(ValueError):
        ImpostorCurve((0.9, 0.8), (0.1, 0.01), 100)  # scores must ascend


def test_shipped_calibration_scales_the_identification_threshold() -> None:
    thresholds = default_thresholds()
    assert thresholds.impostor_curve is not None and thresholds.identify_fpir is not None
    small = thresholds.identification_point(10)
    large = thresholds.identification_point(1000)
    assert small.scaled and large.scaled
    assert small.threshold < large.threshold
    # At the calibration's own gallery size the scaled point is the written one.
    assert large.threshold == pytest.approx(thresholds.identify.threshold, abs=2e-3)
    assert thresholds.identification_point(1000, fpir=0.1).threshold < large.threshold


def test_duplicate_threshold_rises_with_a_large_gallery_but_never_falls() -> None:
    thresholds = default_thresholds()
    assert thresholds.duplicate_point(10).threshold == thresholds.duplicate.threshold
    assert not thresholds.duplicate_point(10).scaled
    large = thresholds.duplicate_point(100_000)
    assert large.scaled and large.threshold > thresholds.duplicate.threshold
