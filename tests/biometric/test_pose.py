"""Head pose from 68 landmarks: conventions on synthetic projections, behaviour on real photos
(LFW near-frontal, an in-plane rotation, a horizontal flip)."""

from __future__ import annotations

import math
import random
from pathlib import Path

import cv2
import numpy as np
import pytest
from PIL import Image, ImageOps

from wajah.biometric.detect import DetectionPolicy, DetectorKind, FaceDetector
from wajah.biometric.landmarks import FaceLandmarks, LandmarkPredictor
from wajah.biometric.models import find_model_paths
from wajah.biometric.pose import (
    MODEL_POINTS_3D,
    POSE_LANDMARK_INDICES,
    HeadPose,
    estimate_head_pose,
    eye_line_roll_deg,
    rotation_to_angles_deg,
)

FRONTAL_PHOTO = "face_recognition/rose_leslie/img2.jpg"  # yaw ~7, pitch ~-8, roll ~0 deg
TURNED_PHOTO = "face_recognition/obama/obama1.jpg"  # turned to his left, yaw ~ +34 deg


class Models:
    def __init__(self) -> None:
        paths = find_model_paths()
        self.detector = FaceDetector(DetectorKind.HOG, paths.face_detector_cnn, DetectionPolicy())
        self.landmarks = LandmarkPredictor(paths.landmarks_68, paths.landmarks_5)

    def subject(self, rgb: np.ndarray) -> FaceLandmarks:
        faces = self.detector.detect(rgb)
        assert faces, "the test photo must contain a detectable face"
        return self.landmarks.predict(rgb, faces[0])

    def pose(self, rgb: np.ndarray) -> HeadPose:
        pose = estimate_head_pose(self.subject(rgb).points68, rgb.shape[0], rgb.shape[1])
        assert pose is not None
        return pose


@pytest.fixture(scope="module")
def models() -> Models:
    return Models()


def load_rgb(path: Path) -> np.ndarray:
    with Image.open(path) as image:
        return np.ascontiguousarray(np.asarray(ImageOps.exif_transpose(image).convert("RGB")))


def rotation(yaw_deg: float, pitch_deg: float, roll_deg: float) -> np.ndarray:
    """R_y @ R_x @ R_z with the module's signs (yaw and pitch negated, roll as is)."""
    a, b, c = (math.radians(v) for v in (-yaw_deg, -pitch_deg, roll_deg))
    r_y = np.array([[math.cos(a), 0, math.sin(a)], [0, 1, 0], [-math.sin(a), 0, math.cos(a)]])
    r_x = np.array([[1, 0, 0], [0, math.cos(b), -math.sin(b)], [0, math.sin(b), math.cos(b)]])
    r_z = np.array([[math.cos(c), -math.sin(c), 0], [math.sin(c), math.cos(c), 0], [0, 0, 1]])
    return np.asarray(r_y @ r_x @ r_z, dtype=np.float64)


def synthetic_points68(rot: np.ndarray, height: int = 480, width: int = 640) -> np.ndarray:
    """(68, 2) landmarks: the six model points projected with ``rot``, 4000 model units away; the
    other 62 points are filled with the nose tip (estimate_head_pose ignores them)."""
    camera = np.array([[width, 0, width / 2], [0, width, height / 2], [0, 0, 1]], dtype=np.float64)
    projected, _ = cv2.projectPoints(
        MODEL_POINTS_3D,
        cv2.Rodrigues(rot)[0],
        np.array([0.0, 0.0, 4000.0]),
        camera,
        np.zeros(4),
    )
    image_points = projected.reshape(-1, 2)
    points = np.repeat(image_points[:1], 68, axis=0)
    points[list(POSE_LANDMARK_INDICES)] = image_points
    return points


def test_identity_rotation_decomposes_to_zero_not_180() -> None:
    pose = rotation_to_angles_deg(np.eye(3))
    assert (pose.yaw_deg, pose.pitch_deg, pose.roll_deg) == (0.0, 0.0, 0.0)


def test_a_synthetic_frontal_face_gives_zero_pose() -> None:
    pose = estimate_head_pose(synthetic_points68(np.eye(3)), 480, 640)
    assert pose is not None
    assert abs(pose.yaw_deg) < 0.5
    assert abs(pose.pitch_deg) < 0.5
    assert abs(pose.roll_deg) < 0.5


