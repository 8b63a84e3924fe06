"""Face templates: 128-d descriptors from dlib's ResNet on the 5-point aligned 150 x 150 chip.

Templates are L2-normalised so that the cosine similarity is a plain inner product (FAISS
``IndexFlatIP``) and the Euclidean distance between two templates is sqrt(2 - 2 * similarity).
Every template carries the tag of the model that made it, so stored templates can be found and
re-computed when the model changes.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import Protocol

import dlib
import numpy as np

from wajah.biometric.landmarks import FaceLandmarks

MODEL_TAG = "dlib-resnet-v1"
TEMPLATE_DIM = 128
CHIP_SIZE_PX = 150  # input size of dlib_face_recognition_resnet_model_v1
CHIP_PADDING = 0.25  # dlib's default padding around the 5-point aligned face


class EmbedderKind(StrEnum):
    """Which runtime computes the ResNet: the same weights and the same templates either way."""

    ONNX = "onnx"  # ONNX Runtime, ~20x faster on CPU (biometric/onnx_templates.py)
    DLIB = "dlib"  # dlib's own face_recognition_model_v1: the reference path


@dataclass(frozen=True)
class Template:
    vector: np.ndarray  # (128,) float32, L2-normalised
    model_tag: str = MODEL_TAG

    def similarity(self, other: Template) -> float:
        """Cosine similarity in [-1, 1]; higher means more alike."""
        if other.model_tag != self.model_tag:
            raise ValueError(f"cannot compare {self.model_tag} with {other.model_tag} templates")
        return float(np.dot(self.vector, other.vector))


def normalise(vectors: np.ndarray) -> np.ndarray:
    """L2-normalise rows of an (N, 128) array (or one (128,) vector) as float32."""
    array = np.asarray(vectors, dtype=np.float32)
    norms = np.linalg.norm(array, axis=-1, keepdims=True)
    return np.asarray(array / np.maximum(norms, 1e-12), dtype=np.float32)


def similarity_to_distance(similarity: float) -> float:
    """Euclidean distance between two unit vectors with the given cosine similarity."""
    return float(np.sqrt(max(0.0, 2.0 - 2.0 * similarity)))


def align_chip(rgb: np.ndarray, landmarks: FaceLandmarks) -> np.ndarray:
    """The (150, 150, 3) uint8 face chip aligned on the 5 landmarks, as the ResNet expects."""
    chip = dlib.get_face_chip(rgb, landmarks.shape5, size=CHIP_SIZE_PX, padding=CHIP_PADDING)
    return np.ascontiguousarray(chip, dtype=np.uint8)


class ChipEmbedder(Protocol):
    """What the engine needs of a template extractor (dlib's or the ONNX Runtime one)."""

    model_tag: str

    def embed_chips(self, chips: list[np.ndarray], jitter: int = 0) -> np.ndarray: ...

    def embed_chip(self, chip: np.ndarray, jitter: int = 0) -> Template: ...


class TemplateExtractor:
    """dlib's ResNet face descriptor, the reference path (``EmbedderKind.DLIB``). Safe to
    share between threads (lock-serialised)."""

    model_tag = MODEL_TAG

    def __init__(self, weights: Path) -> None:
        self._lock = threading.Lock()
        self._network = dlib.face_recognition_model_v1(str(weights))

    def embed_chips(self, chips: list[np.ndarray], jitter: int = 0) -> np.ndarray:
        """Templates for aligned chips: (N, 128) float32, L2-normalised.

        ``jitter`` > 0 averages that many randomly perturbed copies per chip (dlib's
        ``num_jitters``): slightly more robust, ``jitter`` times slower.
        """
        if not chips:
            return np.zeros((0, TEMPLATE_DIM), dtype=np.float32)
        with self._lock:
            descriptors = self._network.compute_face_descriptor(chips, jitter)
        return normalise(np.array([np.array(d) for d in descriptors]))

    def embed_chip(self, chip: np.ndarray, jitter: int = 0) -> Template:
        return Template(vector=self.embed_chips([chip], jitter)[0], model_tag=self.model_tag)
