"""Accuracy benchmark: photo selection (pure) and, marked slow, a real run on a few photos."""

from __future__ import annotations

from pathlib import Path

import pytest

from wajah.benchmarks.accuracy import AccuracyOptions, run_accuracy, select_photos
from wajah.biometric.datasets import LabeledPhoto


def test_select_photos_takes_priority_identities_first() -> None:
    photos = [LabeledPhoto(Path(f"{name}/{i}.jpg"), name) for name in "abcd" for i in range(2)]
    chosen = select_photos(photos, 2, priority={"c"})
    assert {p.identity for p in chosen} == {"a", "c"}
    assert len(chosen) == 4
    assert select_photos(photos, None, set()) == photos


@pytest.mark.slow
def test_accuracy_run_on_real_photos(faces_dir: Path, tmp_path: Path) -> None:
    options = AccuracyOptions(
        data_dir=faces_dir / "facenet_pytorch", cache_dir=tmp_path, bootstrap_replicates=20
    )
    results, markdown, plots = run_accuracy(options)
    assert results["acquisition"]["photos"] >= 5
    assert results["wajah"]["genuine_trials"] > 0
    assert 0.0 <= results["wajah"]["eer"] <= 0.5
    assert "Southeast Asian" in markdown and set(plots) == {"scores", "det"}
    # Second run: every photo comes from the cache.
    again, _, _ = run_accuracy(options)
    assert again["timing"]["computed"] == 0
