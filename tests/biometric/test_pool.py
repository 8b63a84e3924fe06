"""The face worker pool with real spawned worker processes: typed errors across the process
boundary, bad input refused before it is queued, a killed worker replaced, a job past its
deadline stopped."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

import wajah.biometric.pool as pool_module
from tests.bad_images import png_declaring
from wajah.biometric.detect import DetectorKind
from wajah.biometric.engine import EngineConfig
from wajah.biometric.errors import (
    FaceWorkerFault,
    FaceWorkerLost,
    FaceWorkTimedOut,
    ImageDecodeError,
    ImageDimensionsRefused,
    ImageTooLarge,
)
from wajah.biometric.pool import EnginePool, PoolConfig
from wajah.biometric.quality import PROFILES

PROFILE = PROFILES["verification"]


def worker_pids() -> list[int]:
    children = subprocess.run(
        ["pgrep", "-P", str(os.getpid())], capture_output=True, text=True, check=False
    ).stdout.split()
    pids = []
    for child in children:
        try:
            if b"spawn_main" in Path(f"/proc/{child}/cmdline").read_bytes():
                pids.append(int(child))
        except OSError:
            continue
    return pids


@pytest.fixture(scope="module")
def pool() -> Iterator[EnginePool]:
    engine_pool = EnginePool(EngineConfig(), PoolConfig(workers=2, max_pending=4))
    engine_pool.warm_up()
    yield engine_pool
    engine_pool.close()


@pytest.fixture(scope="module")
def photo(faces_dir: Path) -> bytes:
    return (faces_dir / "lfw_deepfunneled" / "Tony_Blair" / "Tony_Blair_0001.jpg").read_bytes()


def test_ready_after_warm_up(pool: EnginePool) -> None:
    health = pool.health()
    assert health.ready and health.workers == 2 and health.detail is None


def test_errors_arrive_typed_and_the_pool_keeps_working(pool: EnginePool, photo: bytes) -> None:
    truncated = photo[: len(photo) // 2]
    with pytest.raises(ImageDecodeError):
        pool.process(truncated, PROFILE)  # decoded in a worker, raised there, rebuilt here
    assert pool.process(photo, PROFILE).face_found
    assert pool.health().ready


def test_limits_are_checked_before_the_job_is_queued(pool: EnginePool) -> None:
    started = time.perf_counter()
    refused = [
        pool.submit(png_declaring(50_000, 50_000), PROFILE),
        pool.submit(png_declaring(2, 20_000_000), PROFILE),
        pool.submit(b"\xff\xd8" + bytes(16_000_000), PROFILE),
    ]
    assert all(future.done() for future in refused)  # failed at once: nothing was queued
    assert pool.pending == 0
    assert (time.perf_counter() - started) < 0.5
    kinds = [type(future.exception()) for future in refused]
    assert kinds == [ImageTooLarge, ImageDimensionsRefused, ImageTooLarge]
    pixels = refused[0].exception()
    assert isinstance(pixels, ImageTooLarge) and pixels.unit == "pixels"


def test_a_killed_worker_fails_its_job_only_and_is_replaced(
    pool: EnginePool, photo: bytes, faces_dir: Path
) -> None:
    heavy = max((faces_dir / "deepface").rglob("*.jpg"), key=lambda path: path.stat().st_size)
    before = pool.restarts
    for _attempt in range(3):
        # More jobs than workers, so both are busy when the kill lands: with the ONNX Runtime
        # embedder this photo's whole job takes ~0.16 s.
        futures = [pool.submit(heavy.read_bytes(), PROFILE) for _ in range(4)]
        time.sleep(0.05)
        for pid in worker_pids():
            os.kill(pid, signal.SIGKILL)
        errors = [future.exception(timeout=60) for future in futures]
        if any(errors):
            break
    lost = [error for error in errors if error is not None]
    assert lost and all(isinstance(error, FaceWorkerLost) for error in lost), errors
    assert all(error.retry_after_s >= 1 for error in lost if isinstance(error, FaceWorkerLost))
    assert pool.process(photo, PROFILE).face_found  # the next job runs on a new worker
    assert pool.restarts > before
    deadline = time.monotonic() + 60
    while not pool.health().ready and time.monotonic() < deadline:
        time.sleep(0.1)
    assert pool.health().ready


def test_jobs_queued_when_every_worker_dies_are_failed_not_left_waiting(
    pool: EnginePool, photo: bytes, faces_dir: Path
) -> None:
    heavy = max((faces_dir / "deepface").rglob("*.jpg"), key=lambda path: path.stat().st_size)
    for pid in worker_pids():
        os.kill(pid, signal.SIGKILL)
    time.sleep(0.5)
    futures = [pool.submit(heavy.read_bytes(), PROFILE) for _ in range(4)]
    time.sleep(0.3)  # the replacement workers are still loading their models
    for pid in worker_pids():
        os.kill(pid, signal.SIGKILL)
    started = time.monotonic()
    outcomes = [future.exception(timeout=60) for future in futures]
    assert time.monotonic() - started < 30.0
    assert all(error is None or isinstance(error, FaceWorkerLost) for error in outcomes), outcomes
    assert pool.process(photo, PROFILE).face_found
    assert pool.pending == 0


def test_a_job_past_its_deadline_stops_its_worker(faces_dir: Path) -> None:
    heavy = max((faces_dir / "deepface").rglob("*.jpg"), key=lambda path: path.stat().st_size)
    # dlib's CNN detector takes seconds on a large photo: far past a 0.5 s deadline, however
    # fast the machine (pebble checks deadlines about every 0.1 s).
    strict = EnginePool(
        EngineConfig(detector=DetectorKind.CNN), PoolConfig(workers=1, job_timeout_s=0.5)
    )
    try:
        strict.warm_up()
        with pytest.raises(FaceWorkTimedOut) as timed_out:
            strict.process(heavy.read_bytes(), PROFILE)
        assert timed_out.value.timeout_s == 0.5
        assert strict.restarts == 1
    finally:
        strict.close()


class _UnpicklableError(Exception):
    def __init__(self, message: str, *, code: int) -> None:
        super().__init__(message)
        self.code = code


class _BrokenEngine:
    def process(self, *_: object, **__: object) -> None:
        raise _UnpicklableError("deep inside a model", code=3)


def test_an_error_that_cannot_cross_becomes_a_worker_fault(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(pool_module, "_worker_engine", _BrokenEngine())
    with pytest.raises(FaceWorkerFault) as fault:
        pool_module._process_in_worker(b"", PROFILE, True)
    assert fault.value.original_type == "_UnpicklableError"


def test_in_thread_pool_is_ready_and_refuses_the_same_input() -> None:
    in_thread = EnginePool(EngineConfig(), PoolConfig(workers=0))
    assert in_thread.health().ready
    with pytest.raises(ImageDecodeError):
        in_thread.process(b"\xff", PROFILE)
    assert in_thread.pending == 0
