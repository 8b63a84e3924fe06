from __future__ import annotations

import json
from pathlib import Path

import pytest

from biometric.templates import MODEL_TAG
from matcher.decision import OperatingPoint
from matcher.errors import ThresholdsError
from matcher.thresholds import (
    Thresholds,
    default_thresholds,
    load_thresholds,
    save_thresholds,
)


def test_shipped_defaults_are_provisional_and_follow_dlibs_distance_threshold() -> None:
    thresholds = default_thresholds(MODEL_TAG)
    assert thresholds.calibrated_on.startswith("PROVISIONAL")
    # dlib's Euclidean 0.6 on unit vectors: similarity = 1 - 0.6^2 / 2
    assert thresholds.verify.threshold == pytest.approx(1 - 0.6**2 / 2)
    assert (
        thresholds.verify.threshold < thresholds.identify.threshold < thresholds.duplicate.threshold
    )


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
