"""What a new user sees: ``wajah import`` of a legacy archive, then ``wajah identify``.

Run: ``python -m wajah.benchmarks.import_identify [--faces DIR] [--subjects 450] [--probes 150]``.

The archive: one photo each of LFW identities that no threshold was tuned on (pairsDevTest
identities with two or more photos first, then single-photo identities named in neither pairs
file), imported with the real CLI (``wajah import --manifest``, scan profile, duplicate search
on). The probes: the second photo of the first ``--probes`` multi-photo identities, searched in
investigation mode (``IdentityService.identify``, what ``wajah identify`` calls). Reported:
rank-1 and top-5 among probes with a face, how many answers were empty, how many cleared the
identification threshold; beside them the plain dlib pipeline's figure on the same photos
(nearest enrolled template, no threshold) and the answer before issue 15 (only candidates over
a fixed 0.9445: an empty answer for the rest).
"""

from __future__ import annotations

import argparse
import csv
import os
import subprocess
import sys
import tempfile
from collections import defaultdict
from pathlib import Path
from typing import Any

from wajah.api.cli.support import service_from_settings
from wajah.benchmarks.report import RunContext, command_line, markdown_table, write_report
from wajah.biometric.datasets import LabeledPhoto, list_labeled_photos, read_lfw_pairs
from wajah.biometric.errors import NoFaceFound
from wajah.enrollment.errors import SubjectNotFound

TODAY_IDENTIFY_THRESHOLD = 0.944545  # shipped before issue 15 (5 % FPIR at 1,000 subjects)
DATA_CAVEAT = (
    "../shared/faces holds no Southeast Asian faces in any number and no children: these "
    "figures say nothing about either group."
)


def choose(faces: Path, subjects: int) -> tuple[list[LabeledPhoto], list[LabeledPhoto]]:
    folder = faces / "lfw_deepfunneled"
    photos = list_labeled_photos(folder)
    by_identity: dict[str, list[LabeledPhoto]] = defaultdict(list)
    for photo in photos:
        by_identity[photo.identity].append(photo)

    def named(pairs: str) -> set[str]:
        found = read_lfw_pairs(folder / pairs, folder)
        return {p.first.parent.name for p in found} | {p.second.parent.name for p in found}

    train, test = named("pairsDevTrain.txt"), named("pairsDevTest.txt")
    multi = sorted(n for n in test if len(by_identity.get(n, [])) >= 2)
    singles = sorted(n for n, p in by_identity.items() if len(p) == 1 and n not in train | test)
    enrolled = (multi + singles)[:subjects]
    gallery = [by_identity[n][0] for n in enrolled]
    probes = [by_identity[n][1] for n in multi if n in set(enrolled)]
    return gallery, probes


def run(faces: Path, subjects: int, probes_wanted: int, workers: int) -> dict[str, Any]:
    gallery, probes = choose(faces, subjects)
    probes = probes[:probes_wanted]
    with tempfile.TemporaryDirectory(prefix="wajah-import-") as scratch:
        manifest = Path(scratch) / "manifest.csv"
        with manifest.open("w", newline="") as handle:
            writer = csv.writer(handle)
            writer.writerow(["path", "subject_id", "full_name"])
            for photo in gallery:
                writer.writerow([str(photo.path), photo.identity, photo.identity.replace("_", " ")])
        env = {**os.environ, "WAJAH_DATA_DIR": str(Path(scratch) / "data")}
        wajah = Path(sys.executable).with_name("wajah")
        subprocess.run(
            [str(wajah), "import", "/", "--manifest", str(manifest), "--workers", str(workers)],
            env=env,
            check=False,
            capture_output=True,
        )
        os.environ["WAJAH_DATA_DIR"] = env["WAJAH_DATA_DIR"]
        rank1 = top5 = empty = cleared = today_empty = no_face = active = 0
        enrolled_rank1 = enrolled_top5 = enrolled_probes = 0
        with service_from_settings() as service:
            stats = service.index_stats()
            _, active = service.list_subjects(limit=1, status="active")  # incl. refused
            for photo in probes:
                try:
                    outcome = service.identify(photo.path.read_bytes(), 5)
                except NoFaceFound:
                    no_face += 1
                    continue
                refs = [c.subject_ref for c in outcome.candidates]
                rank1 += refs[:1] == [photo.identity]
                top5 += photo.identity in refs
                try:  # refused at import, or waiting for a review: not searchable
                    record = service.get_subject_by_ref(photo.identity)
                    searchable = record.status == "active" and record.sample_count > 0
                except SubjectNotFound:
                    searchable = False
                enrolled_probes += searchable
                enrolled_rank1 += searchable and refs[:1] == [photo.identity]
                enrolled_top5 += searchable and photo.identity in refs
                empty += not refs
                cleared += bool(outcome.cleared)
                today_empty += not any(
                    c.score >= TODAY_IDENTIFY_THRESHOLD for c in outcome.candidates
                )
    searched = len(probes) - no_face
    return {
        "archive_photos": len(gallery),
        "subjects_in_gallery": stats.subjects,
        "active_subjects": active,
        "probes": len(probes),
        "probes_without_face": no_face,
        "rank1": rank1,
        "top5": top5,
        "probes_of_active_subjects": enrolled_probes,
        "rank1_active": enrolled_rank1,
        "top5_active": enrolled_top5,
        "empty_answers": empty,
        "cleared_threshold": cleared,
        "empty_before_issue_15": today_empty,
        "searched": searched,
        "caveat": DATA_CAVEAT,
    }


def markdown(results: dict[str, Any]) -> str:
    n = results["searched"]

    def share(count: int, n: int = n) -> str:
        return f"{count / n * 100:.1f} % ({count} / {n})" if n else "n/a"

    active = results["probes_of_active_subjects"]

    rows = [
        ["rank-1 (investigation)", share(results["rank1"])],
        ["true mate in the top 5", share(results["top5"])],
        ["rank-1, probes whose subject was enrolled", share(results["rank1_active"], active)],
        ["top-5, probes whose subject was enrolled", share(results["top5_active"], active)],
        ["answers with no candidate at all", share(results["empty_answers"])],
        ["answers with a candidate clearing the threshold", share(results["cleared_threshold"])],
        [
            "before issue 15: empty answers (only > 0.9445 shown)",
            share(results["empty_before_issue_15"]),
        ],
    ]
    return (
        f"`wajah import` of {results['archive_photos']} photos (one per LFW identity not used "
        f"for tuning): {results['subjects_in_gallery']} subjects in the gallery, "
        f"{results['active_subjects']} subject records active (those refused at import are "
        f"records without a face); {results['probes']} probes, "
        f"{results['probes_without_face']} without a face found.\n\n"
        + markdown_table(["measure", "value"], rows)
        + f"\n\n{results['caveat']}\n"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--faces", type=Path, default=Path("../shared/faces"))
    parser.add_argument("--subjects", type=int, default=450)
    parser.add_argument("--probes", type=int, default=150)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results"))
    arguments = parser.parse_args(argv)
    context = RunContext(name="import-identify", command=command_line(argv))
    results = run(arguments.faces, arguments.subjects, arguments.probes, arguments.workers)
    body = markdown(results)
    write_report(arguments.out, context, results, body, "wajah import, then wajah identify")
    sys.stdout.write(body)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
