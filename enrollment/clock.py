"""The one clock of the enrollment layer: aware UTC, as every stored time is."""

from __future__ import annotations

import datetime as dt
import time


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def elapsed_ms(started: float) -> float:
    """Milliseconds since ``started`` (a :func:`time.perf_counter` reading), to 0.1 ms."""
    return round((time.perf_counter() - started) * 1000, 1)
