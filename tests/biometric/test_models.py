"""The shipped weight files and the licence table that describes them."""

from __future__ import annotations

import dataclasses

from wajah.biometric.models import MODEL_LICENCES, find_model_paths


def test_every_shipped_model_has_a_licence_entry() -> None:
    paths = find_model_paths()
    shipped = {path.name for path in dataclasses.astuple(paths)}
    assert {entry.file for entry in MODEL_LICENCES} == shipped


def test_only_the_68_point_predictor_excludes_commercial_use() -> None:
    restricted = [entry.file for entry in MODEL_LICENCES if not entry.commercial_use]
    assert restricted == ["shape_predictor_68_face_landmarks.dat"]
