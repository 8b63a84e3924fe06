"""Facial landmarks from dlib's shape predictors: 68 points (iBUG 300-W order) for quality
and pose, 5 points (eye corners and nose base) for aligning the face chip the ResNet wants."""

from __future__ import annotations

import threading
from dataclasses import dataclass
from pathlib import Path

import dlib
import numpy as np

from wajah.biometric.detect import FaceBox

# iBUG 300-W 68-point index ranges (0-based), the layout of shape_predictor_68_face_landmarks.
JAW = slice(0, 17)
RIGHT_BROW = slice(17, 22)  # subject's right = image left
LEFT_BROW = slice(22, 27)
NOSE_BRIDGE = slice(27, 31)
NOSE_BASE = slice(31, 36)
RIGHT_EYE = slice(36, 42)  # subject's right eye, image left
LEFT_EYE = slice(42, 48)
OUTER_LIPS = slice(48, 60)
INNER_LIPS = slice(60, 68)


@dataclass(frozen=True)
class FaceLandmarks:
    """Landmarks of one face in full-image pixel coordinates."""

    points68: np.ndarray  # (68, 2) float64, x then y, iBUG 300-W order
    shape5: dlib.full_object_detection  # 5-point shape for dlib.get_face_chip

    @property
    def right_eye_center(self) -> np.ndarray:  # (2,) float64; subject's right, image left
        return np.asarray(self.points68[RIGHT_EYE].mean(axis=0))

    @property
    def left_eye_center(self) -> np.ndarray:  # (2,) float64
        return np.asarray(self.points68[LEFT_EYE].mean(axis=0))

    @property
    def inter_eye_distance_px(self) -> float:
        return float(np.linalg.norm(self.left_eye_center - self.right_eye_center))


class LandmarkPredictor:
    """Both shape predictors, loaded once. Safe to share between threads (lock-serialised)."""

    def __init__(self, weights_68: Path, weights_5: Path) -> None:
        self._lock = threading.Lock()
        self._predictor_68 = dlib.shape_predictor(str(weights_68))
        self._predictor_5 = dlib.shape_predictor(str(weights_5))

    def predict(self, rgb: np.ndarray, box: FaceBox) -> FaceLandmarks:
        rect = box.to_dlib()
        with self._lock:
            shape68 = self._predictor_68(rgb, rect)
            shape5 = self._predictor_5(rgb, rect)
        points = np.array([(p.x, p.y) for p in shape68.parts()], dtype=np.float64)
        return FaceLandmarks(points68=points, shape5=shape5)
