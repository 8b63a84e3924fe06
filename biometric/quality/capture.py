"""What the quality checks read from one capture: the face count, the subject's box, its
landmarks, the normalised face region and the head pose.

Each reader returns its input, or :class:`Missing` with the reason it is not available, which
becomes the component's "not assessed: ..." sentence. The readers share one order of reasons:
no face, then no landmarks, then the face region or the head pose that could not be had. The
face region and the head pose are measured once, on first use, whichever check asks first.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from functools import cached_property

import numpy as np

from wajah.biometric.detect import FaceBox
from wajah.biometric.landmarks import FaceLandmarks
from wajah.biometric.pose import HeadPose, estimate_head_pose
from wajah.biometric.quality.measures import FaceRegion, face_region
from wajah.biometric.quality.profiles import QualityProfile


@dataclass(frozen=True)
class Missing:
    """Why an input of a check is not available (the text after "not assessed: ")."""

    why: str


NO_FACE = Missing("no face")
NO_LANDMARKS = Missing("no landmarks")
FACE_REGION_TOO_SMALL = Missing("face region too small")
NO_HEAD_POSE = Missing("head pose could not be estimated")


@dataclass(frozen=True)
class FaceCount:
    """The faces in the picture, as the profile counts them."""

    found: int  # every detected face, the subject included
    competing: int  # faces at least bystander_face_ratio x the subject's height; 0 with no face

    def __float__(self) -> float:
        """The component's value: every face found."""
        return float(self.found)


@dataclass(frozen=True)
class SubjectFace:
    """The subject's box where it lies in the image, with its landmarks when there are any."""

    box: FaceBox
    landmarks: FaceLandmarks | None
    image_height: int
    image_width: int


class Capture:
    """One capture under one profile, as the checks read it.

    Made per :func:`~wajah.biometric.quality.checks.assess_quality` call and not shared: the cached
    measurements are filled in on first use without a lock.
    """

    def __init__(
        self,
        rgb: np.ndarray,  # (H, W, 3) uint8
        faces: Sequence[FaceBox],  # largest first; faces[0] is the subject
        landmarks: FaceLandmarks | None,  # the subject's 68 landmarks
        profile: QualityProfile,
    ) -> None:
        self._rgb = rgb
        self._faces = faces
        self._landmarks = landmarks
        self._profile = profile

    def face_count(self) -> FaceCount:
        """Never missing: no face is a count of 0."""
        if not self._faces:
            return FaceCount(found=0, competing=0)
        subject_height = self._faces[0].height
        min_height = self._profile.bystander_face_ratio * subject_height
        competing = [face for face in self._faces if face.height >= min_height]
        return FaceCount(found=len(self._faces), competing=len(competing))

    def subject(self) -> SubjectFace | Missing:
        if not self._faces:
            return NO_FACE
        height, width = self._rgb.shape[:2]
        return SubjectFace(self._faces[0], self._landmarks, height, width)

    def landmarks(self) -> FaceLandmarks | Missing:
        if not self._faces:
            return NO_FACE
        return NO_LANDMARKS if self._landmarks is None else self._landmarks

    def face_region(self) -> FaceRegion | Missing:
        """Cut from the landmark outline, or from the box when there are no landmarks."""
        return self._face_region

    def head_pose(self) -> HeadPose | Missing:
        return self._head_pose

    @cached_property
    def _face_region(self) -> FaceRegion | Missing:
        if not self._faces:
            return NO_FACE
        region = face_region(self._rgb, self._faces[0], self._landmarks)
        return FACE_REGION_TOO_SMALL if region is None else region

    @cached_property
    def _head_pose(self) -> HeadPose | Missing:
        landmarks = self.landmarks()
        if isinstance(landmarks, Missing):
            return landmarks
        height, width = self._rgb.shape[:2]
        pose = estimate_head_pose(landmarks.points68, height, width)
        return NO_HEAD_POSE if pose is None else pose
