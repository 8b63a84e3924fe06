"""The import benchmark on a few real photos: every photo is accounted for in the import, the
baseline ran over the same photos, and the report states the target."""

from __future__ import annotations

from pathlib import Path

from wajah.benchmarks.import_throughput import choose, markdown, run


def test_a_small_round_imports_every_photo_beside_its_baseline(faces_dir: Path) -> None:
    results = run(faces_dir, photos=12, rounds=1, workers=1)
    (only,) = results["runs"]
    assert sum(only["counts"].values()) == 12
    assert only["counts"]["enrolled"] >= 8  # LFW photos: most pass the scan profile
    assert only["face_work_photos_per_s"] > 0 and only["import_photos_per_s"] > 0
    expected = only["import_photos_per_s"] / only["face_work_photos_per_s"]
    assert abs(only["import_vs_face_work"] - expected) <= 0.01 * expected + 0.001
    assert "target >= 25 photos/s" in markdown(results)


def test_choose_takes_one_photo_of_each_identity_in_order(faces_dir: Path) -> None:
    items = choose(faces_dir, 5)
    refs = [item.subject_ref for item in items]
    assert refs == sorted(refs) and len(set(refs)) == 5
    assert all(item.path.parent.name == item.subject_ref for item in items)
