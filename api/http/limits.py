"""What the service refuses before it does work: too many requests per key, too many failed
verifications of one subject, bodies that are too large, face work that takes too long.

All state is in memory, per process: a restart forgets it, and several server processes each
count on their own (run one process per office, as ``wajah serve`` does). Every class here is
thread-safe.
"""

from __future__ import annotations

import math
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Final, TypeVar

import anyio
from anyio import to_thread
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from wajah.api.http.errors import ApiProblem, problem_for, problem_response

T = TypeVar("T")

# Subjects tracked at once by the failed-verification counter; beyond it the stalest are
# forgotten first (bounds memory under a flood of made-up subject ids).
MAX_TRACKED_SUBJECTS: Final = 100_000


Clock = Callable[[], float]


@dataclass
class _Bucket:
    tokens: float
    updated: float


class RateLimiter:
    """A token bucket per API key: ``per_minute`` tokens an minute, bursts up to the same."""

    def __init__(self, per_minute: int, clock: Clock = time.monotonic) -> None:
        if per_minute < 1:
            raise ValueError("rate_limit_per_minute must be at least 1")
        self.capacity = float(per_minute)
        self.refill_per_s = per_minute / 60.0
        self._clock = clock
        self._buckets: dict[str, _Bucket] = {}
        self._lock = threading.Lock()

    def check(self, key_id: str) -> None:
        """Take one token, or raise ``rate-limited`` with the seconds until the next one."""
        now = self._clock()
        with self._lock:
            bucket = self._buckets.get(key_id)
            if bucket is None:
                bucket = self._buckets[key_id] = _Bucket(self.capacity, now)
            bucket.tokens = min(
                self.capacity, bucket.tokens + (now - bucket.updated) * self.refill_per_s
            )
            bucket.updated = now
            if bucket.tokens >= 1.0:
                bucket.tokens -= 1.0
                return
            wait_s = (1.0 - bucket.tokens) / self.refill_per_s
        retry_after = max(1, math.ceil(wait_s))
        raise ApiProblem(
            "rate-limited",
            f"this key made too many requests; retry in {retry_after} s",
            headers={"Retry-After": str(retry_after)},
        )


class FailedVerifications:
    """Counts failed 1:1 verifications (``no_match``) per subject within a sliding window.

    After ``limit`` failures within ``window_s`` the subject is locked until the oldest of
    them leaves the window, whatever key asks: an impostor cannot reset it by switching
    counters. A ``match`` clears the count; ``inconclusive`` (a bad photo) does not count.
    """

    def __init__(self, limit: int, window_s: float, clock: Clock = time.monotonic) -> None:
        if limit < 1 or window_s <= 0:
            raise ValueError("failed_verify_limit must be >= 1 and the window > 0")
        self.limit = limit
        self.window_s = window_s
        self._clock = clock
        self._failures: dict[str, deque[float]] = {}
        self._lock = threading.Lock()

    def _recent(self, subject_ref: str, now: float) -> deque[float] | None:
        failures = self._failures.get(subject_ref)
        if failures is None:
            return None
        while failures and failures[0] <= now - self.window_s:
            failures.popleft()
        if not failures:
            del self._failures[subject_ref]
            return None
        return failures

    def check(self, subject_ref: str) -> None:
        """Raise ``too-many-failed-attempts`` while the subject is locked."""
        now = self._clock()
        with self._lock:
            failures = self._recent(subject_ref, now)
            if failures is None or len(failures) < self.limit:
                return
            unlock_at = failures[-self.limit] + self.window_s
        retry_after = max(1, math.ceil(unlock_at - now))
        raise ApiProblem(
            "too-many-failed-attempts",
            f"{self.limit} failed verifications of this subject within "
            f"{self.window_s:g} s; retry in {retry_after} s",
            headers={"Retry-After": str(retry_after)},
            extensions={"limit": self.limit, "window_s": self.window_s},
        )

    def record_failure(self, subject_ref: str) -> None:
        now = self._clock()
        with self._lock:
            failures = self._recent(subject_ref, now)
            if failures is None:
                if len(self._failures) >= MAX_TRACKED_SUBJECTS:
                    stalest = min(self._failures, key=lambda ref: self._failures[ref][-1])
                    del self._failures[stalest]
                failures = self._failures[subject_ref] = deque(maxlen=self.limit)
            failures.append(now)

    def record_match(self, subject_ref: str) -> None:
        with self._lock:
            self._failures.pop(subject_ref, None)

    def forget(self, subject_ref: str) -> bool:
        """Drop the count (a supervisor cleared it); True if there was one."""
        with self._lock:
            return self._failures.pop(subject_ref, None) is not None


