"""How the shipped (or any) thresholds behave on held-out labeled templates.

Run: ``python -m wajah.benchmarks.operating_points --templates T.npz [--thresholds F.json]``, where
``T.npz`` is written by ``wajah calibrate --templates`` (use identities the thresholds were
NOT calibrated on, e.g. the LFW pairsDevTest identities for the shipped calibration on
pairsDevTrain). Reports, at the three operating points:

* verification: FMR and FNMR over every genuine and impostor pair;
* identification: a gallery of one photo per identity; every other photo of a gallery
  identity is a mated probe (rank-1 rate, and FNIR at the identify threshold); gallery-free
  identities are non-mated probes against the gallery (FPIR at the threshold);
* duplicate search: every identity with two or more photos enrolled twice under different ids
  (first photo, then second): the share whose second enrollment is sent to review with the
  right candidate (detection rate), and the share of genuinely new people flagged
  (false-flag rate).
"""

from __future__ import annotations

import argparse
import sys
from collections import defaultdict
from pathlib import Path
from typing import Any

import numpy as np

from wajah.benchmarks.report import RunContext, command_line, markdown_table, write_report
from wajah.matcher.photo_calibration import LabeledTemplates, load_labeled_templates
from wajah.matcher.thresholds import Thresholds, default_thresholds, load_thresholds

DATA_CAVEAT = (
    "The photos hold no Southeast Asian faces in any number and no children: these rates say "
    "nothing about them."
)


def _rate(count: int, trials: int) -> dict[str, Any]:
    return {
        "count": count,
        "trials": trials,
        "rate": count / trials if trials else None,
        "upper_bound_95": (3 / trials if count == 0 and trials else None),
    }


def evaluate(templates: LabeledTemplates, thresholds: Thresholds) -> dict[str, Any]:
    vectors = templates.vectors
    labels = np.asarray(templates.identities)
    rows_of: dict[str, list[int]] = defaultdict(list)
    for row, label in enumerate(labels):
        rows_of[str(label)].append(row)
    similarities = vectors @ vectors.T

    # Verification over all pairs.
    upper_rows, upper_cols = np.triu_indices(len(labels), k=1)
    same = labels[upper_rows] == labels[upper_cols]
    scores = similarities[upper_rows, upper_cols]
    verify_threshold = thresholds.verify.threshold
    genuine, impostor = scores[same], scores[~same]
    verification = {
        "threshold": verify_threshold,
        "false_non_match": _rate(int((genuine < verify_threshold).sum()), int(genuine.size)),
        "false_match": _rate(int((impostor >= verify_threshold).sum()), int(impostor.size)),
    }

    # Identification: gallery = first photo of every identity with >= 2 photos; mated probes =
    # their other photos; non-mated probes = identities with one photo.
    multi = sorted(name for name, rows in rows_of.items() if len(rows) >= 2)
    singles = sorted(name for name, rows in rows_of.items() if len(rows) == 1)
    gallery_rows = np.array([rows_of[name][0] for name in multi])
    gallery_labels = labels[gallery_rows]
    identify_threshold = thresholds.identify.threshold
    mated_rows = np.array([row for name in multi for row in rows_of[name][1:]])
    mated_scores = similarities[np.ix_(mated_rows, gallery_rows)]
    best = mated_scores.argmax(axis=1)
    rank1_correct = gallery_labels[best] == labels[mated_rows]
    above = mated_scores[np.arange(len(mated_rows)), best] >= identify_threshold
    nonmated_rows = np.array([rows_of[name][0] for name in singles])
    nonmated_best = similarities[np.ix_(nonmated_rows, gallery_rows)].max(axis=1)
    identification = {
        "threshold": identify_threshold,
        "gallery_size": len(gallery_rows),
        "rank1": _rate(int(rank1_correct.sum()), len(mated_rows)),
        "false_negative_identification": _rate(
            int((~(rank1_correct & above)).sum()), len(mated_rows)
        ),
        "false_positive_identification": _rate(
            int((nonmated_best >= identify_threshold).sum()), len(nonmated_rows)
        ),
    }

    # Duplicate search: the gallery above (first photos of multi-photo identities plus every
    # single), then each multi-photo identity enrolled again with its second photo.
    duplicate_threshold = thresholds.duplicate.threshold
    full_gallery = np.concatenate([gallery_rows, nonmated_rows])
    full_labels = labels[full_gallery]
    second_rows = np.array([rows_of[name][1] for name in multi])
    second_scores = similarities[np.ix_(second_rows, full_gallery)]
    flagged = second_scores >= duplicate_threshold
    right_candidate = (flagged & (full_labels[None, :] == labels[second_rows][:, None])).any(1)
    # New people: each single photo searched against the gallery without itself.
    new_scores = similarities[np.ix_(nonmated_rows, gallery_rows)]
    duplicate = {
        "threshold": duplicate_threshold,
        "gallery_size": len(full_gallery),
        "detected": _rate(int(right_candidate.sum()), len(second_rows)),
        "flagged_any": _rate(int(flagged.any(axis=1).sum()), len(second_rows)),
        "new_people_flagged": _rate(
            int((new_scores >= duplicate_threshold).any(1).sum()), len(nonmated_rows)
        ),
    }
    return {
        "photos": len(labels),
        "identities": len(rows_of),
        "verification": verification,
        "identification": identification,
        "duplicate_search": duplicate,
        "thresholds_calibrated_on": thresholds.calibrated_on,
        "caveat": DATA_CAVEAT,
    }


