"""Calibration from labeled photos: run the face pipeline over a labeled folder, score every
pair, and choose the operating points that ``wajah calibrate`` writes.

Operating points (see :mod:`wajah.matcher.calibration` for the rate definitions):

* verify (1:1): the smallest threshold with FMR <= ``target_fmr`` (default 1e-3).
* identify (1:N): a gallery of G subjects answers falsely when any of G comparisons matches,
  FPIR ~= G x FMR, so the per-comparison FMR is FPIR / G (default FPIR 1e-2 at G = 10,000).
* duplicate search (enrollment): the same formula with its own FPIR target (default 5e-2):
  a false flag costs a supervisor a look, a missed duplicate identity is the error the search
  exists to catch, so it may flag more often than an officer's search.

Targets below what the impostor trials can show fall back to the strictest measurable
threshold, and the written description says so (rule of three).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Sequence
from concurrent.futures import Future
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from wajah.biometric.datasets import LabeledPhoto
from wajah.biometric.errors import WajahInputError
from wajah.biometric.pool import EnginePool
from wajah.biometric.quality import QualityProfile
from wajah.biometric.templates import MODEL_TAG
from wajah.matcher.calibration import ScoreCalibration, ThresholdChoice
from wajah.matcher.decision import OperatingPoint
from wajah.matcher.thresholds import Thresholds

Progress = Callable[[int, int], None]


@dataclass(frozen=True)
class LabeledTemplates:
    vectors: np.ndarray  # (N, 128) float32, L2-normalised
    identities: tuple[str, ...]  # (N,) identity label of each row
    failures: tuple[tuple[str, str], ...]  # (path, reason) of photos without a template


def embed_labeled_photos(
    photos: Sequence[LabeledPhoto],
    pool: EnginePool,
    profile: QualityProfile,
    progress: Progress | None = None,
    window: int = 8,
) -> LabeledTemplates:
    """Templates of every photo with a face (quality is not enforced: calibration measures
    the matcher, failure to acquire is reported separately)."""
    vectors: list[np.ndarray] = []
    identities: list[str] = []
    failures: list[tuple[str, str]] = []
    in_flight: list[tuple[LabeledPhoto, Future]] = []  # type: ignore[type-arg]
    done = 0

    def collect(entry: tuple[LabeledPhoto, Future]) -> None:  # type: ignore[type-arg]
        nonlocal done
        photo, future = entry
        try:
            processed = future.result()
        except WajahInputError as error:
            failures.append((str(photo.path), f"{type(error).__name__}: {error}"))
        else:
            if processed.template is None:
                failures.append((str(photo.path), "no face found"))
            else:
                vectors.append(processed.template.vector)
                identities.append(photo.identity)
        done += 1
        if progress:
            progress(done, len(photos))

    for photo in photos:
        try:
            data = photo.path.read_bytes()
        except OSError as error:
            failures.append((str(photo.path), f"unreadable: {error.strerror}"))
            done += 1
            continue
        while len(in_flight) >= min(window, pool.config.max_pending):
            collect(in_flight.pop(0))
        in_flight.append((photo, pool.submit(data, profile)))
    while in_flight:
        collect(in_flight.pop(0))
    matrix = (
        np.stack(vectors).astype(np.float32) if vectors else np.zeros((0, 128), dtype=np.float32)
    )
    return LabeledTemplates(matrix, tuple(identities), tuple(failures))


def save_labeled_templates(templates: LabeledTemplates, path: Path) -> None:
    """Keep the (slow to compute) templates of a calibration run for later re-calibration."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("wb") as handle:
        np.savez_compressed(
            handle,
            vectors=templates.vectors,
            identities=np.asarray(templates.identities, dtype=str),
            failures=np.asarray(templates.failures, dtype=str).reshape(-1, 2),
            model_tag=np.asarray(MODEL_TAG),
        )


def load_labeled_templates(path: Path) -> LabeledTemplates:
    with np.load(path, allow_pickle=False) as data:
        if str(data["model_tag"]) != MODEL_TAG:
            raise WajahInputError(f"{path} holds {data['model_tag']} templates, not {MODEL_TAG}")
        failures = tuple((str(a), str(b)) for a, b in data["failures"])
        return LabeledTemplates(
            data["vectors"].astype(np.float32), tuple(str(i) for i in data["identities"]), failures
        )


def pair_scores(templates: LabeledTemplates) -> tuple[np.ndarray, np.ndarray]:
    """Cosine scores of every genuine and every impostor pair (each unordered pair once)."""
    labels = np.asarray(templates.identities)
    similarities = templates.vectors @ templates.vectors.T
    upper_rows, upper_cols = np.triu_indices(len(labels), k=1)
    same = labels[upper_rows] == labels[upper_cols]
    scores = similarities[upper_rows, upper_cols].astype(np.float64)
    return scores[same], scores[~same]


def _point(choice: ThresholdChoice, what: str) -> OperatingPoint:
    rate = choice.false_match_rate_upper_bound
    return OperatingPoint(
        threshold=round(choice.threshold, 6),
        false_match_rate=rate,
        false_non_match_rate=choice.false_non_match_rate,
        description=f"{what} {choice.note} FNMR {choice.false_non_match_rate:.4f} over "
        f"{choice.genuine_trials:,} genuine pairs.",
    )


def calibrate_thresholds(
    templates: LabeledTemplates,
    *,
    source: str,
    target_fmr: float = 1e-3,
    identify_fpir: float = 1e-2,
    duplicate_fpir: float = 5e-2,
    gallery_size: int = 10_000,
) -> tuple[Thresholds, ScoreCalibration]:
    genuine, impostor = pair_scores(templates)
    if genuine.size == 0 or impostor.size == 0:
        raise WajahInputError(
            "calibration needs at least two photos of one identity and two identities "
            f"with a face (got {genuine.size} genuine and {impostor.size} impostor pairs)"
        )
    calibration = ScoreCalibration(genuine, impostor)
    verify = calibration.threshold_for_false_match_rate(target_fmr)
    identify = calibration.duplicate_threshold(identify_fpir, gallery_size)
    duplicate = calibration.duplicate_threshold(duplicate_fpir, gallery_size)
    people = len(set(templates.identities))
    thresholds = Thresholds(
        verify=_point(verify, f"1:1 at target FMR {target_fmr:g}."),
        identify=_point(identify, f"1:N identification, target FPIR {identify_fpir:g}."),
        duplicate=_point(duplicate, f"Duplicate search, target FPIR {duplicate_fpir:g}."),
        model_tag=MODEL_TAG,
        calibrated_on=(
            f"{source}: {len(templates.identities):,} photos of {people:,} people, "
            f"{genuine.size:,} genuine and {impostor.size:,} impostor pairs; "
            f"{len(templates.failures)} photos without a face left out. The data holds no "
            "Southeast Asian faces in any number and no children: recalibrate on local data."
        ),
        calibrated_at=dt.date.today().isoformat(),
        notes=(
            f"EER {calibration.equal_error_rate().rate:.4f}. Gallery size assumed for the "
            f"1:N points: {gallery_size:,} subjects; FPIR grows with the gallery, so "
            "recalibrate with --gallery-size as the gallery grows. The duplicate search may "
            "flag more often than an officer's search: a false flag costs a supervisor a "
            "look, a missed duplicate identity is the error the search exists to catch."
        ),
    )
    return thresholds, calibration
