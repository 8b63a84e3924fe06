"""The "ivfpq" index at 1M templates: build, save, load, and a probe sweep on three galleries.

``python -m wajah.benchmarks.ivfpq_1m`` measures ``GalleryIndex(kind="ivfpq")`` (inverted lists of
4-bit PQ codes in the discriminant space of dlib templates, exact re-rank) against exact search
on the same queries, for the issue's target: an approximate index at 1M with p99 <= 2 ms and
mate rank-1 loss <= 0.1 % against exact.

Three galleries, because the answer depends on how far a mate sits from its probe:

* ``real-fit``: the gallery ``wajah bench match`` draws (Gaussian fit to every cached LFW
  template; a probe is its enrolled template plus within-identity noise).
* ``real-fit, held-out identities``: the same model fitted only to the LFW pairsDevTest
  identities, which the shipped within-identity scatter (``matcher/template_space_*.npz``,
  pairsDevTrain identities) never saw.
* ``dlib-like``: identity centres from the shipped statistics, and BOTH the enrolled template
  and the probe are a photo off that centre; its score tails are closer to real LFW pairs than
  the real-fit model's (genuine 5th percentile 0.937 against real 0.926 and real-fit 0.942), so
  mates are harder to find for exact and approximate search alike.

Latency: single queries (half mated) through ``GalleryIndex.search`` (k = 10), after warm-up,
interleaved across the probe counts in 10 rounds.
Mate rank-1: ``--mates`` mated probes; a mate counts as lost when exact search ranks it first
and the index does not. Baseline in the same run: exact numpy search (one sgemv per query).
"""

from __future__ import annotations

import argparse
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import faiss
import numpy as np
from threadpoolctl import threadpool_limits

from wajah.benchmarks.acquisition import default_cache_dir
from wajah.benchmarks.galleries import fit_real
from wajah.benchmarks.match_report import TARGET_APPROX_P99_MS, TARGET_RANK1_LOSS
from wajah.benchmarks.report import (
    RunContext,
    command_line,
    markdown_table,
    rss_bytes,
    write_report,
)
from wajah.benchmarks.studies import (
    DEFAULT_FACES_DIR,
    RESULTS_DIR,
    WARMUP_QUERIES,
    K,
    cached_templates,
    exact_single,
    exact_top1,
    latency_stats,
    log,
    single_query_latency,
    timed_ms,
    warm_up,
)
from wajah.biometric.datasets import list_labeled_photos
from wajah.biometric.templates import MODEL_TAG, TEMPLATE_DIM, normalise
from wajah.matcher.config import IVFPQ_PROBE_FRACTION, IndexConfig
from wajah.matcher.index import GalleryIndex
from wajah.matcher.persistence import load_index, save_index
from wajah.matcher.template_space import shipped_space

SIZE = 1_000_000
LATENCY_QUERIES = 1000
RECALL_QUERIES = 500  # recall@10 against exact top-10
LATENCY_ROUNDS = 10  # latency is measured in rounds over all probe counts (see below)
PROBE_FRACTIONS = (0.1, 0.125, 0.15, 0.2, 0.25, 0.3)


@dataclass(frozen=True)
class Gallery:
    name: str
    vectors: np.ndarray  # (SIZE, 128) float32
    mates: np.ndarray  # (A,) int64 rows of the mated probes' templates
    mated_probes: np.ndarray  # (A, 128) float32
    non_mated: np.ndarray  # (LATENCY_QUERIES // 2, 128) float32
    source: str


def _cached_lfw(faces_dir: Path) -> tuple[np.ndarray, np.ndarray]:
    photos = list_labeled_photos(faces_dir / "lfw_deepfunneled")
    vectors, identities = cached_templates(photos, default_cache_dir())
    if len(vectors) < 200:
        raise SystemExit(f"only {len(vectors)} cached real templates; run `wajah bench match`")
    return np.stack(vectors), np.asarray(identities)


