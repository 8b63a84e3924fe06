from __future__ import annotations

import numpy as np

from tests.matcher.synthetic import unit_rows
from wajah.benchmarks.studies import exact_single, exact_top1, single_query_latency


def _unit(count: int, seed: int) -> np.ndarray:
    return unit_rows(np.random.default_rng(seed).standard_normal((count, 128)))


def test_the_exact_references_agree_with_a_full_sort() -> None:
    gallery = _unit(2_000, seed=5)
    queries = _unit(70, seed=6)
    full = np.argsort(-(queries @ gallery.T), axis=1, kind="stable")
    rows, scores = exact_top1(gallery, queries)
    np.testing.assert_array_equal(rows, full[:, 0])
    np.testing.assert_allclose(scores, np.einsum("ij,ij->i", queries, gallery[rows]), rtol=1e-6)
    search = exact_single(gallery, k=5)
    for query, expected in zip(queries[:10], full[:10], strict=True):
        np.testing.assert_array_equal(search(query), expected[:5])


def test_latency_times_every_query_after_an_untimed_warm_up() -> None:
    calls: list[int] = []
    queries = _unit(120, seed=7)
    stats = single_query_latency(lambda query: calls.append(1), queries)
    assert len(calls) == 50 + 120 and stats["n"] == 120
    assert 0.0 <= stats["p50"] <= stats["p95"] <= stats["p99"] <= stats["max"]
