"""Judging a capture under a profile: every component measured, compared with the profile's
threshold and explained in a sentence the clerk can act on."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from biometric.detect import FaceBox
from biometric.landmarks import LEFT_EYE, RIGHT_EYE, FaceLandmarks
from biometric.pose import estimate_head_pose
from biometric.quality.measures import (
    BRIGHT_PIXEL_MIN,
    DARK_PIXEL_MAX,
    eye_aspect_ratio,
    face_margin,
    face_region,
    illumination_asymmetry,
    mouth_open_ratio,
    sharpness,
)
from biometric.quality.profiles import QualityProfile
from biometric.quality.report import (
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
    margin = face_margin(subject, landmarks, height, width)
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
    region = face_region(rgb, subject, landmarks)
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
        laplacian_variance = sharpness(region)
        judge(
            SHARPNESS,
            laplacian_variance,
            laplacian_variance >= p.min_sharpness,
            f"sharp (sharpness {laplacian_variance:.0f})",
            f"Image blurred (sharpness {laplacian_variance:.0f}, need {p.min_sharpness:g}) - "
            "hold still and check the focus",
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
        asymmetry = illumination_asymmetry(region)
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
