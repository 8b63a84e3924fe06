"""1:N accuracy of what issue 15 proposes, tuned on development identities and confirmed on
identities not used for tuning.

Run: ``python -m wajah.benchmarks.identification_accuracy [--faces DIR] [--cache C.npz]``.

* development set: the LFW pairsDevTrain identities (what the shipped thresholds are calibrated
  on); every threshold a variant uses is set here, from that variant's own impostor scores;
* held-out set: the pairsDevTest identities, one photo each enrolled, plus single-photo LFW
  identities named in neither pairs file as distractors (a gallery of >= 400 subjects, one
  photo each, like ``wajah import`` of a legacy archive); their other photos are mated probes,
  and further single-photo identities, never enrolled, are the non-mated probes.

Variants: ``plain`` (one template per photo, as today and as plain dlib: ONNX templates equal
dlib's, cos >= 0.9999999) and ``mirror`` (the chip and its mirror image embedded and averaged).
Subject-level fusion (two photos enrolled: max, mean, template average) and the per-capture
quality split are measured on the plain templates. Every figure is printed beside the plain
dlib baseline (nearest template; dlib's published distance 0.6, cosine 0.82, for decisions)
and today's values (the thresholds shipped before issue 15, fixed for 1,000 subjects).
"""

from __future__ import annotations

import argparse
import sys
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from wajah.benchmarks.report import RunContext, command_line, markdown_table, write_report
from wajah.biometric.datasets import LabeledPhoto, list_labeled_photos, read_lfw_pairs
from wajah.biometric.engine import EngineConfig, FaceEngine
from wajah.biometric.errors import WajahInputError
from wajah.biometric.quality import PROFILES
from wajah.matcher.impostor_curve import ImpostorCurve

DATA_CAVEAT = (
    "../shared/faces holds no Southeast Asian faces in any number and no children: these "
    "figures say nothing about either group."
)
DLIB_DISTANCE_THRESHOLD = 0.6  # dlib's published same-person distance for this network
DLIB_COSINE = 1.0 - DLIB_DISTANCE_THRESHOLD**2 / 2.0  # 0.82 on L2-normalised templates
TODAY = {"verify": 0.925954, "identify": 0.944545, "duplicate": 0.940455}  # before issue 15
IDENTIFY_FPIR = 0.01
DUPLICATE_FPIR = 0.10
CALIBRATION_GALLERY = 1000  # the gallery size the shipped fixed points are written for
VERIFY_FMR = 1e-3
MAX_PER_IDENTITY = 4
DISTRACTORS = 260
NON_MATED = 200


@dataclass(frozen=True)
class Embedded:
    identities: np.ndarray  # (N,) str
    plain: np.ndarray  # (N, 128) float32
    mirror: np.ndarray  # (N, 128) float32, (chip + mirrored chip) / 2, re-normalised
    usable: np.ndarray  # (N,) bool, verification quality profile


def _normalise(vectors: np.ndarray) -> np.ndarray:
    return np.asarray(vectors / np.linalg.norm(vectors, axis=1, keepdims=True), np.float32)


def embed(photos: Sequence[LabeledPhoto], engine: FaceEngine) -> Embedded:
    identities, plain, mirror, usable = [], [], [], []
    for start in range(0, len(photos), 16):
        batch = photos[start : start + 16]
        results = engine.process_many(
            [p.path.read_bytes() for p in batch], PROFILES["verification"]
        )
        kept = []
        for photo, result in zip(batch, results, strict=True):
            if isinstance(result, WajahInputError) or result.chip is None:
                continue
            if result.template is None:
                continue
            kept.append((photo, result))
        if not kept:
            continue
        mirrored = engine.embed_chips(
            [r.chip[:, ::-1].copy() for _, r in kept if r.chip is not None]
        )
        for (photo, result), flipped in zip(kept, mirrored, strict=True):
            assert result.template is not None
            identities.append(photo.identity)
            plain.append(result.template.vector)
            mirror.append(result.template.vector + flipped)
            usable.append(result.quality.usable)
        sys.stderr.write(f"\rembedded {start + len(batch)} / {len(photos)}")
    sys.stderr.write("\n")
    return Embedded(
        np.asarray(identities),
        np.stack(plain).astype(np.float32),
        _normalise(np.stack(mirror)),
        np.asarray(usable, dtype=bool),
    )


