"""Operating-point evaluation on hand-made templates whose answers are known."""

from __future__ import annotations

import numpy as np

from wajah.benchmarks.operating_points import evaluate
from wajah.matcher.decision import OperatingPoint
from wajah.matcher.photo_calibration import LabeledTemplates
from wajah.matcher.thresholds import Thresholds


def unit(angle_deg: float) -> np.ndarray:
    vector = np.zeros(128, dtype=np.float32)
    vector[0] = np.cos(np.radians(angle_deg))
    vector[1] = np.sin(np.radians(angle_deg))
    return vector


def thresholds(value: float) -> Thresholds:
    point = OperatingPoint(value, None, None, "test")
    return Thresholds(point, point, point, "dlib-resnet-v1", "test", "2026-11-26")


def test_known_answers() -> None:
    # Two people with two photos 10 degrees apart, far from each other; one single photo
    # 5 degrees from person a's first photo (a look-alike newcomer).
    vectors = np.stack([unit(0), unit(10), unit(90), unit(100), unit(5)])
    labels = ("a", "a", "b", "b", "c")
    templates = LabeledTemplates(vectors, labels, ())
    threshold = float(np.cos(np.radians(12)))  # accepts 10 degrees, not 90
    results = evaluate(templates, thresholds(threshold))
    assert results["verification"]["false_non_match"]["count"] == 0
    # the only impostor pairs above the threshold: c with a's two photos (5 degrees each)
    assert results["verification"]["false_match"]["count"] == 2
    assert results["identification"]["rank1"]["count"] == 2
    assert results["identification"]["false_positive_identification"]["count"] == 1
    assert results["duplicate_search"]["detected"]["count"] == 2
    assert results["duplicate_search"]["new_people_flagged"]["count"] == 1
    strict = evaluate(templates, thresholds(float(np.cos(np.radians(3)))))
    assert strict["duplicate_search"]["detected"]["count"] == 0
