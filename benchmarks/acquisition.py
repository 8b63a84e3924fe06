"""Run labeled photos through Wajah's pipeline and the plain dlib pipeline, in worker processes,
with a per-photo cache.

Wajah: decode (limits, EXIF) -> HOG detect by size policy -> 68 + 5 landmarks -> quality under
the "enrollment" and "scan" profiles -> 5-point chip -> ResNet -> L2-normalised template.
Plain dlib (the ``face_recognition`` recipe): PIL ``convert("RGB")`` (no EXIF) -> HOG upsample 1
-> largest face -> 5-point chip -> ResNet -> raw descriptor, "same" when L2 <= 0.6.

Both run the same ResNet, so when both pipelines produce the byte-identical chip (the usual
case on 250 px LFW photos, where Wajah's policy also upsamples once) the descriptor is computed
once and shared: the embed is ~140 ms a face, the rest of a photo ~60 ms.

The cache holds one JSON file per photo content (sha256 of the file) and model tag, in a
directory outside the repository: templates are biometric data and never belong in git.
dlib keeps the GIL, so parallelism is by processes (spawned, each loading the models once).
"""

from __future__ import annotations

import hashlib
import json
import multiprocessing
import os
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import platformdirs

from wajah.biometric.templates import MODEL_TAG

# Bump when what a cache entry holds or how it is computed changes.
CACHE_VERSION = "acq-v1"
PLAIN_DLIB_UPSAMPLE = 1  # face_recognition's default number_of_times_to_upsample
PLAIN_DLIB_DISTANCE_THRESHOLD = 0.6  # dlib's documented same-person L2 threshold (dlib.net)


def default_cache_dir() -> Path:
    return Path(platformdirs.user_cache_dir("wajah", appauthor=False)) / "bench-templates"


@dataclass(frozen=True)
class PhotoOutcome:
    """What both pipelines made of one photo."""

    sha256: str
    wajah_status: str  # "ok", "decode_error", "no_face"
    enrollment_usable: bool | None  # None when no face was found
    enrollment_failing: tuple[str, ...]
    scan_usable: bool | None
    scan_failing: tuple[str, ...]
    template: tuple[float, ...] | None  # (128,) L2-normalised, Wajah
    plain_status: str  # "ok", "decode_error", "no_face"
    plain_descriptor: tuple[float, ...] | None  # (128,) raw dlib descriptor
    chips_identical: bool  # both pipelines cut the same chip: one embed served both
    embed_calls: int  # 0, 1 or 2 ResNet passes spent on this photo
    worker_seconds: float  # wall time in the worker, both pipelines (cold cost)
    engine_check_max_abs_diff: float | None  # first photo per worker: engine vs shared embed

    def template_array(self) -> np.ndarray | None:  # (128,) float32
        return None if self.template is None else np.asarray(self.template, dtype=np.float32)

    def plain_array(self) -> np.ndarray | None:  # (128,) float32
        if self.plain_descriptor is None:
            return None
        return np.asarray(self.plain_descriptor, dtype=np.float32)


def file_sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _cache_path(cache_dir: Path, sha256: str) -> Path:
    return cache_dir / sha256[:2] / f"{sha256}-{MODEL_TAG}-{CACHE_VERSION}.json"


def load_cached(cache_dir: Path, sha256: str) -> PhotoOutcome | None:
    path = _cache_path(cache_dir, sha256)
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    for key in ("enrollment_failing", "scan_failing", "template", "plain_descriptor"):
        if data.get(key) is not None:
            data[key] = tuple(data[key])
    return PhotoOutcome(**data)


def _store(cache_dir: Path, outcome: PhotoOutcome) -> None:
    path = _cache_path(cache_dir, outcome.sha256)
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_suffix(f".{os.getpid()}.tmp")
    temporary.write_text(json.dumps(asdict(outcome)))
    temporary.replace(path)


# --- worker process -----------------------------------------------------------------------

_WORKER: dict[str, Any] = {}


def _init_worker() -> None:
    """Load both pipelines' models once per worker process."""
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    import dlib

    from wajah.biometric.engine import FaceEngine
    from wajah.biometric.models import find_model_paths

    paths = find_model_paths()
    engine = FaceEngine(paths=paths)
    engine.warm_up()
    _WORKER["engine"] = engine
    _WORKER["hog"] = dlib.get_frontal_face_detector()
    _WORKER["sp5"] = dlib.shape_predictor(str(paths.landmarks_5))
    _WORKER["resnet"] = dlib.face_recognition_model_v1(str(paths.face_recognition))
    _WORKER["checked"] = False


def _raw_descriptor(chip: np.ndarray) -> np.ndarray:
    return np.asarray(_WORKER["resnet"].compute_face_descriptor(chip), dtype=np.float64)


def _plain_chip(path: Path) -> tuple[str, np.ndarray | None]:
    """The plain dlib pipeline up to the chip: ("ok", chip) or (failure, None)."""
    import dlib
    from PIL import Image

    try:
        with Image.open(path) as image:
            rgb = np.array(image.convert("RGB"))
    except Exception:  # the plain recipe has no typed errors; anything PIL raises is a failure
        return "decode_error", None
    rects = _WORKER["hog"](rgb, PLAIN_DLIB_UPSAMPLE)
    if len(rects) == 0:
        return "no_face", None
    largest = max(rects, key=lambda r: r.width() * r.height())
    shape = _WORKER["sp5"](rgb, largest)
    chip = dlib.get_face_chip(rgb, shape, size=150, padding=0.25)
    return "ok", np.ascontiguousarray(chip, dtype=np.uint8)


