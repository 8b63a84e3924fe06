"""Bulk import: both layouts, bad files, resume, the report, the CLI. Real LFW photos are linked
(never copied) into a temporary archive; bad files are made at test time."""

from __future__ import annotations

import csv
import json
import os
from collections.abc import Iterator
from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

from wajah.api.cli.bulk_import import import_photos
from wajah.api.runtime import build_service
from wajah.api.settings import Settings
from wajah.enrollment.bulk_import import (
    REPORT_COLUMNS,
    ImportItem,
    ImportOutcome,
    ImportRow,
    ManifestError,
    items_from_folders,
    items_from_manifest,
    run_import,
    write_report,
)
from wajah.enrollment.service import IdentityService


def lfw_identities(faces_dir: Path, count: int, min_photos: int = 2) -> list[list[Path]]:
    """The first ``count`` LFW identities (alphabetical) with at least ``min_photos`` photos."""
    root = faces_dir / "lfw_deepfunneled"
    chosen: list[list[Path]] = []
    for folder in sorted(p for p in root.iterdir() if p.is_dir()):
        photos = sorted(folder.glob("*.jpg"))
        if len(photos) >= min_photos:
            chosen.append(photos)
            if len(chosen) == count:
                break
    return chosen


def link(source: Path, target: Path) -> Path:
    target.parent.mkdir(parents=True, exist_ok=True)
    os.symlink(source, target)
    return target


# Chosen so that no two of them score above the duplicate threshold (measured; LFW holds
# look-alikes: Abel_Pacheco_0001 scores 0.89 against Abdullah_al-Attiyah, for one).
ARCHIVE_PEOPLE = ("Aaron_Peirsol", "Abdoulaye_Wade", "Abdullah_al-Attiyah")
BROKEN_FOLDER_PHOTO = "Abel_Pacheco/Abel_Pacheco_0002.jpg"


