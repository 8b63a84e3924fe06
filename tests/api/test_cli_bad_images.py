"""The bad-image corpus through the real ``wajah`` command (a subprocess, its face workers
included): every file reported with its reason, no traceback, exit 2 only for bad input to
``inspect`` and a completed ``import`` that reports every file."""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.api.photos import lfw
from tests.bad_images import corpus

pytestmark = pytest.mark.slow

WAJAH = str(Path(sys.executable).with_name("wajah"))


def run(arguments: list[str], data_dir: Path) -> subprocess.CompletedProcess[str]:
    env = {name: value for name, value in os.environ.items() if not name.startswith("WAJAH_")}
    env["WAJAH_DATA_DIR"] = str(data_dir)
    return subprocess.run(
        [WAJAH, *arguments], env=env, capture_output=True, text=True, timeout=600, check=False
    )


@pytest.fixture(scope="module")
def corpus_files(tmp_path_factory: pytest.TempPathFactory, faces_dir: Path) -> list[Path]:
    folder = tmp_path_factory.mktemp("corpus")
    paths = []
    for case in corpus(lfw(faces_dir, "Tony_Blair", 1)):
        path = folder / case.name / "photo.jpg"  # one folder per subject, as import reads it
        path.parent.mkdir()
        path.write_bytes(case.data)
        paths.append(path)
    return paths


def test_inspect_reports_every_file_with_its_reason(
    corpus_files: list[Path], tmp_path: Path
) -> None:
    result = run(["inspect", *map(str, corpus_files), "--json"], tmp_path / "data")
    assert result.returncode == 2, result.stderr[-2000:]
    assert "Traceback" not in result.stderr
    images = json.loads(result.stdout)["images"]
    assert [image["path"] for image in images] == [str(path) for path in corpus_files]
    refused = [image for image in images if "error" in image]
    assert len(refused) >= 40
    assert all(image["detail"] for image in refused)
    error_lines = [line for line in result.stderr.splitlines() if line.startswith("wajah: ")]
    assert len(error_lines) == len(refused)


def test_import_completes_and_reports_every_file(corpus_files: list[Path], tmp_path: Path) -> None:
    archive = corpus_files[0].parent.parent
    result = run(["import", str(archive), "--json"], tmp_path / "data")
    assert result.returncode in (0, 1), result.stderr[-2000:]
    assert "Traceback" not in result.stderr
    document = json.loads(result.stdout)
    assert document["summary"]["total"] == len(corpus_files)
    with Path(document["report"]).open(newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert len(rows) == len(corpus_files)
    unreadable = [row for row in rows if row["outcome"] == "unreadable"]
    assert len(unreadable) >= 40 and all(row["detail"] for row in unreadable)
    assert document["summary"]["counts"].get("error", 0) == 0, rows


def test_import_of_a_missing_folder_is_usage(tmp_path: Path) -> None:
    result = run(["import", str(tmp_path / "nowhere")], tmp_path / "data")
    assert result.returncode == 2
    assert result.stderr.count("\n") == 1 and result.stderr.startswith("wajah: ")