def process_photo(path_text: str, sha256: str, cache_dir_text: str) -> PhotoOutcome:
    """Both pipelines on one photo (in a worker); the result is cached and returned."""
    from wajah.biometric.errors import WajahError
    from wajah.biometric.quality import PROFILES, assess_quality
    from wajah.biometric.templates import align_chip, normalise

    start = time.perf_counter()
    engine = _WORKER["engine"]
    path = Path(path_text)
    status = "ok"
    enrollment_usable: bool | None = None
    scan_usable: bool | None = None
    enrollment_failing: tuple[str, ...] = ()
    scan_failing: tuple[str, ...] = ()
    chip: np.ndarray | None = None
    try:
        decoded = engine.read(path)
    except WajahError:
        status = "decode_error"
    else:
        analysis = engine.analyse(decoded, PROFILES["enrollment"])
        if analysis.landmarks is None:
            status = "no_face"
        else:
            enrollment_usable = analysis.quality.usable
            enrollment_failing = tuple(c.name for c in analysis.quality.failing)
            scan = assess_quality(decoded.rgb, analysis.faces, analysis.landmarks, PROFILES["scan"])
            scan_usable = scan.usable
            scan_failing = tuple(c.name for c in scan.failing)
            chip = align_chip(decoded.rgb, analysis.landmarks)

    embed_calls = 0
    template: tuple[float, ...] | None = None
    check: float | None = None
    wajah_raw: np.ndarray | None = None
    if chip is not None:
        wajah_raw = _raw_descriptor(chip)
        embed_calls += 1
        normalised = normalise(wajah_raw)
        template = tuple(float(v) for v in normalised)
        if not _WORKER["checked"]:
            # The shared embed must equal what the engine itself computes for the chip.
            engine_template = engine.embed_chips([chip])[0]
            check = float(np.max(np.abs(engine_template - normalised)))
            _WORKER["checked"] = True

    plain_status, plain_chip = _plain_chip(path)
    plain_descriptor: tuple[float, ...] | None = None
    identical = False
    if plain_chip is not None:
        identical = chip is not None and hashlib.sha256(plain_chip.tobytes()).digest() == (
            hashlib.sha256(chip.tobytes()).digest()
        )
        if identical and wajah_raw is not None:
            raw = wajah_raw
        else:
            raw = _raw_descriptor(plain_chip)
            embed_calls += 1
        plain_descriptor = tuple(float(v) for v in raw)

    outcome = PhotoOutcome(
        sha256=sha256,
        wajah_status=status,
        enrollment_usable=enrollment_usable,
        enrollment_failing=enrollment_failing,
        scan_usable=scan_usable,
        scan_failing=scan_failing,
        template=template,
        plain_status=plain_status,
        plain_descriptor=plain_descriptor,
        chips_identical=identical,
        embed_calls=embed_calls,
        worker_seconds=time.perf_counter() - start,
        engine_check_max_abs_diff=check,
    )
    _store(Path(cache_dir_text), outcome)
    return outcome


# --- parent side ----------------------------------------------------------------------------


@dataclass(frozen=True)
class AcquisitionRun:
    outcomes: tuple[PhotoOutcome, ...]  # in the order of the paths given
    cache_hits: int
    computed: int
    wall_seconds: float
    workers: int


def acquire(
    paths: Sequence[Path],
    cache_dir: Path,
    workers: int = 2,
    progress: Callable[[int, int], None] | None = None,
) -> AcquisitionRun:
    """Outcomes for every path, from the cache where possible, else computed in ``workers``
    spawned processes. ``progress(done, total)`` is called as photos finish."""
    start = time.perf_counter()
    cache_dir.mkdir(parents=True, exist_ok=True)
    digests = [file_sha256(p) for p in paths]
    found: dict[str, PhotoOutcome] = {}
    for digest in set(digests):
        cached = load_cached(cache_dir, digest)
        if cached is not None:
            found[digest] = cached
    hits = len(found)
    missing: dict[str, Path] = {}
    for path, digest in zip(paths, digests, strict=True):
        if digest not in found:
            missing.setdefault(digest, path)
    total = len(found) + len(missing)
    if progress:
        progress(len(found), total)
    if missing:
        context = multiprocessing.get_context("spawn")
        with ProcessPoolExecutor(workers, mp_context=context, initializer=_init_worker) as pool:
            futures = [
                pool.submit(process_photo, str(path), digest, str(cache_dir))
                for digest, path in missing.items()
            ]
            for future in as_completed(futures):
                outcome = future.result()
                found[outcome.sha256] = outcome
                if progress:
                    progress(len(found), total)
    return AcquisitionRun(
        outcomes=tuple(found[d] for d in digests),
        cache_hits=hits,
        computed=len(missing),
        wall_seconds=time.perf_counter() - start,
        workers=workers,
    )
