"""Face work in worker processes: bounded, deadlined, and self-healing.

dlib holds the GIL while it works, so a pool of threads would run one face at a time; each
worker here is a process with its own :class:`FaceEngine` (about 200 MB of models), run by
``pebble``'s process pool, which gives every job a deadline (the worker running a job past
it is stopped) and replaces a worker that dies. The rules a caller can rely on:

* **Admission is bounded.** At most ``max_pending`` jobs are running or queued; past that
  :meth:`EnginePool.submit` raises :class:`EngineOverloaded` at once (HTTP 503, Retry-After).
* **Bad input never reaches a worker.** The decoder's limits (bytes, declared pixels, aspect
  ratio, JPEG scans) are checked from the header here, in the caller's process, before the
  job is queued; the worker checks them again before it decodes.
* **Every outcome arrives typed.** A worker returns either the result or a Wajah error that
  survives pickling; anything else that goes wrong inside it comes back as
  :class:`FaceWorkerFault`. A job whose worker died raises :class:`FaceWorkerLost`, a job
  past its deadline :class:`FaceWorkTimedOut` (both 503 with Retry-After): only that job
  fails, the other worker's jobs go on, and the pool starts a replacement worker.
* **A broken pool is replaced.** Should the process pool itself stop (its manager thread hit
  an error), the next :meth:`submit` builds a new one; :meth:`health` says whether the pool
  can take work, and :attr:`restarts` counts replaced workers and pools.

With ``workers=0`` the work runs in the calling thread on one shared engine (tests, small
tools). :class:`EnginePool` is thread-safe: any number of threads may submit.
"""

from __future__ import annotations

import contextlib
import json
import logging
import multiprocessing
import os
import pickle
import threading
import time
from concurrent.futures import CancelledError, Future, InvalidStateError
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass
from typing import Final

import pebble

from wajah.biometric.decode import probe_image
from wajah.biometric.engine import EngineConfig, FaceEngine, ProcessedImage
from wajah.biometric.errors import (
    EngineOverloaded,
    FaceWorkerFault,
    FaceWorkerLost,
    FaceWorkTimedOut,
    WajahError,
)
from wajah.biometric.quality import QualityProfile

logger = logging.getLogger("wajah.biometric.pool")

# How long warm_up waits for every worker to load its models (dlib's ~1 s each, more when
# both cores are busy) before it gives up and reports the pool as not started.
WARM_UP_TIMEOUT_S: Final = 120.0
# How often the watchdog looks for a stopped process pool while jobs wait on it.
WATCHDOG_INTERVAL_S: Final = 0.5

_worker_engine: FaceEngine | None = None


def _start_worker(config: EngineConfig) -> None:
    global _worker_engine
    _worker_engine = FaceEngine(config)
    _worker_engine.warm_up()


def _process_in_worker(data: bytes, profile: QualityProfile, embed: bool) -> ProcessedImage:
    """The job, in a worker. Whatever it raises must be rebuilt on the other side, or the
    pool's result channel would break; an exception that does not survive a round trip
    through pickle is replaced by a :class:`FaceWorkerFault` that does."""
    assert _worker_engine is not None, "worker started without an engine"
    try:
        return _worker_engine.process(data, profile, embed=embed)
    except Exception as error:
        if _survives_pickling(error):
            raise
        raise FaceWorkerFault(
            f"face worker failed: {type(error).__name__}: {error}",
            original_type=type(error).__name__,
        ) from None


def _survives_pickling(error: BaseException) -> bool:
    try:
        rebuilt = pickle.loads(pickle.dumps(error))
    except Exception:
        return False
    return type(rebuilt) is type(error)


def _worker_pid() -> int:
    return os.getpid()


def _settle(
    future: Future[ProcessedImage],
    *,
    result: ProcessedImage | None = None,
    error: BaseException | None = None,
) -> None:
    """Resolve ``future`` once; a second outcome (a job failed as an orphan that its stopped
    pool then also aborts) is dropped."""
    try:
        if error is not None:
            future.set_exception(error)
        else:
            assert result is not None
            future.set_result(result)
    except InvalidStateError:
        pass


@dataclass(frozen=True)
class PoolConfig:
    workers: int = 2  # processes; 0 = in the calling thread
    max_pending: int = 8  # running + queued jobs before EngineOverloaded
    retry_after_s: int = 1
    # A job running longer than this has its worker stopped (the photo or the machine is
    # pathological: the largest accepted photo takes ~0.5 s with HOG, a few s with the CNN).
    job_timeout_s: float = 20.0