class VerificationLockout:
    """Failed 1:1 verifications counted per counter and per subject.

    One counter's key (a station) that fails ``per_station_limit`` times on a subject is
    locked for that subject: an officer, or a stolen key, can lock only its own counter out.
    The subject is locked at every counter once ``per_subject_limit`` failures gather across
    counters, so an impostor cannot go on by walking from counter to counter either. A match
    at any counter clears both counts; a supervisor can clear them with :meth:`clear`. A
    subject limit set below the station limit is raised to it (one station alone never
    locks every counter).
    """

    def __init__(
        self,
        per_station_limit: int,
        per_subject_limit: int,
        window_s: float,
        clock: Clock = time.monotonic,
    ) -> None:
        self._per_station = FailedVerifications(per_station_limit, window_s, clock)
        self._per_subject = FailedVerifications(
            max(per_subject_limit, per_station_limit), window_s, clock
        )
        self._stations: dict[str, set[str]] = {}  # subject -> station keys with a count
        self._lock = threading.Lock()

    @staticmethod
    def _pair(subject_ref: str, key_id: str) -> str:
        return f"{subject_ref}\x00{key_id}"

    def check(self, subject_ref: str, key_id: str) -> None:
        """Raise ``too-many-failed-attempts`` while this station or the subject is locked."""
        self._per_subject.check(subject_ref)
        self._per_station.check(self._pair(subject_ref, key_id))

    def record_failure(self, subject_ref: str, key_id: str) -> None:
        self._per_subject.record_failure(subject_ref)
        self._per_station.record_failure(self._pair(subject_ref, key_id))
        with self._lock:
            stations = self._stations.setdefault(subject_ref, set())
            stations.add(key_id)
            if len(self._stations) > MAX_TRACKED_SUBJECTS:
                self._stations.pop(next(iter(self._stations)))

    def record_match(self, subject_ref: str) -> None:
        self.clear(subject_ref)

    def clear(self, subject_ref: str) -> bool:
        """Forget every count on the subject; True if there was any."""
        with self._lock:
            stations = self._stations.pop(subject_ref, set())
        cleared = self._per_subject.forget(subject_ref)
        for key_id in stations:
            cleared = self._per_station.forget(self._pair(subject_ref, key_id)) or cleared
        return cleared


async def run_blocking(function: Callable[[], T], timeout_s: float) -> T:
    """Run blocking (CPU or database) work in a worker thread, answering ``timeout`` after
    ``timeout_s``. The thread cannot be interrupted: it finishes on its own, and what it
    commits stays committed (an enrollment that timed out may still have been stored)."""
    try:
        with anyio.fail_after(timeout_s):
            return await to_thread.run_sync(function, abandon_on_cancel=True)
    except TimeoutError:
        raise ApiProblem(
            "timeout", f"the request took longer than {timeout_s:g} s", headers={"Retry-After": "1"}
        ) from None


class _BodyTooLarge(Exception):
    pass


class _UploadTooSlow(Exception):
    pass


class BodyLimitMiddleware:
    """Refuse request bodies over ``max_bytes`` with 413 ``payload-too-large``: at once when
    Content-Length says so, otherwise as soon as the streamed bytes pass the limit (chunked
    uploads), so an oversized body is never held in memory. A body that has not arrived in
    full within ``upload_timeout_s`` of the request's start is answered 408
    ``request-timeout`` (a slow-loris client trickling bytes)."""

    def __init__(self, app: ASGIApp, max_bytes: int, upload_timeout_s: float = 180.0) -> None:
        self.app = app
        self.max_bytes = max_bytes
        self.upload_timeout_s = upload_timeout_s

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = _content_length(scope)
        if declared is not None and declared > self.max_bytes:
            await self._refuse(scope, send, self._too_large())
            return
        received = 0
        started = False
        body_done = False
        deadline = time.monotonic() + self.upload_timeout_s

        async def counting_receive() -> Message:
            nonlocal received, body_done
            if body_done:
                return await receive()  # waiting for a disconnect: no deadline
            try:
                with anyio.fail_after(max(0.0, deadline - time.monotonic())):
                    message = await receive()
            except TimeoutError:
                raise _UploadTooSlow from None
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_bytes:
                    raise _BodyTooLarge
                body_done = not message.get("more_body", False)
            return message

        async def tracking_send(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, counting_receive, tracking_send)
        except _BodyTooLarge:
            if started:
                raise
            await self._refuse(scope, send, self._too_large())
        except _UploadTooSlow:
            if started:
                raise
            await self._refuse(
                scope,
                send,
                ApiProblem(
                    "request-timeout",
                    f"the request body did not arrive within {self.upload_timeout_s:g} s",
                ),
            )

    def _too_large(self) -> ApiProblem:
        return ApiProblem(
            "payload-too-large",
            f"the request body is larger than {self.max_bytes} bytes",
            extensions={"limit": self.max_bytes},
        )

    async def _refuse(self, scope: Scope, send: Send, refusal: ApiProblem) -> None:
        problem = problem_for(refusal)
        state = scope.setdefault("state", {})
        state["problem_slug"] = problem.type.slug
        response = problem_response(
            problem, instance=scope.get("path", ""), request_id=str(state.get("request_id", ""))
        )
        response.headers["Connection"] = "close"
        await response(scope, _drain_free_receive, send)


async def _drain_free_receive() -> Message:
    return {"type": "http.disconnect"}


def _content_length(scope: Scope) -> int | None:
    for name, value in scope.get("headers", ()):
        if name == b"content-length":
            try:
                return int(value)
            except ValueError:
                return None
    return None
