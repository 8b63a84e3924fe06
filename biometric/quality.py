"""Face image quality: is this capture good enough to enrol or to verify?

In the spirit of ISO/IEC 29794-5 (face image quality, implemented by BSI's OFIQ) and the ICAO
9303 / ISO/IEC 19794-5 portrait rules, reduced to measures that need only the RGB array, the
detected boxes and the 68 landmarks: no extra model. Every measure is a
:class:`QualityComponent` with the raw value, the threshold, a verdict and a sentence a clerk
can act on ("Face too small: 42 px between the eyes, need 60 - move closer").

What is checked, and what must pass, is one :class:`QualityProfile` per use (the table
``PROFILES`` below): strict for enrollment at the camera, lenient at the verification counter,
permissive for legacy archive scans.

Image measures are taken on the face region only, resampled to a fixed width, so they do not
depend on the image resolution and cost well under 10 ms per 640 x 480 frame.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

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
from wajah.biometric.pose import estimate_head_pose

# Component names: stable, used by the API and the UI.
FACE_COUNT = "face_count"
INTER_EYE_DISTANCE = "inter_eye_distance"
FACE_SIZE = "face_size"
FACE_MARGIN = "face_margin"
SHARPNESS = "sharpness"
EXPOSURE = "exposure"
UNDEREXPOSURE = "underexposure"
OVEREXPOSURE = "overexposure"
CONTRAST = "contrast"
ILLUMINATION_UNIFORMITY = "illumination_uniformity"
YAW = "yaw"
PITCH = "pitch"
ROLL = "roll"
EYES_OPEN = "eyes_open"
MOUTH_CLOSED = "mouth_closed"

COMPONENT_NAMES: tuple[str, ...] = (
    FACE_COUNT,
    INTER_EYE_DISTANCE,
    FACE_SIZE,
    FACE_MARGIN,
    SHARPNESS,
    EXPOSURE,
    UNDEREXPOSURE,
    OVEREXPOSURE,
    CONTRAST,
    ILLUMINATION_UNIFORMITY,
    YAW,
    PITCH,
    ROLL,
    EYES_OPEN,
    MOUTH_CLOSED,
)

# Measurement constants (not thresholds: they define what is measured).
NORMALISED_FACE_WIDTH_PX = 128  # the face region is resampled to this width before measuring
DARK_PIXEL_MAX = 5  # luminance <= this counts as clipped black (8-bit, BT.601 luma)
BRIGHT_PIXEL_MIN = 250  # luminance >= this counts as clipped white


@dataclass(frozen=True)
class QualityComponent:
    """One measured aspect of the capture."""

    name: str  # one of COMPONENT_NAMES
    value: float | None  # raw measured value in ``unit``; None if it could not be measured
    unit: str
    threshold: str  # human readable, e.g. ">= 60 px"; "" if the profile does not check it
    passed: bool | None  # None: not assessed (or not checked by the profile)
    reason: str  # a sentence for the clerk: what is wrong and what to do, or what was measured
    required: bool = False  # the profile refuses the capture when this does not pass

    @property
    def assessed(self) -> bool:
        """True when the component was measured and judged."""
        return self.value is not None and self.passed is not None


@dataclass(frozen=True)
class QualityReport:
    """All components of one capture under one profile."""

    profile: str
    face_count: int
    components: tuple[QualityComponent, ...]

    @property
    def usable(self) -> bool:
        """True iff every component the profile requires was assessed and passed."""
        return all(c.passed is True for c in self.components if c.required)

    @property
    def failing(self) -> tuple[QualityComponent, ...]:
        """Required components that failed or could not be assessed."""
        return tuple(c for c in self.components if c.required and c.passed is not True)

    @property
    def warnings(self) -> tuple[QualityComponent, ...]:
        """Components the profile checks but does not require, and that failed."""
        return tuple(c for c in self.components if not c.required and c.passed is False)

    def component(self, name: str) -> QualityComponent:
        for candidate in self.components:
            if candidate.name == name:
                return candidate
        raise KeyError(name)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict (plain str, int, float, bool and None)."""
        return {
            "profile": self.profile,
            "face_count": self.face_count,
            "usable": self.usable,
            "failing": [c.name for c in self.failing],
            "components": [
                {
                    "name": c.name,
                    "value": c.value,
                    "unit": c.unit,
                    "threshold": c.threshold,
                    "passed": c.passed,
                    "required": c.required,
                    "reason": c.reason,
                }
                for c in self.components
            ],
        }


