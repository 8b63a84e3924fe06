"""``wajah bench import``: the bulk import's throughput beside its face work alone (issue 14).

Each round imports the same ``photos`` LFW photos (the first photo of the first identities in
alphabetical order, one subject each) into a fresh data directory through
:func:`~wajah.enrollment.bulk_import.run_import`, the scan profile and the duplicate search on:
what ``wajah import`` does once its workers have loaded their models (the clock starts after the
warm-up, as the import's own ``elapsed_s`` does).

The baseline, in the same round and on the same pool: the face work alone (decode, detection,
landmarks, quality and template for every photo, as many in flight as the import keeps), with
nothing stored or searched. The ratio of the two says what the store, the duplicate search and
the commits cost on top of the face engine. Baseline and import alternate, so a change in the
machine's load falls on both alike; the load average is recorded beside each run.
"""

from __future__ import annotations

import os
import statistics
import tempfile
import time
from collections.abc import Callable
from concurrent.futures import FIRST_COMPLETED, Future, wait
from pathlib import Path
from typing import Any, Final

from wajah.api.runtime import build_service
from wajah.api.settings import Settings
from wajah.benchmarks.report import markdown_table
from wajah.biometric.quality import PROFILES
from wajah.enrollment.bulk_import import ImportItem, name_from_ref, run_import
from wajah.enrollment.service import IdentityService

TARGET_PHOTOS_PER_S: Final = 25.0  # issue 14: import >= 25 photos/s on 2 cores


def choose(faces: Path, count: int) -> list[ImportItem]:
    """The first photo of each of the first ``count`` LFW identities (one subject each)."""
    root = faces / "lfw_deepfunneled"
    items: list[ImportItem] = []
    for folder in sorted(p for p in root.iterdir() if p.is_dir()):
        photos = sorted(folder.glob("*.jpg"))
        if photos:
            items.append(ImportItem(photos[0], folder.name, name_from_ref(folder.name)))
            if len(items) == count:
                break
    if len(items) < count:
        raise ValueError(f"{root} holds {len(items)} identities, fewer than {count}")
    return items


def face_work_only(service: IdentityService, images: list[bytes]) -> float:
    """Photos per second through the pool alone, keeping as many in flight as the import."""
    window = max(1, service.face_pool_config.max_pending)
    profile = PROFILES["scan"]
    pending: set[Future[Any]] = set()
    start = time.perf_counter()
    for image in images:
        while len(pending) >= window:
            done, pending = wait(pending, return_when=FIRST_COMPLETED)
            for future in done:
                future.exception()  # a photo without a face is face work all the same
        pending.add(service.submit_face_work(image, profile))
    for future in wait(pending).done:
        future.exception()
    return len(images) / (time.perf_counter() - start)


def one_round(items: list[ImportItem], images: list[bytes], workers: int) -> dict[str, Any]:
    load_before = os.getloadavg()[0]
    with tempfile.TemporaryDirectory(prefix="wajah-import-bench-") as scratch:
        service, _ = build_service(Settings(data_dir=Path(scratch) / "data"), workers=workers)
        try:
            service.warm_up()
            baseline = face_work_only(service, images)
            result = run_import(service, items)
        finally:
            service.close()
    summary = result.summary
    return {
        "face_work_photos_per_s": round(baseline, 2),
        "import_photos_per_s": round(summary.photos_per_s, 2),
        "import_elapsed_s": round(summary.elapsed_s, 2),
        "import_vs_face_work": round(summary.photos_per_s / baseline, 3),
        "counts": summary.counts,
        "load_average_1m_before": round(load_before, 2),
        "load_average_1m_after": round(os.getloadavg()[0], 2),
    }


def run(
    faces: Path,
    photos: int,
    rounds: int,
    workers: int,
    step: Callable[[str], None] = lambda text: None,
) -> dict[str, Any]:
    items = choose(faces, photos)
    images = [item.path.read_bytes() for item in items]
    runs = []
    for number in range(rounds):
        step(f"round {number + 1}/{rounds}: face work alone, then the import")
        runs.append(one_round(items, images, workers))
    imports = [r["import_photos_per_s"] for r in runs]
    return {
        "photos": len(items),
        "workers": workers,
        "profile": "scan",
        "rounds": rounds,
        "target_photos_per_s": TARGET_PHOTOS_PER_S,
        "import_photos_per_s_median": round(statistics.median(imports), 2),
        "face_work_photos_per_s_median": round(
            statistics.median(r["face_work_photos_per_s"] for r in runs), 2
        ),
        "import_vs_face_work_median": round(
            statistics.median(r["import_vs_face_work"] for r in runs), 3
        ),
        "target_met": statistics.median(imports) >= TARGET_PHOTOS_PER_S,
        "runs": runs,
    }


def markdown(results: dict[str, Any]) -> str:
    rows = [
        [
            str(number),
            f"{r['face_work_photos_per_s']:.1f}",
            f"{r['import_photos_per_s']:.1f}",
            f"{r['import_vs_face_work']:.2f}x",
            f"{r['load_average_1m_before']:.1f} → {r['load_average_1m_after']:.1f}",
            ", ".join(f"{k} {v}" for k, v in r["counts"].items() if v),
        ]
        for number, r in enumerate(results["runs"], start=1)
    ]
    met = "met" if results["target_met"] else "NOT met"
    return (
        f"`run_import` of {results['photos']} LFW photos (one subject each, "
        f"{results['profile']} profile, duplicate search on) with {results['workers']} face "
        "workers into a fresh database each round; baseline in the same round: the same photos "
        "through the same pool with nothing stored or searched.\n\n"
        + markdown_table(
            ["round", "face work alone, photos/s", "import, photos/s", "ratio", "load", "outcomes"],
            rows,
        )
        + f"\n\nMedian import {results['import_photos_per_s_median']:.1f} photos/s "
        f"({results['import_vs_face_work_median']:.2f}x the face work alone); target >= "
        f"{results['target_photos_per_s']:g} photos/s on 2 cores: {met}.\n"
    )