def _pairs_identities(pairs_file: Path) -> set[str]:
    names: set[str] = set()
    for line in pairs_file.read_text().splitlines()[1:]:
        fields = line.split("\t")
        names.update([fields[0]] if len(fields) == 3 else [fields[0], fields[2]])
    return names


def _model_gallery(name: str, model: Any, mated: int, seed: int, source: str) -> Gallery:
    rng = np.random.default_rng(seed)
    vectors = np.concatenate(list(model.chunks(SIZE, rng)))
    mates = rng.choice(SIZE, mated, replace=False).astype(np.int64)
    probes = model.mated_probes(vectors[mates], rng)
    return Gallery(name, vectors, mates, probes, model.draw(LATENCY_QUERIES // 2, rng), source)


def _dlib_like_gallery(mated: int, seed: int) -> Gallery:
    space = shipped_space()
    rng = np.random.default_rng(seed)
    values, directions = np.linalg.eigh(space.total - space.within)
    between = (directions * np.sqrt(np.clip(values, 0.0, None))).T.astype(np.float32)
    within = np.linalg.cholesky(space.within).T.astype(np.float32)
    mean = space.mean.astype(np.float32)

    def centres(count: int) -> np.ndarray:
        drawn = rng.standard_normal((count, TEMPLATE_DIM), dtype=np.float32)
        return np.asarray(drawn @ between + mean, dtype=np.float32)

    def photos(of: np.ndarray) -> np.ndarray:
        noise = rng.standard_normal(of.shape, dtype=np.float32) @ within
        return normalise(of + noise)

    vectors = np.empty((SIZE, TEMPLATE_DIM), dtype=np.float32)
    mates = np.sort(rng.choice(SIZE, mated, replace=False).astype(np.int64))
    probes = np.empty((mated, TEMPLATE_DIM), dtype=np.float32)
    chunk = 250_000
    for first in range(0, SIZE, chunk):
        centre = centres(min(chunk, SIZE - first))
        vectors[first : first + centre.shape[0]] = photos(centre)
        inside = (mates >= first) & (mates < first + centre.shape[0])
        probes[inside] = photos(centre[mates[inside] - first])
    order = rng.permutation(mated)
    return Gallery(
        "dlib-like",
        vectors,
        mates[order],
        probes[order],
        photos(centres(LATENCY_QUERIES // 2)),
        f"shipped template space ({space.source})",
    )


def galleries(faces_dir: Path, mated: int, seed: int) -> list[Gallery]:
    vectors, identities = _cached_lfw(faces_dir)
    held_out = _pairs_identities(faces_dir / "lfw_deepfunneled" / "pairsDevTest.txt")
    kept = np.isin(identities, sorted(held_out))
    return [
        _model_gallery(
            "real-fit",
            fit_real(vectors, identities.tolist()),
            mated,
            seed,
            f"{len(vectors)} cached LFW templates",
        ),
        _model_gallery(
            "real-fit, held-out identities",
            fit_real(vectors[kept], identities[kept].tolist()),
            mated,
            seed + 1,
            f"{int(kept.sum())} cached LFW templates of pairsDevTest identities",
        ),
        _dlib_like_gallery(mated, seed + 2),
    ]


def _interleaved_latency(
    index: GalleryIndex, probes: list[int], queries: np.ndarray
) -> list[dict[str, float]]:
    """Single-query latency at each probe count, measured in rounds that visit every count in
    turn (LATENCY_ROUNDS slices of the queries), so a burst of load on this shared machine
    lands on all of them alike instead of on whichever was being timed."""
    times: list[list[float]] = [[] for _ in probes]

    def search(query: np.ndarray) -> Any:
        return index.search(query, K)

    for round_queries in np.array_split(queries, LATENCY_ROUNDS):
        for position, nprobe in enumerate(probes):
            index.reconfigure(replace(index.config, ivfpq_nprobe=nprobe))
            warm_up(search, round_queries[: WARMUP_QUERIES // LATENCY_ROUNDS + 1])
            times[position] += timed_ms(search, round_queries)
    return [latency_stats(t) for t in times]


def measure_gallery(gallery: Gallery, args: argparse.Namespace) -> dict[str, Any]:
    log(f"{gallery.name}: exact reference for {len(gallery.mates):,} mated probes")
    exact_rows, _ = exact_top1(gallery.vectors, gallery.mated_probes)
    exact_found = exact_rows == gallery.mates
    latency_queries = np.empty((LATENCY_QUERIES, TEMPLATE_DIM), dtype=np.float32)
    latency_queries[0::2] = gallery.mated_probes[: LATENCY_QUERIES // 2]
    latency_queries[1::2] = gallery.non_mated
    recall_queries = latency_queries[:RECALL_QUERIES]
    exact_top10 = np.argsort(-(recall_queries @ gallery.vectors.T), axis=1)[:, :K]
    baseline = single_query_latency(exact_single(gallery.vectors), latency_queries[:200])
    log(f"{gallery.name}: exact numpy p50 {baseline['p50']:.1f} ms, p99 {baseline['p99']:.1f}")

    rss_before = rss_bytes()
    start = time.perf_counter()
    index = GalleryIndex(IndexConfig(kind="ivfpq"))
    rows = np.arange(SIZE, dtype=np.int64)
    index.add(rows, rows, gallery.vectors)
    build_s = time.perf_counter() - start
    stats = index.stats()
    build = {
        "build_s": build_s,
        "lists": stats.ivf_lists,
        "memory_bytes": stats.memory_bytes,
        "rss_delta_bytes": rss_bytes() - rss_before,
    }
    if args.save:
        path = Path(args.save)
        path.parent.mkdir(parents=True, exist_ok=True)
        start = time.perf_counter()
        save_index(index, path)
        build["save_s"] = time.perf_counter() - start
        build["file_bytes"] = path.stat().st_size
        del index
        start = time.perf_counter()
        index = load_index(path, MODEL_TAG, IndexConfig(kind="ivfpq"))
        build["load_s"] = time.perf_counter() - start
        path.unlink()
    log(f"{gallery.name}: built {stats.ivf_lists} lists in {build_s:.0f} s")

    probes = [max(1, round(fraction * stats.ivf_lists)) for fraction in PROBE_FRACTIONS]
    latencies = _interleaved_latency(index, probes, latency_queries)
    sweep = []
    for fraction, nprobe, latency in zip(PROBE_FRACTIONS, probes, latencies, strict=True):
        index.reconfigure(replace(index.config, ivfpq_nprobe=nprobe))
        found = np.concatenate(
            [
                index.search(gallery.mated_probes[f : f + 512], K)[1][:, 0]
                for f in range(0, len(gallery.mates), 512)
            ]
        )
        lost = int(np.count_nonzero(exact_found & (found != gallery.mates)))
        gained = int(np.count_nonzero(~exact_found & (found == gallery.mates)))
        top10 = index.search(recall_queries, K)[1]
        recall = float(
            np.mean([len(set(a) & set(b)) / K for a, b in zip(top10, exact_top10, strict=True)])
        )
        loss = lost / max(1, int(exact_found.sum()))
        entry = {
            "probe_fraction": fraction,
            "nprobe": nprobe,
            "default": abs(fraction - IVFPQ_PROBE_FRACTION) < 1e-9,
            "latency_ms": latency,
            "p99_vs_exact_p99": latency["p99"] / baseline["p99"],
            "mates_lost": lost,
            "mates_gained": gained,
            "mate_rank1_loss": loss,
            "recall_at_10": recall,
            "met": latency["p99"] <= TARGET_APPROX_P99_MS and loss <= TARGET_RANK1_LOSS,
        }
        sweep.append(entry)
        log(
            f"{gallery.name}: {fraction:.3f} of lists ({nprobe}): p50 {latency['p50']:.2f} "
            f"p99 {latency['p99']:.2f} ms, lost {lost} ({100 * loss:.3f} %), "
            f"recall@10 {recall:.3f}"
        )
    return {
        "gallery": gallery.name,
        "source": gallery.source,
        "mated_probes": len(gallery.mates),
        "exact_mate_rank1": float(exact_found.mean()),
        "exact_baseline_ms": baseline,
        "build": build,
        "sweep": sweep,
    }


def render(results: dict[str, Any]) -> str:
    target = results["target"]
    lines = [
        f"Target: p99 <= {target['p99_ms']} ms and mate rank-1 loss <= "
        f"{100 * target['mate_rank1_loss']:.1f} % against exact, at 1,000,000 templates, k = 10, "
        f"{results['threads']} thread(s). Shipped default: "
        f"{100 * results['default_probe_fraction']:.1f} % of the lists.",
        "",
    ]
    for run in results["galleries"]:
        build = run["build"]
        base = run["exact_baseline_ms"]
        lines += [
            f"## {run['gallery']}",
            "",
            f"Source: {run['source']}. Exact search finds {100 * run['exact_mate_rank1']:.2f} % "
            f"of {run['mated_probes']:,} mates at rank 1; exact numpy sgemv p50 "
            f"{base['p50']:.1f} ms, p99 {base['p99']:.1f} ms. Built {build['lists']} lists in "
            f"{build['build_s']:.0f} s; index memory {build['memory_bytes'] / 1e6:.0f} MB"
            + (
                f"; saved in {build['save_s']:.1f} s ({build['file_bytes'] / 1e6:.0f} MB), "
                f"loaded in {build['load_s']:.1f} s"
                if "load_s" in build
                else ""
            )
            + ".",
            "",
            markdown_table(
                [
                    "lists visited",
                    "p50 ms",
                    "p95 ms",
                    "p99 ms",
                    "p99 / exact p99",
                    "mates lost",
                    "loss %",
                    "recall@10",
                    "target",
                ],
                [
                    [
                        f"{100 * s['probe_fraction']:.1f} % ({s['nprobe']})"
                        + (" default" if s["default"] else ""),
                        f"{s['latency_ms']['p50']:.2f}",
                        f"{s['latency_ms']['p95']:.2f}",
                        f"{s['latency_ms']['p99']:.2f}",
                        f"{s['p99_vs_exact_p99']:.3f}",
                        s["mates_lost"],
                        f"{100 * s['mate_rank1_loss']:.3f}",
                        f"{s['recall_at_10']:.3f}",
                        "MET" if s["met"] else "not met",
                    ]
                    for s in run["sweep"]
                ],
            ),
            "",
        ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--faces-dir", default=str(DEFAULT_FACES_DIR))
    parser.add_argument("--mates", type=int, default=20_000)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--seed", type=int, default=11)
    parser.add_argument("--save", default="/tmp/wajah-bench/ivfpq-1m.wajah-index")
    parser.add_argument("--only", nargs="*", default=[], help="gallery names to run")
    parser.add_argument("--out", default=str(RESULTS_DIR))
    args = parser.parse_args(argv)
    context = RunContext("ivfpq-1m", command_line())
    faiss.omp_set_num_threads(args.threads)
    runs = []
    for position, gallery in enumerate(galleries(Path(args.faces_dir), args.mates, args.seed)):
        if args.only and gallery.name not in args.only:
            continue
        if position:
            args.save = ""  # save / load timed once, on the first gallery
        with threadpool_limits(limits=args.threads):
            runs.append(measure_gallery(gallery, args))
        del gallery
    results = {
        "size": SIZE,
        "k": K,
        "threads": args.threads,
        "default_probe_fraction": IVFPQ_PROBE_FRACTION,
        "target": {"p99_ms": TARGET_APPROX_P99_MS, "mate_rank1_loss": TARGET_RANK1_LOSS},
        "galleries": runs,
    }
    written = write_report(
        Path(args.out), context, results, render(results), "Wajah ivfpq at 1M templates"
    )
    log(f"wrote {written.markdown_path}")


if __name__ == "__main__":
    main()