@dataclass(frozen=True)
class QualityProfile:
    """Every threshold of one use of the quality check, and which components must pass.

    The values live in the profile table below (ENROLLMENT, VERIFICATION, SCAN), each with its
    source. Components not in ``required`` are still measured and judged; a failure there is a
    warning (``QualityReport.warnings``), not a refusal.
    """

    name: str
    max_face_count: int  # faces allowed, counting the subject
    bystander_face_ratio: float  # faces smaller than this x the subject's box height are ignored
    min_inter_eye_distance_px: float
    min_face_size_px: float  # face box height
    min_face_margin: float  # smallest box-to-border margin / box height; < 0: cut by the border
    min_sharpness: float  # variance of the Laplacian, face region at 128 px wide
    min_exposure: float  # mean face luminance, 0..255
    max_exposure: float
    max_underexposed_fraction: float  # face pixels with luminance <= DARK_PIXEL_MAX
    max_overexposed_fraction: float  # face pixels with luminance >= BRIGHT_PIXEL_MIN
    min_contrast: float  # standard deviation of face luminance, 0..255
    max_illumination_asymmetry: float  # |left - right| / max(left, right) of half-face means
    max_abs_yaw_deg: float
    max_abs_pitch_deg: float
    max_abs_roll_deg: float
    min_eye_aspect_ratio: float  # smaller of the two eyes (Soukupová & Čech 2016)
    max_mouth_open_ratio: float  # inner-lip opening / mouth width
    required: frozenset[str] = field(default_factory=frozenset)

    def __post_init__(self) -> None:
        unknown = self.required - set(COMPONENT_NAMES)
        if unknown:
            raise ValueError(f"unknown quality components: {sorted(unknown)}")
        if FACE_COUNT not in self.required:
            raise ValueError("every profile must require face_count")


# --- The profile table ------------------------------------------------------------------------
#
# Pass rates measured on ../shared/faces with the project's HOG detector and 68-point landmarks
# (largest face per photo), 2026-11: "LFW" = 298 of 300 random LFW deep-funneled photos with a
# face (250 x 250, ~41 px between the eye centres, random.seed(0)); "large" = the 83 photos of
# deepface/ and face_recognition/ (330-4352 px phone and press photos, partial-face and
# reflection files left out); "Yale" = yalefaces_png, whose conditions (normal, sleepy,
# surprised, leftlight, ...) label eyes, mouth and lighting. These sets hold no Southeast
# Asian faces in any number and no children: the rates say nothing about those groups.
# Face box height / inter-eye distance: median 2.58 (LFW), 2.44 (large), 5th percentile 2.11;
# every min_face_size_px is 2.0 x the profile's inter-eye limit so that it never binds first.

