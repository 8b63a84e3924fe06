"""The shape of one template model's space, and the discriminant projection "ivfpq" searches in.

Templates of one model do not fill the unit sphere: dlib templates of different people sit at
cosine ~0.84 around a common mean, and two photos of one person differ mostly along a few
directions. An index that partitions the raw vectors spends its cells on directions where
photos of one person disagree as much as different people do, so a probe's mate often lies in a
cell the probe does not visit. Linear discriminant analysis fixes the geometry: whiten the
within-identity scatter (so a person's photo-to-photo noise is the same size in every
direction) and keep the directions where different people spread the most relative to it.

* The within-identity covariance is a property of the network, measured once on labeled photos
  and shipped here per model tag (``template_space_<tag>.npz``), like the thresholds.
* The total covariance and mean come from the gallery itself when the index is trained, so the
  projection follows the population actually enrolled.

Measured at 1M real-fit templates (benchmarks/results/latest-ivfpq-1m.md): the fraction of the
gallery an inverted-file index must scan to keep a mate falls about 4x against the raw space
(0.3 % of mates lost at 6.4 % scanned instead of 0.9 %; whitening without labels is worse than
the raw space).

The shipped file is regenerated from templates saved by ``wajah calibrate --templates FILE``
with ``python -m tools.fit_template_space FILE`` (a checkout's tool, not part of the package).
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

import numpy as np

from wajah.biometric.templates import MODEL_TAG, TEMPLATE_DIM

RIDGE_FRACTION = 1.0  # within-scatter shrinkage: its mean eigenvalue added to every direction.
#                      A within scatter from ~1,300 degrees of freedom underestimates its small
#                      eigenvalues, and plain LDA then favours those directions. Measured at 1M
#                      real-fit templates fitted to held-out identities (4,096 lists, 9.4 %
#                      visited): ridge 0.1 -> 0.24 % of mates lost, 0.3 -> 0.14 %, 0.6 -> 0.10 %,
#                      1.0 -> 0.08 %, 2.0 -> 0.26 %; PCA (no within scatter) 0.20 %.
MIN_IDENTITIES = 50  # fewer identities with two or more templates estimate 128 x 128 badly


@dataclass(frozen=True)
class TemplateSpace:
    """Second-order statistics of one model's templates, from labeled photos."""

    model_tag: str
    mean: np.ndarray  # (128,) float64
    total: np.ndarray  # (128, 128) float64 covariance of templates
    within: np.ndarray  # (128, 128) float64 covariance of a template around its identity's mean
    templates: int
    identities: int  # identities with two or more templates (those the within scatter uses)
    source: str

    def save(self, path: Path) -> None:
        with path.open("wb") as handle:
            np.savez_compressed(
                handle,
                model_tag=np.asarray(self.model_tag),
                mean=self.mean,
                total=self.total,
                within=self.within,
                counts=np.asarray([self.templates, self.identities], dtype=np.int64),
                source=np.asarray(self.source),
            )

    @classmethod
    def from_bytes(cls, data: bytes) -> TemplateSpace:
        with np.load(io.BytesIO(data), allow_pickle=False) as arrays:
            space = cls(
                model_tag=str(arrays["model_tag"]),
                mean=np.asarray(arrays["mean"], dtype=np.float64),
                total=np.asarray(arrays["total"], dtype=np.float64),
                within=np.asarray(arrays["within"], dtype=np.float64),
                templates=int(arrays["counts"][0]),
                identities=int(arrays["counts"][1]),
                source=str(arrays["source"]),
            )
        square = (TEMPLATE_DIM, TEMPLATE_DIM)
        if space.mean.shape != (TEMPLATE_DIM,) or space.total.shape != square:
            raise ValueError("template space file has the wrong shapes")
        if space.within.shape != square:
            raise ValueError("template space file has the wrong shapes")
        return space


def resource_name(model_tag: str) -> str:
    return f"template_space_{model_tag}.npz"


def shipped_space(model_tag: str = MODEL_TAG) -> TemplateSpace:
    """The statistics shipped with the package for ``model_tag``; ``LookupError`` if none."""
    resource = resources.files("wajah.matcher").joinpath(resource_name(model_tag))
    if not resource.is_file():
        raise LookupError(f"no template space shipped for model {model_tag!r}")
    space = TemplateSpace.from_bytes(resource.read_bytes())
    if space.model_tag != model_tag:
        raise LookupError(f"{resource_name(model_tag)} describes {space.model_tag!r}")
    return space


def fit_space(
    templates: np.ndarray, identities: list[str] | tuple[str, ...], model_tag: str, source: str
) -> TemplateSpace:
    """Statistics of labeled templates (N, 128): mean, total and within-identity covariance."""
    vectors = np.asarray(templates, dtype=np.float64)
    labels = np.asarray(identities)
    if vectors.ndim != 2 or vectors.shape[1] != TEMPLATE_DIM or labels.shape[0] != len(vectors):
        raise ValueError("templates must be (N, 128) with one identity per row")
    names, inverse, counts = np.unique(labels, return_inverse=True, return_counts=True)
    repeated = counts[inverse] >= 2
    kept = int(np.count_nonzero(counts >= 2))
    if kept < MIN_IDENTITIES:
        raise ValueError(
            f"{kept} identities have two or more templates; at least {MIN_IDENTITIES} needed"
        )
    sums = np.zeros((names.shape[0], TEMPLATE_DIM))
    np.add.at(sums, inverse, vectors)
    residuals = (vectors - sums[inverse] / counts[inverse][:, None])[repeated]
    # Unbiased: a member's deviation from its own sample mean shrinks by (n - 1) / n.
    degrees = int(np.count_nonzero(repeated)) - kept
    within = residuals.T @ residuals / degrees
    return TemplateSpace(
        model_tag=model_tag,
        mean=vectors.mean(axis=0),
        total=np.cov(vectors, rowvar=False),
        within=within,
        templates=int(vectors.shape[0]),
        identities=kept,
        source=source,
    )


def discriminant_basis(
    total: np.ndarray, within: np.ndarray, dims: int
) -> tuple[np.ndarray, np.ndarray]:
    """LDA: (basis (128, dims) float64, ratios (dims,) float64), best direction first.

    ``(x - mean) @ basis`` maps a template to coordinates in which the within-identity scatter
    is the identity matrix; ``ratios`` are the total variance along each kept direction in
    those units (how many times wider the population spreads than one person's photos).
    """
    if not 1 <= dims <= TEMPLATE_DIM:
        raise ValueError(f"dims must be in 1..{TEMPLATE_DIM}")
    ridge = RIDGE_FRACTION * float(np.trace(within)) / TEMPLATE_DIM
    values, vectors = np.linalg.eigh(within + ridge * np.eye(TEMPLATE_DIM))
    whiten = vectors / np.sqrt(values)  # (128, 128): x @ whiten has identity within scatter
    spread, directions = np.linalg.eigh(whiten.T @ total @ whiten)
    order = np.argsort(spread)[::-1][:dims]
    return whiten @ directions[:, order], spread[order]
