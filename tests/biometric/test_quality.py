"""Quality assessment on real photos and on degradations derived from them at test time
(blur, darkening, over-exposure, shrinking, rotation, cropping)."""

from __future__ import annotations

import json
import random
from pathlib import Path

import cv2
import numpy as np
import pytest
from PIL import Image, ImageOps

from wajah.biometric.detect import DetectionPolicy, DetectorKind, FaceBox, FaceDetector
from wajah.biometric.landmarks import FaceLandmarks, LandmarkPredictor
from wajah.biometric.models import find_model_paths
from wajah.biometric.quality import (
    COMPONENT_NAMES,
    ENROLLMENT,
    PROFILES,
    SCAN,
    VERIFICATION,
    QualityProfile,
    QualityReport,
    assess_quality,
)

# Verified to pass ENROLLMENT: 121 px between the eyes, yaw ~7, pitch ~-8, mouth closed.
GOOD_PHOTO = "face_recognition/rose_leslie/img2.jpg"
# A real head turn: he looks to his left, yaw ~ +34 deg.
TURNED_PHOTO = "face_recognition/obama/obama1.jpg"


class Models:
    def __init__(self) -> None:
        paths = find_model_paths()
        self.detector = FaceDetector(DetectorKind.HOG, paths.face_detector_cnn, DetectionPolicy())
        self.landmarks = LandmarkPredictor(paths.landmarks_68, paths.landmarks_5)

    def analyse(self, rgb: np.ndarray) -> tuple[list[FaceBox], FaceLandmarks | None]:
        faces = self.detector.detect(rgb)
        return faces, (self.landmarks.predict(rgb, faces[0]) if faces else None)

    def assess(self, rgb: np.ndarray, profile: QualityProfile) -> QualityReport:
        faces, landmarks = self.analyse(rgb)
        return assess_quality(rgb, faces, landmarks, profile)


@pytest.fixture(scope="module")
def models() -> Models:
    return Models()


def load_rgb(path: Path) -> np.ndarray:
    with Image.open(path) as image:
        return np.ascontiguousarray(np.asarray(ImageOps.exif_transpose(image).convert("RGB")))


@pytest.fixture(scope="module")
def good(models: Models, faces_dir: Path) -> tuple[np.ndarray, list[FaceBox], FaceLandmarks | None]:
    rgb = load_rgb(faces_dir / GOOD_PHOTO)
    faces, landmarks = models.analyse(rgb)
    assert len(faces) == 1 and landmarks is not None
    return rgb, faces, landmarks


Capture = tuple[np.ndarray, list[FaceBox], FaceLandmarks | None]


def failed(report: QualityReport) -> set[str]:
    return {c.name for c in report.components if c.passed is False}


# --- the reference photo and its degradations ---------------------------------------------


def test_a_sharp_frontal_photo_passes_enrollment(good: Capture) -> None:
    rgb, faces, landmarks = good
    report = assess_quality(rgb, faces, landmarks, ENROLLMENT)
    assert report.usable, [c.reason for c in report.failing]
    assert report.failing == ()
    assert report.face_count == 1
    assert [c.name for c in report.components] == list(COMPONENT_NAMES)
    assert all(c.assessed and c.passed and c.required for c in report.components)
    assert report.component("inter_eye_distance").value == pytest.approx(121, abs=5)


def test_blur_fails_sharpness(good: Capture) -> None:
    rgb, faces, landmarks = good
    sigma_px = faces[0].width / 50  # ~5 px on a 260 px face
    blurred = cv2.GaussianBlur(rgb, (0, 0), sigma_px)
    report = assess_quality(blurred, faces, landmarks, ENROLLMENT)
    sharpness = report.component("sharpness")
    assert sharpness.passed is False
    assert "blurred" in sharpness.reason
    assert not report.usable
    assert failed(report) == {"sharpness"}
    # Too blurred for the counter as well.
    assert (
        assess_quality(blurred, faces, landmarks, VERIFICATION).component("sharpness").passed
        is False
    )


def test_mild_blur_fails_enrollment_but_not_scan(good: Capture) -> None:
    rgb, faces, landmarks = good
    blurred = cv2.GaussianBlur(rgb, (0, 0), 3.0)
    assert (
        assess_quality(blurred, faces, landmarks, ENROLLMENT).component("sharpness").passed is False
    )
    assert assess_quality(blurred, faces, landmarks, SCAN).component("sharpness").passed is True