ENROLLMENT = QualityProfile(
    name="enrollment",
    # ICAO 9303-3 / ISO/IEC 19794-5 7.2: the portrait shows exactly one face.
    max_face_count=1,
    bystander_face_ratio=0.0,  # every detected face counts; LFW 94 % pass (background faces)
    # ISO/IEC 19794-5 asks 60 px between the eye centres for the token image and 90 px (120
    # recommended) for the full-frontal image; ICAO 9303 follows the 90 px. An enrollment
    # webcam at 640 x 480 with the applicant at the counter gives 60-90 px, so the camera
    # profile takes the token-image 60 px. LFW 0.7 %, large 93 % pass.
    min_inter_eye_distance_px=60.0,
    min_face_size_px=120.0,  # 2.0 x 60 px. LFW 5 %, large 95 % pass
    # ISO/IEC 19794-5 8.3: the whole head with room around it. The dlib box runs from the
    # brows to the chin, so 10 % of its height clear of the border still leaves the hair in.
    # LFW 99 %, large 100 % pass.
    min_face_margin=0.10,
    # OFIQ's sharpness is a learned model; this is the classic variance-of-Laplacian proxy
    # (Pech-Pacheco et al., ICPR 2000) at a fixed 128 px face width. LFW 39 % (soft 250 px
    # web JPEGs, median 34), large 100 % (minimum 95) pass; a Gaussian blur of sigma 3 px on a
    # 260 px wide face takes a sharp photo from 520 to 21.
    min_sharpness=40.0,
    # ISO/IEC 29794-5 / OFIQ luminance mean, ICAO 9303-3 "appropriate brightness". LFW 100 %,
    # large 100 % inside 50..200 (LFW 1st..99th percentile: 77..175).
    min_exposure=50.0,
    max_exposure=200.0,
    # OFIQ under- and over-exposure prevention: share of black / white face pixels. LFW and
    # large: 100 % under 2 % (99th percentile 1 %).
    max_underexposed_fraction=0.02,
    max_overexposed_fraction=0.02,
    # OFIQ luminance variance: a flat, washed-out face. LFW 100 %, large 100 % pass.
    min_contrast=15.0,
    # OFIQ illumination uniformity / ICAO 9303-3 "no shadows across the face". Yale: normal
    # and centre-light photos 100 % pass (max 0.25), left/right-light 93 % fail; LFW 91 %,
    # large 89 % pass.
    max_illumination_asymmetry=0.35,
    # ISO/IEC 19794-5 8.3.3 / ICAO 9303-3 want +/-5 deg yaw and pitch and +/-8 deg roll in the
    # printed portrait. A live capture judged with a generic 3-D model, itself good to a few
    # degrees, is asked for 15 / 15 / 10 deg. LFW (press photos, not posed): yaw 43 %, pitch
    # 90 %, roll 99 %; large: yaw 78 %, pitch 93 %, roll 96 % pass.
    max_abs_yaw_deg=15.0,
    max_abs_pitch_deg=15.0,
    max_abs_roll_deg=10.0,
    # Soukupová & Čech, "Real-Time Eye Blink Detection using Facial Landmarks" (CVWW 2016):
    # open ~0.3, blink < 0.2. On the smaller of the two eyes: Yale normal 100 % pass (min 0.23),
    # Yale sleepy 90 % fail; LFW 92 %, large 99 % pass.
    min_eye_aspect_ratio=0.18,
    # ICAO 9303-3: neutral expression, mouth closed. Yale normal 100 % pass (max 0.05), Yale
    # surprised 93 % fail, Yale happy ~50 % fail; LFW 61 %, large 70 % pass (open smiles).
    max_mouth_open_ratio=0.15,
    required=frozenset(COMPONENT_NAMES),
)

VERIFICATION = QualityProfile(
    name="verification",
    # At the counter the traveller is the largest face; people queueing behind appear much
    # smaller and are ignored. A second face at least half the traveller's height means two
    # people in front of the camera: refused, the officer must know who is verified. (Design
    # choice, not measured.) LFW 95 % pass.
    max_face_count=1,
    bystander_face_ratio=0.5,
    # dlib's ResNet reaches its 99.38 % on LFW at ~41 px between the eyes; 30 px leaves room
    # for a counter camera further away. LFW 99.7 %, large 99 % pass.
    min_inter_eye_distance_px=30.0,
    min_face_size_px=60.0,  # 2.0 x 30 px. LFW 100 %, large 100 % pass
    min_face_margin=0.0,  # only a face cut by the border is refused
    min_sharpness=10.0,  # LFW 97 %, large 100 % pass; keeps matchable web-quality images
    min_exposure=35.0,  # LFW 100 %, large 100 % inside 35..220
    max_exposure=220.0,
    max_underexposed_fraction=0.10,  # LFW and large 100 % pass
    max_overexposed_fraction=0.10,  # LFW and large 100 % pass
    min_contrast=10.0,  # LFW and large 100 % pass
    max_illumination_asymmetry=0.45,  # flagged only. LFW 97 %, large 95 % pass
    # Templates still match at moderate pose; the officer can ask the traveller to look at the
    # camera. LFW: yaw 79 %, pitch 100 %, roll 100 %; large: yaw 94 %, 100 %, 100 % pass.
    max_abs_yaw_deg=30.0,
    max_abs_pitch_deg=30.0,
    max_abs_roll_deg=25.0,
    # Flagged for the officer, not required: a blink or a smile does not stop a match.
    min_eye_aspect_ratio=0.15,  # LFW 97 %, large 100 % pass
    max_mouth_open_ratio=0.30,  # LFW 90 %, large 96 % pass
    required=frozenset(
        {
            FACE_COUNT,
            INTER_EYE_DISTANCE,
            FACE_SIZE,
            FACE_MARGIN,
            SHARPNESS,
            EXPOSURE,
            UNDEREXPOSURE,
            OVEREXPOSURE,
            CONTRAST,
            YAW,
            PITCH,
            ROLL,
        }
    ),
)

