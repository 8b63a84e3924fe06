"""The face engine from the settings, and nothing else: what a one-shot command needs
(``wajah inspect``, ``wajah compare``) without the store, the index or the HTTP stack, so it
starts quickly. ``runtime.py`` builds the service from the same pieces."""

from __future__ import annotations

from wajah.api.settings import Settings
from wajah.biometric.decode import DecodeLimits
from wajah.biometric.detect import DetectionPolicy, DetectorKind
from wajah.biometric.engine import EngineConfig, FaceEngine
from wajah.biometric.templates import MODEL_TAG, EmbedderKind
from wajah.matcher.thresholds import Thresholds, default_thresholds, load_thresholds


def engine_config(settings: Settings) -> EngineConfig:
    return EngineConfig(
        detector=DetectorKind(settings.detector),
        detection=DetectionPolicy(max_detect_side_px=settings.max_detect_side_px),
        decode_limits=DecodeLimits(
            max_bytes=settings.max_image_bytes, max_pixels=settings.max_image_pixels
        ),
        template_jitter=settings.template_jitter,
        embedder=EmbedderKind(settings.embedder),
        model_cache_dir=settings.model_cache_dir,
    )


def build_engine(settings: Settings, *, warm_up: bool = True) -> FaceEngine:
    engine = FaceEngine(engine_config(settings))
    if warm_up:
        engine.warm_up()
    return engine


def load_settings_thresholds(settings: Settings) -> Thresholds:
    """The calibration in ``settings.thresholds_file``, or the one shipped with the package."""
    if settings.thresholds_file is not None:
        return load_thresholds(settings.thresholds_file, MODEL_TAG)
    return default_thresholds(MODEL_TAG)