def test_darkened_photo_is_too_dark(good: Capture) -> None:
    rgb, faces, landmarks = good
    dark = (rgb.astype(np.float32) * 0.15).astype(np.uint8)
    report = assess_quality(dark, faces, landmarks, ENROLLMENT)
    exposure = report.component("exposure")
    assert exposure.passed is False
    assert "too dark" in exposure.reason
    assert exposure.value is not None and exposure.value < ENROLLMENT.min_exposure
    assert not report.usable
    # Geometry does not depend on the light.
    assert report.component("inter_eye_distance").passed is True
    assert report.component("yaw").passed is True


def test_overexposed_photo_is_too_bright(good: Capture) -> None:
    rgb, faces, landmarks = good
    bright = np.clip(rgb.astype(np.float32) * 3.0, 0, 255).astype(np.uint8)
    report = assess_quality(bright, faces, landmarks, ENROLLMENT)
    exposure = report.component("exposure")
    overexposure = report.component("overexposure")
    assert exposure.passed is False and "too bright" in exposure.reason
    assert overexposure.passed is False and "too bright" in overexposure.reason
    assert report.component("underexposure").passed is True
    assert not report.usable


def test_shrunk_photo_fails_the_inter_eye_distance(models: Models, good: Capture) -> None:
    rgb = good[0]
    small = cv2.resize(rgb, None, fx=0.4, fy=0.4, interpolation=cv2.INTER_AREA)
    report = models.assess(small, ENROLLMENT)
    component = report.component("inter_eye_distance")
    assert component.passed is False
    assert (
        component.value is not None and 40 < component.value < ENROLLMENT.min_inter_eye_distance_px
    )
    assert "move closer" in component.reason
    assert failed(report) <= {"inter_eye_distance", "face_size"}
    # Enough for the counter and for an archive scan.
    assert models.assess(small, VERIFICATION).usable
    assert models.assess(small, SCAN).usable


def test_in_plane_rotation_fails_roll(models: Models, good: Capture) -> None:
    rgb = good[0]
    height, width = rgb.shape[:2]
    matrix = cv2.getRotationMatrix2D((width / 2, height / 2), 20.0, 1.0)  # counter-clockwise
    rotated = cv2.warpAffine(rgb, matrix, (width, height), borderMode=cv2.BORDER_REPLICATE)
    report = models.assess(rotated, ENROLLMENT)
    roll = report.component("roll")
    assert roll.passed is False
    assert roll.value == pytest.approx(-20.0, abs=4.0)
    assert "right shoulder" in roll.reason
    assert failed(report) == {"roll"}
    assert models.assess(rotated, VERIFICATION).component("roll").passed is True