SCAN = QualityProfile(
    name="scan",
    max_face_count=1,  # an archive portrait shows one person; LFW 94 % pass
    bystander_face_ratio=0.0,
    # Legacy 250 x 250 scans have ~41 px between the eyes (LFW median 41 px, 1st percentile
    # 33 px); 25 px is where the 68 landmarks stop being reliable. LFW 99.7 % pass.
    min_inter_eye_distance_px=25.0,
    min_face_size_px=50.0,  # 2.0 x 25 px; flagged only
    min_face_margin=0.0,  # flagged only
    # Refused only when the face is a smear. LFW 100 % pass (minimum 8.6).
    min_sharpness=5.0,
    # Flagged, not required: archive photos are what they are. Same limits and LFW pass
    # rates as VERIFICATION.
    min_exposure=35.0,
    max_exposure=220.0,
    max_underexposed_fraction=0.10,
    max_overexposed_fraction=0.10,
    min_contrast=10.0,
    max_illumination_asymmetry=0.45,
    # Beyond 45 deg the far eye is hidden and the template is unreliable. LFW: yaw 98 %,
    # pitch 100 %, roll 100 % pass.
    max_abs_yaw_deg=45.0,
    max_abs_pitch_deg=45.0,
    max_abs_roll_deg=45.0,
    min_eye_aspect_ratio=0.15,
    max_mouth_open_ratio=0.30,
    required=frozenset({FACE_COUNT, INTER_EYE_DISTANCE, SHARPNESS, YAW, PITCH, ROLL}),
)

PROFILES: dict[str, QualityProfile] = {p.name: p for p in (ENROLLMENT, VERIFICATION, SCAN)}


# --- Measures -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class _FaceRegion:
    """The subject's face resampled to NORMALISED_FACE_WIDTH_PX wide, grey."""

    grey: np.ndarray  # (h, 128) uint8, BT.601 luma
    mask: np.ndarray  # (h, 128) bool, inside the face outline
    midline_x: float  # x of the facial midline in ``grey``


def eye_aspect_ratio(eye: np.ndarray) -> float:
    """Eye aspect ratio of one eye's six landmarks ((6, 2) float64, iBUG order p1..p6).

    (|p2 - p6| + |p3 - p5|) / (2 |p1 - p4|), Soukupová & Čech 2016, eq. 1.
    """
    vertical = np.linalg.norm(eye[1] - eye[5]) + np.linalg.norm(eye[2] - eye[4])
    horizontal = 2.0 * np.linalg.norm(eye[0] - eye[3])
    return float(vertical / horizontal) if horizontal > 0 else 0.0


def mouth_open_ratio(points68: np.ndarray) -> float:
    """Mean inner-lip opening (61-67, 62-66, 63-65) over the mouth width (48-54)."""
    inner = points68[INNER_LIPS]  # (8, 2): 60..67
    opening = np.mean(
        [np.linalg.norm(inner[i] - inner[8 - i]) for i in (1, 2, 3)]  # 61-67, 62-66, 63-65
    )
    width = np.linalg.norm(points68[54] - points68[48])
    return float(opening / width) if width > 0 else 0.0


def _face_outline(points68: np.ndarray) -> np.ndarray:
    """Polygon of the face: jaw line and both brows, (27, 2) float64."""
    return np.concatenate([points68[JAW], points68[LEFT_BROW][::-1], points68[RIGHT_BROW][::-1]])


