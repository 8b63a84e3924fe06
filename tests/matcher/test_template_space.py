from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from tests.matcher.synthetic import unit_rows
from tools.fit_template_space import main
from wajah.biometric.templates import MODEL_TAG
from wajah.matcher.photo_calibration import LabeledTemplates, save_labeled_templates
from wajah.matcher.template_space import (
    RIDGE_FRACTION,
    TemplateSpace,
    discriminant_basis,
    fit_space,
    shipped_space,
)


def _labeled(identities: int, per_identity: int, within_std: np.ndarray, seed: int) -> tuple:
    rng = np.random.default_rng(seed)
    centres = rng.standard_normal((identities, 128))
    labels = np.repeat(np.arange(identities), per_identity)
    vectors = centres[labels] + rng.standard_normal((labels.shape[0], 128)) * within_std
    return vectors, [f"person_{i}" for i in labels]


def test_the_shipped_space_describes_dlib_templates() -> None:
    space = shipped_space()
    assert space.model_tag == MODEL_TAG
    assert space.templates == 1754 and space.identities == 427  # LFW pairsDevTrain identities
    for matrix in (space.total, space.within):
        assert matrix.shape == (128, 128)
        np.testing.assert_allclose(matrix, matrix.T, atol=1e-12)
        assert np.linalg.eigvalsh(matrix).min() > -1e-9
    # dlib templates sit around a common direction; one person's photos vary less than people.
    assert 0.85 < float(np.linalg.norm(space.mean)) < 0.98
    assert 0.2 < float(np.trace(space.within) / np.trace(space.total)) < 0.5
    with pytest.raises(LookupError, match="no template space"):
        shipped_space("another-model-v9")


def test_fit_space_recovers_a_known_within_identity_covariance() -> None:
    within_std = np.linspace(0.05, 0.5, 128)
    vectors, identities = _labeled(400, 6, within_std, seed=1)
    space = fit_space(vectors, identities, MODEL_TAG, "synthetic")
    np.testing.assert_allclose(np.sqrt(np.diag(space.within)), within_std, rtol=0.06)
    scale = np.sqrt(np.diag(space.within))
    correlation = space.within / np.outer(scale, scale) - np.eye(128)
    assert float(np.abs(correlation).max()) < 0.12  # sampling noise of ~2,000 residuals
    assert space.identities == 400 and space.templates == 2400
    np.testing.assert_allclose(space.mean, vectors.mean(axis=0))


def test_fit_space_ignores_single_photo_identities_and_refuses_too_few() -> None:
    vectors, identities = _labeled(60, 2, np.full(128, 0.1), seed=2)
    singles = np.random.default_rng(3).standard_normal((500, 128)) * 5.0  # wildly spread
    space = fit_space(
        np.concatenate([vectors, singles]),
        identities + [f"single_{i}" for i in range(500)],
        MODEL_TAG,
        "synthetic",
    )
    assert space.identities == 60
    assert float(np.mean(np.diag(space.within))) == pytest.approx(0.01, rel=0.15)
    with pytest.raises(ValueError, match="at least 50"):
        fit_space(vectors[:80], identities[:80], MODEL_TAG, "synthetic")


def test_the_discriminant_basis_whitens_within_and_leads_with_the_widest_direction() -> None:
    rng = np.random.default_rng(4)
    rotation = np.linalg.qr(rng.standard_normal((128, 128)))[0]
    within = rotation @ np.diag(np.linspace(0.5, 2.0, 128)) @ rotation.T
    signal = rotation[:, 7]  # the population spreads 50x more than within along this direction
    total = within + 50.0 * np.outer(signal, signal)
    basis, ratios = discriminant_basis(total, within, 16)
    assert basis.shape == (128, 16) and ratios.shape == (16,)
    assert np.all(np.diff(ratios) <= 1e-9)
    ridge = RIDGE_FRACTION * np.trace(within) / 128
    np.testing.assert_allclose(
        basis.T @ (within + ridge * np.eye(128)) @ basis, np.eye(16), atol=1e-8
    )
    first = basis[:, 0] / np.linalg.norm(basis[:, 0])
    assert abs(float(first @ signal)) > 0.99
    with pytest.raises(ValueError):
        discriminant_basis(total, within, 0)


def test_the_module_writes_a_space_that_loads_back(tmp_path: Path, capsys) -> None:
    vectors, identities = _labeled(80, 3, np.full(128, 0.2), seed=5)
    templates = LabeledTemplates(unit_rows(vectors + 3.0), tuple(identities), ())
    saved = tmp_path / "labeled.npz"
    save_labeled_templates(templates, saved)
    target = tmp_path / "space.npz"
    main([str(saved), "--out", str(target), "--source", "unit test"])
    assert "240 templates, 80 identities" in capsys.readouterr().out
    space = TemplateSpace.from_bytes(target.read_bytes())
    assert space.source == "unit test" and space.model_tag == MODEL_TAG
    np.testing.assert_allclose(space.mean, templates.vectors.mean(axis=0), atol=1e-6)