def test_face_cut_by_the_border_fails_the_margin(models: Models, good: Capture) -> None:
    rgb, faces, _ = good
    cut = np.ascontiguousarray(rgb[:, : faces[0].right - faces[0].width // 5])
    report = models.assess(cut, VERIFICATION)
    margin = report.component("face_margin")
    assert margin.passed is False
    assert margin.value is not None and margin.value <= 0.0
    assert "cut by the image border" in margin.reason
    assert not report.usable


# --- real photos with real defects ----------------------------------------------------------


def test_turned_head_fails_yaw(models: Models, faces_dir: Path) -> None:
    rgb = load_rgb(faces_dir / TURNED_PHOTO)
    report = models.assess(rgb, ENROLLMENT)
    yaw = report.component("yaw")
    assert yaw.passed is False
    assert yaw.value is not None and yaw.value > ENROLLMENT.max_abs_yaw_deg
    assert "turned to their left" in yaw.reason
    assert models.assess(rgb, SCAN).component("yaw").passed is True


@pytest.mark.parametrize(
    ("photo", "component"),
    [
        ("subject01/subject01.leftlight.png", "illumination_uniformity"),
        ("subject02/subject02.rightlight.png", "illumination_uniformity"),
        ("subject03/subject03.sleepy.png", "eyes_open"),
        ("subject06/subject06.sleepy.png", "eyes_open"),
        ("subject04/subject04.surprised.png", "mouth_closed"),
    ],
)
def test_yale_conditions_fail_their_component(
    models: Models, faces_dir: Path, photo: str, component: str
) -> None:
    rgb = load_rgb(faces_dir / "yalefaces_png" / photo)
    normal = load_rgb(faces_dir / "yalefaces_png" / photo.replace(photo.split(".")[1], "normal"))
    assert models.assess(rgb, ENROLLMENT).component(component).passed is False
    assert models.assess(normal, ENROLLMENT).component(component).passed is True


def test_every_multiface_photo_fails_face_count(models: Models, manifest: object) -> None:
    photos = [p for p in manifest("negatives") if "/multiface/" in str(p.path)]  # type: ignore[operator]
    assert len(photos) == 6
    for photo in photos:
        report = models.assess(load_rgb(photo.path), ENROLLMENT)
        count = report.component("face_count")
        assert count.passed is False, photo.path.name
        assert report.face_count >= 2
        assert "only the applicant" in count.reason
        assert not report.usable


def test_no_face_reports_every_face_component_as_not_assessed(
    models: Models, faces_dir: Path
) -> None:
    rgb = load_rgb(sorted((faces_dir / "negatives" / "nonface").glob("*"))[0])
    faces, landmarks = models.analyse(rgb)
    assert faces == [] and landmarks is None
    for profile in PROFILES.values():
        report = assess_quality(rgb, faces, landmarks, profile)
        assert not report.usable
        assert report.face_count == 0
        assert report.component("face_count").passed is False
        assert "No face" in report.component("face_count").reason
        others = [c for c in report.components if c.name != "face_count"]
        assert len(others) == len(COMPONENT_NAMES) - 1
        assert all(c.value is None and c.passed is None and not c.assessed for c in others)
        assert all(c.reason == "not assessed: no face" for c in others)
        assert {c.name for c in report.failing} == {"face_count"} | {
            c.name for c in others if c.required
        }


def test_missing_landmarks_are_never_silently_passed(good: Capture) -> None:
    rgb, faces, _ = good
    report = assess_quality(rgb, faces, None, ENROLLMENT)
    for name in ("inter_eye_distance", "yaw", "pitch", "roll", "eyes_open", "mouth_closed"):
        component = report.component(name)
        assert component.passed is None and component.reason == "not assessed: no landmarks"
        assert component in report.failing
    assert report.component("sharpness").passed is True  # the box alone is enough for these
    assert not report.usable


def test_verification_ignores_a_small_bystander_but_not_a_second_person(good: Capture) -> None:
    rgb, faces, landmarks = good
    subject = faces[0]
    bystander = FaceBox(10, 10, 10 + subject.width // 3, 10 + subject.height // 3, 0.5, "hog")
    second = FaceBox(0, 0, subject.width, subject.height, 0.5, "hog")
    with_bystander = [subject, bystander]
    assert assess_quality(rgb, with_bystander, landmarks, VERIFICATION).usable
    assert not assess_quality(rgb, with_bystander, landmarks, ENROLLMENT).usable
    assert not assess_quality(rgb, [subject, second], landmarks, VERIFICATION).usable


# --- profiles on LFW ------------------------------------------------------------------------


@pytest.mark.slow
def test_lfw_fails_enrollment_on_eye_distance_and_passes_scan(
    models: Models, faces_dir: Path
) -> None:
    photos = random.Random(3).sample(sorted((faces_dir / "lfw_deepfunneled").glob("*/*.jpg")), 30)
    reports = []
    for path in photos:
        rgb = load_rgb(path)
        faces, landmarks = models.analyse(rgb)
        if faces:
            reports.append(
                {p.name: assess_quality(rgb, faces, landmarks, p) for p in (ENROLLMENT, SCAN)}
            )
    assert len(reports) >= 28
    assert all("inter_eye_distance" in failed(r["enrollment"]) for r in reports)
    assert np.mean([r["scan"].usable for r in reports]) >= 0.8


# --- the report itself ------------------------------------------------------------------------


def test_report_to_dict_is_json_ready(good: Capture) -> None:
    rgb, faces, landmarks = good
    dark = (rgb.astype(np.float32) * 0.15).astype(np.uint8)
    data = json.loads(json.dumps(assess_quality(dark, faces, landmarks, ENROLLMENT).to_dict()))
    assert data["profile"] == "enrollment"
    assert data["usable"] is False
    assert "exposure" in data["failing"]
    assert [c["name"] for c in data["components"]] == list(COMPONENT_NAMES)
    assert set(data["components"][0]) == {
        "name",
        "value",
        "unit",
        "threshold",
        "passed",
        "required",
        "reason",
    }


def test_profiles_table() -> None:
    assert set(PROFILES) == {"enrollment", "verification", "scan"}
    assert ENROLLMENT.min_inter_eye_distance_px == 60.0
    assert SCAN.min_inter_eye_distance_px < VERIFICATION.min_inter_eye_distance_px
    assert VERIFICATION.min_inter_eye_distance_px < ENROLLMENT.min_inter_eye_distance_px
    assert ENROLLMENT.required == frozenset(COMPONENT_NAMES)
    assert "eyes_open" not in VERIFICATION.required and "eyes_open" not in SCAN.required
    assert {"face_count", "sharpness", "yaw"} <= SCAN.required
    with pytest.raises(ValueError, match="unknown"):
        QualityProfile(**{**vars(SCAN), "required": frozenset({"face_count", "beauty"})})
    with pytest.raises(ValueError, match="face_count"):
        QualityProfile(**{**vars(SCAN), "required": frozenset({"sharpness"})})