def _face_region(
    rgb: np.ndarray, box: FaceBox, landmarks: FaceLandmarks | None
) -> _FaceRegion | None:
    """Crop the face (landmark outline, else the box), resample, convert to grey."""
    height, width = rgb.shape[:2]
    if landmarks is not None:
        outline = _face_outline(landmarks.points68)
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
    return _FaceRegion(grey=grey, mask=mask, midline_x=(midline_x_full - x0) * scale)


def _sharpness(region: _FaceRegion) -> float:
    """Variance of the Laplacian inside the face, eroded off the outline's edge."""
    laplacian = cv2.Laplacian(region.grey, cv2.CV_32F, ksize=1)
    inner = cv2.erode(region.mask.astype(np.uint8), np.ones((5, 5), np.uint8)).astype(bool)
    values = laplacian[inner] if inner.sum() >= 64 else laplacian[region.mask]
    return float(values.var())


def _illumination_asymmetry(region: _FaceRegion) -> float | None:
    columns = np.arange(region.grey.shape[1])[None, :]
    left_half = region.mask & (columns < region.midline_x)
    right_half = region.mask & (columns >= region.midline_x)
    if left_half.sum() < 32 or right_half.sum() < 32:
        return None
    left_mean = float(region.grey[left_half].mean())
    right_mean = float(region.grey[right_half].mean())
    brighter = max(left_mean, right_mean)
    return abs(left_mean - right_mean) / brighter if brighter > 0 else 0.0


def _face_margin(box: FaceBox, landmarks: FaceLandmarks | None, height: int, width: int) -> float:
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


# --- Verdicts -----------------------------------------------------------------------------------


def _not_assessed(
    name: str, unit: str, threshold: str, why: str, required: bool
) -> QualityComponent:
    return QualityComponent(
        name=name,
        value=None,
        unit=unit,
        threshold=threshold,
        passed=None,
        reason=f"not assessed: {why}",
        required=required,
    )


def _judge(
    name: str,
    value: float,
    unit: str,
    threshold: str,
    passed: bool,
    ok_reason: str,
    fail_reason: str,
    required: bool,
) -> QualityComponent:
    return QualityComponent(
        name=name,
        value=value,
        unit=unit,
        threshold=threshold,
        passed=passed,
        reason=ok_reason if passed else fail_reason,
        required=required,
    )


def _turn_words(name: str, value: float) -> str:
    if name == YAW:
        return "turned to their left" if value > 0 else "turned to their right"
    if name == PITCH:
        return "tilted up" if value > 0 else "tilted down"
    return (
        "tilted towards their left shoulder" if value > 0 else "tilted towards their right shoulder"
    )


_POSE_ADVICE = {
    YAW: "look straight at the camera",
    PITCH: "keep the chin level",
    ROLL: "hold the head upright",
}