@dataclass(frozen=True)
class PoolHealth:
    """Whether the pool can take work now."""

    ready: bool
    workers: int  # configured worker processes (0 = in-thread)
    restarts: int  # workers (or whole pools) replaced since start
    detail: str | None  # why not ready


class EnginePool:
    """Face jobs in worker processes; see the module doc. Thread-safe."""

    def __init__(
        self, engine_config: EngineConfig, pool_config: PoolConfig, engine: FaceEngine | None = None
    ) -> None:
        self.config = pool_config
        self._engine_config = engine_config
        self._slots = threading.BoundedSemaphore(pool_config.max_pending)
        self._pending = 0
        self._lock = threading.Lock()
        self._restarts = 0
        self._warm = False
        self._closed = False
        self._processes: pebble.ProcessPool | None = None
        self._engine: FaceEngine | None = None
        # Jobs handed to the process pool and not yet settled, with the pool that holds them:
        # a pool that stops can leave jobs it never started unsettled, so they are failed here.
        self._outstanding: dict[Future[ProcessedImage], pebble.ProcessPool] = {}
        if pool_config.workers > 0:
            self._processes = self._new_processes()
            threading.Thread(target=self._watch, name="face-pool-watchdog", daemon=True).start()
        else:
            self._engine = engine or FaceEngine(engine_config)

    def _new_processes(self) -> pebble.ProcessPool:
        # spawn, not fork: the service has threads, and fork copies their locks mid-use.
        return pebble.ProcessPool(
            max_workers=self.config.workers,
            initializer=_start_worker,
            initargs=(self._engine_config,),
            context=multiprocessing.get_context("spawn"),
        )

    @property
    def pending(self) -> int:
        """Jobs admitted and not yet finished (the queue depth metric)."""
        return self._pending

    @property
    def restarts(self) -> int:
        """Workers that died or were stopped at their deadline, plus pools rebuilt."""
        return self._restarts

    def health(self) -> PoolHealth:
        """Whether a job submitted now would run; rebuilds a stopped pool (so a probe of a
        pool that broke while idle starts its recovery)."""
        if self._engine is not None:
            return PoolHealth(True, 0, 0, None)
        try:
            self._live_processes()
        except FaceWorkerLost:
            return PoolHealth(False, self.config.workers, self._restarts, "pool closed")
        with self._lock:
            if not self._warm:
                return PoolHealth(
                    False, self.config.workers, self._restarts, "face workers loading models"
                )
            return PoolHealth(True, self.config.workers, self._restarts, None)

    def warm_up(self) -> None:
        """Start every worker (loading models) before the first request arrives: returns once
        each worker process has answered a job."""
        if self._engine is not None:
            self._engine.warm_up()
            return
        deadline = time.monotonic() + WARM_UP_TIMEOUT_S
        seen: set[int] = set()
        while len(seen) < self.config.workers:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise TimeoutError(
                    f"only {len(seen)} of {self.config.workers} face workers started "
                    f"within {WARM_UP_TIMEOUT_S:g} s"
                )
            processes = self._live_processes()
            futures = [processes.submit(_worker_pid, None) for _ in range(self.config.workers)]
            seen.update(future.result(timeout=remaining) for future in futures)
        with self._lock:
            self._warm = True

    def submit(
        self, data: bytes, profile: QualityProfile, *, embed: bool = True
    ) -> Future[ProcessedImage]:
        """Queue one photo; its outcome, errors included, arrives through the future. Input
        the decoder's header check refuses is never queued: its future is failed at once.
        Raises :class:`EngineOverloaded` (admission, not the photo) when the queue is full."""
        try:
            probe_image(data, self._engine_config.decode_limits)
        except WajahError as refused:
            failed: Future[ProcessedImage] = Future()
            failed.set_exception(refused)
            return failed
        if not self._slots.acquire(blocking=False):
            raise EngineOverloaded(
                "all face workers are busy; retry shortly", retry_after_s=self.config.retry_after_s
            )
        with self._lock:
            self._pending += 1
        try:
            future = self._start(data, profile, embed)
        except BaseException:
            self._release()
            raise
        future.add_done_callback(lambda _: self._release())
        return future

    def _start(self, data: bytes, profile: QualityProfile, embed: bool) -> Future[ProcessedImage]:
        if self._engine is not None:
            future: Future[ProcessedImage] = Future()
            try:
                future.set_result(self._engine.process(data, profile, embed=embed))
            except BaseException as error:  # delivered through the future, like a worker
                future.set_exception(error)
            return future
        processes = self._live_processes()
        typed: Future[ProcessedImage] = Future()
        with self._lock:
            self._outstanding[typed] = processes
        job = processes.submit(_process_in_worker, self.config.job_timeout_s, data, profile, embed)
        job.add_done_callback(lambda done: self._deliver(done, typed))
        return typed

    def _deliver(self, job: Future[ProcessedImage], typed: Future[ProcessedImage]) -> None:
        """Copy a pebble job's outcome to the caller's future, translating the pool's own
        failures into typed, retryable errors."""
        try:
            _settle(typed, result=job.result())
        except WajahError as error:
            _settle(typed, error=error)
        except TimeoutError:
            self._count_restart("job_timeout")
            _settle(
                typed,
                error=FaceWorkTimedOut(
                    f"the face work took longer than {self.config.job_timeout_s:g} s; "
                    "its worker was stopped",
                    timeout_s=self.config.job_timeout_s,
                    retry_after_s=self.config.retry_after_s,
                ),
            )
        except pebble.ProcessExpired as error:
            self._count_restart("worker_died", exit_code=error.exitcode)
            _settle(
                typed, error=self._lost(f"the face worker stopped (exit code {error.exitcode})")
            )
        except (BrokenProcessPool, CancelledError) as error:
            _settle(typed, error=self._lost(f"the face worker pool stopped: {error}"))
            with contextlib.suppress(FaceWorkerLost):  # closed: nothing to rebuild
                self._live_processes()  # now, failing the jobs the stopped pool still holds
        except BaseException as error:  # not ours and not pebble's: a bug, but still typed
            _settle(
                typed,
                error=FaceWorkerFault(
                    f"face worker failed: {type(error).__name__}",
                    original_type=type(error).__name__,
                ),
            )
        finally:
            with self._lock:
                self._outstanding.pop(typed, None)

    def _watch(self) -> None:
        """Notice a process pool that stopped while jobs wait on it, even with no new request
        to trigger the rebuild; ends when the pool is closed."""
        while not self._closed:
            time.sleep(WATCHDOG_INTERVAL_S)
            with self._lock:
                waiting = bool(self._outstanding)
            if waiting and not self._closed:
                try:
                    self._live_processes()
                except FaceWorkerLost:
                    return

    def _lost(self, detail: str) -> FaceWorkerLost:
        return FaceWorkerLost(
            f"{detail}; a new worker is starting, retry shortly",
            retry_after_s=self.config.retry_after_s,
        )

    def _count_restart(self, reason: str, **fields: object) -> None:
        with self._lock:
            self._restarts += 1
            restarts = self._restarts
        logger.warning(
            json.dumps(
                {"event": "face_worker_replaced", "reason": reason, "restarts": restarts, **fields}
            )
        )

    def _live_processes(self) -> pebble.ProcessPool:
        """The process pool, rebuilt first if it has stopped (pebble stops a whole pool when,
        for one, every worker dies while no job is running); the jobs the stopped pool still
        held are failed as lost."""
        with self._lock:
            if self._closed:
                raise FaceWorkerLost("the face worker pool is closed", retry_after_s=1)
            assert self._processes is not None
            if self._processes.active:
                return self._processes
            broken = self._processes
            self._processes = self._new_processes()
            self._restarts += 1
            self._warm = False
            restarts = self._restarts
            orphans = [job for job, holder in self._outstanding.items() if holder is broken]
            for job in orphans:
                del self._outstanding[job]
        for job in orphans:
            _settle(job, error=self._lost("the face worker pool stopped"))
        logger.warning(
            json.dumps({"event": "face_pool_rebuilt", "restarts": restarts, "failed": len(orphans)})
        )
        threading.Thread(target=broken.stop, daemon=True).start()
        threading.Thread(target=self._warm_quietly, daemon=True).start()
        return self._processes

    def _warm_quietly(self) -> None:
        try:
            self.warm_up()
        except FaceWorkerLost:
            return  # closed meanwhile
        except Exception:
            logger.exception(json.dumps({"event": "face_pool_warm_up_failed"}))

    def process(
        self, data: bytes, profile: QualityProfile, *, embed: bool = True
    ) -> ProcessedImage:
        return self.submit(data, profile, embed=embed).result()

    def _release(self) -> None:
        with self._lock:
            self._pending -= 1
        self._slots.release()

    def close(self) -> None:
        with self._lock:
            self._closed = True
            processes = self._processes
        if processes is not None:
            processes.stop()  # type: ignore[no-untyped-call]
            processes.join(timeout=10)