@pytest.mark.parametrize(
    ("yaw", "pitch", "roll"),
    [
        (20.0, 0.0, 0.0),
        (-35.0, 0.0, 0.0),
        (0.0, 15.0, 0.0),
        (0.0, -20.0, 0.0),
        (0.0, 0.0, 25.0),
        (10.0, -10.0, -15.0),
    ],
)
def test_known_rotations_are_recovered(yaw: float, pitch: float, roll: float) -> None:
    pose = estimate_head_pose(synthetic_points68(rotation(yaw, pitch, roll)), 480, 640)
    assert pose is not None
    assert pose.yaw_deg == pytest.approx(yaw, abs=1.0)
    assert pose.pitch_deg == pytest.approx(pitch, abs=1.0)
    assert pose.roll_deg == pytest.approx(roll, abs=1.0)


def test_sign_conventions_match_the_image() -> None:
    """Yaw > 0 moves the nose to the image right; pitch > 0 moves it up; roll > 0 lowers the
    image-right eye."""
    frontal = synthetic_points68(np.eye(3))
    turned_left = synthetic_points68(rotation(20.0, 0.0, 0.0))
    chin_up = synthetic_points68(rotation(0.0, 15.0, 0.0))
    tilted = synthetic_points68(rotation(0.0, 0.0, 15.0))
    nose_vs_eyes = lambda p: p[30] - (p[36] + p[45]) / 2  # noqa: E731
    assert nose_vs_eyes(turned_left)[0] > nose_vs_eyes(frontal)[0] + 5
    assert nose_vs_eyes(chin_up)[1] < nose_vs_eyes(frontal)[1] - 5
    assert tilted[45, 1] > tilted[36, 1] + 5


def test_degenerate_landmarks_give_none() -> None:
    assert estimate_head_pose(np.zeros((68, 2)), 480, 640) is None
    assert estimate_head_pose(np.full((68, 2), np.nan), 480, 640) is None
    assert estimate_head_pose(np.zeros((5, 2)), 480, 640) is None


def test_lfw_deep_funneled_faces_are_near_frontal(models: Models, faces_dir: Path) -> None:
    """LFW deep-funneled is aligned in the image plane: roll is small on nearly all photos, and
    yaw is centred on zero (LFW press photos do turn, so only the bulk is checked)."""
    photos = sorted((faces_dir / "lfw_deepfunneled").glob("*/*.jpg"))
    sample = random.Random(1).sample(photos, 40)
    poses = []
    for path in sample:
        rgb = load_rgb(path)
        faces = models.detector.detect(rgb)
        if faces:
            landmarks = models.landmarks.predict(rgb, faces[0])
            pose = estimate_head_pose(landmarks.points68, rgb.shape[0], rgb.shape[1])
            assert pose is not None
            poses.append(pose)
    assert len(poses) >= 36
    rolls = np.array([abs(p.roll_deg) for p in poses])
    yaws = np.array([p.yaw_deg for p in poses])
    pitches = np.array([p.pitch_deg for p in poses])
    assert np.mean(rolls <= 10.0) >= 0.95
    assert np.median(rolls) < 4.0
    assert abs(np.median(yaws)) < 10.0
    assert np.mean(np.abs(yaws) <= 30.0) >= 0.7
    assert abs(np.median(pitches)) < 10.0  # no 180 deg flip


def test_in_plane_rotation_changes_roll_by_the_angle(models: Models, faces_dir: Path) -> None:
    rgb = load_rgb(faces_dir / FRONTAL_PHOTO)
    height, width = rgb.shape[:2]
    before = models.pose(rgb)
    for angle_deg in (20.0, -20.0):  # cv2: positive = counter-clockwise on screen
        matrix = cv2.getRotationMatrix2D((width / 2, height / 2), angle_deg, 1.0)
        rotated = cv2.warpAffine(rgb, matrix, (width, height), borderMode=cv2.BORDER_REPLICATE)
        after = models.pose(rotated)
        assert after.roll_deg - before.roll_deg == pytest.approx(-angle_deg, abs=3.0)
        assert abs(after.yaw_deg - before.yaw_deg) < 5.0
        eye_roll = eye_line_roll_deg(models.subject(rotated).points68)
        assert eye_roll == pytest.approx(after.roll_deg, abs=4.0)


def test_horizontal_flip_negates_yaw(models: Models, faces_dir: Path) -> None:
    rgb = load_rgb(faces_dir / TURNED_PHOTO)
    original = models.pose(rgb)
    flipped = models.pose(np.ascontiguousarray(rgb[:, ::-1]))
    assert original.yaw_deg > 20.0  # he turns to his left: the nose points to the image right
    assert flipped.yaw_deg < -20.0
    assert flipped.yaw_deg == pytest.approx(-original.yaw_deg, abs=5.0)
    assert flipped.roll_deg == pytest.approx(-original.roll_deg, abs=3.0)
    assert flipped.pitch_deg == pytest.approx(original.pitch_deg, abs=3.0)