def assess_quality(
    rgb: np.ndarray,
    faces: Sequence[FaceBox],
    landmarks: FaceLandmarks | None,
    profile: QualityProfile,
) -> QualityReport:
    """Judge a capture under ``profile``.

    ``rgb`` is the (H, W, 3) uint8 image, ``faces`` every detected face, largest first (the
    subject is ``faces[0]``), ``landmarks`` the subject's 68 landmarks or None. With no face
    every face component is "not assessed" and the report is unusable; a component that cannot
    be measured says why and never passes.
    """
    p = profile
    required = p.required
    height, width = rgb.shape[:2]
    components: list[QualityComponent] = []

    def add(component: QualityComponent) -> None:
        components.append(component)

    # face_count
    subject = faces[0] if faces else None
    if subject is None:
        add(
            _judge(
                FACE_COUNT,
                0.0,
                "faces",
                _count_threshold(p),
                False,
                "",
                "No face found - the applicant must face the camera",
                FACE_COUNT in required,
            )
        )
    else:
        competing = [f for f in faces if f.height >= p.bystander_face_ratio * subject.height]
        count = len(faces)
        add(
            _judge(
                FACE_COUNT,
                float(count),
                "faces",
                _count_threshold(p),
                len(competing) <= p.max_face_count,
                "1 face found"
                if count == 1
                else f"{count} faces found; the others are in the background",
                f"{len(competing)} faces in the picture, need {p.max_face_count} - only the "
                "applicant may be in front of the camera",
                FACE_COUNT in required,
            )
        )

    thresholds = {
        INTER_EYE_DISTANCE: (f">= {p.min_inter_eye_distance_px:g} px", "px"),
        FACE_SIZE: (f">= {p.min_face_size_px:g} px", "px"),
        FACE_MARGIN: (f">= {p.min_face_margin:g} x face height", "ratio"),
        SHARPNESS: (f">= {p.min_sharpness:g}", "laplacian variance"),
        EXPOSURE: (f"{p.min_exposure:g} to {p.max_exposure:g}", "luminance 0-255"),
        UNDEREXPOSURE: (f"<= {p.max_underexposed_fraction:.0%}", "fraction"),
        OVEREXPOSURE: (f"<= {p.max_overexposed_fraction:.0%}", "fraction"),
        CONTRAST: (f">= {p.min_contrast:g}", "luminance std"),
        ILLUMINATION_UNIFORMITY: (f"<= {p.max_illumination_asymmetry:g}", "ratio"),
        YAW: (f"|x| <= {p.max_abs_yaw_deg:g} deg", "deg"),
        PITCH: (f"|x| <= {p.max_abs_pitch_deg:g} deg", "deg"),
        ROLL: (f"|x| <= {p.max_abs_roll_deg:g} deg", "deg"),
        EYES_OPEN: (f">= {p.min_eye_aspect_ratio:g}", "eye aspect ratio"),
        MOUTH_CLOSED: (f"<= {p.max_mouth_open_ratio:g}", "opening / width"),
    }

    def skip(name: str, why: str) -> None:
        threshold, unit = thresholds[name]
        add(_not_assessed(name, unit, threshold, why, name in required))

    def judge(name: str, value: float, passed: bool, ok: str, fail: str) -> None:
        threshold, unit = thresholds[name]
        add(_judge(name, value, unit, threshold, passed, ok, fail, name in required))

    if subject is None:
        for name in COMPONENT_NAMES[1:]:
            skip(name, "no face")
        return QualityReport(profile=p.name, face_count=0, components=tuple(components))

    # Geometry
    if landmarks is None:
        skip(INTER_EYE_DISTANCE, "no landmarks")
    else:
        eyes_px = landmarks.inter_eye_distance_px
        judge(
            INTER_EYE_DISTANCE,
            eyes_px,
            eyes_px >= p.min_inter_eye_distance_px,
            f"{eyes_px:.0f} px between the eyes",
            f"Face too small: {eyes_px:.0f} px between the eyes, need "
            f"{p.min_inter_eye_distance_px:g} - move closer",
        )
    face_px = float(subject.height)
    judge(
        FACE_SIZE,
        face_px,
        face_px >= p.min_face_size_px,
        f"face {face_px:.0f} px high",
        f"Face too small: {face_px:.0f} px high, need {p.min_face_size_px:g} - move closer",
    )
    margin = _face_margin(subject, landmarks, height, width)
    judge(
        FACE_MARGIN,
        margin,
        margin >= p.min_face_margin and margin > 0.0,
        "face well inside the picture",
        "Face cut by the image border - centre the face in the picture"
        if margin <= 0.0
        else "Face too close to the image border - centre the face in the picture",
    )

    # Image measures on the face region
    region = _face_region(rgb, subject, landmarks)
    if region is None:
        for name in (
            SHARPNESS,
            EXPOSURE,
            UNDEREXPOSURE,
            OVEREXPOSURE,
            CONTRAST,
            ILLUMINATION_UNIFORMITY,
        ):
            skip(name, "face region too small")
    else:
        face_luma = region.grey[region.mask]  # (n,) uint8
        sharpness = _sharpness(region)
        judge(
            SHARPNESS,
            sharpness,
            sharpness >= p.min_sharpness,
            f"sharp (sharpness {sharpness:.0f})",
            f"Image blurred (sharpness {sharpness:.0f}, need {p.min_sharpness:g}) - hold still "
            "and check the focus",
        )
        mean_luma = float(face_luma.mean())
        judge(
            EXPOSURE,
            mean_luma,
            p.min_exposure <= mean_luma <= p.max_exposure,
            f"brightness {mean_luma:.0f} of 255",
            (
                f"Face too dark (brightness {mean_luma:.0f} of 255, need at least "
                f"{p.min_exposure:g}) - add light in front of the face"
            )
            if mean_luma < p.min_exposure
            else (
                f"Face too bright (brightness {mean_luma:.0f} of 255, at most "
                f"{p.max_exposure:g}) - reduce the light or move out of direct light"
            ),
        )
        dark = float(np.mean(face_luma <= DARK_PIXEL_MAX))
        judge(
            UNDEREXPOSURE,
            dark,
            dark <= p.max_underexposed_fraction,
            f"{dark:.1%} of the face near black",
            f"Face too dark: {dark:.0%} of the face is black - add light in front of the face",
        )
        bright = float(np.mean(face_luma >= BRIGHT_PIXEL_MIN))
        judge(
            OVEREXPOSURE,
            bright,
            bright <= p.max_overexposed_fraction,
            f"{bright:.1%} of the face washed out",
            f"Face too bright: {bright:.0%} of the face is washed out white - reduce the light "
            "or glare",
        )
        contrast = float(face_luma.std())
        judge(
            CONTRAST,
            contrast,
            contrast >= p.min_contrast,
            f"contrast {contrast:.0f}",
            f"Face looks flat (contrast {contrast:.0f}, need {p.min_contrast:g}) - check the "
            "lighting and the camera",
        )
        asymmetry = _illumination_asymmetry(region)
        if asymmetry is None:
            skip(ILLUMINATION_UNIFORMITY, "face too turned to compare its two halves")
        else:
            judge(
                ILLUMINATION_UNIFORMITY,
                asymmetry,
                asymmetry <= p.max_illumination_asymmetry,
                f"halves of the face differ by {asymmetry:.0%} in brightness",
                f"Uneven lighting: one side of the face is {asymmetry:.0%} darker - light the "
                "face evenly from the front",
            )

    # Pose and expression from the landmarks
    if landmarks is None:
        for name in (YAW, PITCH, ROLL, EYES_OPEN, MOUTH_CLOSED):
            skip(name, "no landmarks")
        return QualityReport(profile=p.name, face_count=len(faces), components=tuple(components))
    pose = estimate_head_pose(landmarks.points68, height, width)
    limits = {YAW: p.max_abs_yaw_deg, PITCH: p.max_abs_pitch_deg, ROLL: p.max_abs_roll_deg}
    for name in (YAW, PITCH, ROLL):
        if pose is None:
            skip(name, "head pose could not be estimated")
            continue
        angle = {YAW: pose.yaw_deg, PITCH: pose.pitch_deg, ROLL: pose.roll_deg}[name]
        limit = limits[name]
        judge(
            name,
            angle,
            abs(angle) <= limit,
            f"{name} {angle:+.0f} deg",
            f"Head {_turn_words(name, angle)} by {abs(angle):.0f} deg (limit {limit:g}) - "
            f"{_POSE_ADVICE[name]}",
        )
    points = landmarks.points68
    ear = min(eye_aspect_ratio(points[RIGHT_EYE]), eye_aspect_ratio(points[LEFT_EYE]))
    judge(
        EYES_OPEN,
        ear,
        ear >= p.min_eye_aspect_ratio,
        f"eyes open (eye opening {ear:.2f})",
        f"Eyes closed or nearly closed (eye opening {ear:.2f}, need {p.min_eye_aspect_ratio:g}) "
        "- keep the eyes open and look at the camera",
    )
    mouth = mouth_open_ratio(points)
    judge(
        MOUTH_CLOSED,
        mouth,
        mouth <= p.max_mouth_open_ratio,
        f"mouth closed (opening {mouth:.2f})",
        f"Mouth open (opening {mouth:.2f} of the mouth width, limit {p.max_mouth_open_ratio:g}) "
        "- close the mouth, neutral expression",
    )
    return QualityReport(profile=p.name, face_count=len(faces), components=tuple(components))


def _count_threshold(profile: QualityProfile) -> str:
    if profile.bystander_face_ratio > 0.0:
        return (
            f"<= {profile.max_face_count} face(s) at least "
            f"{profile.bystander_face_ratio:.0%} of the subject's size"
        )
    return (
        f"== {profile.max_face_count}"
        if profile.max_face_count == 1
        else (f"1 to {profile.max_face_count}")
    )
