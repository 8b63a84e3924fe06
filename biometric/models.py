"""Where the model weights live: the ``face-recognition-models`` package, found with
``importlib.resources`` (``pkg_resources`` is gone from new setuptools). Nothing is downloaded."""

from __future__ import annotations

import importlib.resources
from dataclasses import dataclass
from pathlib import Path

from wajah.biometric.errors import ModelFilesMissing

_PACKAGE = "face_recognition_models"


@dataclass(frozen=True)
class ModelPaths:
    """Paths of the four dlib weight files."""

    face_detector_cnn: Path  # MMOD CNN face detector
    landmarks_68: Path  # iBUG 300-W 68-point shape predictor
    landmarks_5: Path  # 5-point shape predictor used for alignment
    face_recognition: Path  # ResNet-29 128-d face descriptor (LFW 99.38 % per dlib)


def find_model_paths() -> ModelPaths:
    """Locate the weights inside the installed ``face_recognition_models`` package."""
    try:
        root = importlib.resources.files(_PACKAGE) / "models"
    except ModuleNotFoundError as error:
        raise ModelFilesMissing(
            "the face-recognition-models package is not installed (pip install wajah installs it)"
        ) from error
    paths = ModelPaths(
        face_detector_cnn=Path(str(root / "mmod_human_face_detector.dat")),
        landmarks_68=Path(str(root / "shape_predictor_68_face_landmarks.dat")),
        landmarks_5=Path(str(root / "shape_predictor_5_face_landmarks.dat")),
        face_recognition=Path(str(root / "dlib_face_recognition_resnet_model_v1.dat")),
    )
    for path in (
        paths.face_detector_cnn,
        paths.landmarks_68,
        paths.landmarks_5,
        paths.face_recognition,
    ):
        if not path.is_file():
            raise ModelFilesMissing(f"model file missing: {path}")
    return paths


@dataclass(frozen=True)
class ModelLicence:
    """The terms of one shipped weight file, for the README, start-up and ``wajah inspect``."""

    file: str  # name inside face_recognition_models/models
    model: str
    licence: str
    commercial_use: bool  # False: the terms exclude it (ask the rights holder or a lawyer)
    trained_on: str
    used_for: str  # what Wajah needs it for


# Source of every entry: davisking/dlib-models README.md (the author's notes on each file):
# "anyone can do whatever they want with these model files as I've released them into the
# public domain", except the 68-point predictor, whose training set's licence "excludes
# commercial use" and which "therefore can't be used in a commercial product".
MODEL_LICENCES: tuple[ModelLicence, ...] = (
    ModelLicence(
        file="dlib_face_recognition_resnet_model_v1.dat",
        model="dlib ResNet-29 face descriptor (templates, tag dlib-resnet-v1)",
        licence="public domain (released by Davis King; dlib-models README)",
        commercial_use=True,
        trained_on="~3 million faces, 7,485 identities: FaceScrub, VGG Face and web images",
        used_for="every template: enrollment, verification, search",
    ),
    ModelLicence(
        file="shape_predictor_5_face_landmarks.dat",
        model="dlib 5-point shape predictor",
        licence="public domain (released by Davis King; dlib-models README)",
        commercial_use=True,
        trained_on="dlib 5-point face landmark dataset (7,198 faces, annotated by dlib's author)",
        used_for="aligning the 150 x 150 chip the ResNet embeds",
    ),
    ModelLicence(
        file="shape_predictor_68_face_landmarks.dat",
        model="dlib 68-point shape predictor",
        licence="iBUG 300-W terms: non-commercial (dlib-models README)",
        commercial_use=False,
        trained_on="iBUG 300-W (Imperial College London)",
        used_for=(
            "quality checks: inter-eye distance, face margin, sharpness and illumination "
            "regions, yaw/pitch/roll (biometric/pose.py), eyes open, mouth closed"
        ),
    ),
    ModelLicence(
        file="mmod_human_face_detector.dat",
        model="dlib MMOD CNN face detector (detector='cnn', opt-in)",
        licence="public domain (released by Davis King; dlib-models README)",
        commercial_use=True,
        trained_on="dlib face detection dataset (ImageNet, AFLW, Pascal VOC, VGG, WIDER, "
        "FaceScrub images, annotated by dlib's author)",
        used_for="face detection when the CNN detector is chosen (HOG, built into dlib, is "
        "the default)",
    ),
)
