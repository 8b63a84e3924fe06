"""Face work in worker processes, bounded.

dlib holds the GIL while it works, so a pool of threads would run one face at a time; each
worker here is a process with its own :class:`FaceEngine` (about 200 MB of models). The pool
admits at most ``max_pending`` jobs (running plus queued): past that, :meth:`submit` raises
:class:`EngineOverloaded` at once instead of queueing without bound, so a service can answer
503 with ``Retry-After``. With ``workers=0`` the work runs in the calling thread on one shared
engine (tests, small tools).
"""

from __future__ import annotations

import multiprocessing
import threading
from concurrent.futures import Future, ProcessPoolExecutor
from dataclasses import dataclass

from biometric.engine import EngineConfig, FaceEngine, ProcessedImage
from biometric.errors import EngineOverloaded
from biometric.quality import QualityProfile

_worker_engine: FaceEngine | None = None


def _start_worker(config: EngineConfig) -> None:
    global _worker_engine
    _worker_engine = FaceEngine(config)
    _worker_engine.warm_up()


def _process_in_worker(data: bytes, profile: QualityProfile, embed: bool) -> ProcessedImage:
    assert _worker_engine is not None, "worker started without an engine"
    return _worker_engine.process(data, profile, embed=embed)


@dataclass(frozen=True)
class PoolConfig:
    workers: int = 2  # processes; 0 = in the calling thread
    max_pending: int = 8  # running + queued jobs before EngineOverloaded
    retry_after_s: int = 1


class EnginePool:
    """Thread-safe: any number of threads may submit."""

    def __init__(
        self, engine_config: EngineConfig, pool_config: PoolConfig, engine: FaceEngine | None = None
    ) -> None:
        self.config = pool_config
        self._slots = threading.BoundedSemaphore(pool_config.max_pending)
        self._pending = 0
        self._pending_lock = threading.Lock()
        self._executor: ProcessPoolExecutor | None = None
        self._engine: FaceEngine | None = None
        if pool_config.workers > 0:
            # spawn, not fork: the service has threads, and fork copies their locks mid-use.
            self._executor = ProcessPoolExecutor(
                max_workers=pool_config.workers,
                mp_context=multiprocessing.get_context("spawn"),
                initializer=_start_worker,
                initargs=(engine_config,),
            )
        else:
            self._engine = engine or FaceEngine(engine_config)

    @property
    def pending(self) -> int:
        """Jobs admitted and not yet finished (the queue depth metric)."""
        return self._pending

    def warm_up(self) -> None:
        """Start every worker (loading models) before the first request arrives."""
        if self._executor is not None:
            futures = [self._executor.submit(_noop) for _ in range(self.config.workers)]
            for future in futures:
                future.result()
        elif self._engine is not None:
            self._engine.warm_up()

    def submit(
        self, data: bytes, profile: QualityProfile, *, embed: bool = True
    ) -> Future[ProcessedImage]:
        if not self._slots.acquire(blocking=False):
            raise EngineOverloaded(
                "all face workers are busy; retry shortly", retry_after_s=self.config.retry_after_s
            )
        with self._pending_lock:
            self._pending += 1
        try:
            if self._executor is not None:
                future = self._executor.submit(_process_in_worker, data, profile, embed)
            else:
                future = Future()
                assert self._engine is not None
                try:
                    future.set_result(self._engine.process(data, profile, embed=embed))
                except BaseException as error:  # delivered through the future, like a worker
                    future.set_exception(error)
        except BaseException:
            self._release()
            raise
        future.add_done_callback(lambda _: self._release())
        return future

    def process(
        self, data: bytes, profile: QualityProfile, *, embed: bool = True
    ) -> ProcessedImage:
        return self.submit(data, profile, embed=embed).result()

    def _release(self) -> None:
        with self._pending_lock:
            self._pending -= 1
        self._slots.release()

    def close(self) -> None:
        if self._executor is not None:
            self._executor.shutdown(wait=True, cancel_futures=True)


def _noop() -> None:
    return None
