"""Head pose (yaw, pitch, roll in degrees) from the 68 iBUG landmarks.

Six landmarks are matched to a generic 3-D face and the rotation is solved with
``cv2.solvePnP`` under an approximate pinhole camera (focal length = image width, principal
point = image centre, no lens distortion). That is accurate to a few degrees near frontal,
which is what a quality gate needs; it is not a metrology tool.

Conventions (camera view, image x to the right, y down; "left"/"right" are the subject's):

* ``yaw_deg`` > 0: the subject turns the head to *their* left (the nose moves towards the image
  right in a non-mirrored camera image).
* ``pitch_deg`` > 0: the subject tilts the head up (chin up, nose towards the image top).
* ``roll_deg`` > 0: the subject tilts the head towards *their* left shoulder, i.e. the eye line
  turns clockwise on screen (the image-right eye is lower). Rotating an image by +a degrees
  with ``cv2.getRotationMatrix2D`` (counter-clockwise on screen) changes roll by -a.

All angles are in [-180, 180] and a frontal face gives about 0 for each.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import cv2
import numpy as np

# Generic 3-D face: the six points of S. Mallick, "Head Pose Estimation using OpenCV and Dlib",
# LearnOpenCV (2016), in arbitrary units (about 0.1 mm). The published model has y up and z
# towards the camera; here y and z are negated so that the model axes coincide with OpenCV's
# camera axes (x right, y down, z away from the camera) for a frontal face. Without that, the
# identity pose decomposes as pitch = 180 deg (the classic flip).
MODEL_POINTS_3D = np.array(
    [
        (0.0, 0.0, 0.0),  # nose tip, landmark 30
        (0.0, 330.0, 65.0),  # chin, landmark 8
        (-225.0, -170.0, 135.0),  # outer corner of the image-left (subject's right) eye, 36
        (225.0, -170.0, 135.0),  # outer corner of the image-right (subject's left) eye, 45
        (-150.0, 150.0, 125.0),  # image-left mouth corner, 48
        (150.0, 150.0, 125.0),  # image-right mouth corner, 54
    ],
    dtype=np.float64,
)  # (6, 3) float64
POSE_LANDMARK_INDICES = (30, 8, 36, 45, 48, 54)  # iBUG 300-W, 0-based, same order as the model
_MIN_SPAN_PX = 8.0  # below this the six points carry no usable geometry
# Mean reprojection error allowed, as a fraction of the points' extent. Measured on 150 LFW
# and large photos of ../shared/faces with dlib's landmarks: median 0.044, max 0.084.
_MAX_RESIDUAL_OF_SPAN = 0.25


@dataclass(frozen=True)
class HeadPose:
    """Head rotation relative to the camera, degrees in [-180, 180] (see module docstring)."""

    yaw_deg: float  # > 0: turned to the subject's left
    pitch_deg: float  # > 0: chin up
    roll_deg: float  # > 0: tilted towards the subject's left shoulder (clockwise on screen)


def _wrap_deg(angle_deg: float) -> float:
    """``angle_deg`` mapped to [-180, 180)."""
    return (angle_deg + 180.0) % 360.0 - 180.0


def eye_line_roll_deg(points68: np.ndarray) -> float:
    """Roll from the line through the two eye centres alone, same sign as ``roll_deg``.

    A cross-check for :func:`estimate_head_pose`: independent of the 3-D model, but it mixes
    in yaw and pitch when the head is far from frontal.
    """
    right_eye = points68[36:42].mean(axis=0)  # (2,) subject's right = image left
    left_eye = points68[42:48].mean(axis=0)  # (2,)
    delta = left_eye - right_eye
    return float(math.degrees(math.atan2(delta[1], delta[0])))


def rotation_to_angles_deg(rotation: np.ndarray) -> HeadPose:
    """Yaw, pitch and roll of a (3, 3) rotation from model to camera axes.

    The rotation is decomposed as R = R_y(a) @ R_x(b) @ R_z(c) (yaw about the camera's
    vertical axis first, then pitch, then roll in the image plane); the signs are then flipped
    where needed to follow the module's conventions. R = identity gives (0, 0, 0).
    """
    r = np.asarray(rotation, dtype=np.float64)
    # R[:, 2] = (sin a cos b, -sin b, cos a cos b); R[1, :2] = (cos b sin c, cos b cos c).
    yaw_rad = math.atan2(r[0, 2], r[2, 2])
    pitch_rad = math.asin(max(-1.0, min(1.0, -r[1, 2])))
    roll_rad = math.atan2(r[1, 0], r[1, 1])
    # The face normal (towards the camera) is -R[:, 2]. Turning to the subject's left moves it
    # to +x (a < 0); chin up moves it to -y (b < 0); roll c > 0 is clockwise on screen.
    return HeadPose(
        yaw_deg=_wrap_deg(-math.degrees(yaw_rad)),
        pitch_deg=_wrap_deg(-math.degrees(pitch_rad)),
        roll_deg=_wrap_deg(math.degrees(roll_rad)),
    )


def estimate_head_pose(
    points68: np.ndarray, image_height: int, image_width: int
) -> HeadPose | None:
    """Head pose from ``points68`` ((68, 2) float64, iBUG order, full-image pixels).

    Returns None when ``cv2.solvePnP`` finds no solution or the landmarks are degenerate.
    """
    points = np.asarray(points68, dtype=np.float64)
    if points.shape != (68, 2) or not np.all(np.isfinite(points)):
        return None
    image_points = np.ascontiguousarray(points[list(POSE_LANDMARK_INDICES)])  # (6, 2) float64
    span_px = _span_px(image_points)
    if span_px < _MIN_SPAN_PX:
        return None
    focal_px = float(image_width)  # approximate: a ~53 deg horizontal field of view
    camera_matrix = np.array(
        [[focal_px, 0.0, image_width / 2.0], [0.0, focal_px, image_height / 2.0], [0.0, 0.0, 1.0]],
        dtype=np.float64,
    )  # (3, 3) float64
    distortion = np.zeros((4, 1), dtype=np.float64)
    # Start from a frontal pose in front of the camera, at the distance the face's size implies
    # (the model is ~500 units tall), so the iterative solver does not settle on the mirror
    # solution behind the camera.
    depth = 500.0 * focal_px / span_px
    nose = image_points[0]
    initial_rvec = np.zeros((3, 1), dtype=np.float64)
    initial_tvec = np.array(
        [
            [(nose[0] - image_width / 2.0) * depth / focal_px],
            [(nose[1] - image_height / 2.0) * depth / focal_px],
            [depth],
        ],
        dtype=np.float64,
    )
    try:
        ok, rotation_vector, translation_vector = cv2.solvePnP(
            MODEL_POINTS_3D,
            image_points,
            camera_matrix,
            distortion,
            rvec=initial_rvec,
            tvec=initial_tvec,
            useExtrinsicGuess=True,
            flags=cv2.SOLVEPNP_ITERATIVE,
        )
    except cv2.error:
        return None
    rvec = np.asarray(rotation_vector, dtype=np.float64)  # (3, 1) Rodrigues vector
    tvec = np.asarray(translation_vector, dtype=np.float64)  # (3, 1) model origin in camera
    if not ok or not np.all(np.isfinite(rvec)) or float(tvec[2, 0]) <= 0.0:
        return None
    projected, _ = cv2.projectPoints(MODEL_POINTS_3D, rvec, tvec, camera_matrix, distortion)
    residual_px = np.linalg.norm(projected.reshape(-1, 2) - image_points, axis=1)  # (6,)
    if float(residual_px.mean()) > _MAX_RESIDUAL_OF_SPAN * span_px:
        return None  # no rigid face fits these points (collapsed or scrambled landmarks)
    rotation, _ = cv2.Rodrigues(rvec)
    return rotation_to_angles_deg(rotation)


def _span_px(image_points: np.ndarray) -> float:
    """Largest extent of the (N, 2) points in pixels, to guess the initial distance."""
    extent = image_points.max(axis=0) - image_points.min(axis=0)
    return float(extent.max())
