"""The ResNet on ONNX Runtime gives dlib's templates: checked chip by chip against
``dlib.face_recognition_model_v1`` on real LFW photos."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import dlib
import numpy as np
import pytest

from wajah.biometric.engine import EngineConfig, FaceEngine
from wajah.biometric.models import find_model_paths
from wajah.biometric.onnx_templates import OnnxTemplateExtractor
from wajah.biometric.quality import PROFILES
from wajah.biometric.templates import MODEL_TAG, EmbedderKind, align_chip, normalise

# The tolerance for keeping the dlib-resnet-v1 tag (no re-enrollment).
TEMPLATE_COSINE_TOLERANCE = 0.9999
LFW_PHOTOS = 520  # >= 500 with a face found, asserted below


@pytest.fixture(scope="module")
def onnx_extractor() -> OnnxTemplateExtractor:
    return OnnxTemplateExtractor(find_model_paths().face_recognition)


@pytest.fixture(scope="module")
def dlib_network() -> dlib.face_recognition_model_v1:
    return dlib.face_recognition_model_v1(str(find_model_paths().face_recognition))


def _cosines(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return np.asarray(np.sum(normalise(a) * normalise(b), axis=1))


def _chips(engine: FaceEngine, paths: list[Path]) -> list[np.ndarray]:
    chips = []
    for path in paths:
        analysis = engine.analyse(engine.read(path), PROFILES["verification"])
        if analysis.landmarks is not None:
            chips.append(align_chip(analysis.image.rgb, analysis.landmarks))
    return chips


def test_the_default_engine_runs_onnx_and_keeps_the_tag() -> None:
    assert EngineConfig().embedder is EmbedderKind.ONNX
    assert OnnxTemplateExtractor.model_tag == MODEL_TAG == "dlib-resnet-v1"


def test_batched_and_single_chips_give_the_same_templates(
    onnx_extractor: OnnxTemplateExtractor,
    dlib_network: dlib.face_recognition_model_v1,
    faces_dir: Path,
) -> None:
    engine = FaceEngine(EngineConfig(embedder=EmbedderKind.DLIB))
    paths = sorted((faces_dir / "face_recognition").glob("*/*.jpg"))[:6]
    chips = _chips(engine, paths)
    assert len(chips) >= 4
    onnx_extractor.batch_size = 4  # two calls, the second one short
    try:
        batched = onnx_extractor.embed_chips(chips)
    finally:
        onnx_extractor.batch_size = 16
    single = np.stack([onnx_extractor.embed_chip(chip).vector for chip in chips])
    np.testing.assert_allclose(batched, single, atol=1e-5)
    reference = np.array([np.array(d) for d in dlib_network.compute_face_descriptor(chips)])
    assert _cosines(batched, reference).min() >= TEMPLATE_COSINE_TOLERANCE
    # And the engine's own dlib path (the reference setting) is that same network.
    dlib_templates = engine.embed_chips(chips)
    assert _cosines(batched, dlib_templates).min() >= TEMPLATE_COSINE_TOLERANCE


def test_chips_must_be_150_px_rgb(onnx_extractor: OnnxTemplateExtractor) -> None:
    assert onnx_extractor.embed_chips([]).shape == (0, 128)
    with pytest.raises(ValueError):
        onnx_extractor.embed_chips([np.zeros((160, 160, 3), dtype=np.uint8)])


@pytest.mark.slow
def test_templates_equal_dlibs_on_500_lfw_photos(
    onnx_extractor: OnnxTemplateExtractor,
    dlib_network: dlib.face_recognition_model_v1,
    manifest: Callable[[str], list[object]],
) -> None:
    photos = manifest("lfw_deepfunneled")
    # Spread over the whole set (manifest order is by identity), not the first few names.
    step = max(1, len(photos) // LFW_PHOTOS)
    paths = [photo.path for photo in photos[::step][:LFW_PHOTOS]]  # type: ignore[attr-defined]
    engine = FaceEngine(EngineConfig(embedder=EmbedderKind.DLIB))
    chips = _chips(engine, paths)
    assert len(chips) >= 500
    ours = onnx_extractor.raw_descriptors(chips)
    reference = np.array([np.array(d) for d in dlib_network.compute_face_descriptor(chips)])
    cosines = _cosines(ours, reference)
    print(
        f"{len(chips)} LFW chips: cosine to dlib min {cosines.min():.9f}, "
        f"max {cosines.max():.9f}; largest raw difference {np.abs(ours - reference).max():.2e}"
    )
    assert cosines.min() >= TEMPLATE_COSINE_TOLERANCE


def test_a_cached_graph_loads_without_the_onnx_package(
    onnx_extractor: OnnxTemplateExtractor, tmp_path: Path
) -> None:
    weights = find_model_paths().face_recognition
    first = OnnxTemplateExtractor(weights, cache_dir=tmp_path)
    cached = list(tmp_path.glob("*.onnx"))
    assert len(cached) == 1 and cached[0].stat().st_size > 20_000_000
    # A fresh process given the cache never imports onnx (its import alone is ~1 s here).
    probe = (
        "import sys; from pathlib import Path; "
        "from biometric.onnx_templates import OnnxTemplateExtractor; "
        f"OnnxTemplateExtractor(Path({str(weights)!r}), cache_dir=Path({str(tmp_path)!r})); "
        "print('onnx' in sys.modules)"
    )
    result = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True
    )
    assert result.stdout.strip() == "False"
    chip = np.random.default_rng(1).integers(0, 256, (150, 150, 3), dtype=np.uint8)
    np.testing.assert_array_equal(first.embed_chips([chip]), onnx_extractor.embed_chips([chip]))
