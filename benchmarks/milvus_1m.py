"""The "milvus" index kind at 1M templates beside FAISS "flat" and "ivfpq", in one run.

``python -m wajah.benchmarks.milvus_1m`` builds three ``GalleryIndex`` over the same ``dlib-like``
gallery of ``benchmarks.ivfpq_1m`` (identity centres and photo scatter from the shipped
template space, enrolled template and probe both a photo off the centre: the hardest of its
three galleries, and the one that needs no cache of real LFW templates) and measures, for
each: build (insert) time, memory, single-query latency of ``GalleryIndex.search`` (k = 10)
and, against exact search on the same queries, recall@10 and mates lost at rank 1 (a mate
exact search ranks first and the index does not).

The Milvus path is milvus-lite (pure Python since 3.x, one FAISS IVF_FLAT per segment of
<= 100k rows) serving a local ``.db`` directory in this process, reached through pymilvus's
gRPC adapter: what this machine can run. Its memory is this process's resident-set growth
while the collection was filled and searched (milvus-lite runs in process) and the size of
its directory on disk; FAISS memory is ``IndexStats.memory_bytes``.
"""

from __future__ import annotations

import argparse
import os
import shutil
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import faiss
import numpy as np
from threadpoolctl import threadpool_limits

from wajah.benchmarks.ivfpq_1m import _dlib_like_gallery
from wajah.benchmarks.report import (
    RunContext,
    command_line,
    markdown_table,
    rss_bytes,
    write_report,
)
from wajah.benchmarks.studies import (
    RESULTS_DIR,
    K,
    exact_single,
    exact_top1,
    latency_stats,
    log,
    timed_ms,
    warm_up,
)
from wajah.matcher.accelerators.milvus import close_clients
from wajah.matcher.config import IndexConfig
from wajah.matcher.index import GalleryIndex


def _directory_bytes(path: Path) -> int:
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file())


def _quality(
    index: GalleryIndex,
    probes: np.ndarray,
    mates: np.ndarray,
    exact_found: np.ndarray,
    recall_queries: np.ndarray,
    exact_top10: np.ndarray,
) -> dict[str, Any]:
    found = np.concatenate(
        [index.search(probes[f : f + 256], K)[1][:, 0] for f in range(0, len(probes), 256)]
    )
    lost = int(np.count_nonzero(exact_found & (found != mates)))
    top10 = index.search(recall_queries, K)[1]
    recall = float(
        np.mean([len(set(a) & set(b)) / K for a, b in zip(top10, exact_top10, strict=True)])
    )
    return {
        "mates_lost": lost,
        "mate_rank1_loss": lost / max(1, int(exact_found.sum())),
        "recall_at_10": recall,
    }


def _latency(index: GalleryIndex, queries: np.ndarray) -> dict[str, float]:
    def search(query: np.ndarray) -> Any:
        return index.search(query, K)

    warm_up(search, queries[:5])
    return latency_stats(timed_ms(search, queries))


def measure(args: argparse.Namespace) -> dict[str, Any]:
    gallery = _dlib_like_gallery(args.mates, args.seed)
    size = args.size
    vectors = np.ascontiguousarray(gallery.vectors[:size])
    keep = gallery.mates < size
    mates, probes = gallery.mates[keep], gallery.mated_probes[keep]
    del gallery
    log(f"dlib-like gallery of {size:,}; {len(mates):,} mated probes")
    exact_rows, _ = exact_top1(vectors, probes)
    exact_found = exact_rows == mates
    rng = np.random.default_rng(args.seed)
    latency_queries = probes[rng.permutation(len(probes))[: args.latency_queries]]
    recall_queries = latency_queries[: args.recall_queries]
    exact_top10 = np.argsort(-(recall_queries @ vectors.T), axis=1)[:, :K]
    baseline = latency_stats(timed_ms(exact_single(vectors), latency_queries))
    ids = np.arange(size, dtype=np.int64)

    runs: list[dict[str, Any]] = []
    results = {
        "size": size,
        "k": K,
        "threads": args.threads,
        "mated_probes": len(mates),
        "exact_mate_rank1": float(exact_found.mean()),
        "latency_queries": len(latency_queries),
        "recall_queries": len(recall_queries),
        "exact_numpy_baseline_ms": baseline,
        "load_average_at_start": args.load_at_start,
        "runs": runs,
    }
    configs: list[tuple[str, IndexConfig, list[dict[str, Any]]]] = []
    milvus_dir = Path(args.milvus_dir)
    if milvus_dir.exists():
        shutil.rmtree(milvus_dir)
    milvus_dir.parent.mkdir(parents=True, exist_ok=True)
    milvus = IndexConfig(
        "milvus",
        milvus_uri=str(milvus_dir),
        milvus_collection="bench_1m",
        milvus_index_type="IVF_FLAT",
        milvus_nlist=args.nlist,
    )
    # Milvus first: the slowest to build and search here, and what this study is for; the
    # report is rewritten after each backend, so a run cut short still leaves its figures.
    configs.append(
        (
            f"milvus-lite IVF_FLAT nlist {args.nlist}",
            milvus,
            [{"milvus_nprobe": p} for p in args.nprobe],
        )
    )
    configs += [
        ("faiss flat (exact)", IndexConfig("flat"), [{}]),
        ("faiss ivfpq", IndexConfig("ivfpq"), [{}]),
    ]
    for name, config, variants in configs:
        rss_before = rss_bytes()
        start = time.perf_counter()
        index = GalleryIndex(config)
        for first in range(0, size, 100_000):
            index.add(
                ids[first : first + 100_000],
                ids[first : first + 100_000],
                vectors[first : first + 100_000],
            )
        build_s = time.perf_counter() - start
        log(f"{name}: built in {build_s:.0f} s")
        first_search_start = time.perf_counter()
        index.search(latency_queries[0], K)  # milvus-lite seals and indexes segments here
        first_search_s = time.perf_counter() - first_search_start
        stats = index.stats()
        for variant in variants:
            if variant:
                index.reconfigure(replace(index.config, **variant))
            latency = _latency(index, latency_queries)
            quality = _quality(index, probes, mates, exact_found, recall_queries, exact_top10)
            entry = {
                "backend": name,
                "variant": variant,
                "build_s": build_s,
                "first_search_s": first_search_s,
                "index_memory_bytes": stats.memory_bytes,
                "rss_delta_bytes": rss_bytes() - rss_before,
                "latency_ms": latency,
                **quality,
            }
            if config.kind == "milvus":
                entry["milvus_disk_bytes"] = _directory_bytes(milvus_dir)
            runs.append(entry)
            log(
                f"{name} {variant}: p50 {latency['p50']:.1f} p99 {latency['p99']:.1f} ms, "
                f"lost {quality['mates_lost']}, recall@10 {quality['recall_at_10']:.3f}, "
                f"rss +{entry['rss_delta_bytes'] / 2**20:.0f} MiB"
            )
        del index
        if config.kind == "milvus":
            close_clients()
        results["load_average_at_end"] = list(os.getloadavg())
        args.checkpoint(results)
    return results


