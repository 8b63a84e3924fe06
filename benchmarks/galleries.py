"""Synthetic galleries that resemble real templates, for the 1:N search benchmark.

Two distributions:

* ``real-fit``: a Gaussian with the mean and covariance of real dlib templates, renormalised to
  the unit sphere. Mated probes add within-identity noise: a Gaussian with the covariance of
  real templates around their identity's mean, times 2 (a probe and its enrolled template are
  two photos, each off the identity's centre), then renormalised.
* ``uniform``: uniform random unit vectors (normalised isotropic Gaussians), the textbook worst
  case for partitioning indexes; mated probes get isotropic noise of the same total variance.

The fit is reported with the genuine-score median it reproduces beside the real one.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, replace

import numpy as np

from wajah.biometric.templates import TEMPLATE_DIM, normalise

DISTRIBUTIONS = ("real-fit", "uniform")
GENERATION_CHUNK = 250_000  # rows generated at once: 128 MB of float32 per chunk


@dataclass(frozen=True)
class TemplateModel:
    """Spread of real templates: mean (128,), Cholesky factor of the covariance (128, 128) and
    of the within-identity noise covariance of one probe-vs-enrolled difference (128, 128)."""

    name: str
    mean: np.ndarray  # (128,) float64
    spread: np.ndarray  # (128, 128) float64, lower-triangular
    probe_noise: np.ndarray  # (128, 128) float64, lower-triangular
    real_genuine_median: float | None  # cosine, from the real templates; None for uniform
    real_impostor_median: float | None
    noise_scale: float = 1.0  # factor on the fitted noise so the mated median matches the real

    def draw(self, count: int, rng: np.random.Generator) -> np.ndarray:
        """(count, 128) float32 unit vectors."""
        noise = rng.standard_normal((count, TEMPLATE_DIM), dtype=np.float32)
        raw = noise @ self.spread.T.astype(np.float32) + self.mean.astype(np.float32)
        return normalise(raw)

    def chunks(self, count: int, rng: np.random.Generator) -> Iterator[np.ndarray]:
        for start in range(0, count, GENERATION_CHUNK):
            yield self.draw(min(GENERATION_CHUNK, count - start), rng)

    def mated_probes(self, enrolled: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """(Q, 128) float32 probes: another "photo" of each enrolled template's identity."""
        noise = rng.standard_normal(enrolled.shape, dtype=np.float32)
        return normalise(enrolled + noise @ self.probe_noise.T.astype(np.float32))


def _cholesky(covariance: np.ndarray) -> np.ndarray:
    jitter = 1e-9 * float(np.trace(covariance)) / covariance.shape[0]
    return np.asarray(np.linalg.cholesky(covariance + jitter * np.eye(covariance.shape[0])))


def fit_real(templates: np.ndarray, identities: Sequence[str]) -> TemplateModel:
    """Fit the ``real-fit`` model to real templates (N, 128) of labeled photos."""
    vectors = np.asarray(templates, np.float64)
    labels = np.asarray(identities)
    mean = vectors.mean(axis=0)
    covariance = np.cov(vectors, rowvar=False)
    residuals = []
    genuine = []
    for identity in np.unique(labels):
        members = vectors[labels == identity]
        if members.shape[0] < 2:
            continue
        count = members.shape[0]
        # Deviation from the sample mean underestimates the spread by (n - 1) / n.
        residuals.append((members - members.mean(axis=0)) * np.sqrt(count / (count - 1)))
        similarity = members @ members.T
        genuine.append(similarity[np.triu_indices(count, k=1)])
    if not residuals:
        raise ValueError("need identities with two or more templates to fit the noise")
    stacked = np.concatenate(residuals)
    within = stacked.T @ stacked / stacked.shape[0]
    rng = np.random.default_rng(0)
    sample = vectors[rng.choice(vectors.shape[0], min(2000, vectors.shape[0]), replace=False)]
    impostor_matrix = sample @ sample.T
    model = TemplateModel(
        name="real-fit",
        mean=mean,
        spread=_cholesky(covariance),
        probe_noise=_cholesky(2.0 * within),
        real_genuine_median=float(np.median(np.concatenate(genuine))),
        real_impostor_median=float(np.median(impostor_matrix[np.triu_indices(len(sample), 1)])),
    )
    return _calibrate_noise(model)


def _calibrate_noise(model: TemplateModel) -> TemplateModel:
    """Scale the probe noise so the model's median mated cosine equals the real one.

    Adding noise to a unit vector and renormalising is not the same as two photos off a
    common centre beyond first order (measured: ~0.05 too similar at a median of 0.78), so the
    size is set by bisection on the statistic that matters for rank-1, the mated score."""
    assert model.real_genuine_median is not None
    rng = np.random.default_rng(1)
    enrolled = model.draw(4000, rng)
    unit_noise = rng.standard_normal(enrolled.shape, dtype=np.float32) @ model.probe_noise.T.astype(
        np.float32
    )
    low, high = 0.1, 5.0
    for _ in range(40):
        scale = (low + high) / 2
        probes = normalise(enrolled + scale * unit_noise)
        if float(np.median(np.sum(enrolled * probes, axis=1))) > model.real_genuine_median:
            low = scale
        else:
            high = scale
    scale = (low + high) / 2
    return replace(model, probe_noise=model.probe_noise * scale, noise_scale=scale)


def uniform_model(within_total_variance: float) -> TemplateModel:
    """Uniform unit vectors; mated-probe noise isotropic with total variance
    ``2 * within_total_variance`` (the real-fit probe's)."""
    identity = np.eye(TEMPLATE_DIM)
    per_axis = np.sqrt(2.0 * within_total_variance / TEMPLATE_DIM)
    return TemplateModel(
        name="uniform",
        mean=np.zeros(TEMPLATE_DIM),
        spread=identity,
        probe_noise=per_axis * identity,
        real_genuine_median=None,
        real_impostor_median=None,
    )


def within_total_variance(model: TemplateModel) -> float:
    """Trace of one photo's within-identity covariance (half the probe-noise covariance)."""
    return float(np.sum(model.probe_noise**2) / 2.0)
