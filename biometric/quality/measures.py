"""The image and landmark measures behind the quality components: the normalised face region,
sharpness, illumination asymmetry, margin to the border, eye aspect ratio and mouth opening."""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from wajah.biometric.detect import FaceBox
from wajah.biometric.landmarks import (
    INNER_LIPS,
    JAW,
    LEFT_BROW,
    LEFT_EYE,
    NOSE_BRIDGE,
    RIGHT_BROW,
    RIGHT_EYE,
    FaceLandmarks,
)

# Measurement constants (not thresholds: they define what is measured).
NORMALISED_FACE_WIDTH_PX = 128  # the face region is resampled to this width before measuring
DARK_PIXEL_MAX = 5  # luminance <= this counts as clipped black (8-bit, BT.601 luma)
BRIGHT_PIXEL_MIN = 250  # luminance >= this counts as clipped white


@dataclass(frozen=True)
class FaceRegion:
    """The subject's face resampled to NORMALISED_FACE_WIDTH_PX wide, grey."""

    grey: np.ndarray  # (h, 128) uint8, BT.601 luma
    mask: np.ndarray  # (h, 128) bool, inside the face outline
    midline_x: float  # x of the facial midline in ``grey``
    luma: np.ndarray  # (n,) uint8, the face's pixels: ``grey[mask]``, taken once


def eye_aspect_ratio(eye: np.ndarray) -> float:
    """Eye aspect ratio of one eye's six landmarks ((6, 2) float64, iBUG order p1..p6).

    (|p2 - p6| + |p3 - p5|) / (2 |p1 - p4|), Soukupová & Čech 2016, eq. 1.
    """
    vertical = np.linalg.norm(eye[1] - eye[5]) + np.linalg.norm(eye[2] - eye[4])
    horizontal = 2.0 * np.linalg.norm(eye[0] - eye[3])
    return float(vertical / horizontal) if horizontal > 0 else 0.0


def smaller_eye_aspect_ratio(landmarks: FaceLandmarks) -> float:
    """The eye aspect ratio of the less open eye: one closed eye is a closed eye."""
    points = landmarks.points68
    return min(eye_aspect_ratio(points[RIGHT_EYE]), eye_aspect_ratio(points[LEFT_EYE]))


def mouth_open_ratio(points68: np.ndarray) -> float:
    """Mean inner-lip opening (61-67, 62-66, 63-65) over the mouth width (48-54)."""
    inner = points68[INNER_LIPS]  # (8, 2): 60..67
    opening = np.mean(
        [np.linalg.norm(inner[i] - inner[8 - i]) for i in (1, 2, 3)]  # 61-67, 62-66, 63-65
    )
    width = np.linalg.norm(points68[54] - points68[48])
    return float(opening / width) if width > 0 else 0.0


def face_outline(points68: np.ndarray) -> np.ndarray:
    """Polygon of the face: jaw line and both brows, (27, 2) float64."""
    return np.concatenate([points68[JAW], points68[LEFT_BROW][::-1], points68[RIGHT_BROW][::-1]])


