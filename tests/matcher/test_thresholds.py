from __future__ import annotations

import json
from pathlib import Path

import pytest

from wajah.biometric.templates import MODEL_TAG
from wajah.matcher.decision import OperatingPoint
from wajah.matcher.errors import ThresholdsError
from wajah.matcher.thresholds import (
    Thresholds,
    default_thresholds,
    load_thresholds,
    save_thresholds,
)


def test_shipped_defaults_are_a_calibration_on_the_development_data() -> None:
    thresholds = default_thresholds(MODEL_TAG)
    assert "pairsDevTrain" in thresholds.calibrated_on
    assert "no children" in thresholds.calibrated_on  # the data's limits travel with it
    # 1:1 at FMR 1e-3; the 1:N points are stricter (false positives grow with the gallery)
    assert thresholds.verify.false_match_rate == pytest.approx(1e-3, rel=0.01)
    assert thresholds.verify.threshold < thresholds.duplicate.threshold
    assert thresholds.verify.threshold < thresholds.identify.threshold
    for point in (thresholds.verify, thresholds.identify, thresholds.duplicate):
        assert point.false_non_match_rate is not None  # measured, not assumed


def test_round_trip_and_model_check(tmp_path: Path) -> None:
    point = OperatingPoint(0.9, 1e-4, None, "measured")
    thresholds = Thresholds(point, point, point, "model-x", "set A", "2025-06-01", "n")
    path = tmp_path / "thresholds.json"
    save_thresholds(thresholds, path)
    assert load_thresholds(path, "model-x") == thresholds
    with pytest.raises(ThresholdsError):
        load_thresholds(path, MODEL_TAG)


def test_broken_files_give_a_typed_error(tmp_path: Path) -> None:
    path = tmp_path / "thresholds.json"
    with pytest.raises(ThresholdsError):
        load_thresholds(path)
    path.write_text('{"verify": ')
    with pytest.raises(ThresholdsError):
        load_thresholds(path)
    data = default_thresholds().to_dict()
    data["verify"]["threshold"] = 7
    path.write_text(json.dumps(data))
    with pytest.raises(ThresholdsError):
        load_thresholds(path)
