"""Row stores of the gallery index: the authoritative copy of the templates, row-aligned with the
index's id columns.

* :class:`FloatStore` keeps a contiguous ``(capacity, 128) float32`` matrix with amortised
  capacity doubling. A single query is one BLAS sgemv over the matrix (bandwidth-bound) plus a
  top-k selection; a batch of ``EXACT_BATCH_MIN_QUERIES`` or more goes to FAISS's BLAS sgemm
  path (``faiss.knn``).
* :class:`Sq8Store` keeps only 8-bit scalar-quantised codes inside a FAISS
  ``IndexScalarQuantizer`` (``QT_8bit_uniform``, fixed range [-1, 1]) and searches them
  exhaustively; rows are decoded on demand.

Removal is by moving the last row into the hole (``move_row``) and truncating, so that rows stay
dense; the caller keeps its id maps consistent. Neither store locks: :class:`GalleryIndex` does.
"""

from __future__ import annotations

import threading
from typing import Any, Protocol

import faiss
import numpy as np

from biometric.templates import TEMPLATE_DIM
from matcher.config import EXACT_BATCH_MIN_QUERIES, SQ8_VALUE_RANGE

_INITIAL_CAPACITY = 1024

# faiss.knn takes its BLAS-or-not decision from a process-wide variable
# (``distance_compute_blas_threshold``, 128000 queries by default in faiss 1.15, i.e. never for
# our batch sizes). It is lowered only for the duration of one batch call, under this lock; a
# concurrent FAISS search elsewhere in the process may see the lowered value, which changes its
# speed, never its results.
_BLAS_LOCK = threading.Lock()