def render(results: dict[str, Any]) -> str:
    base = results["exact_numpy_baseline_ms"]
    rows = []
    for run in results["runs"]:
        latency = run["latency_ms"]
        extra = f" {run['variant']}" if run["variant"] else ""
        memory = run["index_memory_bytes"] if run["index_memory_bytes"] else 0
        rows.append(
            [
                run["backend"] + extra,
                f"{run['build_s']:.0f}",
                f"{run['first_search_s']:.1f}",
                f"{latency['p50']:.2f}",
                f"{latency['p99']:.2f}",
                f"{run['recall_at_10']:.3f}",
                f"{run['mates_lost']} ({100 * run['mate_rank1_loss']:.2f} %)",
                f"{memory / 2**20:.0f}",
                f"{run['rss_delta_bytes'] / 2**20:.0f}",
                f"{run.get('milvus_disk_bytes', 0) / 2**20:.0f}",
            ]
        )
    table = markdown_table(
        [
            "backend",
            "build s",
            "first search s",
            "p50 ms",
            "p99 ms",
            "recall@10",
            "mates lost",
            "index MiB",
            "RSS growth MiB",
            "Milvus disk MiB",
        ],
        rows,
    )
    return "\n".join(
        [
            f"{results['size']:,} dlib-like templates, k = {results['k']}, "
            f"{results['threads']} threads, {results['mated_probes']:,} mated probes "
            f"(exact rank-1 {100 * results['exact_mate_rank1']:.1f} %), "
            f"{results['latency_queries']} single-query latencies, recall@10 on "
            f"{results['recall_queries']} queries.",
            "",
            f"Baseline (floor of exactness): numpy exact search p50 {base['p50']:.1f} ms, "
            f"p99 {base['p99']:.1f} ms.",
            f"Load average at start {results['load_average_at_start']}, at end "
            f"{[round(x, 2) for x in results['load_average_at_end']]} (2 cores, shared).",
            "",
            table,
            "",
            "Index MiB: `IndexStats.memory_bytes` (the float rows every kind keeps for exact "
            "re-scoring, plus the FAISS structure; 0 extra for Milvus, whose vectors live in "
            "the collection). RSS growth: this process while building and searching "
            "(milvus-lite runs in process, so for Milvus it includes the engine's copy).",
        ]
    )


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--size", type=int, default=1_000_000)
    parser.add_argument("--mates", type=int, default=2_000)
    parser.add_argument("--latency-queries", type=int, default=100)
    parser.add_argument("--recall-queries", type=int, default=100)
    parser.add_argument("--nlist", type=int, default=1024)
    parser.add_argument("--nprobe", type=int, nargs="+", default=[64, 256])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--seed", type=int, default=11)
    parser.add_argument("--milvus-dir", default="/tmp/wajah-bench/milvus-1m.db")
    parser.add_argument("--out", default=str(RESULTS_DIR))
    args = parser.parse_args(argv)
    args.load_at_start = [round(x, 2) for x in os.getloadavg()]
    name = "milvus-1m" if args.size == 1_000_000 else f"milvus-{args.size // 1000}k"
    context = RunContext(name, command_line())
    faiss.omp_set_num_threads(args.threads)

    def checkpoint(results: dict[str, Any]) -> None:
        written = write_report(
            Path(args.out), context, results, render(results), "Wajah on Milvus beside FAISS"
        )
        log(f"wrote {written.markdown_path}")

    args.checkpoint = checkpoint
    with threadpool_limits(limits=args.threads):
        measure(args)


if __name__ == "__main__":
    main()
