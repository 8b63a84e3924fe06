"""The operations summary."""

from __future__ import annotations

import datetime as dt

from pydantic import Field

from wajah.api.schemas.common import _Model


class LatencyPercentiles(_Model):
    p50: float
    p95: float
    p99: float
    count: int


class RecentErrorOut(_Model):
    type: str
    status: int
    method: str
    path: str
    request_id: str
    time: dt.datetime


class OpsSummary(_Model):
    gallery_size: int = Field(description="templates in the gallery index")
    subjects: int
    open_reviews: int
    face_queue_depth: int
    requests_total: int
    decisions: dict[str, dict[str, int]]
    latency_ms: dict[str, LatencyPercentiles]
    recent_errors: list[RecentErrorOut]
