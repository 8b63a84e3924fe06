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
    assert enrolled["second_capture_advised"] is True
    code, enrolled = run(
        "enroll", str(obama / "obama.jpg"), "--subject", "B-1", "--name", "B O", "--profile", "scan"
    )
    assert (code, enrolled["status"]) == (0, "accepted")
    code, verified = run("verify", str(rose / "img1.jpg"), "--subject", "A-1")
    assert (code, verified["decision"]) == (0, "match")
    code, verified = run("verify", str(obama / "obama2.jpg"), "--subject", "A-1")
    assert (code, verified["decision"]) == (1, "no_match")
    code, found = run("identify", str(obama / "obama2.jpg"))
    assert code == 0 and found["candidates"][0]["subject_id"] == "B-1"  # type: ignore[index]
    assert found["decision"] == "identified" and found["gallery_size"] == 2
    code, strict = run("identify", str(obama / "obama2.jpg"), "--target-fpir", "30")
    assert strict["target_fpir"] == pytest.approx(1e-3)
    assert strict["threshold"] > found["threshold"]  # type: ignore[operator]
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
    # Investigation (the default) still ranks whoever is enrolled, for review; exit 1 says no
    # candidate cleared the threshold, not that there were none (issue 15).
    code, found = run("identify", str(obama / "obama2.jpg"))
    candidates = found["candidates"]
    assert isinstance(candidates, list)
    assert code == 1 and found["decision"] == "not_identified"
    assert [c["subject_id"] for c in candidates] == ["A-1"]
    assert candidates[0]["clears_threshold"] is False
    assert "possible candidates for review" in str(found["statement"])
    code, found = run("identify", str(obama / "obama2.jpg"), "--mode", "identification")
    assert code == 1 and found["candidates"] == []
    missing = runner.invoke(app, ["verify", str(rose / "img1.jpg"), "--subject", "NOPE"], env=env)
    assert missing.exit_code == 2 and "NOPE" in missing.stderr


def test_inspect_json_states_the_model_licences(faces_dir: Path, env: dict[str, str]) -> None:
    photo = faces_dir / "face_recognition/rose_leslie/img2.jpg"
    result = runner.invoke(app, ["inspect", str(photo), "--json"], env=env)
    models = {model["file"]: model for model in json.loads(result.stdout)["models"]}
    assert models["shape_predictor_68_face_landmarks.dat"]["commercial_use"] is False
    assert models["dlib_face_recognition_resnet_model_v1.dat"]["commercial_use"] is True


def test_cli_writes_are_audited(faces_dir: Path, env: dict[str, str], tmp_path: Path) -> None:
    photo = faces_dir / "face_recognition/rose_leslie/img2.jpg"
    enrolled = runner.invoke(
        app, ["enroll", str(photo), "--subject", "AUD-1", "--name", "R L", "--json"], env=env
    )
    assert enrolled.exit_code == 0, enrolled.output
    deleted = runner.invoke(app, ["subjects", "delete", "AUD-1", "--json"], env=env)
    assert deleted.exit_code == 0, deleted.output
    archive = tmp_path / "archive" / "AUD-2"
    archive.mkdir(parents=True)
    (archive / "photo.jpg").write_bytes(photo.read_bytes())
    imported = runner.invoke(app, ["import", str(archive.parent), "--json"], env=env)
    assert imported.exit_code == 0, imported.output
    listed = runner.invoke(app, ["audit", "list", "--json"], env=env)
    assert listed.exit_code == 0, listed.output
    records = json.loads(listed.stdout)["items"]
    actions = [(r["action"], r["subject_ref"], r["decision"]) for r in reversed(records)]
    assert actions == [
        ("subject.create", "AUD-1", None),
        ("face.enroll", "AUD-1", "accepted"),
        ("subject.delete", "AUD-1", None),
        ("face.enroll", "AUD-2", "enrolled"),
    ]
    assert all(r["key_name"].startswith("cli:") for r in records)
    verified = runner.invoke(app, ["audit", "verify", "--json"], env=env)
    assert verified.exit_code == 0, verified.output


# What a command's --help must not pay for: the face engine, the index, the store, the HTTP
# stack and the settings model (issue 14: a one-shot command starts in <= 1.5 s).
HEAVY_MODULES = (
    "numpy",
    "cv2",
    "dlib",
    "faiss",
    "onnxruntime",
    "sqlalchemy",
    "fastapi",
    "pydantic_settings",
    "PIL",
)


def test_help_imports_no_heavy_module() -> None:
    """``wajah --help`` and a command's ``--help`` run in a fresh interpreter (the test process
    has numpy loaded already) and list which heavy modules they imported."""
    import subprocess
    import sys

    probe = (
        "import sys\n"
        "from wajah.api.cli.main import app\n"
        "for args in (['--help'], ['verify', '--help'], ['import', '--help']):\n"
        "    try:\n"
        "        app(args, standalone_mode=False)\n"
        "    except SystemExit:\n"
        "        pass\n"
        f"print(sorted(m for m in {HEAVY_MODULES!r} if m in sys.modules))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, timeout=120, check=True
    )
    assert "Usage" in result.stdout  # the help really was rendered
    assert result.stdout.strip().splitlines()[-1] == "[]", result.stdout[-300:]


def test_profile_names_in_help_are_the_profiles() -> None:
    from wajah.api.cli.support import PROFILE_NAMES
    from wajah.biometric.quality import PROFILES

    assert tuple(PROFILES) == PROFILE_NAMES