def _capped(photos: list[LabeledPhoto], names: set[str]) -> list[LabeledPhoto]:
    count: dict[str, int] = defaultdict(int)
    kept = []
    for photo in photos:
        if photo.identity in names and count[photo.identity] < MAX_PER_IDENTITY:
            count[photo.identity] += 1
            kept.append(photo)
    return kept


def choose_photos(faces: Path) -> dict[str, list[LabeledPhoto]]:
    folder = faces / "lfw_deepfunneled"
    photos = list_labeled_photos(folder)

    def named(pairs: str) -> set[str]:
        found = read_lfw_pairs(folder / pairs, folder)
        return {p.first.parent.name for p in found} | {p.second.parent.name for p in found}

    train, test = named("pairsDevTrain.txt"), named("pairsDevTest.txt")
    per_identity: dict[str, int] = defaultdict(int)
    for photo in photos:
        per_identity[photo.identity] += 1
    singles = sorted(n for n, c in per_identity.items() if c == 1 and n not in train | test)
    extra = set(singles[: DISTRACTORS + NON_MATED])
    return {"dev": _capped(photos, train), "heldout": _capped(photos, test | extra)}


def _rows_by_identity(identities: np.ndarray) -> dict[str, list[int]]:
    rows: dict[str, list[int]] = defaultdict(list)
    for row, name in enumerate(identities):
        rows[str(name)].append(row)
    return rows


