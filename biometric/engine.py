"""The face engine: one object that loads the models once and runs the pipeline
decode -> detect -> landmarks -> quality -> aligned chip -> template.

A :class:`FaceEngine` is safe to share between threads: each dlib model sits behind its own
lock. dlib's Python binding keeps the GIL while it works (measured: two threads take twice as
long as one for twice the work), so throughput comes from processes, not threads; the service
and the bulk import run engines in worker processes.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from wajah.biometric.decode import DecodedImage, DecodeLimits, decode_image, read_image_file
from wajah.biometric.detect import DetectionPolicy, DetectorKind, FaceBox, FaceDetector
from wajah.biometric.errors import MultipleFacesFound, NoFaceFound, WajahInputError
from wajah.biometric.landmarks import FaceLandmarks, LandmarkPredictor
from wajah.biometric.models import ModelPaths, find_model_paths
from wajah.biometric.quality import QualityProfile, QualityReport, assess_quality
from wajah.biometric.templates import (
    ChipEmbedder,
    EmbedderKind,
    Template,
    TemplateExtractor,
    align_chip,
)


@dataclass(frozen=True)
class EngineConfig:
    detector: DetectorKind = DetectorKind.HOG
    detection: DetectionPolicy = field(default_factory=DetectionPolicy)
    decode_limits: DecodeLimits = field(default_factory=DecodeLimits)
    template_jitter: int = 0  # dlib num_jitters; 0 = one pass (see TemplateExtractor)
    # ONNX Runtime by default: dlib's templates (cos >= 0.9999999 on LFW) at ~1/20 the cost;
    # "dlib" keeps dlib's own network as the reference path.
    embedder: EmbedderKind = EmbedderKind.ONNX
    embedder_threads: int = 1  # cores per ONNX Runtime session; processes give throughput
    # Where the built ONNX graph is kept between starts (e.g. the data dir); None = build it
    # in memory at every start (measured 1.6 s with the onnx import, 0.5 s from the cache).
    model_cache_dir: Path | None = None


@dataclass(frozen=True)
class FaceAnalysis:
    """What the engine saw in one image: every face, the subject's landmarks, the quality."""

    image: DecodedImage
    faces: tuple[FaceBox, ...]  # largest first; faces[0] is taken as the subject
    landmarks: FaceLandmarks | None  # of faces[0], None when no face was found
    quality: QualityReport
    timings_ms: dict[str, float]  # per stage: decode, detect, landmarks, quality

    @property
    def subject_face(self) -> FaceBox | None:
        return self.faces[0] if self.faces else None


@dataclass(frozen=True)
class FaceCapture:
    """A usable face: the analysis plus the aligned chip and the template of faces[0]."""

    analysis: FaceAnalysis
    chip: np.ndarray  # (150, 150, 3) uint8 RGB, 5-point aligned
    template: Template
    timings_ms: dict[str, float]  # analysis stages plus align and embed


@dataclass(frozen=True)
class ProcessedImage:
    """Everything the workflows need from one photo, free of dlib objects and of the full
    pixel array, so it crosses process boundaries cheaply (the worker pool returns it)."""

    image_format: str
    width: int  # after orientation
    height: int
    exif_orientation: int
    faces: tuple[FaceBox, ...]  # largest first
    points68: np.ndarray | None  # (68, 2) float64 of faces[0]
    quality: QualityReport
    chip: np.ndarray | None  # (150, 150, 3) uint8 RGB, when a face was found and embed asked
    template: Template | None
    timings_ms: dict[str, float]

    @property
    def face_found(self) -> bool:
        return bool(self.faces)


def _elapsed_ms(start: float) -> float:
    return (time.perf_counter() - start) * 1000.0


def make_extractor(
    kind: EmbedderKind, weights: Path, threads: int = 1, cache_dir: Path | None = None
) -> ChipEmbedder:
    """The template extractor of ``kind`` on the ResNet weights at ``weights``."""
    if kind is EmbedderKind.DLIB:
        return TemplateExtractor(weights)
    from wajah.biometric.onnx_templates import OnnxTemplateExtractor  # onnxruntime only when used

    return OnnxTemplateExtractor(weights, threads=threads, cache_dir=cache_dir)