@pytest.fixture(scope="module")
def archive(faces_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Three subjects with two photos each; a subject whose folder also holds a text file named
    .jpg and a truncated JPEG; a subject whose only photo has no face; and the first person's
    third photo under another reference (a possible duplicate)."""
    root = tmp_path_factory.mktemp("archive")
    lfw = faces_dir / "lfw_deepfunneled"
    for ref in ARCHIVE_PEOPLE:
        for number in (1, 2):
            link(lfw / ref / f"{ref}_{number:04d}.jpg", root / ref / f"{ref}_{number:04d}.jpg")
    broken = root / "Broken_Files"
    photo = lfw / BROKEN_FOLDER_PHOTO
    link(photo, broken / photo.name)
    (broken / "notes.jpg").write_text("this is not a photo\n")
    whole = (lfw / "Abel_Pacheco" / "Abel_Pacheco_0003.jpg").read_bytes()
    (broken / "truncated.jpg").write_bytes(whole[: len(whole) // 2])
    nonface = sorted((faces_dir / "negatives" / "nonface").iterdir())[0]
    link(nonface, root / "No_Face" / nonface.name)
    third = lfw / ARCHIVE_PEOPLE[0] / f"{ARCHIVE_PEOPLE[0]}_0003.jpg"
    link(third, root / "ZZ_Second_Identity" / third.name)
    return root


@pytest.fixture
def service(tmp_path: Path, database_url: str) -> Iterator[IdentityService]:
    built, _ = build_service(
        Settings(data_dir=tmp_path / "data", database_url=database_url), workers=0
    )
    yield built
    built.close()


def by_name(rows: tuple[ImportRow, ...]) -> dict[str, ImportRow]:
    return {row.path.name: row for row in rows}


def test_folder_layout_outcomes(archive: Path, service: IdentityService) -> None:
    items = items_from_folders(archive)
    assert len(items) == 3 * 2 + 3 + 1 + 1
    done: list[ImportRow] = []
    result = run_import(service, items, on_done=done.append)
    rows = by_name(result.rows)
    assert [row.path for row in result.rows] == [item.path for item in items]  # input order
    assert len(done) == len(items)

    assert rows["notes.jpg"].outcome is ImportOutcome.UNREADABLE
    assert (
        "ImageDecodeError" in rows["notes.jpg"].detail or "Unsupported" in rows["notes.jpg"].detail
    )
    assert rows["truncated.jpg"].outcome is ImportOutcome.UNREADABLE
    nonface = next(row for row in result.rows if row.subject_id == "No_Face")
    assert nonface.outcome is ImportOutcome.REFUSED
    assert "face_count" in nonface.reasons

    second = next(row for row in result.rows if row.subject_id == "ZZ_Second_Identity")
    first_ref = items[0].subject_ref
    assert second.outcome is ImportOutcome.PENDING_REVIEW
    assert second.candidates[0][0] == first_ref
    assert second.score is not None and second.score >= service.thresholds.duplicate.threshold

    stored = [row for row in result.rows if row.stored]
    assert len(stored) == 3 * 2 + 1 + 1
    assert service.stored_templates() == len(stored)
    assert service.indexed_templates() == len(stored)
    subject = service.get_subject_by_ref(first_ref)
    assert subject.full_name == first_ref.replace("_", " ")
    assert subject.sample_count == 2
    assert all(
        sample.capture_source == "import" and sample.station == "import"
        for sample in service.list_samples(subject.id)
    )
    counts = result.summary.counts
    assert counts == {
        "enrolled": 7,
        "refused": 1,
        "pending_review": 1,
        "unreadable": 2,
        "skipped_already_imported": 0,
        "error": 0,
    }
    assert result.summary.profile == "scan"
    assert result.summary.photos_per_s > 0


def test_resume_skips_what_is_stored_and_adds_no_duplicates(
    archive: Path, service: IdentityService
) -> None:
    items = items_from_folders(archive)
    first = run_import(service, items[:4])  # an interrupted run: the first four photos
    assert first.summary.counts["enrolled"] == 4
    second = run_import(service, items)
    rows = by_name(second.rows)
    for item in items[:4]:
        assert rows[item.path.name].outcome is ImportOutcome.SKIPPED_ALREADY_IMPORTED
    assert second.summary.counts["skipped_already_imported"] == 4
    assert second.summary.counts["enrolled"] + second.summary.counts["pending_review"] == 4
    assert service.stored_templates() == 8
    third = run_import(service, items)
    assert third.summary.counts["skipped_already_imported"] == 8
    assert service.stored_templates() == 8
    # Not stored, so tried again (and found wanting again) rather than skipped.
    assert third.summary.counts["unreadable"] == 2
    assert third.summary.counts["refused"] == 1


def test_same_file_twice_in_one_archive_is_stored_once(
    faces_dir: Path, tmp_path: Path, service: IdentityService
) -> None:
    photo = lfw_identities(faces_dir, 1)[0][0]
    items = [ImportItem(photo, "Copy_One", "Copy One"), ImportItem(photo, "Copy_Two", "Copy Two")]
    result = run_import(service, items)
    assert [row.outcome for row in result.rows] == [
        ImportOutcome.ENROLLED,
        ImportOutcome.SKIPPED_ALREADY_IMPORTED,
    ]
    assert service.stored_templates() == 1


def test_manifest_layout_sets_identity(
    faces_dir: Path, tmp_path: Path, service: IdentityService
) -> None:
    people = lfw_identities(faces_dir, 2)
    lfw = faces_dir / "lfw_deepfunneled"
    manifest = tmp_path / "manifest.csv"
    with manifest.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(
            ["path", "subject_id", "full_name", "date_of_birth", "nationality", "document_number"]
        )
        writer.writerow(
            [
                people[0][0].relative_to(lfw),
                "A-0001",
                "Ada Example",
                "1980-02-03",
                "idn",
                "X1234567",
            ]
        )
        writer.writerow([people[0][1].relative_to(lfw), "A-0001", "", "", "", ""])
        writer.writerow([people[1][0], "B_Person", "", "", "", ""])  # absolute path
    items = items_from_manifest(manifest, base_dir=lfw)
    assert [item.subject_ref for item in items] == ["A-0001", "A-0001", "B_Person"]
    result = run_import(service, items)
    assert [row.outcome for row in result.rows] == [ImportOutcome.ENROLLED] * 3
    ada = service.get_subject_by_ref("A-0001")
    assert (ada.full_name, str(ada.date_of_birth), ada.nationality, ada.document_number) == (
        "Ada Example",
        "1980-02-03",
        "IDN",
        "X1234567",
    )
    assert ada.sample_count == 2
    assert service.get_subject_by_ref("B_Person").full_name == "B Person"


def test_manifest_row_the_store_refuses_is_an_error_row(
    faces_dir: Path, tmp_path: Path, service: IdentityService
) -> None:
    photo = lfw_identities(faces_dir, 1)[0][0]
    manifest = tmp_path / "m.csv"
    manifest.write_text(f"path,subject_id,nationality\n{photo},Bad_Country,12X\n")
    result = run_import(service, items_from_manifest(manifest))
    assert result.rows[0].outcome is ImportOutcome.ERROR
    assert "InvalidSubjectData" in result.rows[0].detail


@pytest.mark.parametrize(
    "text",
    [
        "file,who\na.jpg,x\n",  # no path / subject_id columns
        "path,subject_id\n",  # no rows
        "path,subject_id\na.jpg,\n",  # empty subject_id
        "path,subject_id,full_name\na.jpg,S1,One\nb.jpg,S1,Another\n",  # disagreeing identity
    ],
)
def test_bad_manifest_is_refused_as_a_whole(tmp_path: Path, text: str) -> None:
    manifest = tmp_path / "bad.csv"
    manifest.write_text(text)
    with pytest.raises(ManifestError):
        items_from_manifest(manifest)


def test_report_csv_content(tmp_path: Path) -> None:
    rows = (
        ImportRow(Path("/a/x.jpg"), "S1", ImportOutcome.ENROLLED, reasons=("exposure",)),
        ImportRow(
            Path("/a/y.jpg"),
            "S2",
            ImportOutcome.PENDING_REVIEW,
            candidates=(("S1", 0.91234), ("S9", 0.88)),
            score=0.91234,
        ),
        ImportRow(
            Path("/a/z.jpg"),
            "S3",
            ImportOutcome.UNREADABLE,
            detail="ImageDecodeError: JPEG data is corrupt or truncated",
        ),
    )
    path = write_report(rows, tmp_path / "imports" / "r.csv")
    with path.open(newline="") as handle:
        reader = csv.DictReader(handle)
        assert tuple(reader.fieldnames or ()) == REPORT_COLUMNS
        written = list(reader)
    assert written[0] == {
        "path": "/a/x.jpg",
        "subject_id": "S1",
        "outcome": "enrolled",
        "reasons": "exposure",
        "candidates": "",
        "score": "",
        "detail": "",
    }
    assert written[1]["candidates"] == "S1:0.9123;S9:0.8800"
    assert written[1]["score"] == "0.9123"
    assert written[2]["outcome"] == "unreadable"
    assert "truncated" in written[2]["detail"]
    assert not list(path.parent.glob(".*.tmp"))


# -- the command ---------------------------------------------------------------------------------


def cli() -> typer.Typer:
    app = typer.Typer()
    app.command("import")(import_photos)
    app.command("noop")(lambda: None)  # two commands, so "import" is a sub-command as in wajah
    return app


def test_cli_imports_writes_report_and_json(
    archive: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    data_dir = tmp_path / "data"
    monkeypatch.setenv("WAJAH_DATA_DIR", str(data_dir))
    done_log = tmp_path / "done.jsonl"
    result = CliRunner().invoke(
        cli(), ["import", str(archive), "--workers", "0", "--json", "--done-log", str(done_log)]
    )
    assert result.exit_code == 0, result.output
    document = json.loads(result.stdout)
    assert document["summary"]["total"] == 11
    assert document["summary"]["counts"]["unreadable"] == 2
    report = Path(document["report"])
    assert report.parent == data_dir / "imports" and report.name.startswith("import-")
    with report.open(newline="") as handle:
        assert len(list(csv.DictReader(handle))) == 11
    logged = [json.loads(line) for line in done_log.read_text().splitlines()]
    assert len(logged) == 11
    assert {entry["outcome"] for entry in logged} >= {"enrolled", "pending_review", "refused"}

    again = CliRunner().invoke(
        cli(),
        [
            "import",
            str(archive),
            "--workers",
            "0",
            "--json",
            "--report",
            str(tmp_path / "second.csv"),
        ],
    )
    assert again.exit_code == 0, again.output
    assert json.loads(again.stdout)["summary"]["counts"]["skipped_already_imported"] == 8
    assert (tmp_path / "second.csv").is_file()


def test_cli_bad_input_exits_2(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WAJAH_DATA_DIR", str(tmp_path / "data"))
    missing = CliRunner().invoke(cli(), ["import", str(tmp_path / "nowhere")])
    assert missing.exit_code == 2
    assert "not a directory" in missing.output
    bad = tmp_path / "bad.csv"
    bad.write_text("file,who\na.jpg,x\n")
    bad_csv = CliRunner().invoke(cli(), ["import", str(tmp_path), "--manifest", str(bad)])
    assert bad_csv.exit_code == 2
    assert "missing column" in bad_csv.output
    profile = CliRunner().invoke(cli(), ["import", str(tmp_path), "--profile", "nope"])
    assert profile.exit_code == 2
    assert not (tmp_path / "data" / "wajah.db").exists()  # refused before touching the store
