"""``"ivfpq"``: inverted lists of 4-bit PQ fast-scan codes in the discriminant space of the
model's templates, the approximate kind for large galleries (1M: p50 ~0.8-1.0 ms, under 0.1 %
of the mates exact search finds lost; benchmarks/results/latest-ivfpq-1m.md). The float
templates stay in the index's store for the exact re-score."""

from __future__ import annotations

from typing import Any, ClassVar, Self, cast

import faiss
import numpy as np

from wajah.biometric.templates import TEMPLATE_DIM
from wajah.matcher.accelerators.base import GalleryRows
from wajah.matcher.accelerators.ivf import IvfAccelerator
from wajah.matcher.config import (
    IVFPQ_COARSE_DIMS,
    IVFPQ_DIMS,
    IVFPQ_QUERY_SPLIT,
    IVFPQ_RETRAIN_GROWTH,
    IVFPQ_SUBQUANTIZERS,
    IVFPQ_TRAINING_PER_LIST,
    KMEANS_SEED,
    IndexConfig,
    IndexKind,
    automatic_nlist,
    ivfpq_probes,
)
from wajah.matcher.template_space import discriminant_basis, shipped_space


class IvfPqAccelerator(IvfAccelerator):
    """Inverted lists of 4-bit PQ fast-scan codes in the discriminant space of the templates
    (:mod:`wajah.matcher.template_space`), labelled with template ids like :class:`IvfAccelerator`
    (whose add, remove and state it keeps).

    One FAISS index does it all, so it saves and loads as one blob: ``IndexPreTransform`` (the
    LDA projection ``(x - mean) @ basis`` as a ``LinearTransform``) over ``IndexIVFPQFastScan``
    (L2, residuals to the list centroid, ``subquantizers`` codes of 4 bits). Its distances are
    coarse; the gallery index re-scores the candidates exactly from the float store."""

    kind: ClassVar[IndexKind] = "ivfpq"

    def __init__(self, config: IndexConfig, model_tag: str) -> None:
        super().__init__(config, model_tag)
        # The model's within-identity scatter; LookupError when none is shipped for the model.
        self._within = shipped_space(model_tag).within  # (128, 128) float64
        self._nlist = 0
        self._search_parameters: dict[int, Any] = {}  # nprobe a part -> SearchParametersIVF

    def _attach(self, index: Any) -> None:
        if not isinstance(index, faiss.IndexPreTransform):
            raise ValueError("not an ivfpq accelerator")
        index = cast(Any, index)  # the stubs lack IndexPreTransform's attributes
        self._index = index  # faiss.IndexPreTransform over IndexIVFPQFastScan
        self._lists: Any = cast(Any, faiss.downcast_index(index.index))  # IVFPQFastScan
        self._nlist = int(self._lists.nlist)
        # The projection and the list centroids as numpy arrays: the search picks its lists
        # itself (inner products and a partition: 0.1 ms at 8,000 lists, where faiss's flat
        # quantizer keeps a heap of nprobe and took 0.3 ms) and hands them to the lists.
        transform: Any = faiss.downcast_VectorTransform(index.chain.at(0))
        matrix = faiss.vector_to_array(transform.A).reshape(transform.d_out, transform.d_in)
        self._projection = np.ascontiguousarray(matrix.T, dtype=np.float32)  # (128, dims)
        self._offset = faiss.vector_to_array(transform.b).astype(np.float32)  # (dims,)
        centroids = self._lists.quantizer.reconstruct_n(0, self._nlist)  # (nlist, dims)
        # Lists are clustered in the leading (most discriminant) directions only; the trailing
        # centroid columns are zero and add the same ||y_rest||^2 to every list's distance.
        used = np.flatnonzero(np.any(centroids != 0.0, axis=0))
        coarse_dims = int(used[-1]) + 1 if used.size else 1
        self._centroids = np.ascontiguousarray(centroids[:, :coarse_dims], dtype=np.float32)
        self._centroid_norms = np.einsum("ij,ij->i", self._centroids, self._centroids)
        self._search_parameters = {}

    def _empty_copy(self) -> Self:
        fresh = super()._empty_copy()
        fresh._nlist = 0
        fresh._search_parameters = {}
        return fresh

    def needs_retrain(self, count: int) -> bool:
        """Besides the first training: automatic lists trained for a gallery a quarter of
        today's size or less (the automatic count, 2 sqrt(N), has doubled) are retrained for
        the current size, so a gallery that grows by enrollment or by a rebuild in batches
        keeps a layout fitted to it (the 200 lists trained at 10k would hold 5,000 templates
        each at 1M instead of 500, and a share of them would lose more mates). A retrain costs
        seconds at a million templates and they come at 4x growth, so together they cost a
        small multiple of the last one. ("ivf" keeps its first lists: its k-means runs over
        128 dimensions.)"""
        if self._index is None:
            return super().needs_retrain(count)
        if self._nlist_asked is not None:
            return False
        return automatic_nlist(count, "ivfpq") >= IVFPQ_RETRAIN_GROWTH * self._nlist

    def _train(self, lists: int, needed: int, gallery: GalleryRows) -> Any:
        return self.fit(
            lists,
            gallery.template_ids.copy(),
            gallery.vectors(),
            within=self._within,
            dims=IVFPQ_DIMS,
            coarse_dims=IVFPQ_COARSE_DIMS,
            subquantizers=IVFPQ_SUBQUANTIZERS,
            training_rows=max(needed, IVFPQ_TRAINING_PER_LIST * lists),
        )

    @staticmethod
    def fit(
        nlist: int,
        template_ids: np.ndarray,
        vectors: np.ndarray,
        *,
        within: np.ndarray,
        dims: int,
        coarse_dims: int,
        subquantizers: int,
        training_rows: int,
    ) -> Any:
        """Fit the projection (mean and total covariance of ``vectors``, ``within`` shipped),
        cluster the lists in its first ``coarse_dims`` directions and train the codebooks on
        all ``dims``, both on at most ``training_rows`` vectors; add every vector. Returns the
        faiss index."""
        rng = np.random.default_rng(0)  # reproducible training sample
        sample = (
            vectors[np.sort(rng.choice(vectors.shape[0], training_rows, replace=False))]
            if vectors.shape[0] > training_rows
            else vectors
        )
        wide = sample.astype(np.float64)
        mean = wide.mean(axis=0)
        basis, _ = discriminant_basis(np.cov(wide, rowvar=False), within, dims)
        transform = faiss.LinearTransform(TEMPLATE_DIM, dims, True)
        faiss.copy_array_to_vector(
            np.ascontiguousarray(basis.T, dtype=np.float32).ravel(), transform.A
        )
        faiss.copy_array_to_vector((-(mean @ basis)).astype(np.float32), transform.b)
        transform.is_trained = True
        projected = np.ascontiguousarray(transform.apply_py(sample), dtype=np.float32)
        coarse = faiss.Kmeans(coarse_dims, nlist, seed=KMEANS_SEED)
        coarse.train(np.ascontiguousarray(projected[:, :coarse_dims]))
        centroids = np.zeros((nlist, dims), dtype=np.float32)  # zero beyond coarse_dims
        centroids[:, :coarse_dims] = coarse.centroids
        quantizer = faiss.IndexFlatL2(dims)
        quantizer.add(centroids)
        lists = faiss.IndexIVFPQFastScan(quantizer, dims, nlist, subquantizers, 4, faiss.METRIC_L2)
        lists.by_residual = False  # codes of the projected template, one lookup table a query
        lists.train(projected)  # the codebooks; the quantizer is already trained and full
        index = faiss.IndexPreTransform(transform, lists)
        index.add_with_ids(vectors, template_ids)
        return index

    @property
    def nlist(self) -> int:
        return self._nlist

    @property
    def lists(self) -> int:
        return self._nlist

    def _nprobe(self, config: IndexConfig) -> int:
        return ivfpq_probes(config.ivfpq_nprobe, self._nlist)

    def search(self, queries: np.ndarray, depth: int, nprobe: int) -> tuple[np.ndarray, np.ndarray]:
        """(coarse distances (Q, P * depth) float32, template ids (Q, P * depth) int64, -1
        padded), P = ``IVFPQ_QUERY_SPLIT`` (1 when fewer lists are visited).

        Each query's ``nprobe`` nearest lists are scanned as P part-queries (the same projected
        vector, a share of the lists each) in one faiss call, which spreads them over its
        OpenMP threads: faiss parallelises fast-scan lists over queries, so a single query
        alone scans on one core (1M templates, 400 of 2,000 lists, 2 cores: 0.88 ms whole,
        0.54 ms split). ``nprobe`` is rounded up to a multiple of P. Each part's best ``depth``
        candidates come back side by side, not merged: the caller re-scores all of them
        exactly, and together they hold every candidate of the best ``depth`` over all the
        lists (merging them cost ~0.07 ms a query, more than re-scoring the extra ones)."""
        count = queries.shape[0]
        probes = max(1, min(nprobe, self._nlist))
        parts = IVFPQ_QUERY_SPLIT if probes >= IVFPQ_QUERY_SPLIT else 1
        per_part = -(-probes // parts)
        if per_part * parts > self._nlist:
            parts, per_part = 1, probes
        visited = per_part * parts
        projected = np.asarray(queries @ self._projection + self._offset, dtype=np.float32)
        # ||y - c||^2 without the ||y||^2 every list shares: the order of the lists. The inner
        # products come from faiss's single-threaded SIMD loop, not numpy: above ~4,000 lists
        # OpenBLAS runs the sgemv on two threads, which then spin against faiss's OpenMP
        # threads in the scan below (1M, 8,000 lists: 5.9 ms a query instead of 1.3 ms).
        products = np.empty((count, self._nlist), dtype=np.float32)
        for row in range(count):
            faiss.fvec_inner_products_ny(  # type: ignore[attr-defined]
                faiss.swig_ptr(products[row]),
                faiss.swig_ptr(projected[row]),
                faiss.swig_ptr(self._centroids),
                self._centroids.shape[1],
                self._nlist,
            )
        distances = self._centroid_norms - 2.0 * products  # (Q, nlist)
        if visited < self._nlist:
            lists = np.argpartition(distances, visited - 1, axis=1)[:, :visited]
        else:
            lists = np.broadcast_to(np.arange(self._nlist), (count, self._nlist))
        assigned = np.ascontiguousarray(lists, dtype=np.int64)  # (Q, visited)
        assigned_distances = np.ascontiguousarray(
            distances[np.arange(count)[:, None], assigned], dtype=np.float32
        )
        halves = np.repeat(projected, parts, axis=0) if parts > 1 else projected
        found_distances = np.empty((count, parts * depth), dtype=np.float32)
        found_ids = np.empty((count, parts * depth), dtype=np.int64)
        # The C++ call, not faiss's Python wrapper: the wrapper refuses search parameters and
        # would take nprobe from the shared index object (a race between searches). Row r of
        # the (Q * P, visited / P) views is part r % P of query r // P.
        self._lists.search_preassigned_c(
            count * parts,
            faiss.swig_ptr(halves),
            depth,
            faiss.swig_ptr(assigned),
            faiss.swig_ptr(assigned_distances),
            faiss.swig_ptr(found_distances),
            faiss.swig_ptr(found_ids),
            False,
            self._parameters(per_part),
        )
        return found_distances, found_ids

    def _parameters(self, nprobe: int) -> Any:
        """Search parameters for ``nprobe`` lists a part, made once (~15 us each) and never
        changed afterwards, so concurrent searches may share them."""
        parameters = self._search_parameters.get(nprobe)
        if parameters is None:
            parameters = faiss.SearchParametersIVF()
            parameters.nprobe = nprobe
            self._search_parameters[nprobe] = parameters
        return parameters

    def memory_bytes(self) -> int:
        if self._index is None:
            return 0
        lists = self._lists
        code_bytes = (int(lists.M) * int(lists.nbits) + 7) // 8
        dims = int(lists.d)
        return (
            int(self._index.ntotal) * (code_bytes + 8)
            + self.nlist * dims * 4
            + TEMPLATE_DIM * dims * 4
        )
