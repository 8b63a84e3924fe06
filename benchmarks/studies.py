"""Helpers shared by the benchmarks: the cached real templates, single-query latency and the
exact-search reference (the standalone 1M studies ``hnsw_1m`` and ``ivfpq_1m``, and
``wajah bench``).

Latency is wall-clock time of one call per query (``time.perf_counter``), in milliseconds,
after warm-up calls that are not timed; percentiles are numpy's linear interpolation.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from wajah.benchmarks.acquisition import file_sha256, load_cached
from wajah.biometric.datasets import LabeledPhoto

K = 10  # neighbours asked of every search the studies time
WARMUP_QUERIES = 50  # untimed calls before a latency series
DEFAULT_FACES_DIR = Path(__file__).resolve().parents[2] / "shared" / "faces"
RESULTS_DIR = Path(__file__).resolve().parent / "results"

Search = Callable[[np.ndarray], Any]  # one query (128,) float32 -> anything


def log(message: str) -> None:
    print(f"{time.strftime('%H:%M:%S')} {message}", file=sys.stderr, flush=True)


def cached_templates(
    photos: Sequence[LabeledPhoto], cache_dir: Path
) -> tuple[list[np.ndarray], list[str]]:
    """The templates (128,) float32 the acquisition cache holds for ``photos``, with their
    identities, in the photos' order; photos without a cached template are left out."""
    vectors: list[np.ndarray] = []
    identities: list[str] = []
    for photo in photos:
        cached = load_cached(cache_dir, file_sha256(photo.path))
        if cached is not None and cached.template is not None:
            vectors.append(np.asarray(cached.template, dtype=np.float32))
            identities.append(photo.identity)
    return vectors, identities


def latency_stats(times_ms: Sequence[float]) -> dict[str, float]:
    values = np.asarray(times_ms)
    return {
        "p50": float(np.percentile(values, 50)),
        "p95": float(np.percentile(values, 95)),
        "p99": float(np.percentile(values, 99)),
        "mean": float(values.mean()),
        "max": float(values.max()),
        "n": int(values.shape[0]),
    }


def warm_up(search: Search, queries: np.ndarray) -> None:
    for query in queries:
        search(query)


def timed_ms(search: Search, queries: np.ndarray) -> list[float]:
    """Milliseconds of ``search`` on each query, one at a time."""
    times = []
    for query in queries:
        start = time.perf_counter()
        search(query)
        times.append((time.perf_counter() - start) * 1000.0)
    return times


def single_query_latency(search: Search, queries: np.ndarray) -> dict[str, float]:
    """Latency of ``search`` over ``queries`` after ``WARMUP_QUERIES`` of them untimed."""
    warm_up(search, queries[:WARMUP_QUERIES])
    return latency_stats(timed_ms(search, queries))


def exact_single(gallery: np.ndarray, k: int = K) -> Search:
    """Exact top-``k`` rows of one query against ``gallery`` (N, 128) float32: one numpy sgemv
    and a partial sort (the baseline beside every approximate figure)."""

    def search(query: np.ndarray) -> np.ndarray:
        scores = gallery @ query
        part = np.argpartition(-scores, k - 1)[:k]
        return part[np.argsort(-scores[part])]

    return search


def exact_top1(gallery: np.ndarray, queries: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(best row (Q,) int64, best score (Q,) float32), chunked numpy sgemm."""
    rows = np.empty(queries.shape[0], dtype=np.int64)
    scores = np.empty(queries.shape[0], dtype=np.float32)
    for first in range(0, queries.shape[0], 64):
        block = queries[first : first + 64] @ gallery.T
        rows[first : first + 64] = np.argmax(block, axis=1)
        scores[first : first + 64] = block[np.arange(block.shape[0]), rows[first : first + 64]]
    return rows, scores
