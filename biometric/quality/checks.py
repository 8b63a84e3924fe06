"""Judging a capture under a profile, as a table of checks.

Every quality component is one :class:`Check` in :data:`CHECKS`, in ``COMPONENT_NAMES`` order:
its name and unit, the threshold as the profile states it, what it reads from the capture (the
face count, the subject's box, the landmarks, the normalised face region or the head pose), how
it measures that, the pass rule, and the sentences the clerk sees when it passes or fails.
:func:`assess_quality` runs the table; the face region and the head pose are measured once.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Generic, SupportsFloat, TypeVar

import numpy as np

from wajah.biometric.detect import FaceBox
from wajah.biometric.landmarks import FaceLandmarks
from wajah.biometric.pose import HeadPose
from wajah.biometric.quality.capture import Capture, FaceCount, Missing, SubjectFace
from wajah.biometric.quality.measures import (
    FaceRegion,
    face_margin,
    illumination_asymmetry,
    luminance_contrast,
    mean_luminance,
    mouth_open_ratio,
    overexposed_fraction,
    sharpness,
    smaller_eye_aspect_ratio,
    underexposed_fraction,
)
from wajah.biometric.quality.profiles import QualityProfile
from wajah.biometric.quality.report import (
    COMPONENT_NAMES,
    CONTRAST,
    EXPOSURE,
    EYES_OPEN,
    FACE_COUNT,
    FACE_MARGIN,
    FACE_SIZE,
    ILLUMINATION_UNIFORMITY,
    INTER_EYE_DISTANCE,
    MOUTH_CLOSED,
    OVEREXPOSURE,
    PITCH,
    ROLL,
    SHARPNESS,
    UNDEREXPOSURE,
    YAW,
    QualityComponent,
    QualityReport,
)

Input = TypeVar("Input")  # what a check reads from the capture
Reading = TypeVar("Reading", bound=SupportsFloat)  # what it measures: a float, or a FaceCount


@dataclass(frozen=True)
class Check(Generic[Input, Reading]):
    """One quality component: where it is read from, how it is measured, judged and told."""

    name: str  # one of COMPONENT_NAMES
    unit: str
    threshold: Callable[[QualityProfile], str]  # the profile's limit as the clerk reads it
    reads: Callable[[Capture], Input | Missing]
    measure: Callable[[Input], Reading | None]  # None: not measurable, see ``unmeasurable``
    passes: Callable[[Reading, QualityProfile], bool]
    ok: Callable[[Reading, QualityProfile], str]
    fail: Callable[[Reading, QualityProfile], str]
    unmeasurable: str = ""  # why, when ``measure`` returns None

    def assess(self, capture: Capture, profile: QualityProfile) -> QualityComponent:
        threshold = self.threshold(profile)
        required = self.name in profile.required
        source = self.reads(capture)
        reading = None if isinstance(source, Missing) else self.measure(source)
        if reading is None:
            why = source.why if isinstance(source, Missing) else self.unmeasurable
            return QualityComponent(
                self.name, None, self.unit, threshold, None, f"not assessed: {why}", required
            )
        passed = self.passes(reading, profile)
        reason = (self.ok if passed else self.fail)(reading, profile)
        return QualityComponent(  # float(): a FaceCount's value is the number of faces found
            self.name, float(reading), self.unit, threshold, passed, reason, required
        )


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


def _pose_check(
    name: str,
    angle: Callable[[HeadPose], float],
    limit: Callable[[QualityProfile], float],
    positive: str,  # how the clerk says a positive angle
    negative: str,
    advice: str,
) -> Check[HeadPose, float]:
    return Check(
        name,
        "deg",
        threshold=lambda p: f"|x| <= {limit(p):g} deg",
        reads=Capture.head_pose,
        measure=angle,
        passes=lambda deg, p: abs(deg) <= limit(p),
        ok=lambda deg, _: f"{name} {deg:+.0f} deg",
        fail=lambda deg, p: (
            f"Head {positive if deg > 0 else negative} by {abs(deg):.0f} deg "
            f"(limit {limit(p):g}) - {advice}"
        ),
    )


def _as_counted(count: FaceCount) -> FaceCount:
    return count


CHECKS: tuple[Check[Any, Any], ...] = (
    Check[FaceCount, FaceCount](
        FACE_COUNT,
        "faces",
        threshold=_count_threshold,
        reads=Capture.face_count,
        measure=_as_counted,
        passes=lambda n, p: n.found > 0 and n.competing <= p.max_face_count,
        ok=lambda n, _: (
            "1 face found"
            if n.found == 1
            else f"{n.found} faces found; the others are in the background"
        ),
        fail=lambda n, p: (
            "No face found - the applicant must face the camera"
            if n.found == 0
            else f"{n.competing} faces in the picture, need {p.max_face_count} - only the "
            "applicant may be in front of the camera"
        ),
    ),
    Check[FaceLandmarks, float](
        INTER_EYE_DISTANCE,
        "px",
        threshold=lambda p: f">= {p.min_inter_eye_distance_px:g} px",
        reads=Capture.landmarks,
        measure=lambda landmarks: landmarks.inter_eye_distance_px,
        passes=lambda px, p: px >= p.min_inter_eye_distance_px,
        ok=lambda px, _: f"{px:.0f} px between the eyes",
        fail=lambda px, p: (
            f"Face too small: {px:.0f} px between the eyes, need "
            f"{p.min_inter_eye_distance_px:g} - move closer"
        ),
    ),
    Check[SubjectFace, float](
        FACE_SIZE,
        "px",
        threshold=lambda p: f">= {p.min_face_size_px:g} px",
        reads=Capture.subject,
        measure=lambda subject: float(subject.box.height),
        passes=lambda px, p: px >= p.min_face_size_px,
        ok=lambda px, _: f"face {px:.0f} px high",
        fail=lambda px, p: (
            f"Face too small: {px:.0f} px high, need {p.min_face_size_px:g} - move closer"
        ),
    ),
    Check[SubjectFace, float](
        FACE_MARGIN,
        "ratio",
        threshold=lambda p: f">= {p.min_face_margin:g} x face height",
        reads=Capture.subject,
        measure=lambda subject: face_margin(
            subject.box, subject.landmarks, subject.image_height, subject.image_width
        ),
        passes=lambda margin, p: margin >= p.min_face_margin and margin > 0.0,
        ok=lambda margin, _: "face well inside the picture",
        fail=lambda margin, _: (
            "Face cut by the image border - centre the face in the picture"
            if margin <= 0.0
            else "Face too close to the image border - centre the face in the picture"
        ),
    ),
    Check[FaceRegion, float](
        SHARPNESS,
        "laplacian variance",
        threshold=lambda p: f">= {p.min_sharpness:g}",
        reads=Capture.face_region,
        measure=sharpness,
        passes=lambda var, p: var >= p.min_sharpness,
        ok=lambda var, _: f"sharp (sharpness {var:.0f})",
        fail=lambda var, p: (
            f"Image blurred (sharpness {var:.0f}, need {p.min_sharpness:g}) - hold still "
            "and check the focus"
        ),
    ),
    Check[FaceRegion, float](
        EXPOSURE,
        "luminance 0-255",
        threshold=lambda p: f"{p.min_exposure:g} to {p.max_exposure:g}",
        reads=Capture.face_region,
        measure=mean_luminance,
        passes=lambda luma, p: p.min_exposure <= luma <= p.max_exposure,
        ok=lambda luma, _: f"brightness {luma:.0f} of 255",
        fail=lambda luma, p: (
            f"Face too dark (brightness {luma:.0f} of 255, need at least "
            f"{p.min_exposure:g}) - add light in front of the face"
            if luma < p.min_exposure
            else f"Face too bright (brightness {luma:.0f} of 255, at most "
            f"{p.max_exposure:g}) - reduce the light or move out of direct light"
        ),
    ),
    Check[FaceRegion, float](
        UNDEREXPOSURE,
        "fraction",
        threshold=lambda p: f"<= {p.max_underexposed_fraction:.0%}",
        reads=Capture.face_region,
        measure=underexposed_fraction,
        passes=lambda dark, p: dark <= p.max_underexposed_fraction,
        ok=lambda dark, _: f"{dark:.1%} of the face near black",
        fail=lambda dark, _: (
            f"Face too dark: {dark:.0%} of the face is black - add light in front of the face"
        ),
    ),
    Check[FaceRegion, float](
        OVEREXPOSURE,
        "fraction",
        threshold=lambda p: f"<= {p.max_overexposed_fraction:.0%}",
        reads=Capture.face_region,
        measure=overexposed_fraction,
        passes=lambda bright, p: bright <= p.max_overexposed_fraction,
        ok=lambda bright, _: f"{bright:.1%} of the face washed out",
        fail=lambda bright, _: (
            f"Face too bright: {bright:.0%} of the face is washed out white - reduce the light "
            "or glare"
        ),
    ),
    Check[FaceRegion, float](
        CONTRAST,
        "luminance std",
        threshold=lambda p: f">= {p.min_contrast:g}",
        reads=Capture.face_region,
        measure=luminance_contrast,
        passes=lambda std, p: std >= p.min_contrast,
        ok=lambda std, _: f"contrast {std:.0f}",
        fail=lambda std, p: (
            f"Face looks flat (contrast {std:.0f}, need {p.min_contrast:g}) - check the "
            "lighting and the camera"
        ),
    ),
    Check[FaceRegion, float](
        ILLUMINATION_UNIFORMITY,
        "ratio",
        threshold=lambda p: f"<= {p.max_illumination_asymmetry:g}",
        reads=Capture.face_region,
        measure=illumination_asymmetry,
        unmeasurable="face too turned to compare its two halves",
        passes=lambda ratio, p: ratio <= p.max_illumination_asymmetry,
        ok=lambda ratio, _: f"halves of the face differ by {ratio:.0%} in brightness",
        fail=lambda ratio, _: (
            f"Uneven lighting: one side of the face is {ratio:.0%} darker - light the "
            "face evenly from the front"
        ),
    ),
    _pose_check(
        YAW,
        lambda pose: pose.yaw_deg,
        lambda p: p.max_abs_yaw_deg,
        positive="turned to their left",
        negative="turned to their right",
        advice="look straight at the camera",
    ),
    _pose_check(
        PITCH,
        lambda pose: pose.pitch_deg,
        lambda p: p.max_abs_pitch_deg,
        positive="tilted up",
        negative="tilted down",
        advice="keep the chin level",
    ),
    _pose_check(
        ROLL,
        lambda pose: pose.roll_deg,
        lambda p: p.max_abs_roll_deg,
        positive="tilted towards their left shoulder",
        negative="tilted towards their right shoulder",
        advice="hold the head upright",
    ),
    Check[FaceLandmarks, float](
        EYES_OPEN,
        "eye aspect ratio",
        threshold=lambda p: f">= {p.min_eye_aspect_ratio:g}",
        reads=Capture.landmarks,
        measure=smaller_eye_aspect_ratio,
        passes=lambda ear, p: ear >= p.min_eye_aspect_ratio,
        ok=lambda ear, _: f"eyes open (eye opening {ear:.2f})",
        fail=lambda ear, p: (
            f"Eyes closed or nearly closed (eye opening {ear:.2f}, need "
            f"{p.min_eye_aspect_ratio:g}) - keep the eyes open and look at the camera"
        ),
    ),
    Check[FaceLandmarks, float](
        MOUTH_CLOSED,
        "opening / width",
        threshold=lambda p: f"<= {p.max_mouth_open_ratio:g}",
        reads=Capture.landmarks,
        measure=lambda landmarks: mouth_open_ratio(landmarks.points68),
        passes=lambda ratio, p: ratio <= p.max_mouth_open_ratio,
        ok=lambda ratio, _: f"mouth closed (opening {ratio:.2f})",
        fail=lambda ratio, p: (
            f"Mouth open (opening {ratio:.2f} of the mouth width, limit "
            f"{p.max_mouth_open_ratio:g}) - close the mouth, neutral expression"
        ),
    ),
)

if tuple(check.name for check in CHECKS) != COMPONENT_NAMES:
    raise RuntimeError("CHECKS must hold one check per component, in COMPONENT_NAMES order")


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
    capture = Capture(rgb, faces, landmarks, profile)
    components = tuple(check.assess(capture, profile) for check in CHECKS)
    return QualityReport(profile=profile.name, face_count=len(faces), components=components)
