"""Synthetic templates that behave like face descriptors: unit vectors in a cone around a common
direction, identities spread over a low-dimensional subspace (impostor similarity ~0.53), and
samples of one identity close together (genuine similarity ~0.92)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

DIM = 128


def unit_rows(vectors: np.ndarray) -> np.ndarray:
    array = np.asarray(vectors, dtype=np.float64)
    return np.asarray(array / np.linalg.norm(array, axis=-1, keepdims=True), dtype=np.float32)


@dataclass(frozen=True)
class Population:
    identities: np.ndarray  # (S, 128) float32, L2-normalised
    rng_seed: int
    sample_noise: float

    def samples(self, subjects: np.ndarray, seed: int) -> np.ndarray:
        """One new sample per entry of ``subjects``: (len, 128) float32, L2-normalised."""
        rng = np.random.default_rng(seed)
        noise = rng.standard_normal((len(subjects), DIM)) * self.sample_noise / np.sqrt(DIM)
        return unit_rows(self.identities[subjects] + noise)


def population(subjects: int, seed: int = 0, latent: int = 24) -> Population:
    rng = np.random.default_rng(seed)
    mean = unit_rows(rng.standard_normal(DIM))
    basis = np.linalg.qr(rng.standard_normal((DIM, latent)))[0].T  # (latent, 128) orthonormal
    latent_codes = rng.standard_normal((subjects, latent)) / np.sqrt(latent)
    spread = 0.3 * rng.standard_normal((subjects, DIM)) / np.sqrt(DIM)
    identities = unit_rows(1.2 * mean + latent_codes @ basis + spread)
    return Population(identities=identities, rng_seed=seed, sample_noise=0.3)


def exact_top_k(gallery: np.ndarray, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Brute-force reference: (scores (Q, k), row indices (Q, k)) best first."""
    scores = queries.astype(np.float64) @ gallery.astype(np.float64).T
    order = np.argsort(-scores, axis=1, kind="stable")[:, :k]
    return np.take_along_axis(scores, order, axis=1), order


@dataclass(frozen=True)
class DlibLikePopulation:
    identities: np.ndarray  # (S, 128) float64 identity centres (not normalised)
    within_factor: np.ndarray  # (128, 128) Cholesky factor of the within-identity covariance

    def samples(self, subjects: np.ndarray, seed: int) -> np.ndarray:
        """One new sample per entry of ``subjects``: (len, 128) float32, L2-normalised."""
        rng = np.random.default_rng(seed)
        noise = rng.standard_normal((len(subjects), DIM)) @ self.within_factor.T
        return unit_rows(self.identities[subjects] + noise)


def dlib_like_population(subjects: int, seed: int = 0) -> DlibLikePopulation:
    """Identities with the mean, total and within-identity covariance of real dlib templates
    (the statistics shipped in ``matcher/template_space_*.npz``): centres drawn from
    N(mean, total - within), samples = centre + N(0, within), normalised."""
    from wajah.matcher.template_space import shipped_space

    space = shipped_space()
    rng = np.random.default_rng(seed)
    values, vectors = np.linalg.eigh(space.total - space.within)
    between = vectors * np.sqrt(np.clip(values, 0.0, None))  # z @ between.T ~ N(0, B)
    centres = space.mean + rng.standard_normal((subjects, DIM)) @ between.T
    return DlibLikePopulation(centres, np.linalg.cholesky(space.within))
