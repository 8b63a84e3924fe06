"""Face detection: dlib's HOG detector by default, its MMOD CNN detector as an opt-in.

The HOG detector finds faces of about 80 px and up at its native scale; every upsampling
halves that and quadruples the work. The policy below picks the scale from the image size:
small images (legacy scans, 250 px archive photos) are upsampled once, large phone photos are
downscaled for detection and the boxes mapped back, so a 4000 px photo costs about what a
1280 px one does.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path

import cv2
import dlib
import numpy as np


class DetectorKind(StrEnum):
    HOG = "hog"  # fast default, frontal faces
    CNN = "cnn"  # dlib MMOD: more poses, ~10x slower on CPU


@dataclass(frozen=True)
class FaceBox:
    """A detected face in the coordinates of the full (orientation-corrected) image."""

    left: int
    top: int
    right: int
    bottom: int
    score: float  # detector confidence: HOG SVM margin or MMOD confidence
    detector: str

    @property
    def width(self) -> int:
        return self.right - self.left

    @property
    def height(self) -> int:
        return self.bottom - self.top

    @property
    def area(self) -> int:
        return max(self.width, 0) * max(self.height, 0)

    def to_dlib(self) -> dlib.rectangle:
        # right and bottom here are exclusive (width = right - left); dlib's are inclusive
        return dlib.rectangle(self.left, self.top, self.right - 1, self.bottom - 1)


@dataclass(frozen=True)
class DetectionPolicy:
    """How large an image the detector sees.

    Defaults measured on this project's 2-core machine: HOG on a 1280 px image takes about
    0.2 s; upsampling a 250 px LFW photo once finds faces down to ~40 px.
    """

    max_detect_side_px: int = 1280  # larger images are downscaled to this long side
    upsample_below_side_px: int = 640  # images smaller than this are upsampled once
    hog_adjust_threshold: float = 0.0  # dlib default SVM margin


def plan_detection(height: int, width: int, policy: DetectionPolicy) -> tuple[float, int]:
    """Return (scale, upsample count) for an image of the given size."""
    long_side = max(height, width)
    scale = 1.0
    if long_side > policy.max_detect_side_px:
        scale = policy.max_detect_side_px / long_side
    upsample = 1 if long_side * scale < policy.upsample_below_side_px else 0
    return scale, upsample


class FaceDetector:
    """dlib face detector with the size policy. Safe to share between threads (calls into
    dlib are serialised by a lock: dlib's Python binding holds the GIL, so parallel threads
    would not run faster anyway; use processes for throughput)."""

    def __init__(self, kind: DetectorKind, cnn_weights: Path, policy: DetectionPolicy) -> None:
        self.kind = kind
        self.policy = policy
        self._lock = threading.Lock()
        self._hog = dlib.get_frontal_face_detector()
        self._cnn = (
            dlib.cnn_face_detection_model_v1(str(cnn_weights)) if kind is DetectorKind.CNN else None
        )

    def detect(self, rgb: np.ndarray) -> list[FaceBox]:
        """Faces in ``rgb`` ((H, W, 3) uint8), largest first, boxes clipped to the image."""
        height, width = rgb.shape[:2]
        scale, upsample = plan_detection(height, width, self.policy)
        small = rgb
        if scale < 1.0:
            small = cv2.resize(
                rgb, (round(width * scale), round(height * scale)), interpolation=cv2.INTER_AREA
            )
        with self._lock:
            if self._cnn is not None:
                found = [(d.rect, float(d.confidence)) for d in self._cnn(small, upsample)]
            else:
                rects, scores, _ = self._hog.run(small, upsample, self.policy.hog_adjust_threshold)
                found = list(zip(rects, (float(s) for s in scores), strict=True))
        boxes = [
            FaceBox(
                left=max(0, round(rect.left() / scale)),
                top=max(0, round(rect.top() / scale)),
                right=min(width, round((rect.right() + 1) / scale)),
                bottom=min(height, round((rect.bottom() + 1) / scale)),
                score=score,
                detector=self.kind.value,
            )
            for rect, score in found
        ]
        boxes = [box for box in boxes if box.width > 0 and box.height > 0]
        boxes.sort(key=lambda box: box.area, reverse=True)
        return boxes
