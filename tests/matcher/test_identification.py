from __future__ import annotations

import numpy as np
import pytest

from wajah.matcher.decision import OperatingPoint
from wajah.matcher.identification import (
    IdentifyDecision,
    IdentifyMode,
    ScoredSubject,
    identification_result,
)
from wajah.matcher.impostor_curve import ImpostorCurve
from wajah.matcher.thresholds import Thresholds

FIXED = OperatingPoint(0.95, 1e-5, 0.3, "fixed")


@pytest.fixture(scope="module")
def thresholds() -> Thresholds:
    scores = np.random.default_rng(3).normal(0.72, 0.05, 200_000)
    return Thresholds(
        FIXED,
        FIXED,
        FIXED,
        "m",
        "test",
        "2026-01-01",
        impostor_curve=ImpostorCurve.from_scores(scores),
        identify_fpir=0.01,
        duplicate_fpir=0.1,
        gallery_size=1000,
    )


def found(*scores: float) -> list[ScoredSubject]:
    return [ScoredSubject(subject_id=i + 1, score=s) for i, s in enumerate(scores)]


def test_investigation_always_ranks_the_top_k(thresholds: Thresholds) -> None:
    point = thresholds.identification_point(500)
    below = point.threshold - 0.02
    result = identification_result(
        found(below - 0.01, below), point, thresholds.impostor_curve, IdentifyMode.INVESTIGATION
    )
    assert result.decision is IdentifyDecision.NOT_IDENTIFIED
    assert [c.subject_id for c in result.candidates] == [2, 1]  # re-ranked best first
    assert [c.rank for c in result.candidates] == [1, 2]
    assert not any(c.clears_threshold for c in result.candidates)
    assert "possible candidates for review" in result.statement
    rates = [c.false_positive_identification_rate for c in result.candidates]
    assert rates[0] is not None and rates[1] is not None
    assert point.target_fpir is not None
    assert rates[0] > point.target_fpir  # below the threshold: more common among strangers
    assert rates[0] < rates[1]  # the higher score is the rarer one


def test_identification_lists_only_candidates_that_clear(thresholds: Thresholds) -> None:
    point = thresholds.identification_point(500)
    scores = (point.threshold + 0.01, point.threshold - 0.05)
    result = identification_result(
        found(*scores), point, thresholds.impostor_curve, IdentifyMode.IDENTIFICATION
    )
    assert result.decision is IdentifyDecision.IDENTIFIED
    assert [c.subject_id for c in result.candidates] == [1]
    rate = result.candidates[0].false_positive_identification_rate
    assert rate is not None and point.target_fpir is not None and rate <= point.target_fpir
    nothing = identification_result(
        found(scores[1]), point, thresholds.impostor_curve, IdentifyMode.IDENTIFICATION
    )
    assert nothing.decision is IdentifyDecision.NOT_IDENTIFIED and nothing.candidates == ()


def test_a_poor_probe_asks_for_a_recapture_not_a_miss(thresholds: Thresholds) -> None:
    point = thresholds.identification_point(500)
    low = identification_result(
        found(point.threshold - 0.05),
        point,
        thresholds.impostor_curve,
        probe_usable=False,
        probe_quality_reasons=["too dark"],
    )
    assert low.decision is IdentifyDecision.INCONCLUSIVE
    assert low.reasons == ("Photo quality: too dark.",)
    assert len(low.candidates) == 1  # still listed for review
    clear = identification_result(
        found(point.threshold + 0.01), point, thresholds.impostor_curve, probe_usable=False
    )
    assert clear.decision is IdentifyDecision.IDENTIFIED


def test_a_file_without_a_curve_keeps_its_fixed_threshold() -> None:
    old = Thresholds(FIXED, FIXED, FIXED, "m", "old", "2025-01-01")
    point = old.identification_point(50)
    assert not point.scaled and point.threshold == FIXED.threshold
    assert point.target_fpir == pytest.approx(1 - (1 - 1e-5) ** 50)  # what the FMR implies
    unmeasured = OperatingPoint(0.95, None, None, "no rate")
    blind = Thresholds(unmeasured, unmeasured, unmeasured, "m", "old", "2025-01-01")
    nothing = identification_result(found(0.9), blind.identification_point(50), None)
    assert nothing.point.target_fpir is None and nothing.point.target_fpir_db is None
    assert "fixed threshold" in nothing.statement
    result = identification_result(found(0.96, 0.90), point, None)
    assert [c.clears_threshold for c in result.candidates] == [True, False]
    assert result.candidates[1].false_positive_identification_rate is None
