from __future__ import annotations

import numpy as np
import pytest

from tests.matcher.synthetic import population
from wajah.matcher.decision import Decision, OperatingPoint, decide, verify

POINT = OperatingPoint(
    threshold=0.82, false_match_rate=0.001, false_non_match_rate=0.02, description="test"
)


def test_the_best_of_the_subjects_samples_decides_a_match() -> None:
    people = population(50, seed=1)
    references = people.samples(np.array([3, 3, 3]), seed=2)
    probe = people.samples(np.array([3]), seed=3)[0]
    result = verify(probe, references, POINT)
    assert result.decision is Decision.MATCH
    assert result.score == pytest.approx(float(np.max(references @ probe)), abs=1e-6)
    assert result.score >= POINT.threshold
    assert (result.threshold, result.false_match_rate) == (0.82, 0.001)
    assert result.templates_compared == 3
    assert f"{result.score:.3f}" in result.reasons[0] and "matches" in result.reasons[0]
    assert "1 in 1,000" in result.reasons[1]


def test_another_persons_probe_does_not_match() -> None:
    people = population(50, seed=1)
    references = people.samples(np.array([3, 3]), seed=2)
    probe = people.samples(np.array([4]), seed=3)[0]
    result = verify(probe, references, POINT)
    assert result.decision is Decision.NO_MATCH
    assert result.score < POINT.threshold
    assert "does not match" in result.reasons[0]


def test_a_probe_of_low_quality_is_inconclusive_whatever_its_score() -> None:
    result = decide(
        np.array([0.99, 0.5]),
        POINT,
        probe_usable=False,
        probe_quality_reasons=["the face is blurred", "the eyes are closed."],
    )
    assert result.decision is Decision.INCONCLUSIVE
    assert result.score == pytest.approx(0.99)
    assert result.reasons[1:3] == (
        "Photo quality: the face is blurred.",
        "Photo quality: the eyes are closed.",
    )
    assert all(reason.endswith(".") for reason in result.reasons)


def test_the_threshold_itself_is_a_match_and_bad_scores_are_refused() -> None:
    assert decide(np.array([0.82]), POINT).decision is Decision.MATCH
    assert decide(np.array([np.nextafter(0.82, 0)]), POINT).decision is Decision.NO_MATCH
    with pytest.raises(ValueError):
        decide(np.array([]), POINT)
    with pytest.raises(ValueError):
        decide(np.array([np.nan]), POINT)
    with pytest.raises(ValueError):
        verify(np.zeros(128, np.float32), np.zeros((2, 64), np.float32), POINT)


def test_operating_points_reject_impossible_values() -> None:
    with pytest.raises(ValueError):
        OperatingPoint(1.5, 0.1, 0.1, "")
    with pytest.raises(ValueError):
        OperatingPoint(0.8, -0.1, 0.1, "")
    assert OperatingPoint.from_dict(POINT.to_dict()) == POINT
