"""The detection size policy on real photos: the coarse-then-refine scan of large photos
against the full scan (``coarse_detect_side_px=None``, the previous behaviour)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from wajah.biometric.detect import DetectionPolicy, plan_detection
from wajah.biometric.engine import EngineConfig, FaceEngine
from wajah.biometric.errors import WajahInputError
from wajah.biometric.quality import PROFILES
from wajah.biometric.templates import align_chip

# Measured on the 78 photos > 640 px of ../shared/faces (2026-12-03): min 0.9968, median
# 0.9997 (the LFW photos take the unchanged small-photo path: 1.0). Not the ResNet's 0.9999:
# a refined box is not bit-identical to the full scan's (see biometric/detect.py); the bound
# leaves a little room for other builds of dlib and OpenCV.
COARSE_TEMPLATE_MIN_COSINE = 0.995
COARSE_TEMPLATE_MEDIAN_COSINE = 0.9995
LFW_SAMPLE = 150
PHONE_FOLDERS = ("deepface", "face_recognition", "facenet_pytorch")


def test_small_photos_are_upsampled_and_large_ones_downscaled() -> None:
    policy = DetectionPolicy()
    assert plan_detection(250, 250, policy) == (1.0, 1)
    scale, upsample = plan_detection(4000, 3000, policy)
    assert upsample == 0 and round(4000 * scale) == policy.max_detect_side_px


@pytest.mark.slow
def test_coarse_scan_loses_no_face_and_keeps_templates(
    faces_dir: Path, manifest: Callable[[str], list[object]]
) -> None:
    coarse = FaceEngine()
    full = FaceEngine(EngineConfig(detection=DetectionPolicy(coarse_detect_side_px=None)))
    lfw = manifest("lfw_deepfunneled")
    photos = lfw[:: max(1, len(lfw) // LFW_SAMPLE)][:LFW_SAMPLE]
    for folder in PHONE_FOLDERS:
        photos += manifest(folder)
    compared, lost, recounted = 0, [], []
    cosines: list[float] = []
    for photo in photos:
        path: Path = photo.path  # type: ignore[attr-defined]
        try:
            image = coarse.read(path)
        except WajahInputError:
            continue  # undecodable on both paths alike
        before = full.analyse(image, PROFILES["verification"])
        after = coarse.analyse(image, PROFILES["verification"])
        compared += 1
        if before.faces and not after.faces:
            lost.append(path.name)
        if len(before.faces) != len(after.faces):
            recounted.append(path.name)
        if before.landmarks is not None and after.landmarks is not None:
            chips = [
                align_chip(image.rgb, before.landmarks),
                align_chip(image.rgb, after.landmarks),
            ]
            first, second = coarse.embed_chips(chips)
            cosines.append(float(first @ second))
    values = np.array(cosines)
    print(
        f"{compared} photos, {len(values)} with a face: lost {len(lost)}, face count changed "
        f"{len(recounted)}; template cosine to the full scan min {values.min():.5f}, "
        f"median {np.median(values):.5f}, below 0.9999: {int(np.sum(values < 0.9999))}"
    )
    assert compared >= LFW_SAMPLE + 80
    assert lost == []
    assert recounted == []
    assert values.min() >= COARSE_TEMPLATE_MIN_COSINE
    assert np.median(values) >= COARSE_TEMPLATE_MEDIAN_COSINE


@pytest.mark.slow
def test_coarse_scan_keeps_every_face_of_group_photos(
    manifest: Callable[[str], list[object]],
) -> None:
    """Group photos: the coarse scan may drop what the full scan found only where the manifest
    says it is not a face (a note starting with the true count); measured: 3 -> 2 on
    obama_and_biden, whose third box (162 px, HOG score 0.75) is on no face."""
    coarse = FaceEngine()
    full = FaceEngine(EngineConfig(detection=DetectionPolicy(coarse_detect_side_px=None)))
    checked = 0
    for photo in manifest("negatives"):
        path: Path = photo.path  # type: ignore[attr-defined]
        note: str = photo.note  # type: ignore[attr-defined]
        if "multiface" not in path.parts:
            continue
        stated = note.split(" ")[0]
        image = coarse.read(path)
        before = len(full.detector.detect(image.rgb))
        after = len(coarse.detector.detect(image.rgb))
        expected = min(before, int(stated)) if stated.isdigit() else before
        assert after >= expected, path.name
        checked += 1
    assert checked >= 5
