"""Tables and plots of a ``wajah bench match`` run (the figures come from
:mod:`wajah.benchmarks.match`)."""

from __future__ import annotations

from typing import Any

from wajah.benchmarks.report import DATA_CAVEAT, markdown_table, verdict

# Targets from the "Benchmarks for ops" issue; benchmarks.match judges them with these.
TARGET_EXACT_FLOOR_MULTIPLE = 1.2
TARGET_APPROX_P99_MS = 2.0
TARGET_RANK1_LOSS = 0.001
TARGET_10M_BYTES = 4 * 10**9


def _floor_ms(run: dict[str, Any], method: dict[str, Any], bandwidth: float) -> float:
    read = float(method["bytes_read_per_query"] or run["gallery_float_bytes"])
    return 1000.0 * read / bandwidth


def _ms(value: float) -> str:
    return f"{value:.3g}"


def render_markdown(results: dict[str, Any]) -> str:
    bandwidth = results["bandwidth"]
    best = bandwidth["best_bytes_per_s"]
    lines = [
        f"Real-fit galleries are modelled on templates of real photos. {DATA_CAVEAT}",
        "",
        "## Physical floor",
        "",
        f"Read bandwidth, best of 5 over {bandwidth['array_bytes'] / 2**30:.0f} GiB: numpy sum "
        f"{bandwidth['numpy_sum_bytes_per_s'] / 1e9:.1f} GB/s, faiss fvec_norms_L2sqr "
        f"{bandwidth['faiss_norms_bytes_per_s'] / 1e9:.1f} GB/s; the floor uses the best, "
        f"{best / 1e9:.1f} GB/s. Floor = one read of the bytes an exhaustive query must stream "
        "(512 B a float template, 128 B an sq8 code).",
        "",
        "## Distributions",
        "",
    ]
    rows = []
    for model in results["models"]:
        check = results["model_check"][model["name"]]
        rows.append(
            [
                model["name"],
                f"{check['genuine_median']:.3f}",
                "n/a"
                if model["real_genuine_median"] is None
                else f"{model['real_genuine_median']:.3f}",
                f"{check['impostor_median']:.3f}",
                "n/a"
                if model["real_impostor_median"] is None
                else f"{model['real_impostor_median']:.3f}",
            ]
        )
    lines.append(
        markdown_table(
            [
                "model",
                "mated cosine median (model)",
                "(real photos)",
                "non-mated cosine median (model)",
                "(real photos)",
            ],
            rows,
        )
    )
    lines += ["## Targets", ""]
    rows = []
    for distribution, target in results["targets"].items():
        if distribution == "memory_10m":
            continue
        exact = target["exact_single_query"]
        rows.append(
            [
                f"exact {target['size']:,} single query <= {TARGET_EXACT_FLOOR_MULTIPLE}x "
                f"floor ({distribution})",
                f"{exact['method']}, {exact['threads']} thread(s): p50 {_ms(exact['p50_ms'])} "
                f"ms = {exact['floor_multiple']:.2f}x floor {_ms(exact['floor_ms'])} ms",
                verdict(exact["met"]),
            ]
        )
        for approx in target["approximate_at_largest"]:
            rows.append(
                [
                    f"approx/compressed {target['size']:,}: p99 <= {TARGET_APPROX_P99_MS} ms "
                    f"and mate rank-1 loss <= {100 * TARGET_RANK1_LOSS:g} % ({distribution})",
                    f"{approx['method']}: p99 {_ms(approx['p99_ms'])} ms, loss "
                    f"{100 * approx['mate_rank1_loss']:.2f} %",
                    verdict(approx["met"])
                    if approx.get("resolved", True)
                    else f"UNRESOLVED: {approx['mated_probes']} mated probes cannot show "
                    f"<= {100 * TARGET_RANK1_LOSS:g} % (see latest-ivfpq-1m.md)",
                ]
            )
    for name, entry in results["targets"]["memory_10m"].items():
        rows.append(
            [
                f"10M templates <= 4 GB: {name}",
                f"{entry['bytes'] / 1e9:.2f} GB",
                verdict(entry["met"]),
            ]
        )
    lines.append(markdown_table(["target", "measured", "verdict"], rows))
    for run in results["runs"]:
        reference = run["methods"][0]
        lines += [
            f"## {run['distribution']}, {run['size']:,} templates, k={results['options']['k']}",
            "",
            f"Floor (one read of {run['gallery_float_bytes'] / 1e6:.0f} MB): "
            f"{_ms(1000 * run['gallery_float_bytes'] / best)} ms. Latency: "
            f"{results['options']['single_queries']} single queries; ratio = multiple of "
            "the method's floor. Batch QPS: batches of "
            f"{results['options']['batch_size']}; ratio = vs exact numpy, same threads.",
            "",
        ]
        rows = []
        for method in run["methods"]:
            if not method["latency_ms"]:
                rows.append(
                    [method["method"], "-", "-", "-", "-", "-", "-", "-", "-", "-", method["note"]]
                )
                continue
            floor = _floor_ms(run, method, best)
            for threads, stats in method["latency_ms"].items():
                qps = method["batch_qps"][threads]
                base_qps = reference["batch_qps"][threads]
                floor_note = (
                    f" ({stats['p50'] / floor:.2f}x)" if method["bytes_read_per_query"] else ""
                )
                rows.append(
                    [
                        method["method"],
                        threads,
                        "-" if not method["build_s"] else f"{method['build_s']:.1f}",
                        f"{method['memory_bytes'] / 1e6:.0f}",
                        f"{_ms(stats['p50'])}{floor_note}",
                        _ms(stats["p95"]),
                        _ms(stats["p99"]),
                        f"{qps:.0f} ({qps / base_qps:.2f}x)",
                        f"{method['recall_at_1']:.4f} / {method['recall_at_k']:.4f}",
                        f"{method['mate_rank1']:.4f} "
                        f"({method['mate_rank1'] - reference['mate_rank1']:+.4f})",
                        method["note"],
                    ]
                )
        lines.append(
            markdown_table(
                [
                    "method",
                    "threads",
                    "build s",
                    "memory MB",
                    "p50 ms (x floor)",
                    "p95 ms",
                    "p99 ms",
                    "batch QPS (x exact)",
                    f"recall@1 / @{results['options']['k']} vs exact",
                    "mate rank-1 (vs exact)",
                    "note",
                ],
                rows,
            )
        )
    if "ten_million" in results:
        ten = results["ten_million"]
        lines += [
            "## 10M (sq8, measured)",
            "",
            f"Built in {ten['build_s']:.0f} s; index memory {ten['memory_bytes'] / 1e9:.2f} GB "
            f"(RSS grew {ten['rss_delta_bytes'] / 1e9:.2f} GB); single query p50 "
            f"{_ms(ten['latency_ms']['p50'])} ms, p99 {_ms(ten['latency_ms']['p99'])} ms "
            f"({ten['threads']} threads); mate rank-1 {ten['mate_rank1']:.3f} on "
            f"{ten['latency_ms']['n']} probes.",
            "",
        ]
    lines += [
        "Known traps (measured by the matcher engineer, see matcher/index.py): faiss "
        "IndexFlat does not use BLAS for small batches unless "
        "`distance_compute_blas_threshold` is lowered (GalleryIndex lowers it for batches of "
        ">= 3); more OpenMP threads do not speed up single exact queries.",
        "",
    ]
    return "\n".join(lines)


def render_plots(results: dict[str, Any]) -> dict[str, Any]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(1, 2, figsize=(12, 4.5), sharey=True)
    best = results["bandwidth"]["best_bytes_per_s"]
    for axis, model in zip(axes, results["models"], strict=False):
        runs = [r for r in results["runs"] if r["distribution"] == model["name"]]
        sizes = [r["size"] for r in runs]
        names = [m["method"] for m in runs[0]["methods"]] if runs else []
        for name in names:
            points = []
            for run in runs:
                method = next(m for m in run["methods"] if m["method"] == name)
                if method["latency_ms"]:
                    points.append(
                        (run["size"], min(v["p50"] for v in method["latency_ms"].values()))
                    )
            if points:
                axis.plot(*zip(*points, strict=True), marker="o", label=name)
        axis.plot(sizes, [1000 * s * 512 / best for s in sizes], "k--", label="floor (float32)")
        axis.set_xscale("log")
        axis.set_yscale("log")
        axis.set_xlabel("gallery size")
        axis.set_title(f"{model['name']}: single-query p50 (best thread count)")
        axis.grid(True, which="both", alpha=0.3)
    axes[0].set_ylabel("ms")
    axes[0].legend(fontsize=7)
    return {"latency": figure}
