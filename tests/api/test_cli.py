"""The wajah command line: exit codes 0/1/2, --json documents, one-line errors."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from wajah.api.cli.main import app

runner = CliRunner()


@pytest.fixture()
def env(tmp_path: Path) -> dict[str, str]:
    return {"WAJAH_DATA_DIR": str(tmp_path / "data")}


def test_inspect_usable_photo_exits_0_with_json(faces_dir: Path, env: dict[str, str]) -> None:
    photo = faces_dir / "face_recognition/rose_leslie/img2.jpg"
    result = runner.invoke(app, ["inspect", str(photo), "--json"], env=env)
    assert result.exit_code == 0, result.output
    document = json.loads(result.stdout)
    image = document["images"][0]
    assert image["usable"] is True
    assert len(image["faces"]) == 1
    names = {c["name"] for c in image["quality"]["components"]}
    assert {"inter_eye_distance", "sharpness", "yaw", "eyes_open"} <= names


def test_inspect_unusable_photo_exits_1_and_annotates(
    faces_dir: Path, env: dict[str, str], tmp_path: Path
) -> None:
    photo = faces_dir / "lfw_deepfunneled/AJ_Cook/AJ_Cook_0001.jpg"  # 45 px between the eyes
    annotated = tmp_path / "annotated.jpg"
    result = runner.invoke(app, ["inspect", str(photo), "--annotate", str(annotated)], env=env)
    assert result.exit_code == 1, result.output
    assert "NOT USABLE" in result.stdout
    assert annotated.stat().st_size > 1000


def test_inspect_bad_bytes_exits_2_with_one_line(tmp_path: Path, env: dict[str, str]) -> None:
    bogus = tmp_path / "bogus.jpg"
    bogus.write_text("this is not a photo")
    result = runner.invoke(app, ["inspect", str(bogus)], env=env)
    assert result.exit_code == 2
    assert result.stderr.count("\n") == 1 and "wajah:" in result.stderr


def test_missing_file_and_unknown_profile_exit_2(env: dict[str, str], tmp_path: Path) -> None:
    result = runner.invoke(app, ["inspect", str(tmp_path / "none.jpg")], env=env)
    assert result.exit_code == 2
    result = runner.invoke(app, ["inspect", str(tmp_path / "none.jpg"), "--profile", "x"], env=env)
    assert result.exit_code == 2


def test_compare_same_and_different(faces_dir: Path, env: dict[str, str]) -> None:
    obama = faces_dir / "face_recognition/obama"
    same = runner.invoke(
        app, ["compare", str(obama / "obama.jpg"), str(obama / "obama2.jpg"), "--json"], env=env
    )
    assert same.exit_code == 0, same.output
    document = json.loads(same.stdout)
    assert document["decision"] == "same"
    assert document["similarity"] >= document["threshold"]
    different = runner.invoke(
        app,
        [
            "compare",
            str(obama / "obama.jpg"),
            str(faces_dir / "face_recognition/rose_leslie/img2.jpg"),
            "--json",
        ],
        env=env,
    )
    assert different.exit_code == 1, different.output
    assert json.loads(different.stdout)["decision"] == "different"


def test_enroll_verify_identify_review_delete(faces_dir: Path, env: dict[str, str]) -> None:
    rose = faces_dir / "face_recognition/rose_leslie"
    obama = faces_dir / "face_recognition/obama"

    def run(*args: str) -> tuple[int, dict[str, object]]:
        result = runner.invoke(app, [*args, "--json"], env=env)
        assert result.exit_code in (0, 1), result.output
        return result.exit_code, json.loads(result.stdout)

    code, enrolled = run("enroll", str(rose / "img2.jpg"), "--subject", "A-1", "--name", "R L")
    assert (code, enrolled["status"]) == (0, "accepted")
    code, enrolled = run(
        "enroll", str(obama / "obama.jpg"), "--subject", "B-1", "--name", "B O", "--profile", "scan"
    )
    assert (code, enrolled["status"]) == (0, "accepted")
    code, verified = run("verify", str(rose / "img1.jpg"), "--subject", "A-1")
    assert (code, verified["decision"]) == (0, "match")
    code, verified = run("verify", str(obama / "obama2.jpg"), "--subject", "A-1")
    assert (code, verified["decision"]) == (1, "no_match")
    code, found = run("identify", str(obama / "obama2.jpg"))
    assert code == 0 and found["candidates"][0]["subject_id"] == "B-1"
    # The same face under a new id goes to review, and the review can be resolved.
    code, enrolled = run(
        "enroll",
        str(obama / "obama2.jpg"),
        "--subject",
        "B-2",
        "--name",
        "B O again",
        "--profile",
        "scan",
    )
    assert enrolled["status"] == "pending_review"
    assert enrolled["candidates"][0]["subject_id"] == "B-1"
    code, reviews = run("review", "list")
    review_id = reviews["items"][0]["review_id"]  # type: ignore[index]
    code, resolved = run(
        "review",
        "resolve",
        str(review_id),
        "--resolution",
        "reject",
        "--comment",
        "second identity",
    )
    assert resolved["status"] == "resolved" and resolved["surviving_subject"] is None
    code, stats = run("index", "stats")
    assert stats["in_sync"] is True and stats["templates"] == 2
    code, deleted = run("subjects", "delete", "B-1")
    assert deleted["deleted"] is True
    code, found = run("identify", str(obama / "obama2.jpg"))
    assert code == 1 and found["candidates"] == []
    missing = runner.invoke(app, ["verify", str(rose / "img1.jpg"), "--subject", "NOPE"], env=env)
    assert missing.exit_code == 2 and "NOPE" in missing.stderr
