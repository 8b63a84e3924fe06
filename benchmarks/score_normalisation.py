"""Issue 15's remaining accuracy levers, measured from cached templates: cohort score
normalisation, per-capture quality, and subject-level fusion with an honest false-positive rate.

Run: ``python -m wajah.benchmarks.score_normalisation --cache C.npz`` where C.npz is the
template cache written by ``benchmarks/identification_accuracy.py --cache`` (same photos, same
development / held-out split; it embeds them first when the cache is missing).

Separation kept:

* the development identities (pairsDevTrain) are split in two by name: half A is the impostor
  **cohort** (one template per identity, what would ship), half B is where thresholds are
  calibrated and where the cohort size k is **chosen** (the lowest development FNIR at a
  measured FPIR of 1 %);
* the held-out identities (pairsDevTest plus single-photo distractors and strangers) only
  confirm; the held-out figures of the other k are printed for transparency, not for choosing.

Normalisation (adaptive symmetric s-norm, as in speaker and face verification): for a
comparison of probe p and enrolled template g with raw cosine s,
``0.5 * ((s - mu_p) / sigma_p + (s - mu_g) / sigma_g)`` where mu and sigma are the mean and
standard deviation of the k highest cosines of p (or g) against the cohort. The plain cosine is
the baseline, calibrated the same way on the same half B.

Non-mated searches for a measured FPIR: the never-enrolled strangers **and** every mated probe
searched with its own mate removed from the gallery (a search for someone not enrolled), so
1 % rests on several false positives rather than two.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from wajah.benchmarks.identification_accuracy import (
    CALIBRATION_GALLERY,
    DATA_CAVEAT,
    DUPLICATE_FPIR,
    IDENTIFY_FPIR,
    VERIFY_FMR,
    Embedded,
    _fmt,
    _normalise,
    _rate,
    _rows_by_identity,
    choose_photos,
    embed,
    heldout_split,
)
from wajah.benchmarks.report import RunContext, command_line, markdown_table, write_report
from wajah.matcher.impostor_curve import ImpostorCurve

COHORT_SIZES = (20, 50, 100, 200)
Scorer = Callable[[np.ndarray, np.ndarray], np.ndarray]  # (P, 128), (G, 128) -> (P, G)


def load(cache: Path, faces: Path) -> dict[str, Embedded]:
    sets: dict[str, Embedded] = {}
    if cache.is_file():
        with np.load(cache, allow_pickle=False) as data:
            for name in ("dev", "heldout"):
                sets[name] = Embedded(
                    data[f"{name}_identities"],
                    data[f"{name}_plain"],
                    data[f"{name}_mirror"],
                    data[f"{name}_usable"],
                )
        return sets
    from wajah.biometric.engine import EngineConfig, FaceEngine

    engine = FaceEngine(EngineConfig())
    for name, photos in choose_photos(faces).items():
        sets[name] = embed(photos, engine)
    return sets


def first_rows(identities: np.ndarray) -> np.ndarray:
    seen: dict[str, int] = {}
    for row, name in enumerate(identities):
        seen.setdefault(str(name), row)
    return np.array(sorted(seen.values()))


def split_development(identities: np.ndarray) -> np.ndarray:
    """(N,) bool: the rows of cohort half A (every other identity by name)."""
    names = np.unique(identities)
    return np.isin(identities, names[::2])


def plain_scorer(probes: np.ndarray, gallery: np.ndarray) -> np.ndarray:
    return np.asarray(probes @ gallery.T, dtype=np.float64)


def s_norm(cohort: np.ndarray, k: int) -> Scorer:
    """Adaptive symmetric s-norm against ``cohort`` (C, 128) with the k highest cohort scores."""

    def statistics(vectors: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        scores = vectors @ cohort.T
        top = -np.partition(-scores, k - 1, axis=1)[:, :k]
        return top.mean(axis=1), top.std(axis=1)

    def score(probes: np.ndarray, gallery: np.ndarray) -> np.ndarray:
        raw = np.asarray(probes @ gallery.T, dtype=np.float64)
        mean_p, std_p = statistics(probes)
        mean_g, std_g = statistics(gallery)
        z_probe = (raw - mean_p[:, None]) / std_p[:, None]
        z_enrolled = (raw - mean_g[None, :]) / std_g[None, :]
        return np.asarray(0.5 * (z_probe + z_enrolled), dtype=np.float64)

    return score


def calibrate(scorer: Scorer, vectors: np.ndarray, identities: np.ndarray) -> dict[str, Any]:
    """Impostor curve and the 1:1 point of a scorer on calibration templates (half B)."""
    scores = scorer(vectors, vectors)
    rows, cols = np.triu_indices(len(identities), k=1)
    same = identities[rows] == identities[cols]
    values = scores[rows, cols]
    curve = ImpostorCurve.from_scores(values[~same])
    verify, _ = curve.threshold_for_false_match_rate(VERIFY_FMR)
    return {
        "curve": curve,
        "verify": verify,
        "fnmr": _rate(int((values[same] < verify).sum()), int(same.sum())),
    }


def search_measures(
    scores: np.ndarray, gallery_ids: np.ndarray, probe_ids: np.ndarray, extra_non_mated: np.ndarray
) -> dict[str, Any]:
    """Rank and best scores of mated searches, and the best scores of non-mated searches: the
    ``extra_non_mated`` best scores plus each mated probe with its mate left out."""
    order = np.argsort(-scores, axis=1)
    right = gallery_ids[order] == probe_ids[:, None]
    own = gallery_ids[None, :] == probe_ids[:, None]
    left_out = np.where(own, -np.inf, scores).max(axis=1)
    return {
        "right": right,
        "best": scores.max(axis=1),
        "non_mated": np.concatenate([extra_non_mated, left_out]),
    }


def fnir_at(found: dict[str, Any], threshold: float) -> dict[str, Any]:
    missed = ~(found["right"][:, 0] & (found["best"] >= threshold))
    return _rate(int(missed.sum()), len(missed))


def development_fnir(scorer: Scorer, vectors: np.ndarray, identities: np.ndarray) -> float:
    """Half B as a 1:N set: first photo enrolled, the rest mated probes; FNIR at the measured
    FPIR of 1 % over leave-mate-out searches. What k is chosen by."""
    rows = _rows_by_identity(identities)
    gallery = np.array([r[0] for r in rows.values()])
    mated = np.array([x for r in rows.values() for x in r[1:]])
    found = search_measures(
        scorer(vectors[mated], vectors[gallery]),
        identities[gallery],
        identities[mated],
        np.empty(0),
    )
    threshold = float(np.quantile(found["non_mated"], 1 - IDENTIFY_FPIR, method="higher"))
    return float(fnir_at(found, threshold)["rate"])


def heldout_measures(
    scorer: Scorer, tuned: dict[str, Any], heldout: Embedded, split: dict[str, np.ndarray]
) -> dict[str, Any]:
    vectors, identities = heldout.plain, heldout.identities
    gallery, mated = split["gallery"], split["mated"]
    strangers, second = split["strangers"], split["second"]
    gallery_ids = identities[gallery]
    size = len(gallery)
    stranger_best = scorer(vectors[strangers], vectors[gallery]).max(axis=1)
    found = search_measures(
        scorer(vectors[mated], vectors[gallery]), gallery_ids, identities[mated], stranger_best
    )
    curve: ImpostorCurve = tuned["curve"]
    identify, _ = curve.threshold_for_fpir(IDENTIFY_FPIR, size)
    measured = float(np.quantile(found["non_mated"], 1 - IDENTIFY_FPIR, method="higher"))
    duplicate = max(
        curve.threshold_for_fpir(DUPLICATE_FPIR, size)[0],
        curve.threshold_for_fpir(DUPLICATE_FPIR, CALIBRATION_GALLERY)[0],
    )
    second_scores = scorer(vectors[second], vectors[gallery])
    own = gallery_ids[None, :] == identities[second][:, None]
    non_mated = found["non_mated"]
    duplicate_measured = float(np.quantile(non_mated, 1 - DUPLICATE_FPIR, method="higher"))

    def detected(threshold: float) -> dict[str, Any]:
        return _rate(int(((second_scores >= threshold) & own).any(axis=1).sum()), len(second))

    multi = np.isin(identities, identities[split["multi_gallery"]])
    pair_scores = scorer(vectors[multi], vectors[multi])
    rows, cols = np.triu_indices(int(multi.sum()), k=1)
    same = identities[multi][rows] == identities[multi][cols]
    values = pair_scores[rows, cols]
    usable = heldout.usable[mated]
    missed = ~(found["right"][:, 0] & (found["best"] >= identify))
    return {
        "gallery_size": size,
        "mated": len(mated),
        "non_mated": len(non_mated),
        "rank1": _rate(int(found["right"][:, 0].sum()), len(mated)),
        "top5": _rate(int(found["right"][:, :5].any(axis=1).sum()), len(mated)),
        "identify_threshold": identify,
        "fnir_calibrated": fnir_at(found, identify),
        "fpir_calibrated": _rate(int((non_mated >= identify).sum()), len(non_mated)),
        "fnir_measured": fnir_at(found, measured),
        "duplicate": detected(duplicate),
        "duplicate_flags": _rate(int((stranger_best >= duplicate).sum()), len(stranger_best)),
        "duplicate_flags_all": _rate(int((non_mated >= duplicate).sum()), len(non_mated)),
        "duplicate_at_measured_fpir": detected(duplicate_measured),
        "verify_fnmr": _rate(int((values[same] < tuned["verify"]).sum()), int(same.sum())),
        "verify_fmr": _rate(int((values[~same] >= tuned["verify"]).sum()), int((~same).sum())),
        "fnir_usable": _rate(int(missed[usable].sum()), int(usable.sum())),
        "fnir_poor": _rate(int(missed[~usable].sum()), int((~usable).sum())),
        "poor_share": _rate(int((~usable).sum()), len(usable)),
        "poor_missed_share": _rate(int((missed & ~usable).sum()), int(missed.sum())),
    }


def fused_scores(query: np.ndarray, first: np.ndarray, second: np.ndarray) -> dict[str, np.ndarray]:
    """Scores (Q, S) of queries against subjects enrolled with two templates, by each rule."""
    s1, s2 = query @ first.T, query @ second.T
    return {
        "one photo": s1,
        "max of two": np.maximum(s1, s2),
        "mean of two": (s1 + s2) / 2,
        "template average": query @ _normalise(first + second).T,
    }


def fusion_curves(vectors: np.ndarray, identities: np.ndarray) -> dict[str, ImpostorCurve]:
    """Each rule's own impostor curve: subjects of two photos scored by the rule against every
    photo of another identity (a fused subject is not a single template: averaging pulls it
    towards the population mean, and two templates give two chances of a false match)."""
    rows = _rows_by_identity(identities)
    names = sorted(n for n, r in rows.items() if len(r) >= 2)
    first = vectors[[rows[n][0] for n in names]]
    second = vectors[[rows[n][1] for n in names]]
    other = identities[:, None] != np.asarray(names)[None, :]
    return {
        rule: ImpostorCurve.from_scores(scores[other])
        for rule, scores in fused_scores(vectors, first, second).items()
    }


def mixed_threshold(
    fused: ImpostorCurve, fused_subjects: int, single: ImpostorCurve, single_subjects: int
) -> float:
    """The lowest score t whose FPIR over a gallery of ``fused_subjects`` scored by the rule's
    curve and ``single_subjects`` one-template subjects is <= 1 %:
    1 - (1 - FMR_fused(t))^Gf * (1 - FMR_single(t))^Gs (bisection; FPIR falls with t)."""

    def fpir(t: float) -> float:
        log_kept = fused_subjects * np.log1p(-fused.false_match_rate(t)) + single_subjects * (
            np.log1p(-single.false_match_rate(t))
        )
        return float(-np.expm1(log_kept))

    low, high = 0.5, 1.0
    for _ in range(60):
        middle = (low + high) / 2
        if fpir(middle) <= IDENTIFY_FPIR:
            high = middle
        else:
            low = middle
    return high


def fusion_with_fpir(
    vectors: np.ndarray,
    identities: np.ndarray,
    split: dict[str, np.ndarray],
    curve: ImpostorCurve,
    distractor_rows: np.ndarray,
    curves: dict[str, ImpostorCurve],
) -> dict[str, Any]:
    """Identities with >= 3 photos enrolled with two, plus the one-photo distractors; the rest
    of their photos are mated probes, the strangers non-mated. Each rule's FNIR at the FPIR 1 %
    threshold is printed beside the FPIR the strangers actually reach there."""
    rows = _rows_by_identity(identities)
    names = [str(n) for n in split["three"]]
    first = vectors[[rows[n][0] for n in names]]
    second = vectors[[rows[n][1] for n in names]]
    distractors = vectors[distractor_rows]
    probes = [(i, r) for i, n in enumerate(names) for r in rows[n][2:]]
    probe_vectors = vectors[[r for _, r in probes]]
    truth = np.array([i for i, _ in probes])
    strangers = vectors[split["strangers"]]
    size = len(names) + len(distractors)
    threshold, _ = curve.threshold_for_fpir(IDENTIFY_FPIR, size)

    def rules(query: np.ndarray) -> dict[str, np.ndarray]:
        distractor_scores = query @ distractors.T
        return {
            rule: np.hstack([scores, distractor_scores])
            for rule, scores in fused_scores(query, first, second).items()
        }

    mated_rules, stranger_rules = rules(probe_vectors), rules(strangers)
    out: dict[str, Any] = {"subjects": size, "probes": len(probes), "threshold": threshold}
    for rule, scores in mated_rules.items():
        hit = scores.argmax(axis=1) == truth
        stranger_best = stranger_rules[rule].max(axis=1)
        measured = float(np.quantile(stranger_best, 1 - IDENTIFY_FPIR, method="higher"))
        own = mixed_threshold(curves[rule], len(names), curve, len(distractors))
        out[rule] = {
            "own_threshold": own,
            "fnir_own": _rate(int((~(hit & (scores.max(axis=1) >= own))).sum()), len(probes)),
            "fpir_own": _rate(int((stranger_best >= own).sum()), len(stranger_best)),
            "rank1": _rate(int(hit.sum()), len(probes)),
            "top5": _rate(
                int((np.argsort(-scores, axis=1)[:, :5] == truth[:, None]).any(axis=1).sum()),
                len(probes),
            ),
            "fnir": _rate(int((~(hit & (scores.max(axis=1) >= threshold))).sum()), len(probes)),
            "fpir": _rate(int((stranger_best >= threshold).sum()), len(stranger_best)),
            "fnir_measured": _rate(
                int((~(hit & (scores.max(axis=1) >= measured))).sum()), len(probes)
            ),
        }
    return out


def pair_verification(train: Path, test: Path) -> dict[str, Any]:
    """1:1 on the LFW development-pair templates (``wajah calibrate --templates``: pairsDevTrain
    and pairsDevTest photos, every pair of photos compared): the cohort is half A of the
    pairsDevTrain identities, each scorer is calibrated at FMR 1e-3 on half B, and k is chosen
    there by the lowest FNMR; pairsDevTest only confirms."""
    with np.load(train, allow_pickle=False) as data:
        train_vectors, train_ids = data["vectors"], data["identities"]
    with np.load(test, allow_pickle=False) as data:
        test_vectors, test_ids = data["vectors"], data["identities"]
    in_cohort = split_development(train_ids)
    cohort = train_vectors[np.flatnonzero(in_cohort)[first_rows(train_ids[in_cohort])]]
    scorers: dict[str, Scorer] = {"plain": plain_scorer}
    scorers.update({f"s-norm k={k}": s_norm(cohort, k) for k in COHORT_SIZES})
    rows, cols = np.triu_indices(len(test_ids), k=1)
    same = test_ids[rows] == test_ids[cols]
    out: dict[str, Any] = {"test_photos": len(test_ids), "variants": {}}
    for name, scorer in scorers.items():
        tuned = calibrate(scorer, train_vectors[~in_cohort], train_ids[~in_cohort])
        values = scorer(test_vectors, test_vectors)[rows, cols]
        out["variants"][name] = {
            "dev_fnmr": tuned["fnmr"],
            "fnmr": _rate(int((values[same] < tuned["verify"]).sum()), int(same.sum())),
            "fmr": _rate(int((values[~same] >= tuned["verify"]).sum()), int((~same).sum())),
        }
    normalised = [n for n in scorers if n != "plain"]
    out["chosen"] = min(normalised, key=lambda n: out["variants"][n]["dev_fnmr"]["rate"])
    return out


def run(cache: Path, faces: Path, pairs: tuple[Path, Path] | None = None) -> dict[str, Any]:
    sets = load(cache, faces)
    dev, heldout = sets["dev"], sets["heldout"]
    in_cohort = split_development(dev.identities)
    cohort_rows = np.flatnonzero(in_cohort)[first_rows(dev.identities[in_cohort])]
    cohort = dev.plain[cohort_rows]
    calib_vectors, calib_ids = dev.plain[~in_cohort], dev.identities[~in_cohort]
    split = heldout_split(heldout)
    scorers: dict[str, Scorer] = {"plain": plain_scorer}
    scorers.update({f"s-norm k={k}": s_norm(cohort, k) for k in COHORT_SIZES})
    results: dict[str, Any] = {
        "cohort_templates": len(cohort),
        "calibration_photos": len(calib_ids),
        "heldout_photos": len(heldout.identities),
        "variants": {},
        "caveat": DATA_CAVEAT,
    }
    for name, scorer in scorers.items():
        tuned = calibrate(scorer, calib_vectors, calib_ids)
        results["variants"][name] = {
            "dev_fnir_measured": development_fnir(scorer, calib_vectors, calib_ids),
            "dev_verify_fnmr": tuned["fnmr"],
            "heldout": heldout_measures(scorer, tuned, heldout, split),
        }
    normalised = [n for n in scorers if n != "plain"]
    chosen = min(normalised, key=lambda n: results["variants"][n]["dev_fnir_measured"])
    results["chosen"] = chosen
    singles = [r for n, r in _rows_by_identity(heldout.identities).items() if len(r) == 1]
    distractor_rows = np.array(sorted(r[0] for r in singles))
    distractor_rows = distractor_rows[~np.isin(distractor_rows, split["strangers"])]
    plain_curve = calibrate(plain_scorer, calib_vectors, calib_ids)["curve"]
    curves = fusion_curves(calib_vectors, calib_ids)
    results["fusion"] = fusion_with_fpir(
        heldout.plain, heldout.identities, split, plain_curve, distractor_rows, curves
    )
    dev_split = {
        "three": np.array(
            sorted(n for n, r in _rows_by_identity(calib_ids).items() if len(r) >= 3)
        ),
        "strangers": np.array(
            [r[0] for r in _rows_by_identity(dev.identities[in_cohort]).values()]
        ),
    }
    results["fusion_dev"] = fusion_with_fpir(
        np.vstack([calib_vectors, dev.plain[in_cohort]]),
        np.concatenate([calib_ids, dev.identities[in_cohort]]),
        {
            "three": dev_split["three"],
            "strangers": len(calib_ids) + dev_split["strangers"],
        },
        plain_curve,
        np.array(
            [
                r[0]
                for n, r in _rows_by_identity(calib_ids).items()
                if len(r) < 3  # enrolled alongside as one-photo subjects
            ]
        ),
        curves,
    )
    if pairs is not None:
        results["pairs"] = pair_verification(*pairs)
    return results


def markdown(results: dict[str, Any]) -> str:
    variants = results["variants"]
    plain = variants["plain"]["heldout"]
    rows = []
    for name, block in variants.items():
        h = block["heldout"]
        label = name + (" (chosen on dev)" if name == results["chosen"] else "")
        rows.append(
            [
                label,
                f"{block['dev_fnir_measured'] * 100:.1f} %",
                _fmt(block["dev_verify_fnmr"]),
                _fmt(h["rank1"]),
                _fmt(h["top5"]),
                f"{_fmt(h['fnir_calibrated'])} (FPIR {_fmt(h['fpir_calibrated'])})",
                _fmt(h["fnir_measured"]),
                f"{_fmt(h['duplicate'])}; flags {_fmt(h['duplicate_flags'])}",
                _fmt(h["duplicate_at_measured_fpir"]),
                f"{_fmt(h['verify_fnmr'])} (FMR {_fmt(h['verify_fmr'])})",
            ]
        )
    quality = [
        [
            "held-out mated probes failing the verification quality profile",
            _fmt(plain["poor_share"]),
        ],
        ["FNIR at FPIR 1 %, probes passing quality", _fmt(plain["fnir_usable"])],
        ["FNIR at FPIR 1 %, probes failing quality", _fmt(plain["fnir_poor"])],
        [
            "misses that ask for a recapture today (poor probe, nothing cleared: inconclusive)",
            _fmt(plain["poor_missed_share"]),
        ],
    ]
    fusion_rows = []
    for where in ("fusion_dev", "fusion"):
        block = results[where]
        for rule in ("one photo", "max of two", "mean of two", "template average"):
            r = block[rule]
            fusion_rows.append(
                [
                    "dev (half B)" if where == "fusion_dev" else "held-out",
                    f"{block['subjects']:,}",
                    rule,
                    _fmt(r["rank1"]),
                    _fmt(r["top5"]),
                    f"{_fmt(r['fnir'])} @ {block['threshold']:.4f}",
                    _fmt(r["fpir"]),
                    f"{_fmt(r['fnir_own'])} @ {r['own_threshold']:.4f}",
                    _fmt(r["fpir_own"]),
                    _fmt(r["fnir_measured"]),
                ]
            )
    return (
        f"Cohort: {results['cohort_templates']} templates (one per development identity of "
        f"half A). Calibration and the choice of k: {results['calibration_photos']:,} photos of "
        f"development half B. Confirmation: {results['heldout_photos']:,} held-out photos; "
        f"gallery {plain['gallery_size']:,} subjects, {plain['mated']} mated searches, "
        f"{plain['non_mated']} non-mated searches (strangers + mate left out).\n\n"
        "### Cohort score normalisation (every variant calibrated on half B)\n\n"
        + markdown_table(
            [
                "scores",
                "dev FNIR @ measured FPIR 1 %",
                "dev 1:1 FNMR @ FMR 1e-3",
                "held-out rank-1",
                "top-5",
                "FNIR @ FPIR 1 % (calibrated)",
                "FNIR @ measured FPIR 1 %",
                "duplicates found (calibrated FPIR 0.10)",
                "duplicates @ measured FPIR 0.10",
                "1:1 FNMR @ FMR 1e-3",
            ],
            rows,
        )
        + "\n\n### Per-capture quality (plain scores)\n\n"
        + markdown_table(["measure", "value"], quality)
        + "\n\n### Subject-level fusion with the FPIR it costs (plain scores, two photos "
        "enrolled per identity with >= 3, one-photo distractors beside them; non-mated: "
        "strangers)\n\n"
        + markdown_table(
            [
                "set",
                "gallery",
                "rule",
                "rank-1",
                "top-5",
                "FNIR @ one-photo FPIR 1 % threshold",
                "FPIR measured there",
                "FNIR @ rule's own FPIR 1 % threshold",
                "FPIR measured there ",
                "FNIR @ measured FPIR 1 %",
            ],
            fusion_rows,
        )
        + _pairs_markdown(results.get("pairs"))
        + f"\n\n{results['caveat']}\n"
    )


def _pairs_markdown(pairs: dict[str, Any] | None) -> str:
    if pairs is None:
        return ""
    rows = [
        [
            name + (" (chosen on dev)" if name == pairs["chosen"] else ""),
            _fmt(block["dev_fnmr"]),
            f"{_fmt(block['fnmr'])} (FMR {_fmt(block['fmr'])})",
        ]
        for name, block in pairs["variants"].items()
    ]
    return (
        "\n\n### 1:1 on the LFW development pairs' photos (all pairs; calibrated at FMR 1e-3 "
        f"on pairsDevTrain half B, confirmed on {pairs['test_photos']} pairsDevTest photos)\n\n"
        + markdown_table(
            ["scores", "dev half B FNMR @ FMR 1e-3", "pairsDevTest FNMR @ that threshold"], rows
        )
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--faces", type=Path, default=Path("../shared/faces"))
    parser.add_argument("--cache", type=Path, required=True)
    parser.add_argument(
        "--pairs",
        type=Path,
        nargs=2,
        metavar=("DEVTRAIN", "DEVTEST"),
        help="templates saved by `wajah calibrate --templates` for pairsDevTrain / DevTest",
    )
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results"))
    arguments = parser.parse_args(argv)
    context = RunContext(name="score-normalisation", command=command_line(argv))
    pairs = None if arguments.pairs is None else (arguments.pairs[0], arguments.pairs[1])
    results = run(arguments.cache, arguments.faces, pairs)
    body = markdown(results)
    title = "1:N: cohort normalisation, quality, fusion"
    write_report(arguments.out, context, _jsonable(results), body, title)
    sys.stdout.write(body)
    return 0


def _jsonable(results: dict[str, Any]) -> dict[str, Any]:
    def clean(value: Any) -> Any:
        if isinstance(value, dict):
            return {k: clean(v) for k, v in value.items() if k != "curve"}
        if isinstance(value, np.generic):
            return value.item()
        return value

    out: dict[str, Any] = clean(results)
    return out


if __name__ == "__main__":
    raise SystemExit(main())
