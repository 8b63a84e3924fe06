"""``wajah bench accuracy``: verification and identification accuracy on a labeled folder, in the
terms of ISO/IEC 19795-1, for Wajah's pipeline beside the plain dlib pipeline.

Acquisition (both pipelines, cached per photo) is in :mod:`wajah.benchmarks.acquisition`; the error
arithmetic in :mod:`wajah.benchmarks.metrics`. Comparison scores are taken on the photos BOTH
pipelines acquired, so the two are compared on the same trials; each one's failures to acquire
are reported separately.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from wajah.benchmarks import metrics
from wajah.benchmarks.acquisition import (
    PLAIN_DLIB_DISTANCE_THRESHOLD,
    AcquisitionRun,
    PhotoOutcome,
    acquire,
)
from wajah.benchmarks.report import DATA_CAVEAT, markdown_table
from wajah.biometric.datasets import LabeledPhoto, PhotoPair, list_labeled_photos, read_lfw_pairs
from wajah.matcher import calibration

FMR_TARGETS = (1e-2, 1e-3, 1e-4)
FPIR_TARGETS = (1e-2, 1e-3)
PIPELINES = ("wajah", "plain_dlib")


@dataclass(frozen=True)
class AccuracyOptions:
    data_dir: Path
    cache_dir: Path
    pairs_file: Path | None = None
    limit_identities: int | None = None
    workers: int = 2
    bootstrap_replicates: int = 200
    seed: int = 0


def select_photos(
    photos: Sequence[LabeledPhoto], limit: int | None, priority: set[str]
) -> list[LabeledPhoto]:
    """The photos of the first ``limit`` identities: those in ``priority`` (the pairs file's)
    first, then the rest, each group in name order (never chosen by photo count)."""
    if limit is None:
        return list(photos)
    names = sorted({p.identity for p in photos})
    ordered = [n for n in names if n in priority] + [n for n in names if n not in priority]
    keep = set(ordered[:limit])
    return [p for p in photos if p.identity in keep]


def _pairwise(vectors: np.ndarray, pipeline: str) -> np.ndarray:
    """(n, n) comparison scores, higher = more alike: cosine for Wajah, -L2 for plain dlib."""
    if pipeline == "wajah":
        return np.asarray(vectors @ vectors.T, np.float64)
    squared = np.sum(vectors.astype(np.float64) ** 2, axis=1)
    gram = vectors.astype(np.float64) @ vectors.T.astype(np.float64)
    distances = np.sqrt(np.maximum(squared[:, None] + squared[None, :] - 2 * gram, 0.0))
    return np.asarray(-distances, np.float64)


def _vector(outcome: PhotoOutcome, pipeline: str) -> np.ndarray | None:
    return outcome.template_array() if pipeline == "wajah" else outcome.plain_array()


def _score_sets(
    vectors: np.ndarray, subjects: np.ndarray, pipeline: str
) -> tuple[calibration.ScoreSet, np.ndarray]:
    scores = _pairwise(vectors, pipeline)
    upper_i, upper_j = np.triu_indices(vectors.shape[0], k=1)
    values = scores[upper_i, upper_j]
    same = subjects[upper_i] == subjects[upper_j]
    pairs = np.stack([subjects[upper_i], subjects[upper_j]], axis=1)
    score_set = calibration.ScoreSet.build(
        values[same], values[~same], subjects[upper_i][same], pairs[~same]
    )
    return score_set, scores


def _verification(
    score_set: calibration.ScoreSet, subjects: int, options: AccuracyOptions
) -> dict[str, Any]:
    eer = calibration.equal_error_rate(score_set)
    intervals = calibration.subject_bootstrap(
        score_set, subjects, FMR_TARGETS, options.bootstrap_replicates, options.seed
    )
    points = []
    for target in FMR_TARGETS:
        point = calibration.fnmr_at_fmr(score_set, target)
        interval = intervals[f"fnmr@{target:g}"]
        points.append(
            {
                "target_fmr": target,
                "threshold": point.threshold,
                "fmr": point.fmr,
                "fmr_text": point.fmr_text(),
                "fnmr": point.fnmr,
                "fnmr_text": point.fnmr_text(),
                "fnmr_ci95": [interval.low, interval.high],
                "resolvable": point.resolvable,
                "impostor_trials": point.impostor_trials,
                "genuine_trials": point.genuine_trials,
            }
        )
    return {
        "genuine_trials": int(score_set.genuine.shape[0]),
        "impostor_trials": int(score_set.impostor.shape[0]),
        "eer": eer.rate,
        "eer_threshold": eer.threshold,
        "eer_ci95": [intervals["eer"].low, intervals["eer"].high],
        "operating_points": points,
        "genuine_median": float(np.median(score_set.genuine)),
        "impostor_median": float(np.median(score_set.impostor)),
    }


def _identification(
    scores: np.ndarray, identities: Sequence[str]
) -> tuple[metrics.IdentificationResult, dict[str, int]]:
    """One photo per identity enrolled (the first by path), the others mated probes;
    identities with one photo are non-mated probes and are not enrolled."""
    rows_of: dict[str, list[int]] = {}
    for row, identity in enumerate(identities):
        rows_of.setdefault(identity, []).append(row)
    enrolled = [rows[0] for rows in rows_of.values() if len(rows) >= 2]
    column_of = {identities[row]: column for column, row in enumerate(enrolled)}
    mated = [r for rows in rows_of.values() if len(rows) >= 2 for r in rows[1:]]
    non_mated = [rows[0] for rows in rows_of.values() if len(rows) == 1]
    result = metrics.open_set_identification(
        scores[np.ix_(mated, enrolled)],
        np.array([column_of[identities[r]] for r in mated], np.int64),
        scores[np.ix_(non_mated, enrolled)],
        FPIR_TARGETS,
    )
    return result, {"enrolled": len(enrolled), "mated": len(mated), "non_mated": len(non_mated)}


def _acquisition_rates(outcomes: Sequence[PhotoOutcome]) -> dict[str, Any]:
    total = len(outcomes)
    found: dict[str, Any] = {"photos": total}
    for pipeline, attribute in (("wajah", "wajah_status"), ("plain_dlib", "plain_status")):
        statuses = Counter(getattr(o, attribute) for o in outcomes)
        failures = total - statuses["ok"]
        found[pipeline] = {
            "failure_to_acquire": failures / total if total else float("nan"),
            "failure_to_acquire_text": calibration.format_rate(failures, total),
            "no_face": statuses["no_face"],
            "decode_error": statuses["decode_error"],
        }
    acquired = [o for o in outcomes if o.wajah_status == "ok"]
    for profile in ("enrollment", "scan"):
        refused = [o for o in acquired if getattr(o, f"{profile}_usable") is False]
        reasons = Counter(r for o in refused for r in getattr(o, f"{profile}_failing"))
        found["wajah"][f"failure_to_enrol_{profile}"] = (
            len(refused) / len(acquired) if acquired else float("nan")
        )
        found["wajah"][f"failure_to_enrol_{profile}_text"] = calibration.format_rate(
            len(refused), len(acquired)
        )
        found["wajah"][f"refusal_reasons_{profile}"] = dict(reasons.most_common())
    return found


def _lfw_protocol(
    pairs_file: Path, pairs: Sequence[PhotoPair], by_path: dict[Path, PhotoOutcome]
) -> dict[str, Any]:
    same = np.array([p.same_identity for p in pairs], bool)
    found: dict[str, Any] = {
        "pairs_file": str(pairs_file),
        "pairs": len(pairs),
        "pairs_in_file": len(read_lfw_pairs(pairs_file, pairs_file.parent)),
    }
    for pipeline in PIPELINES:
        scores = np.full(len(pairs), -np.inf)
        for position, pair in enumerate(pairs):
            first, second = by_path.get(pair.first), by_path.get(pair.second)
            a = _vector(first, pipeline) if first else None
            b = _vector(second, pipeline) if second else None
            if a is not None and b is not None:
                scores[position] = (
                    float(a @ b) if pipeline == "wajah" else -float(np.linalg.norm(a - b))
                )
        ten_fold = metrics.lfw_ten_fold(scores, same)
        entry: dict[str, Any] = {
            "pairs_without_template": int(np.sum(~np.isfinite(scores))),
            "ten_fold_accuracy_mean": ten_fold.mean,
            "ten_fold_accuracy_std": ten_fold.std,
            "fold_accuracies": list(ten_fold.fold_accuracies),
            "fold_thresholds": list(ten_fold.fold_thresholds),
        }
        if pipeline == "plain_dlib":
            fixed = float(np.mean((scores >= -PLAIN_DLIB_DISTANCE_THRESHOLD) == same))
            entry["accuracy_at_l2_0.6"] = fixed
        found[pipeline] = entry
    return found


def _plots(score_sets: dict[str, calibration.ScoreSet], title_suffix: str) -> dict[str, Any]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    histogram, axes = plt.subplots(1, 2, figsize=(11, 4))
    for axis, pipeline in zip(axes, PIPELINES, strict=True):
        score_set = score_sets[pipeline]
        sign = 1.0 if pipeline == "wajah" else -1.0  # plain dlib: show the L2 distance
        axis.hist(sign * score_set.impostor, bins=120, density=True, alpha=0.6, label="impostor")
        axis.hist(sign * score_set.genuine, bins=120, density=True, alpha=0.6, label="genuine")
        axis.set_xlabel("cosine similarity" if pipeline == "wajah" else "L2 distance (raw)")
        if pipeline == "plain_dlib":
            axis.axvline(PLAIN_DLIB_DISTANCE_THRESHOLD, color="k", ls="--", label="0.6")
        axis.set_title(f"{pipeline}{title_suffix}")
        axis.legend()
    det, det_axis = plt.subplots(figsize=(6, 5))
    for pipeline in PIPELINES:
        fmr, fnmr = calibration.det_points(score_sets[pipeline])
        keep = (fmr > 0) & (fnmr > 0)
        det_axis.plot(fmr[keep], fnmr[keep], label=pipeline)
    det_axis.set_xscale("log")
    det_axis.set_yscale("log")
    det_axis.set_xlabel("FMR")
    det_axis.set_ylabel("FNMR")
    det_axis.grid(True, which="both", alpha=0.3)
    det_axis.set_title(f"DET{title_suffix}")
    det_axis.legend()
    return {"scores": histogram, "det": det}


def run_accuracy(
    options: AccuracyOptions, progress: Callable[[int, int], None] | None = None
) -> tuple[dict[str, Any], str, dict[str, Any]]:
    """Run the benchmark; returns (results, Markdown body, plots)."""
    start = time.perf_counter()
    photos = list_labeled_photos(options.data_dir)
    priority: set[str] = set()
    pairs: list[PhotoPair] = []
    if options.pairs_file is not None:
        pairs = read_lfw_pairs(options.pairs_file, options.data_dir)
        priority = {p.first.parent.name for p in pairs} | {p.second.parent.name for p in pairs}
    selected = select_photos(photos, options.limit_identities, priority)
    paths = [p.path for p in selected]
    kept_pairs: list[PhotoPair] = []
    if options.pairs_file is not None:
        # With a limit, only pairs whose identities are all in the selection are kept.
        chosen = {p.identity for p in selected}
        kept_pairs = [p for p in pairs if {p.first.parent.name, p.second.parent.name} <= chosen]
        pair_paths = {q for p in kept_pairs for q in (p.first, p.second)}
        paths += sorted(pair_paths - set(paths))
    run: AcquisitionRun = acquire(paths, options.cache_dir, options.workers, progress)
    outcomes = run.outcomes[: len(selected)]
    by_path = dict(zip(paths, run.outcomes, strict=True))

    both = [
        (photo, outcome)
        for photo, outcome in zip(selected, outcomes, strict=True)
        if outcome.wajah_status == "ok" and outcome.plain_status == "ok"
    ]
    identities = [photo.identity for photo, _ in both]
    subject_index = {name: i for i, name in enumerate(sorted(set(identities)))}
    subjects = np.array([subject_index[n] for n in identities], np.int64)
    results: dict[str, Any] = {
        "data_dir": str(options.data_dir),
        "identities_total": len({p.identity for p in photos}),
        "identities_used": len({p.identity for p in selected}),
        "limit_identities": options.limit_identities,
        "photos_used": len(selected),
        "acquisition": _acquisition_rates(outcomes),
        "compared_photos": len(both),
        "compared_subjects": len(subject_index),
        "timing": {
            "acquisition_wall_s": run.wall_seconds,
            "cache_hits": run.cache_hits,
            "computed": run.computed,
            "workers": run.workers,
            "cold_worker_seconds_sum": float(sum(o.worker_seconds for o in run.outcomes)),
            "chips_identical": int(sum(o.chips_identical for o in run.outcomes)),
            "embed_calls": int(sum(o.embed_calls for o in run.outcomes)),
            "engine_check_max_abs_diff": max(
                (
                    o.engine_check_max_abs_diff
                    for o in run.outcomes
                    if o.engine_check_max_abs_diff is not None
                ),
                default=None,
            ),
        },
    }
    score_sets: dict[str, calibration.ScoreSet] = {}
    for pipeline in PIPELINES:
        vectors = np.stack([_vector(o, pipeline) for _, o in both])  # type: ignore[misc]
        score_set, matrix = _score_sets(vectors, subjects, pipeline)
        score_sets[pipeline] = score_set
        entry = _verification(score_set, len(subject_index), options)
        identification, counts = _identification(matrix, identities)
        entry["identification"] = {
            **counts,
            "rank1_rate": identification.rank1_rate,
            "rank1_hits": identification.rank1_hits,
            "points": [
                {
                    "target_fpir": p.target_fpir,
                    "threshold": p.threshold,
                    "fpir": p.fpir,
                    "fpir_text": calibration.format_rate(p.false_positives, p.non_mated_searches),
                    "fnir": p.fnir,
                    "fnir_text": calibration.format_rate(p.misses, p.mated_searches),
                    "resolvable": p.resolvable,
                }
                for p in identification.points
            ],
        }
        if pipeline == "plain_dlib":
            false_matches, false_non_matches = calibration.rates_at_threshold(
                score_set, -PLAIN_DLIB_DISTANCE_THRESHOLD
            )
            entry["at_l2_0.6"] = {
                "fmr_text": calibration.format_rate(false_matches, entry["impostor_trials"]),
                "fnmr_text": calibration.format_rate(false_non_matches, entry["genuine_trials"]),
            }
        results[pipeline] = entry
    if options.pairs_file is not None:
        results["lfw_protocol"] = _lfw_protocol(options.pairs_file, kept_pairs, by_path)
    results["analysis_s"] = time.perf_counter() - start - run.wall_seconds
    results["caveat"] = DATA_CAVEAT
    return results, _markdown(results), _plots(score_sets, f" ({options.data_dir.name})")


def _pct(value: float | None) -> str:
    return "n/a" if value is None or not np.isfinite(value) else f"{100 * value:.3g} %"


def _markdown(results: dict[str, Any]) -> str:
    acquisition = results["acquisition"]
    timing = results["timing"]
    lines = [
        f"**{DATA_CAVEAT}**",
        "",
        f"Data: `{results['data_dir']}`, {results['identities_used']} of "
        f"{results['identities_total']} identities"
        + (
            f" (limited with --limit-identities {results['limit_identities']}: the pairs file's "
            "identities first, then the rest in name order)"
            if results["limit_identities"]
            else ""
        )
        + f", {results['photos_used']} photos. Scores are compared on the "
        f"{results['compared_photos']} photos ({results['compared_subjects']} subjects) that both "
        "pipelines acquired.",
        "",
        "Wajah = decode -> HOG detect (size policy) -> 68/5 landmarks -> quality -> 5-point chip "
        "-> ResNet, cosine similarity. Plain dlib = PIL decode -> HOG upsample 1 -> largest face "
        "-> 5-point chip -> ResNet, raw L2 distance <= 0.6. Same network: the descriptor is "
        "computed once when both pipelines cut the byte-identical chip "
        f"({timing['chips_identical']} of {acquisition['photos']} photos; they differ mostly "
        "because Wajah's face box is one pixel larger, which moves the 5 landmarks slightly). "
        f"Check: engine embedding vs shared embedding max |diff| = "
        f"{timing['engine_check_max_abs_diff']}.",
        "",
        "## Acquisition (ISO/IEC 19795-1 FTA / FTE)",
        "",
    ]
    wajah = acquisition["wajah"]
    plain = acquisition["plain_dlib"]
    rows = [
        [
            "failure to acquire (no face or decode error)",
            wajah["failure_to_acquire_text"],
            plain["failure_to_acquire_text"],
        ],
        ["  of which no face", wajah["no_face"], plain["no_face"]],
        ["  of which decode error", wajah["decode_error"], plain["decode_error"]],
        [
            "failure to enrol, profile 'enrollment'",
            wajah["failure_to_enrol_enrollment_text"],
            "(no quality check)",
        ],
        [
            "failure to enrol, profile 'scan'",
            wajah["failure_to_enrol_scan_text"],
            "(no quality check)",
        ],
    ]
    lines.append(markdown_table(["", "Wajah", "plain dlib (baseline)"], rows))
    for profile in ("enrollment", "scan"):
        reasons = wajah[f"refusal_reasons_{profile}"]
        if reasons:
            lines.append(
                f"Refusal reasons, '{profile}' (photos failing each required component): "
                + ", ".join(f"{k} {v}" for k, v in list(reasons.items())[:8])
                + "\n"
            )
    lines += [
        "Templates are compared whether or not the quality profiles accept the photo (FTE is "
        "reported, not applied), so the figures below are the matcher's, on all acquired "
        "photos.",
        "",
        "## 1:1 verification (all same-subject pairs genuine, all cross-subject pairs impostor)",
        "",
    ]
    rows = []
    for pipeline in PIPELINES:
        entry = results[pipeline]
        low, high = entry["eer_ci95"]
        rows.append(
            [
                pipeline,
                entry["genuine_trials"],
                entry["impostor_trials"],
                f"{_pct(entry['eer'])} [{_pct(low)}, {_pct(high)}]",
                f"{entry['eer_threshold']:.4f}",
            ]
        )
    lines.append(
        markdown_table(
            [
                "pipeline",
                "genuine trials",
                "impostor trials",
                "EER [95 % CI, subject bootstrap]",
                "EER threshold (cosine / -L2)",
            ],
            rows,
        )
    )
    rows = []
    for index, target in enumerate(FMR_TARGETS):
        row: list[Any] = [f"{target:g}"]
        for pipeline in PIPELINES:
            point = results[pipeline]["operating_points"][index]
            low, high = point["fnmr_ci95"]
            note = "" if point["resolvable"] else " (FMR not resolvable: < 3/N impostor trials)"
            row.append(
                f"{point['fnmr_text']} [{_pct(low)}, {_pct(high)}] "
                f"at t={point['threshold']:.4f}{note}"
            )
        wajah_fnmr = results["wajah"]["operating_points"][index]["fnmr"]
        plain_fnmr = results["plain_dlib"]["operating_points"][index]["fnmr"]
        row.append(f"{wajah_fnmr / plain_fnmr:.2f}x" if plain_fnmr else "n/a")
        rows.append(row)
    lines.append(
        markdown_table(["FMR target", "Wajah FNMR", "plain dlib FNMR (baseline)", "ratio"], rows)
    )
    fixed = results["plain_dlib"]["at_l2_0.6"]
    lines.append(
        f"Plain dlib at its fixed L2 <= 0.6: FMR {fixed['fmr_text']}, FNMR {fixed['fnmr_text']}.\n"
    )
    lines += [
        "## 1:N identification (one photo per identity enrolled, the rest mated probes; "
        "single-photo identities are non-mated probes)",
        "",
    ]
    rows = []
    for pipeline in PIPELINES:
        ident = results[pipeline]["identification"]
        cells: list[Any] = [
            pipeline,
            ident["enrolled"],
            ident["mated"],
            ident["non_mated"],
            f"{_pct(ident['rank1_rate'])} ({ident['rank1_hits']}/{ident['mated']})",
        ]
        for point in ident["points"]:
            note = "" if point["resolvable"] else " (FPIR not resolvable)"
            cells.append(f"{point['fnir_text']} at FPIR {point['fpir_text']}{note}")
        rows.append(cells)
    lines.append(
        markdown_table(
            [
                "pipeline",
                "enrolled",
                "mated searches",
                "non-mated searches",
                "rank-1",
                *[f"FNIR @ FPIR {t:g}" for t in FPIR_TARGETS],
            ],
            rows,
        )
    )
    lines.append(
        "FNIR counts a mated search as a miss unless its mate is ranked first with a "
        "score at or above the threshold.\n"
    )
    if "lfw_protocol" in results:
        lfw = results["lfw_protocol"]
        rows = []
        for pipeline in PIPELINES:
            entry = lfw[pipeline]
            rows.append(
                [
                    pipeline,
                    f"{_pct(entry['ten_fold_accuracy_mean'])} ± "
                    f"{_pct(entry['ten_fold_accuracy_std'])}",
                    entry["pairs_without_template"],
                    _pct(entry.get("accuracy_at_l2_0.6")),
                ]
            )
        lines += [
            f"## LFW protocol: `{Path(lfw['pairs_file']).name}`, {lfw['pairs']} of "
            f"{lfw['pairs_in_file']} pairs (those whose identities are in the selection)",
            "",
            markdown_table(
                [
                    "pipeline",
                    "10-fold accuracy (threshold from the other 9 folds)",
                    "pairs lacking a template (decided 'different')",
                    "accuracy at L2 <= 0.6",
                ],
                rows,
            ),
            "Folds are dealt round-robin within each class (the file lists matched pairs "
            "first). The dev pairs file is not the official 10-fold View 2 split, so "
            "these figures are not comparable with published LFW results.\n",
        ]
    lines += [
        "## Time",
        "",
        f"Acquisition {timing['acquisition_wall_s']:.1f} s wall with {timing['workers']} worker "
        f"processes ({timing['cache_hits']} photos from the template cache, "
        f"{timing['computed']} computed); cold cost of all photos "
        f"{timing['cold_worker_seconds_sum']:.0f} worker-seconds "
        f"({timing['embed_calls']} ResNet passes for {acquisition['photos']} photos). "
        f"Analysis {results['analysis_s']:.1f} s.",
    ]
    return "\n".join(lines) + "\n"
