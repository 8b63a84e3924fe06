"""Face detection: dlib's HOG detector by default, its MMOD CNN detector as an opt-in.

The HOG detector finds faces of about 80 px and up at its native scale; every upsampling
halves that and quadruples the work. The policy below picks the scale from the image size:
small images (legacy scans, 250 px archive photos) are upsampled once, large phone photos are
downscaled for detection and the boxes mapped back, so a 4000 px photo costs about what a
1280 px one does.

On those large photos HOG still scans 1280 px (~150 ms here). With ``coarse_detect_side_px``
set (the default) it first scans a 640 px copy (a quarter of the pixels), then re-runs HOG on a
crop around each face found there (scaled so the face is <= 240 px wide), so the box comes
from a finer scan than the coarse one; measured: 0.53-0.63x the detect time of the full scan
on the >= 2000 px photos of ../shared/faces.
When the coarse scan finds nothing, the full 1280 px scan runs as before: a photo that had a
face keeps it. The boxes are not bit-identical (HOG's 8 px cell grid and its 5/6 image pyramid
start at the crop's corner, not the photo's, and no crop offset aligns every pyramid level), so
the 5-point landmarks and the template move slightly: cosine >= 0.9975 to the full scan's
template, median 0.9997, on the 78 photos > 640 px of ../shared/faces
(tests/biometric/test_detect.py). That is below the 0.9999 the ResNet runtime holds; it is the
size of the change any detector setting makes, far inside the genuine/impostor gap.
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
    # Large photos: scan a copy this size first, then refine each face on a crop of the
    # max_detect_side_px image; None scans max_detect_side_px directly (the reference path).
    coarse_detect_side_px: int | None = 640
    refine_margin: float = 0.5  # crop = coarse box grown by this share of its size each side
    # The refine crop is scaled so the face is at most this wide: HOG's window is 80 px, and
    # measured on the phone photos of ../shared/faces 240 px keeps templates closest to the
    # full scan's (min cosine 0.9975 against 0.9961 unscaled) at 0.63x its time.
    refine_face_side_px: int = 240


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
        coarse_side = self.policy.coarse_detect_side_px
        with self._lock:
            if self._cnn is not None:
                found = [(d.rect, float(d.confidence)) for d in self._cnn(small, upsample)]
            elif coarse_side is not None and upsample == 0 and max(small.shape[:2]) > coarse_side:
                found = self._coarse_then_refine(small, coarse_side)
            else:
                found = self._hog_run(small, upsample)
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

    def _hog_run(self, image: np.ndarray, upsample: int) -> list[tuple[dlib.rectangle, float]]:
        rects, scores, _ = self._hog.run(image, upsample, self.policy.hog_adjust_threshold)
        return list(zip(rects, (float(s) for s in scores), strict=True))

    def _coarse_then_refine(
        self, image: np.ndarray, coarse_side: int
    ) -> list[tuple[dlib.rectangle, float]]:
        """HOG on a ``coarse_side`` copy, then on a crop of ``image`` around each face."""
        height, width = image.shape[:2]
        coarse_scale = coarse_side / max(height, width)
        coarse = cv2.resize(
            image,
            (round(width * coarse_scale), round(height * coarse_scale)),
            interpolation=cv2.INTER_AREA,
        )
        found = self._hog_run(coarse, 0)
        if not found:
            return self._hog_run(image, 0)  # the full scan: nothing found today is lost
        refined: list[tuple[dlib.rectangle, float]] = []
        for rect, score in found:
            guess = dlib.rectangle(
                round(rect.left() / coarse_scale),
                round(rect.top() / coarse_scale),
                round((rect.right() + 1) / coarse_scale) - 1,
                round((rect.bottom() + 1) / coarse_scale) - 1,
            )
            margin = round(self.policy.refine_margin * max(guess.width(), guess.height()))
            left, top = max(0, guess.left() - margin), max(0, guess.top() - margin)
            right = min(width, guess.right() + 1 + margin)
            bottom = min(height, guess.bottom() + 1 + margin)
            crop = np.ascontiguousarray(image[top:bottom, left:right])
            # A face far above HOG's 80 px window is found as well on a smaller crop.
            crop_scale = min(1.0, self.policy.refine_face_side_px / max(guess.width(), 1))
            if crop_scale < 1.0:
                crop = cv2.resize(
                    crop,
                    (round(crop.shape[1] * crop_scale), round(crop.shape[0] * crop_scale)),
                    interpolation=cv2.INTER_AREA,
                )
            best: tuple[dlib.rectangle, float] = (guess, score)
            best_overlap = _REFINE_MIN_OVERLAP
            for candidate, candidate_score in self._hog_run(crop, 0):
                moved = dlib.rectangle(
                    left + round(candidate.left() / crop_scale),
                    top + round(candidate.top() / crop_scale),
                    left + round((candidate.right() + 1) / crop_scale) - 1,
                    top + round((candidate.bottom() + 1) / crop_scale) - 1,
                )
                overlap = _overlap(moved, guess)
                if overlap > best_overlap:
                    best, best_overlap = (moved, candidate_score), overlap
            if all(_overlap(best[0], kept) < _DUPLICATE_OVERLAP for kept, _ in refined):
                refined.append(best)
        return refined


# A refined box must overlap the coarse one this much (intersection over union) to replace it;
# two refined boxes overlapping more than _DUPLICATE_OVERLAP are one face. dlib's own HOG
# non-maximum suppression treats boxes overlapping by IoU > 0.5 as one detection.
_REFINE_MIN_OVERLAP = 0.3
_DUPLICATE_OVERLAP = 0.5


def _overlap(a: dlib.rectangle, b: dlib.rectangle) -> float:
    intersection = a.intersect(b)
    inter = 0 if intersection.is_empty() else intersection.area()
    union = a.area() + b.area() - inter
    return float(inter / union) if union else 0.0
