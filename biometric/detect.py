"""Face detection: dlib's HOG detector by default, its MMOD CNN detector as an opt-in.

The HOG detector finds faces of about 80 px and up at its native scale; every upsampling
halves that and quadruples the work. The policy below picks the scale from the image size:
small images (legacy scans, 250 px archive photos) are upsampled once, large phone photos are
downscaled for detection and the boxes mapped back, so a 4000 px photo costs about what a
1280 px one does.

On those large photos HOG still scans 1280 px (~150 ms here). With ``coarse_detect_side_px``
set (the default) it first scans a 640 px copy (a quarter of the pixels), then re-runs HOG on a
crop of the full-resolution photo around each face found there (scaled so the face is <= 160
px wide), so the box comes from a finer scan than the coarse one. The coarse copy is made by a
cheap bilinear-then-area downscale and only the crops get a full area resize: on a 12 MP photo
the area resize of the whole frame to 1280 px alone cost ~88 ms. Measured: detect 0.39x the
full scan's time on the >= 2000 px photos of ../shared/faces (56 against 143 ms median).
When the coarse scan finds nothing, the full 1280 px scan runs as before: a photo that had a
face keeps it. The boxes are not bit-identical (HOG's 8 px cell grid and its 5/6 image pyramid
start at the crop's corner, not the photo's, and no crop offset aligns every pyramid level), so
the 5-point landmarks and the template move slightly: cosine >= 0.9968 to the full scan's
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
    # The refine crop is scaled so the face is at most this wide (HOG's window is 80 px).
    # Measured on the 78 photos > 640 px of ../shared/faces, 2026-12-03 (face px / margin:
    # min template cosine to the full scan, large-photo detect time vs the full scan):
    # 160/0.5: 0.9968, 0.39x; 240/0.5: 0.9966, 0.47x; 320/0.5: 0.9977, 0.60x; 240/1.0:
    # 0.9964, 0.60x; 240/0.3: 0.9957, 0.41x. Medians 0.9996-0.9997 throughout: the change is
    # box quantisation, not the setting, so the cheapest is taken.
    refine_face_side_px: int = 160


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
        coarse_side = self.policy.coarse_detect_side_px
        found: list[_Found]
        if (
            self._cnn is None
            and coarse_side is not None
            and upsample == 0
            and max(height, width) * scale > coarse_side
        ):
            found = self._coarse_then_refine(rgb, scale, coarse_side)
        else:
            found = self._scan(rgb, scale, upsample)
        boxes = [
            FaceBox(
                left=max(0, round(left)),
                top=max(0, round(top)),
                right=min(width, round(right)),
                bottom=min(height, round(bottom)),
                score=score,
                detector=self.kind.value,
            )
            for left, top, right, bottom, score in found
        ]
        boxes = [box for box in boxes if box.width > 0 and box.height > 0]
        boxes.sort(key=lambda box: box.area, reverse=True)
        return boxes

    def _scan(self, rgb: np.ndarray, scale: float, upsample: int) -> list[_Found]:
        """One detector pass over ``rgb`` resized by ``scale``; boxes in ``rgb`` pixels."""
        small = _area_resize(rgb, scale)
        with self._lock:
            if self._cnn is not None:
                found = [(d.rect, float(d.confidence)) for d in self._cnn(small, upsample)]
            else:
                found = self._hog_run(small, upsample)
        return [_mapped(rect, score, scale, 0, 0) for rect, score in found]

    def _hog_run(self, image: np.ndarray, upsample: int) -> list[tuple[dlib.rectangle, float]]:
        rects, scores, _ = self._hog.run(image, upsample, self.policy.hog_adjust_threshold)
        return list(zip(rects, (float(s) for s in scores), strict=True))

    def _coarse_then_refine(self, rgb: np.ndarray, scale: float, coarse_side: int) -> list[_Found]:
        """HOG on a ``coarse_side`` copy, then on a crop of ``rgb`` around each face, resized
        by ``scale`` or less. Only the crops are resized with area averaging: on a 12 MP photo
        that full-frame resize alone cost more than the HOG pass over its result."""
        height, width = rgb.shape[:2]
        coarse_scale = coarse_side / max(height, width)
        coarse = _fast_downscale(rgb, coarse_scale)
        with self._lock:
            found = self._hog_run(coarse, 0)
        if not found:
            return self._scan(rgb, scale, 0)  # the full scan: nothing found today is lost
        refined: list[_Found] = []
        for rect, score in found:
            guess = _mapped(rect, score, coarse_scale, 0, 0)
            side = max(guess[2] - guess[0], guess[3] - guess[1])
            margin = self.policy.refine_margin * side
            left, top = max(0, int(guess[0] - margin)), max(0, int(guess[1] - margin))
            right = min(width, int(np.ceil(guess[2] + margin)))
            bottom = min(height, int(np.ceil(guess[3] + margin)))
            # A face far above HOG's 80 px window is found as well on a smaller crop.
            crop_scale = min(scale, self.policy.refine_face_side_px / max(side, 1.0))
            crop = _area_resize(rgb[top:bottom, left:right], crop_scale)
            best, best_overlap = guess, _REFINE_MIN_OVERLAP
            with self._lock:
                candidates = self._hog_run(crop, 0)
            for candidate, candidate_score in candidates:
                moved = _mapped(candidate, candidate_score, crop_scale, left, top)
                overlap = _overlap(moved, guess)
                if overlap > best_overlap:
                    best, best_overlap = moved, overlap
            if all(_overlap(best, kept) < _DUPLICATE_OVERLAP for kept in refined):
                refined.append(best)
        return refined


# (left, top, right, bottom, score) in full-image pixels, right and bottom exclusive
_Found = tuple[float, float, float, float, float]

# A refined box must overlap the coarse one this much (intersection over union) to replace it;
# two refined boxes overlapping more than _DUPLICATE_OVERLAP are one face. dlib's own HOG
# non-maximum suppression treats boxes overlapping by IoU > 0.5 as one detection.
_REFINE_MIN_OVERLAP = 0.3
_DUPLICATE_OVERLAP = 0.5


def _overlap(a: _Found, b: _Found) -> float:
    """Intersection over union of two boxes."""
    width = min(a[2], b[2]) - max(a[0], b[0])
    height = min(a[3], b[3]) - max(a[1], b[1])
    inter = max(width, 0.0) * max(height, 0.0)
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union > 0 else 0.0


def _mapped(rect: dlib.rectangle, score: float, scale: float, left: int, top: int) -> _Found:
    """A box found on an image resized by ``scale`` (and cropped at left, top) in the
    original's pixels; dlib's right and bottom are inclusive."""
    return (
        left + rect.left() / scale,
        top + rect.top() / scale,
        left + (rect.right() + 1) / scale,
        top + (rect.bottom() + 1) / scale,
        score,
    )


def _area_resize(image: np.ndarray, scale: float) -> np.ndarray:
    if scale >= 1.0:
        return np.ascontiguousarray(image)
    height, width = image.shape[:2]
    size = (max(1, round(width * scale)), max(1, round(height * scale)))
    return cv2.resize(image, size, interpolation=cv2.INTER_AREA)


def _fast_downscale(image: np.ndarray, scale: float) -> np.ndarray:
    """A cheap stand-in for an area resize, good enough to find where the faces are: bilinear
    to twice the target size (samples about 4 target-size images' worth of pixels, not the
    whole 12 MP), then a 2x area average (measured: ~3 ms against ~54 ms for an area resize
    from 12 MP; only the coarse scan sees it)."""
    height, width = image.shape[:2]
    target = (max(1, round(width * scale)), max(1, round(height * scale)))
    if scale >= 0.5:
        return _area_resize(image, scale)
    double = cv2.resize(image, (2 * target[0], 2 * target[1]), interpolation=cv2.INTER_LINEAR)
    return cv2.resize(double, target, interpolation=cv2.INTER_AREA)
