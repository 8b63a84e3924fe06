"""The 1:N harness on tiny galleries: exact against exact must agree perfectly."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from wajah.benchmarks.cli import bench_app
from wajah.benchmarks.galleries import fit_real, within_total_variance
from wajah.benchmarks.match import MatchOptions, exact_top_k, models_for_run, run_match


def test_exact_top_k_matches_a_full_sort() -> None:
    rng = np.random.default_rng(3)
    gallery = rng.standard_normal((500, 128)).astype(np.float32)
    queries = rng.standard_normal((20, 128)).astype(np.float32)
    expected = np.argsort(-(queries @ gallery.T), axis=1)[:, :5]
    assert np.array_equal(exact_top_k(gallery, queries, 5), expected)


def test_quick_match_run_on_a_tiny_gallery() -> None:
    options = MatchOptions(
        sizes=(3000,),
        kinds=("flat", "sq8", "ivf"),
        single_queries=24,
        batches=1,
        batch_size=16,
        threads=(1,),
        bandwidth_bytes=16 << 20,
    )
    results, markdown, plots = run_match(models_for_run(None), options, lambda _: None)
    methods = {m["method"]: m for m in results["runs"][0]["methods"]}
    for exact in (
        "exact numpy (sgemv / sgemm)",
        "faiss IndexFlatIP (defaults)",
        "GalleryIndex flat",
    ):
        assert methods[exact]["recall_at_1"] == 1.0, exact
        assert methods[exact]["recall_at_k"] == 1.0, exact
    assert methods["GalleryIndex sq8"]["recall_at_k"] >= 0.8
    assert methods["exact numpy (sgemv / sgemm)"]["mate_rank1"] >= 0.9
    assert results["bandwidth"]["best_bytes_per_s"] > 1e8
    assert results["targets"]["uniform"]["exact_single_query"]["floor_ms"] > 0
    assert "## Physical floor" in markdown and set(plots) == {"latency"}


def test_real_fit_model_reproduces_the_genuine_scores() -> None:
    rng = np.random.default_rng(5)
    centres = rng.standard_normal((300, 128)) * 0.08 + rng.standard_normal(128) * 0.05
    photos = np.repeat(centres, 4, axis=0) + rng.standard_normal((1200, 128)) * 0.05
    photos /= np.linalg.norm(photos, axis=1, keepdims=True)
    identities = [str(i // 4) for i in range(1200)]
    model = fit_real(photos.astype(np.float32), identities)
    enrolled = model.draw(2000, rng)
    probes = model.mated_probes(enrolled, rng)
    genuine = float(np.median(np.sum(enrolled * probes, axis=1)))
    assert model.real_genuine_median is not None
    assert genuine == pytest.approx(model.real_genuine_median, abs=0.05)
    assert within_total_variance(model) > 0


def test_cli_match_json(tmp_path: Path) -> None:
    result = CliRunner().invoke(
        bench_app,
        [
            "match",
            "--sizes",
            "2000",
            "--no-real",
            "--kinds",
            "flat,sq8",
            "--single-queries",
            "10",
            "--bandwidth-mb",
            "16",
            "--json",
            "--out",
            str(tmp_path),
        ],
    )
    assert result.exit_code == 0, result.output
    document = json.loads(result.stdout)
    flat = next(
        m for m in document["results"]["runs"][0]["methods"] if m["method"] == "GalleryIndex flat"
    )
    assert flat["recall_at_1"] == 1.0
    assert (tmp_path / "latest-match.md").is_file()
    assert (tmp_path / "latest-match-latency.png").is_file()