class FaceEngine:
    """Loads the dlib models once (about 1 s) and runs the pipeline. Thread-safe."""

    def __init__(self, config: EngineConfig | None = None, paths: ModelPaths | None = None) -> None:
        self.config = config or EngineConfig()
        model_paths = paths or find_model_paths()
        self.detector = FaceDetector(
            self.config.detector, model_paths.face_detector_cnn, self.config.detection
        )
        self.landmark_predictor = LandmarkPredictor(
            model_paths.landmarks_68, model_paths.landmarks_5
        )
        self.extractor = make_extractor(
            self.config.embedder,
            model_paths.face_recognition,
            self.config.embedder_threads,
            self.config.model_cache_dir,
        )

    @property
    def model_tag(self) -> str:
        return self.extractor.model_tag

    def warm_up(self) -> None:
        """Run every model once so the first real request does not pay for lazy set-up."""
        blank = np.full((200, 200, 3), 128, dtype=np.uint8)
        self.detector.detect(blank)
        self.extractor.embed_chips([np.zeros((150, 150, 3), dtype=np.uint8)])

    def decode(self, data: bytes) -> DecodedImage:
        return decode_image(data, self.config.decode_limits)

    def read(self, path: Path) -> DecodedImage:
        return read_image_file(path, self.config.decode_limits)

    def analyse(self, image: bytes | DecodedImage, profile: QualityProfile) -> FaceAnalysis:
        """Detect, find landmarks of the largest face and assess quality under ``profile``."""
        timings: dict[str, float] = {}
        start = time.perf_counter()
        decoded = self.decode(image) if isinstance(image, bytes) else image
        timings["decode"] = _elapsed_ms(start) if isinstance(image, bytes) else 0.0

        start = time.perf_counter()
        faces = tuple(self.detector.detect(decoded.rgb))
        timings["detect"] = _elapsed_ms(start)

        start = time.perf_counter()
        landmarks = self.landmark_predictor.predict(decoded.rgb, faces[0]) if faces else None
        timings["landmarks"] = _elapsed_ms(start)

        start = time.perf_counter()
        quality = assess_quality(decoded.rgb, faces, landmarks, profile)
        timings["quality"] = _elapsed_ms(start)
        return FaceAnalysis(decoded, faces, landmarks, quality, timings)

    def capture(
        self,
        image: bytes | DecodedImage | FaceAnalysis,
        profile: QualityProfile,
        *,
        single_face: bool = False,
    ) -> FaceCapture:
        """Analyse (unless given an analysis) and make the template of the subject's face.

        Raises :class:`NoFaceFound`, or :class:`MultipleFacesFound` when ``single_face`` is set
        and more than one face is present. Quality is reported, not enforced: the caller's
        workflow decides what an unusable capture means.
        """
        analysis = image if isinstance(image, FaceAnalysis) else self.analyse(image, profile)
        if analysis.landmarks is None:
            raise NoFaceFound("no face found in the image")
        if single_face and len(analysis.faces) > 1:
            raise MultipleFacesFound(
                f"{len(analysis.faces)} faces found; exactly one is required",
                face_count=len(analysis.faces),
            )
        timings = dict(analysis.timings_ms)
        start = time.perf_counter()
        chip = align_chip(analysis.image.rgb, analysis.landmarks)
        timings["align"] = _elapsed_ms(start)
        start = time.perf_counter()
        template = self.extractor.embed_chip(chip, self.config.template_jitter)
        timings["embed"] = _elapsed_ms(start)
        return FaceCapture(analysis, chip, template, timings)

    def process(
        self, image: bytes | DecodedImage, profile: QualityProfile, *, embed: bool = True
    ) -> ProcessedImage:
        """The whole pipeline for one photo; the template is made whenever a face is found
        (``embed``), whatever its quality: the workflow decides what quality means."""
        analysis = self.analyse(image, profile)
        chip: np.ndarray | None = None
        template: Template | None = None
        timings = analysis.timings_ms
        if embed and analysis.landmarks is not None:
            captured = self.capture(analysis, profile)
            chip, template, timings = captured.chip, captured.template, captured.timings_ms
        return _processed(analysis, chip, template, timings)

    def process_many(
        self, images: Sequence[bytes | DecodedImage], profile: QualityProfile, *, embed: bool = True
    ) -> list[ProcessedImage | WajahInputError]:
        """:meth:`process` for several photos, their chips embedded in one batched call (the
        ONNX Runtime path runs ~1.2x faster a chip in batches of 8-16 than one at a time).

        One entry per photo, in order: the :class:`ProcessedImage`, or the input error that
        photo raised (undecodable, too large...), so one bad file does not sink the batch. The
        "embed" timing of each photo is its share of the batch call.
        """
        errors: dict[int, WajahInputError] = {}
        analyses: list[FaceAnalysis | None] = []
        for index, image in enumerate(images):
            try:
                analyses.append(self.analyse(image, profile))
            except WajahInputError as error:
                analyses.append(None)
                errors[index] = error
        chips: dict[int, np.ndarray] = {}
        align_ms: dict[int, float] = {}
        for index, analysis in enumerate(analyses):
            if embed and analysis is not None and analysis.landmarks is not None:
                start = time.perf_counter()
                chips[index] = align_chip(analysis.image.rgb, analysis.landmarks)
                align_ms[index] = _elapsed_ms(start)
        start = time.perf_counter()
        vectors = self.embed_chips(list(chips.values()))
        embed_share_ms = _elapsed_ms(start) / max(len(chips), 1)
        templates = {
            index: Template(vector=vector, model_tag=self.model_tag)
            for index, vector in zip(chips, vectors, strict=True)
        }
        results: list[ProcessedImage | WajahInputError] = []
        for index, analysis in enumerate(analyses):
            if analysis is None:
                results.append(errors[index])
                continue
            timings = dict(analysis.timings_ms)
            if index in chips:
                timings["align"] = align_ms[index]
                timings["embed"] = embed_share_ms
            results.append(_processed(analysis, chips.get(index), templates.get(index), timings))
        return results

    def embed_chips(self, chips: Sequence[np.ndarray]) -> np.ndarray:
        """Batch embedding of aligned chips: (N, 128) float32, L2-normalised."""
        return self.extractor.embed_chips(list(chips), self.config.template_jitter)


def _processed(
    analysis: FaceAnalysis,
    chip: np.ndarray | None,
    template: Template | None,
    timings: dict[str, float],
) -> ProcessedImage:
    decoded = analysis.image
    return ProcessedImage(
        image_format=decoded.format,
        width=int(decoded.rgb.shape[1]),
        height=int(decoded.rgb.shape[0]),
        exif_orientation=decoded.exif_orientation,
        faces=analysis.faces,
        points68=None if analysis.landmarks is None else analysis.landmarks.points68,
        quality=analysis.quality,
        chip=chip,
        template=template,
        timings_ms=timings,
    )