def top_k(scores: np.ndarray, k: int) -> np.ndarray:
    """Indices of the ``k`` highest of ``scores`` (N,) float32, best first; ties by lower index.

    Faster than a plain ``argpartition`` over all N (3.5 ms at 1M): a 1-in-64 sample gives a
    value that at least ``k`` scores are very likely to exceed; one vectorised comparison keeps
    the few candidates above it. Exact whatever the sample says: if fewer than ``k`` pass, the
    full partition runs.
    """
    count = scores.shape[0]
    k = min(k, count)
    if k <= 0:
        return np.zeros(0, dtype=np.int64)
    candidates: np.ndarray | None = None
    if count >= 65536:
        sample = scores[::64]
        rank = min(sample.shape[0], k // 64 + 16)
        cutoff = np.partition(sample, -rank)[-rank]
        above = np.flatnonzero(scores >= cutoff)
        if above.shape[0] >= k:
            candidates = above
    if candidates is None:
        candidates = np.arange(count, dtype=np.int64)
    candidate_scores = scores[candidates]  # candidates are ascending indices
    if k < candidates.shape[0]:
        kth_score = np.partition(candidate_scores, -k)[-k]
        above = candidate_scores > kth_score
        tied = np.flatnonzero(candidate_scores == kth_score)[: k - int(above.sum())]
        keep = np.concatenate([np.flatnonzero(above), tied])
        candidates, candidate_scores = candidates[keep], candidate_scores[keep]
    order = np.lexsort((candidates, -candidate_scores))
    return np.asarray(candidates[order], dtype=np.int64)


def _empty_result(queries: int, k: int) -> tuple[np.ndarray, np.ndarray]:
    scores = np.full((queries, k), -np.inf, dtype=np.float32)  # (Q, k) float32
    rows = np.full((queries, k), -1, dtype=np.int64)  # (Q, k) int64, -1 = no result
    return scores, rows


class RowStore(Protocol):
    @property
    def count(self) -> int: ...

    def append(self, vectors: np.ndarray) -> None: ...

    def move_row(self, source: int, destination: int) -> None: ...

    def truncate(self, count: int) -> None: ...

    def rows(self, rows: np.ndarray) -> np.ndarray: ...

    def search(self, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]: ...

    def memory_bytes(self) -> int: ...

    def export(self) -> np.ndarray: ...


class GrowableArray:
    """A 1-D numpy array with amortised capacity doubling."""

    def __init__(self, dtype: type[np.generic], values: np.ndarray | None = None) -> None:
        initial = values if values is not None else np.zeros(0, dtype=dtype)
        self._data = np.zeros(max(_INITIAL_CAPACITY, initial.shape[0]), dtype=dtype)
        self._data[: initial.shape[0]] = initial
        self._count = int(initial.shape[0])

    def __len__(self) -> int:
        return self._count

    def view(self) -> np.ndarray:
        return self._data[: self._count]

    def append(self, values: np.ndarray) -> None:
        needed = self._count + values.shape[0]
        if needed > self._data.shape[0]:
            grown = np.zeros(max(needed, 2 * self._data.shape[0]), dtype=self._data.dtype)
            grown[: self._count] = self._data[: self._count]
            self._data = grown
        self._data[self._count : needed] = values
        self._count = needed

    def truncate(self, count: int) -> None:
        self._count = count

    def memory_bytes(self) -> int:
        return int(self._data.nbytes)


class FloatStore:
    """Exact float32 templates in one contiguous matrix.

    Measured at 1M templates (2 cores, 21 GB/s: faiss ``fvec_norms_L2sqr`` reads the 512 MB in
    25.4 ms, the bandwidth floor):

    ===========================  ==============  =================================
    call shape                   this store      faiss.IndexFlatIP (default)
    ===========================  ==============  =================================
    1 query, k = 50              27.6 ms (1.09x)  58.6 ms; 60.4 ms with BLAS forced
    64 queries, k = 50           182 ms (faiss.knn, BLAS)  1597 ms; 188 ms with BLAS
    ===========================  ==============  =================================

    numpy ``matrix @ query`` alone is 26.5 ms; the top-k selection adds ~1 ms (``top_k``).
    """

    def __init__(self, vectors: np.ndarray | None = None) -> None:
        initial = vectors if vectors is not None else np.zeros((0, TEMPLATE_DIM), np.float32)
        capacity = max(_INITIAL_CAPACITY, initial.shape[0])
        self._matrix = np.zeros((capacity, TEMPLATE_DIM), dtype=np.float32)  # (capacity, 128)
        self._matrix[: initial.shape[0]] = initial
        self._count = int(initial.shape[0])

    @property
    def count(self) -> int:
        return self._count

    def matrix(self) -> np.ndarray:
        """The live rows, (count, 128) float32, a view: valid while the caller holds a lock."""
        return self._matrix[: self._count]

    def append(self, vectors: np.ndarray) -> None:
        needed = self._count + vectors.shape[0]
        if needed > self._matrix.shape[0]:
            capacity = max(needed, 2 * self._matrix.shape[0])
            grown = np.zeros((capacity, TEMPLATE_DIM), dtype=np.float32)
            grown[: self._count] = self._matrix[: self._count]
            self._matrix = grown
        self._matrix[self._count : needed] = vectors
        self._count = needed

    def move_row(self, source: int, destination: int) -> None:
        self._matrix[destination] = self._matrix[source]

    def truncate(self, count: int) -> None:
        self._count = count

    def rows(self, rows: np.ndarray) -> np.ndarray:
        return np.asarray(self._matrix[rows], dtype=np.float32)

    def scores(self, query: np.ndarray) -> np.ndarray:
        """(count,) float32 inner products with one (128,) query: a single sgemv."""
        return np.asarray(self.matrix() @ query, dtype=np.float32)

    def search(self, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        scores, rows = _empty_result(queries.shape[0], k)
        depth = min(k, self._count)
        if depth == 0:
            return scores, rows
        if queries.shape[0] < EXACT_BATCH_MIN_QUERIES:
            for position, query in enumerate(queries):
                row_scores = self.scores(query)
                best = top_k(row_scores, depth)
                rows[position, :depth] = best
                scores[position, :depth] = row_scores[best]
            return scores, rows
        with _BLAS_LOCK:
            previous = faiss.cvar.distance_compute_blas_threshold
            faiss.cvar.distance_compute_blas_threshold = 1
            try:
                found_scores, found_rows = faiss.knn(
                    queries, self.matrix(), depth, metric=faiss.METRIC_INNER_PRODUCT
                )
            finally:
                faiss.cvar.distance_compute_blas_threshold = previous
        scores[:, :depth] = found_scores
        rows[:, :depth] = found_rows
        return scores, rows

    def memory_bytes(self) -> int:
        return int(self._matrix.nbytes)

    def export(self) -> np.ndarray:
        return self.matrix().copy()


class Sq8Store:
    """8-bit codes only (128 bytes a template), searched exhaustively by FAISS.

    ``QT_8bit_uniform`` with the range fixed to [-1, 1] (see ``SQ8_VALUE_RANGE``): no training,
    no clipping. Scores are inner products with the decoded vectors; there is no float copy to
    re-check them against, and re-scoring with the decoded vectors would give the same numbers,
    so they are returned as they are (error std ~0.0023, measured in the tests).
    Measured at 1M: 23 ms for one query (it reads 128 MB of codes, decoding is the cost).
    """

    def __init__(self, codes: np.ndarray | None = None) -> None:
        self._index: Any = faiss.IndexScalarQuantizer(
            TEMPLATE_DIM, faiss.ScalarQuantizer.QT_8bit_uniform, faiss.METRIC_INNER_PRODUCT
        )
        low, high = SQ8_VALUE_RANGE
        faiss.copy_array_to_vector(np.array([low, high - low], np.float32), self._index.sq.trained)
        self._index.is_trained = True
        if codes is not None and codes.shape[0]:
            self._index.add_sa_codes(np.ascontiguousarray(codes, dtype=np.uint8))

    @property
    def count(self) -> int:
        return int(self._index.ntotal)

    def _codes(self) -> np.ndarray:
        """The live codes, (count, 128) uint8, a writable view of FAISS's memory."""
        count = self.count
        if count == 0:
            return np.zeros((0, TEMPLATE_DIM), dtype=np.uint8)
        flat = faiss.rev_swig_ptr(self._index.codes.data(), count * TEMPLATE_DIM)
        return np.asarray(flat).reshape(count, TEMPLATE_DIM)

    def append(self, vectors: np.ndarray) -> None:
        self._index.add(np.ascontiguousarray(vectors, dtype=np.float32))

    def move_row(self, source: int, destination: int) -> None:
        codes = self._codes()
        codes[destination] = codes[source]

    def truncate(self, count: int) -> None:
        self._index.codes.resize(count * TEMPLATE_DIM)
        self._index.ntotal = count

    def rows(self, rows: np.ndarray) -> np.ndarray:
        selected = np.ascontiguousarray(self._codes()[rows])
        if selected.shape[0] == 0:
            return np.zeros((0, TEMPLATE_DIM), dtype=np.float32)
        return np.asarray(self._index.sa_decode(selected), dtype=np.float32)

    def search(self, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        scores, rows = _empty_result(queries.shape[0], k)
        depth = min(k, self.count)
        if depth == 0:
            return scores, rows
        found_scores, found_rows = self._index.search(queries, depth)
        scores[:, :depth] = found_scores
        rows[:, :depth] = found_rows
        return scores, rows

    def memory_bytes(self) -> int:
        return int(self._index.codes.size())

    def export(self) -> np.ndarray:
        return self._codes().copy()
