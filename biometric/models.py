"""Where the model weights live: the ``face-recognition-models`` package, found with
``importlib.resources`` (``pkg_resources`` is gone from new setuptools). Nothing is downloaded."""

from __future__ import annotations

import importlib.resources
from dataclasses import dataclass
from pathlib import Path

from biometric.errors import ModelFilesMissing

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