def _fmt(rate: dict[str, Any]) -> str:
    if rate["trials"] == 0:
        return "n/a"
    if rate["count"] == 0:
        return f"0 / {rate['trials']:,} (< {rate['upper_bound_95']:.2g})"
    return f"{rate['rate']:.4f} ({rate['count']:,} / {rate['trials']:,})"


def markdown(results: dict[str, Any]) -> str:
    verification = results["verification"]
    identification = results["identification"]
    duplicate = results["duplicate_search"]
    rows = [
        [
            "1:1 verify",
            f"{verification['threshold']:.4f}",
            "FNMR",
            _fmt(verification["false_non_match"]),
        ],
        ["", "", "FMR", _fmt(verification["false_match"])],
        [
            "1:N identify",
            f"{identification['threshold']:.4f}",
            "rank-1 (no threshold)",
            _fmt(identification["rank1"]),
        ],
        ["", "", "FNIR at threshold", _fmt(identification["false_negative_identification"])],
        ["", "", "FPIR at threshold", _fmt(identification["false_positive_identification"])],
        [
            "duplicate search",
            f"{duplicate['threshold']:.4f}",
            "detection rate",
            _fmt(duplicate["detected"]),
        ],
        ["", "", "new people flagged", _fmt(duplicate["new_people_flagged"])],
    ]
    return (
        f"{results['photos']:,} photos of {results['identities']:,} people; identification "
        f"gallery {identification['gallery_size']:,}, duplicate-search gallery "
        f"{duplicate['gallery_size']:,}.\n\n"
        + markdown_table(["operating point", "threshold", "measure", "value"], rows)
        + f"\n\nThresholds: {results['thresholds_calibrated_on']}\n\n{results['caveat']}\n"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--templates", type=Path, required=True)
    parser.add_argument("--thresholds", type=Path, default=None)
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results"))
    arguments = parser.parse_args(argv)
    thresholds = (
        load_thresholds(arguments.thresholds) if arguments.thresholds else default_thresholds()
    )
    context = RunContext(name="operating-points", command=command_line(argv))
    results = evaluate(load_labeled_templates(arguments.templates), thresholds)
    body = markdown(results)
    write_report(arguments.out, context, results, body, "Operating points on held-out data")
    sys.stdout.write(body)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