def _pairs(vectors: np.ndarray, identities: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    scores = vectors @ vectors.T
    upper_rows, upper_cols = np.triu_indices(len(identities), k=1)
    same = identities[upper_rows] == identities[upper_cols]
    values = scores[upper_rows, upper_cols].astype(np.float64)
    return values[same], values[~same]


def _rate(count: int, trials: int) -> dict[str, Any]:
    return {"count": int(count), "trials": int(trials), "rate": count / trials if trials else None}


def tune(dev: np.ndarray, identities: np.ndarray) -> dict[str, Any]:
    """Thresholds of one variant from its own development scores."""
    genuine, impostor = _pairs(dev, identities)
    curve = ImpostorCurve.from_scores(impostor)
    verify, _ = curve.threshold_for_false_match_rate(VERIFY_FMR)
    return {
        "curve": curve,
        "verify": verify,
        "dev_fnmr_at_fmr": float((genuine < verify).mean()),
        "dev_genuine": int(genuine.size),
        "dev_impostor": int(impostor.size),
    }


def heldout_split(embedded: Embedded) -> dict[str, np.ndarray]:
    rows = _rows_by_identity(embedded.identities)
    multi = sorted(n for n, r in rows.items() if len(r) >= 2)
    singles = sorted(n for n, r in rows.items() if len(r) == 1)
    distractors, strangers = singles[:DISTRACTORS], singles[DISTRACTORS : DISTRACTORS + NON_MATED]
    gallery = np.array([rows[n][0] for n in multi + distractors])
    return {
        "gallery": gallery,
        "mated": np.array([r for n in multi for r in rows[n][1:]]),
        "second": np.array([rows[n][1] for n in multi]),
        "strangers": np.array([rows[n][0] for n in strangers]),
        "multi_gallery": np.array([rows[n][0] for n in multi]),
        "three": np.array([n for n in multi if len(rows[n]) >= 3]),
    }


def identification(
    vectors: np.ndarray,
    identities: np.ndarray,
    usable: np.ndarray,
    split: dict[str, np.ndarray],
    tuned: dict[str, Any],
) -> dict[str, Any]:
    gallery, mated, strangers = split["gallery"], split["mated"], split["strangers"]
    size = len(gallery)
    scores = vectors[mated] @ vectors[gallery].T
    order = np.argsort(-scores, axis=1)
    right = identities[gallery][order] == identities[mated][:, None]
    best = scores[np.arange(len(mated)), order[:, 0]]
    stranger_best = (vectors[strangers] @ vectors[gallery].T).max(axis=1)
    curve: ImpostorCurve = tuned["curve"]
    identify, _ = curve.threshold_for_fpir(IDENTIFY_FPIR, size)
    # The service's rule (Thresholds.duplicate_point): the point calibrated for 1,000
    # subjects, raised (never lowered) for a larger gallery.
    duplicate = max(
        curve.threshold_for_fpir(DUPLICATE_FPIR, size)[0],
        curve.threshold_for_fpir(DUPLICATE_FPIR, CALIBRATION_GALLERY)[0],
    )
    # FNIR at a measured FPIR of 1 %: the threshold the strangers' best scores set.
    measured = float(np.quantile(stranger_best, 1 - IDENTIFY_FPIR, method="higher"))

    def fnir(threshold: float) -> dict[str, Any]:
        return _rate(int((~(right[:, 0] & (best >= threshold))).sum()), len(mated))

    missed = ~(right[:, 0] & (best >= identify))
    good = usable[mated]
    second = split["second"]
    second_scores = vectors[second] @ vectors[gallery].T
    own = identities[gallery][None, :] == identities[second][:, None]

    def duplicates(threshold: float) -> dict[str, Any]:
        return {
            "detected": _rate(int(((second_scores >= threshold) & own).any(1).sum()), len(second)),
            "new_people_flagged": _rate(int((stranger_best >= threshold).sum()), len(strangers)),
        }

    return {
        "gallery_size": size,
        "rank1": _rate(int(right[:, 0].sum()), len(mated)),
        "top5": _rate(int(right[:, :5].any(axis=1).sum()), len(mated)),
        "identify_threshold": identify,
        "fnir_at_calibrated_fpir": fnir(identify),
        "fpir_at_calibrated": _rate(int((stranger_best >= identify).sum()), len(strangers)),
        "threshold_at_measured_fpir": measured,
        "fnir_at_measured_fpir": fnir(measured),
        "fnir_today_threshold": fnir(TODAY["identify"]),
        "fnir_dlib_threshold": fnir(DLIB_COSINE),
        "fpir_dlib_threshold": _rate(int((stranger_best >= DLIB_COSINE).sum()), len(strangers)),
        "duplicate_threshold": duplicate,
        "duplicate": duplicates(duplicate),
        "duplicate_today": duplicates(TODAY["duplicate"]),
        # Per-capture quality: misses among probes the verification profile passes and fails.
        "fnir_usable_probes": _rate(int(missed[good].sum()), int(good.sum())),
        "fnir_poor_probes": _rate(int(missed[~good].sum()), int((~good).sum())),
        "rank1_poor_probes": _rate(int(right[~good, 0].sum()), int((~good).sum())),
    }


def verification(
    vectors: np.ndarray, identities: np.ndarray, tuned: dict[str, Any]
) -> dict[str, Any]:
    genuine, impostor = _pairs(vectors, identities)
    threshold = tuned["verify"]
    return {
        "threshold": threshold,
        "fnmr": _rate(int((genuine < threshold).sum()), genuine.size),
        "fmr": _rate(int((impostor >= threshold).sum()), impostor.size),
        "fnmr_today": _rate(int((genuine < TODAY["verify"]).sum()), genuine.size),
        "fnmr_dlib": _rate(int((genuine < DLIB_COSINE).sum()), genuine.size),
        "fmr_dlib": _rate(int((impostor >= DLIB_COSINE).sum()), impostor.size),
    }


def fusion(vectors: np.ndarray, identities: np.ndarray, tuned: dict[str, Any]) -> dict[str, Any]:
    """Identities with >= 3 photos: two enrolled, the rest probes, against each other."""
    rows = _rows_by_identity(identities)
    names = sorted(n for n, r in rows.items() if len(r) >= 3)
    first = vectors[[rows[n][0] for n in names]]
    second = vectors[[rows[n][1] for n in names]]
    probes = [(i, r) for i, n in enumerate(names) for r in rows[n][2:]]
    probe_vectors = vectors[[r for _, r in probes]]
    truth = np.array([i for i, _ in probes])
    s1, s2 = probe_vectors @ first.T, probe_vectors @ second.T
    average = _normalise(first + second)
    threshold, _ = tuned["curve"].threshold_for_fpir(IDENTIFY_FPIR, len(names))
    rules = {
        "one photo": s1,
        "max of two": np.maximum(s1, s2),
        "mean of two": (s1 + s2) / 2,
        "template average": probe_vectors @ average.T,
    }
    out: dict[str, Any] = {"subjects": len(names), "probes": len(probes)}
    for rule, scores in rules.items():
        best = scores.argmax(axis=1)
        hit = best == truth
        out[rule] = {
            "rank1": _rate(int(hit.sum()), len(probes)),
            "fnir_at_threshold": _rate(
                int((~(hit & (scores.max(axis=1) >= threshold))).sum()), len(probes)
            ),
        }
    return out


def _fmt(rate: dict[str, Any]) -> str:
    if not rate["trials"]:
        return "n/a"
    if rate["count"] == 0:
        return f"0 / {rate['trials']:,} (< {3 / rate['trials']:.2g})"
    return f"{rate['rate'] * 100:.1f} % ({rate['count']:,} / {rate['trials']:,})"


def run(faces: Path, cache: Path | None) -> dict[str, Any]:
    sets: dict[str, Embedded] = {}
    if cache is not None and cache.is_file():
        with np.load(cache, allow_pickle=False) as data:
            for name in ("dev", "heldout"):
                sets[name] = Embedded(
                    data[f"{name}_identities"],
                    data[f"{name}_plain"],
                    data[f"{name}_mirror"],
                    data[f"{name}_usable"],
                )
    else:
        engine = FaceEngine(EngineConfig())
        for name, photos in choose_photos(faces).items():
            sets[name] = embed(photos, engine)
        if cache is not None:
            np.savez_compressed(
                cache,
                **{
                    f"{name}_{field}": getattr(embedded, field)
                    for name, embedded in sets.items()
                    for field in ("identities", "plain", "mirror", "usable")
                },
            )
    dev, heldout = sets["dev"], sets["heldout"]
    split = heldout_split(heldout)
    results: dict[str, Any] = {
        "dev_photos": len(dev.identities),
        "heldout_photos": len(heldout.identities),
        "caveat": DATA_CAVEAT,
    }
    multi_heldout = np.isin(heldout.identities, heldout.identities[split["multi_gallery"]])
    for variant in ("plain", "mirror"):
        tuned = tune(getattr(dev, variant), dev.identities)
        vectors = getattr(heldout, variant)
        results[variant] = {
            "dev_fnmr_at_fmr_1e-3": tuned["dev_fnmr_at_fmr"],
            "dev_verify_threshold": tuned["verify"],
            "verification_dev": verification(getattr(dev, variant), dev.identities, tuned),
            "verification_heldout": verification(
                vectors[multi_heldout], heldout.identities[multi_heldout], tuned
            ),
            "identification": identification(
                vectors, heldout.identities, heldout.usable, split, tuned
            ),
            "fusion": fusion(vectors, heldout.identities, tuned),
            "fusion_dev": fusion(getattr(dev, variant), dev.identities, tuned),
        }
    return results


def markdown(results: dict[str, Any]) -> str:
    plain, mirror = results["plain"], results["mirror"]
    pi, mi = plain["identification"], mirror["identification"]
    rows = [
        ["gallery (held-out + distractors)", f"{pi['gallery_size']:,} subjects", "", ""],
        ["rank-1 (investigation)", _fmt(pi["rank1"]), _fmt(mi["rank1"]), "same as plain"],
        ["top-5 (investigation)", _fmt(pi["top5"]), _fmt(mi["top5"]), "same as plain"],
        [
            "FNIR at FPIR 1 % (threshold from dev curve at G)",
            _fmt(pi["fnir_at_calibrated_fpir"]) + f" @ {pi['identify_threshold']:.4f}",
            _fmt(mi["fnir_at_calibrated_fpir"]) + f" @ {mi['identify_threshold']:.4f}",
            "",
        ],
        [
            "FPIR measured there (non-mated probes)",
            _fmt(pi["fpir_at_calibrated"]),
            _fmt(mi["fpir_at_calibrated"]),
            "",
        ],
        [
            "FNIR at measured FPIR 1 %",
            _fmt(pi["fnir_at_measured_fpir"]) + f" @ {pi['threshold_at_measured_fpir']:.4f}",
            _fmt(mi["fnir_at_measured_fpir"]) + f" @ {mi['threshold_at_measured_fpir']:.4f}",
            "",
        ],
        [
            "FNIR today (fixed 0.9445)",
            _fmt(pi["fnir_today_threshold"]),
            "",
            f"dlib 0.6: FNIR {_fmt(pi['fnir_dlib_threshold'])}, "
            f"FPIR {_fmt(pi['fpir_dlib_threshold'])}",
        ],
        [
            "duplicate detection (FPIR 0.10, G >= 1,000)",
            _fmt(pi["duplicate"]["detected"]) + f" @ {pi['duplicate_threshold']:.4f}",
            _fmt(mi["duplicate"]["detected"]) + f" @ {mi['duplicate_threshold']:.4f}",
            f"today: {_fmt(pi['duplicate_today']['detected'])}",
        ],
        [
            "new people flagged",
            _fmt(pi["duplicate"]["new_people_flagged"]),
            _fmt(mi["duplicate"]["new_people_flagged"]),
            f"today: {_fmt(pi['duplicate_today']['new_people_flagged'])}",
        ],
        [
            "FNIR, probes passing / failing quality",
            f"{_fmt(pi['fnir_usable_probes'])} / {_fmt(pi['fnir_poor_probes'])}",
            f"{_fmt(mi['fnir_usable_probes'])} / {_fmt(mi['fnir_poor_probes'])}",
            f"rank-1 of failing probes {_fmt(pi['rank1_poor_probes'])}",
        ],
    ]
    for name in ("verification_dev", "verification_heldout"):
        p, m = plain[name], mirror[name]
        rows.append(
            [
                f"1:1 FNMR at FMR 1e-3 ({name.split('_')[1]})",
                _fmt(p["fnmr"]) + f" (FMR {_fmt(p['fmr'])})",
                _fmt(m["fnmr"]) + f" (FMR {_fmt(m['fmr'])})",
                f"today {_fmt(p['fnmr_today'])}; dlib 0.6: FNMR {_fmt(p['fnmr_dlib'])}, "
                f"FMR {_fmt(p['fmr_dlib'])}",
            ]
        )
    fusion_rows = []
    for where in ("fusion_dev", "fusion"):
        for variant in ("plain", "mirror"):
            block = results[variant][where]
            for rule in ("one photo", "max of two", "mean of two", "template average"):
                fusion_rows.append(
                    [
                        "dev" if where == "fusion_dev" else "held-out",
                        variant,
                        rule,
                        _fmt(block[rule]["rank1"]),
                        _fmt(block[rule]["fnir_at_threshold"]),
                    ]
                )
    return (
        f"{results['dev_photos']:,} development photos (pairsDevTrain identities, thresholds "
        f"tuned here), {results['heldout_photos']:,} held-out photos (pairsDevTest identities "
        "and single-photo distractors and strangers named in neither pairs file).\n\n"
        + markdown_table(
            ["measure", "plain (today's templates)", "mirror-averaged", "baseline"], rows
        )
        + "\n\nSubject-level fusion (identities with >= 3 photos: two enrolled, the rest "
        "probes; FNIR at the FPIR 1 % threshold for that gallery):\n\n"
        + markdown_table(["set", "templates", "rule", "rank-1", "FNIR"], fusion_rows)
        + f"\n\n{results['caveat']}\n"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--faces", type=Path, default=Path("../shared/faces"))
    parser.add_argument("--cache", type=Path, default=None)
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results"))
    arguments = parser.parse_args(argv)
    context = RunContext(name="identification-accuracy", command=command_line(argv))
    results = run(arguments.faces, arguments.cache)
    body = markdown(results)
    write_report(arguments.out, context, results, body, "1:N accuracy: modes, mirror, fusion")
    sys.stdout.write(body)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
