"""Approximate search structures over the float templates of a gallery: FAISS HNSW, IVF and
IVF-PQ in the discriminant space.

They are accelerators, not the store: the authoritative vectors live in
:class:`matcher.storage.FloatStore`, and :class:`matcher.index.GalleryIndex` re-scores their
candidates exactly from it. Neither class locks; the index does.
"""

from __future__ import annotations

from typing import Any, cast

import faiss
import numpy as np

from biometric.templates import TEMPLATE_DIM
from matcher.config import IVFPQ_QUERY_SPLIT, KMEANS_SEED
from matcher.storage import GrowableArray
from matcher.template_space import discriminant_basis


def _as_bytes_array(index: Any) -> np.ndarray:
    return np.asarray(faiss.serialize_index(index), dtype=np.uint8)  # (bytes,) uint8


class HnswAccelerator:
    """``IndexHNSWFlat`` (inner product) whose answers are ROWS of the index's stores, so the
    index re-ranks them with one gather and no id lookups.

    Graph labels are FAISS's sequential ids. Two arrays tie them to rows: label -> row (-1 for
    a tombstone) and row -> label; the index reports every row move of its swap-with-last
    removal (:meth:`move_row`). FAISS cannot remove from an HNSW graph, so a removed template
    becomes a tombstone kept out of every search by a bitmap of live labels
    (``IDSelectorBitmap``); the index rebuilds the graph when tombstones grow
    (``HNSW_REBUILD_TOMBSTONE_FRACTION``). Saved files hold label -> template id (the index
    translates), so their format does not depend on row order."""

    def __init__(
        self,
        m: int,
        ef_construction: int,
        *,
        index: Any = None,
        label_rows: np.ndarray | None = None,
    ) -> None:
        if index is None:
            index = faiss.IndexHNSWFlat(TEMPLATE_DIM, m, faiss.METRIC_INNER_PRODUCT)
            index.hnsw.efConstruction = ef_construction
        self._index: Any = index  # faiss.IndexHNSWFlat (the stubs lack its attributes)
        labels = np.zeros(0, dtype=np.int64) if label_rows is None else label_rows
        if labels.shape[0] != index.ntotal:
            raise ValueError("HNSW label map does not match the graph")
        live = np.flatnonzero(labels >= 0)
        row_labels = np.full(live.shape[0], -1, dtype=np.int64)
        if live.size and (int(labels[live].max()) >= live.shape[0] or int(labels.min()) < -1):
            raise ValueError("HNSW label map points outside the rows")
        row_labels[labels[live]] = live
        if live.size and int(row_labels.min()) < 0:
            raise ValueError("HNSW label map gives a row two labels")
        self._label_rows = GrowableArray(np.int64, labels)  # (labels,) int64 row, -1 dead
        self._row_labels = GrowableArray(np.int64, row_labels)  # (rows,) int64 graph label
        self._tombstones = int(labels.shape[0] - live.shape[0])
        self._live_bitmap = self._pack_live()

    @classmethod
    def build(cls, m: int, ef_construction: int, vectors: np.ndarray) -> HnswAccelerator:
        """A graph over ``vectors`` (N, 128) float32, row i of the index labelled i."""
        accelerator = cls(m, ef_construction)
        accelerator.add(vectors)
        return accelerator

    @property
    def tombstones(self) -> int:
        return self._tombstones

    def _pack_live(self) -> np.ndarray:
        # (ceil(labels / 8),) uint8, bit i of byte i // 8 set when label i is live (faiss order)
        return np.packbits(self._label_rows.view() >= 0, bitorder="little")

    def add(self, vectors: np.ndarray) -> None:
        """Add (N, 128) vectors stored in the next N rows of the index."""
        first_label = int(self._index.ntotal)
        first_row = len(self._row_labels)
        count = vectors.shape[0]
        self._index.add(vectors)
        self._label_rows.append(np.arange(first_row, first_row + count, dtype=np.int64))
        self._row_labels.append(np.arange(first_label, first_label + count, dtype=np.int64))
        if self._tombstones:
            self._live_bitmap = self._pack_live()

    def remove_rows(self, rows: np.ndarray) -> None:
        """Tombstone the labels of ``rows`` (unique), before the index moves rows into them."""
        labels = self._row_labels.view()[rows]
        self._label_rows.view()[labels] = -1
        self._tombstones += int(labels.shape[0])
        self._live_bitmap = self._pack_live()

    def move_row(self, source: int, destination: int) -> None:
        """The index moved row ``source`` (live) into ``destination`` (removed)."""
        label = int(self._row_labels.view()[source])
        self._row_labels.view()[destination] = label
        self._label_rows.view()[label] = destination

    def truncate(self, count: int) -> None:
        self._row_labels.truncate(count)

    def search(
        self, queries: np.ndarray, depth: int, ef_search: int
    ) -> tuple[np.ndarray, np.ndarray]:
        """(scores (Q, depth) float32, rows (Q, depth) int64, -1 padded)."""
        parameters = faiss.SearchParametersHNSW()  # type: ignore[attr-defined]
        parameters.efSearch = max(ef_search, depth)
        selector = None
        if self._tombstones:
            selector = faiss.IDSelectorBitmap(
                int(self._index.ntotal), faiss.swig_ptr(self._live_bitmap)
            )
            parameters.sel = selector
        scores, labels = self._index.search(queries, depth, params=parameters)
        del selector  # kept alive until the search returned
        rows = np.where(labels >= 0, self._label_rows.view()[np.maximum(labels, 0)], -1)
        return scores, rows

    def memory_bytes(self) -> int:
        count = int(self._index.ntotal)
        # vectors + level-0 links (2M int32) + the two label maps; upper levels add ~1/M more.
        links = 2 * int(self._index.hnsw.nb_neighbors(0)) if count else 0
        return count * (TEMPLATE_DIM * 4 + links * 4 + 8 + 8) + self._row_labels.memory_bytes()

    def serialize(self, template_of_row: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(faiss bytes (B,) uint8, label -> template id (labels,) int64, -1 dead), given the
        index's template id column (rows,) int64."""
        label_rows = self._label_rows.view()
        label_templates = np.where(
            label_rows >= 0, template_of_row[np.maximum(label_rows, 0)], -1
        ).astype(np.int64)
        return _as_bytes_array(self._index), label_templates

    @classmethod
    def deserialize(cls, data: np.ndarray, label_rows: np.ndarray) -> HnswAccelerator:
        """From faiss bytes and label -> row (labels,) int64 (-1 dead)."""
        index: Any = faiss.deserialize_index(data)
        return cls(
            index.hnsw.nb_neighbors(0) // 2,
            index.hnsw.efConstruction,
            index=index,
            label_rows=label_rows,
        )


class IvfAccelerator:
    """``IndexIVFFlat`` (inner product) labelled with the template ids themselves, so removal is
    FAISS's own ``remove_ids`` and results need no translation."""

    def __init__(self, index: Any) -> None:
        self._index: Any = index  # faiss.IndexIVFFlat

    @classmethod
    def train(cls, nlist: int, template_ids: np.ndarray, vectors: np.ndarray) -> IvfAccelerator:
        quantizer = faiss.IndexFlatIP(TEMPLATE_DIM)
        index = faiss.IndexIVFFlat(quantizer, TEMPLATE_DIM, nlist, faiss.METRIC_INNER_PRODUCT)
        index.train(vectors)
        index.add_with_ids(vectors, template_ids)
        return cls(index)

    @property
    def nlist(self) -> int:
        return int(self._index.nlist)

    @property
    def tombstones(self) -> int:
        return 0

    def add(self, template_ids: np.ndarray, vectors: np.ndarray) -> None:
        self._index.add_with_ids(vectors, template_ids)

    def remove(self, template_ids: np.ndarray) -> None:
        self._index.remove_ids(np.ascontiguousarray(template_ids, dtype=np.int64))

    def search(self, queries: np.ndarray, depth: int, nprobe: int) -> tuple[np.ndarray, np.ndarray]:
        """(scores (Q, depth) float32, template ids (Q, depth) int64, -1 padded)."""
        parameters = faiss.SearchParametersIVF()
        parameters.nprobe = min(nprobe, self.nlist)
        scores, template_ids = self._index.search(queries, depth, params=parameters)
        return scores, np.asarray(template_ids, dtype=np.int64)

    def memory_bytes(self) -> int:
        return int(self._index.ntotal) * (TEMPLATE_DIM * 4 + 8) + self.nlist * TEMPLATE_DIM * 4

    def serialize(self) -> np.ndarray:
        return _as_bytes_array(self._index)

    @classmethod
    def deserialize(cls, data: np.ndarray) -> IvfAccelerator:
        return cls(faiss.deserialize_index(data))


class IvfPqAccelerator(IvfAccelerator):
    """Inverted lists of 4-bit PQ fast-scan codes in the discriminant space of the templates
    (:mod:`matcher.template_space`), labelled with template ids like :class:`IvfAccelerator`
    (whose add, remove and serialize it keeps).

    One FAISS index does it all, so it saves and loads as one blob: ``IndexPreTransform`` (the
    LDA projection ``(x - mean) @ basis`` as a ``LinearTransform``) over ``IndexIVFPQFastScan``
    (L2, residuals to the list centroid, ``subquantizers`` codes of 4 bits). Its distances are
    coarse; the gallery index re-scores the candidates exactly from the float store."""

    def __init__(self, index: Any) -> None:
        super().__init__(index)  # faiss.IndexPreTransform over IndexIVFPQFastScan
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
        self._search_parameters: dict[int, Any] = {}  # nprobe a part -> SearchParametersIVF

    @classmethod
    def fit(
        cls,
        nlist: int,
        template_ids: np.ndarray,
        vectors: np.ndarray,
        *,
        within: np.ndarray,
        dims: int,
        coarse_dims: int,
        subquantizers: int,
        training_rows: int,
    ) -> IvfPqAccelerator:
        """Fit the projection (mean and total covariance of ``vectors``, ``within`` shipped),
        cluster the lists in its first ``coarse_dims`` directions and train the codebooks on
        all ``dims``, both on at most ``training_rows`` vectors; add every vector."""
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
        return cls(index)

    @property
    def nlist(self) -> int:
        return self._nlist

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
        lists = self._lists
        code_bytes = (int(lists.M) * int(lists.nbits) + 7) // 8
        dims = int(lists.d)
        return (
            int(self._index.ntotal) * (code_bytes + 8)
            + self.nlist * dims * 4
            + TEMPLATE_DIM * dims * 4
        )

    @classmethod
    def deserialize(cls, data: np.ndarray) -> IvfPqAccelerator:
        index = faiss.deserialize_index(data)
        if not isinstance(index, faiss.IndexPreTransform):
            raise ValueError("not an ivfpq accelerator")
        return cls(index)
