"""What ops watch: Prometheus metrics (``/metrics``) and a JSON summary (``/v1/ops/summary``).

Each app has its own :class:`CollectorRegistry`, so two apps in one process (tests) do not
share counters. Labels are bounded: the route template (``/v1/subjects/{subject_id}``, never
the raw path, which would carry subject references and explode the series count), the method,
and the outcome (``ok`` or a problem slug). Percentiles in the summary come from a ring buffer
of recent latencies per endpoint, not from the histograms, so they describe the last few
hundred requests rather than everything since start.
"""

from __future__ import annotations

import datetime as dt
import threading
from collections import deque
from dataclasses import dataclass
from typing import Any, Final

import numpy as np
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

LATENCY_BUCKETS_S: Final = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)
RECENT_LATENCIES: Final = 500  # per endpoint, for the summary's percentiles
RECENT_ERRORS: Final = 50
UNMATCHED_ROUTE: Final = "unmatched"  # 404s of unknown paths share one label


@dataclass(frozen=True)
class RecentError:
    type: str  # problem slug
    status: int
    method: str
    path: str  # route template
    request_id: str
    time: dt.datetime


class ApiMetrics:
    """Thread-safe (prometheus-client is; the ring buffers take a lock)."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter(
            "wajah_http_requests",
            "HTTP requests by route template, method and outcome (ok or problem slug).",
            ["method", "route", "outcome"],
            registry=self.registry,
        )
        self.latency = Histogram(
            "wajah_http_request_duration_seconds",
            "HTTP request latency by route template and method.",
            ["method", "route"],
            buckets=LATENCY_BUCKETS_S,
            registry=self.registry,
        )
        self.decisions = Counter(
            "wajah_decisions",
            "Decisions made: verify (match, no_match, inconclusive), enroll (accepted, "
            "pending_review, refused), identify (candidates, none), review (resolutions).",
            ["kind", "decision"],
            registry=self.registry,
        )
        self.gallery_templates = Gauge(
            "wajah_gallery_templates", "Templates in the gallery index.", registry=self.registry
        )
        self.subjects = Gauge("wajah_subjects", "Subjects in the database.", registry=self.registry)
        self.open_reviews = Gauge(
            "wajah_open_reviews", "Duplicate-identity reviews waiting.", registry=self.registry
        )
        self.face_worker_restarts = Counter(
            "wajah_face_worker_restarts",
            "Face worker processes replaced (died, or stopped at the per-job deadline).",
            registry=self.registry,
        )
        self._face_worker_restarts_seen = 0
        self.face_queue_depth = Gauge(
            "wajah_face_queue_depth",
            "Face jobs admitted and not finished (running plus queued).",
            registry=self.registry,
        )
        self._lock = threading.Lock()
        self._latencies_ms: dict[str, deque[float]] = {}
        self._errors: deque[RecentError] = deque(maxlen=RECENT_ERRORS)
        self._requests_total = 0
        self._decision_counts: dict[str, dict[str, int]] = {}

    def observe_request(
        self,
        method: str,
        route: str,
        status: int,
        outcome: str,
        duration_s: float,
        request_id: str,
    ) -> None:
        self.requests.labels(method, route, outcome).inc()
        self.latency.labels(method, route).observe(duration_s)
        endpoint = f"{method} {route}"
        with self._lock:
            self._requests_total += 1
            recent = self._latencies_ms.setdefault(endpoint, deque(maxlen=RECENT_LATENCIES))
            recent.append(duration_s * 1000.0)
            if status >= 400:
                self._errors.append(
                    RecentError(outcome, status, method, route, request_id, dt.datetime.now(dt.UTC))
                )

    def count_decision(self, kind: str, decision: str) -> None:
        self.decisions.labels(kind, decision).inc()
        with self._lock:
            kind_counts = self._decision_counts.setdefault(kind, {})
            kind_counts[decision] = kind_counts.get(decision, 0) + 1

    def set_gauges(
        self,
        *,
        gallery_templates: int,
        subjects: int,
        open_reviews: int,
        queue_depth: int,
        face_worker_restarts: int,
    ) -> None:
        self.gallery_templates.set(gallery_templates)
        self.subjects.set(subjects)
        self.open_reviews.set(open_reviews)
        self.face_queue_depth.set(queue_depth)
        with self._lock:
            # The pool keeps the count; the counter catches up to it at every scrape.
            new_restarts = face_worker_restarts - self._face_worker_restarts_seen
            self._face_worker_restarts_seen = max(
                self._face_worker_restarts_seen, face_worker_restarts
            )
        if new_restarts > 0:
            self.face_worker_restarts.inc(new_restarts)

    def exposition(self) -> bytes:
        return generate_latest(self.registry)

    def snapshot(self) -> dict[str, Any]:
        """Requests, decisions, latency percentiles and recent errors, JSON-ready."""
        with self._lock:
            latencies = {endpoint: list(values) for endpoint, values in self._latencies_ms.items()}
            errors = list(self._errors)
            requests_total = self._requests_total
            decisions = {kind: dict(counts) for kind, counts in self._decision_counts.items()}
        latency_ms = {}
        for endpoint, values in sorted(latencies.items()):
            p50, p95, p99 = np.percentile(np.asarray(values), [50, 95, 99])
            latency_ms[endpoint] = {
                "p50": round(float(p50), 2),
                "p95": round(float(p95), 2),
                "p99": round(float(p99), 2),
                "count": len(values),
            }
        return {
            "requests_total": requests_total,
            "decisions": decisions,
            "latency_ms": latency_ms,
            "recent_errors": [
                {
                    "type": error.type,
                    "status": error.status,
                    "method": error.method,
                    "path": error.path,
                    "request_id": error.request_id,
                    "time": error.time.isoformat(),
                }
                for error in reversed(errors)
            ],
        }