def face_region(
    rgb: np.ndarray, box: FaceBox, landmarks: FaceLandmarks | None
) -> FaceRegion | None:
    """Crop the face (landmark outline, else the box), resample, convert to grey."""
    height, width = rgb.shape[:2]
    if landmarks is not None:
        outline = face_outline(landmarks.points68)
        left, top = np.floor(outline.min(axis=0))
        right, bottom = np.ceil(outline.max(axis=0))
        midline_x_full = float(landmarks.points68[NOSE_BRIDGE][:, 0].mean())
    else:
        outline = None
        left, top, right, bottom = box.left, box.top, box.right, box.bottom
        midline_x_full = (box.left + box.right) / 2.0
    x0, y0 = max(0, int(left)), max(0, int(top))
    x1, y1 = min(width, int(right)), min(height, int(bottom))
    if x1 - x0 < 8 or y1 - y0 < 8:
        return None
    crop = rgb[y0:y1, x0:x1]
    scale = NORMALISED_FACE_WIDTH_PX / (x1 - x0)
    out_height = max(8, round((y1 - y0) * scale))
    interpolation = cv2.INTER_AREA if scale < 1.0 else cv2.INTER_LINEAR
    resized = cv2.resize(crop, (NORMALISED_FACE_WIDTH_PX, out_height), interpolation=interpolation)
    grey = cv2.cvtColor(resized, cv2.COLOR_RGB2GRAY)
    if outline is None:
        mask = np.ones(grey.shape, dtype=bool)
    else:
        polygon = np.round((outline - (x0, y0)) * scale).astype(np.int32)
        hull = cv2.convexHull(polygon)
        mask_u8 = np.zeros(grey.shape, dtype=np.uint8)
        cv2.fillConvexPoly(mask_u8, hull, 1)
        mask = mask_u8.astype(bool)
        if mask.sum() < 64:
            return None
    return FaceRegion(
        grey=grey, mask=mask, midline_x=(midline_x_full - x0) * scale, luma=grey[mask]
    )


def sharpness(region: FaceRegion) -> float:
    """Variance of the Laplacian inside the face, eroded off the outline's edge."""
    laplacian = cv2.Laplacian(region.grey, cv2.CV_32F, ksize=1)
    inner = cv2.erode(region.mask.astype(np.uint8), np.ones((5, 5), np.uint8)).astype(bool)
    values = laplacian[inner] if inner.sum() >= 64 else laplacian[region.mask]
    return float(values.var())


def mean_luminance(region: FaceRegion) -> float:
    """Mean face luminance, 0..255 (OFIQ luminance mean)."""
    return float(region.luma.mean())


def underexposed_fraction(region: FaceRegion) -> float:
    """Share of face pixels clipped to black (luminance <= DARK_PIXEL_MAX)."""
    return float(np.mean(region.luma <= DARK_PIXEL_MAX))


def overexposed_fraction(region: FaceRegion) -> float:
    """Share of face pixels clipped to white (luminance >= BRIGHT_PIXEL_MIN)."""
    return float(np.mean(region.luma >= BRIGHT_PIXEL_MIN))


def luminance_contrast(region: FaceRegion) -> float:
    """Standard deviation of face luminance, 0..255 (OFIQ luminance variance)."""
    return float(region.luma.std())


def illumination_asymmetry(region: FaceRegion) -> float | None:
    """|left - right| / max(left, right) of the mean luminance of the two half-faces, split at
    the facial midline; None when one half has too few pixels to compare (a turned face)."""
    columns = np.arange(region.grey.shape[1])[None, :]
    left_half = region.mask & (columns < region.midline_x)
    right_half = region.mask & (columns >= region.midline_x)
    if left_half.sum() < 32 or right_half.sum() < 32:
        return None
    left_mean = float(region.grey[left_half].mean())
    right_mean = float(region.grey[right_half].mean())
    brighter = max(left_mean, right_mean)
    return abs(left_mean - right_mean) / brighter if brighter > 0 else 0.0


def face_margin(box: FaceBox, landmarks: FaceLandmarks | None, height: int, width: int) -> float:
    """Smallest distance of the face to the image border over the box height.

    The box is clipped to the image, so the landmarks (which dlib places beyond the border
    when the face is cut) extend it: a cut face gives a margin <= 0.
    """
    left, top, right, bottom = float(box.left), float(box.top), float(box.right), float(box.bottom)
    if landmarks is not None:
        points = landmarks.points68
        left = min(left, float(points[:, 0].min()))
        top = min(top, float(points[:, 1].min()))
        right = max(right, float(points[:, 0].max()))
        bottom = max(bottom, float(points[:, 1].max()))
    margin = min(left, top, width - right, height - bottom)
    return margin / max(box.height, 1)
