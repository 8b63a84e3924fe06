"""The cohort-normalisation and fusion study's measures on hand-made templates."""

from __future__ import annotations

import numpy as np

from wajah.benchmarks.score_normalisation import (
    fused_scores,
    mixed_threshold,
    s_norm,
    split_development,
)
from wajah.matcher.impostor_curve import ImpostorCurve


def unit_rows(count: int, seed: int) -> np.ndarray:
    vectors = np.random.default_rng(seed).normal(size=(count, 128))
    return np.asarray(vectors / np.linalg.norm(vectors, axis=1, keepdims=True), np.float32)


def test_s_norm_is_the_mean_of_the_two_z_scores_against_the_top_k_cohort() -> None:
    cohort, probe, enrolled = unit_rows(30, 1), unit_rows(1, 2), unit_rows(1, 3)
    k = 5
    raw = float(probe[0] @ enrolled[0])
    top_p = np.sort(cohort @ probe[0])[-k:]
    top_g = np.sort(cohort @ enrolled[0])[-k:]
    expected = 0.5 * ((raw - top_p.mean()) / top_p.std() + (raw - top_g.mean()) / top_g.std())
    assert np.isclose(s_norm(cohort, k)(probe, enrolled)[0, 0], expected)


def test_the_cohort_half_and_the_calibration_half_share_no_identity() -> None:
    identities = np.array(["a", "b", "a", "c", "d", "b", "e"])
    cohort = split_development(identities)
    assert not set(identities[cohort]) & set(identities[~cohort])
    assert set(identities[cohort]) == {"a", "c", "e"}


def test_template_average_can_beat_both_of_its_templates() -> None:
    # Probe halfway between a subject's two photos: each scores cos 30, their average 1.
    def at(degrees: float) -> np.ndarray:
        vector = np.zeros((1, 128), dtype=np.float32)
        vector[0, 0], vector[0, 1] = np.cos(np.radians(degrees)), np.sin(np.radians(degrees))
        return vector

    rules = fused_scores(at(30), at(0), at(60))
    assert np.isclose(rules["max of two"][0, 0], np.cos(np.radians(30)))
    assert np.isclose(rules["template average"][0, 0], 1.0)


def test_mixed_threshold_meets_the_gallery_fpir_from_both_curves() -> None:
    impostors = np.random.default_rng(4).normal(0.8, 0.03, size=200_000)
    single = ImpostorCurve.from_scores(impostors)
    fused = ImpostorCurve.from_scores(impostors + 0.01)  # fused subjects score higher
    alone = mixed_threshold(single, 0, single, 300)
    mixed = mixed_threshold(fused, 100, single, 200)
    assert mixed > alone  # the fused subjects' heavier tail asks for a stricter threshold
    fmr_fused, fmr_single = fused.false_match_rate(mixed), single.false_match_rate(mixed)
    fpir = 1 - (1 - fmr_fused) ** 100 * (1 - fmr_single) ** 200
    assert abs(fpir - 0.01) < 1e-3
