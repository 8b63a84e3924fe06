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

from wajah.biometric.templates import TEMPLATE_DIM
from wajah.matcher.config import (
    DENSE_ID_SLACK,
    DICT_BYTES_PER_ENTRY,
    EXACT_BATCH_MIN_QUERIES,
    SQ8_VALUE_RANGE,
)

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


class TemplateRows:
    """Template id -> row of the gallery index.

    Template ids come from the database's sequence, so they are dense: an int64 array indexed
    by id (-1 = absent) maps a search's 100 candidates in microseconds, where a dict took
    ~125 us at 1M templates (a cache miss each) and 106 bytes an entry. An id far beyond the
    count (``DENSE_ID_SLACK``) turns the map into a dict for good, so one stray large id cannot
    allocate gigabytes."""

    def __init__(self) -> None:
        self._dense: np.ndarray | None = np.full(_INITIAL_CAPACITY, -1, dtype=np.int64)
        self._sparse: dict[int, int] = {}  # used once _dense is None
        self._count = 0

    def __len__(self) -> int:
        return self._count

    def memory_bytes(self) -> int:
        if self._dense is not None:
            return int(self._dense.nbytes)
        return DICT_BYTES_PER_ENTRY * self._count

    def contains(self, template_id: int) -> bool:
        return bool(self.held(np.asarray([template_id], dtype=np.int64))[0])

    def held(self, template_ids: np.ndarray) -> np.ndarray:
        """(N,) bool: which of the ids (N,) int64 are mapped."""
        return self.rows(template_ids) >= 0

    def rows(self, template_ids: np.ndarray) -> np.ndarray:
        """Rows (same shape) int64 of the ids; -1 for an id not held (and for -1 itself)."""
        ids = np.asarray(template_ids, dtype=np.int64)
        if self._dense is not None:
            inside = (ids >= 0) & (ids < self._dense.shape[0])
            if inside.all():  # the common case (a full candidate list): one gather
                return self._dense[ids]
            return np.where(inside, self._dense[np.where(inside, ids, 0)], -1)
        flat = ids.reshape(-1).tolist()
        get = self._sparse.get
        return np.fromiter((get(i, -1) for i in flat), dtype=np.int64, count=len(flat)).reshape(
            ids.shape
        )

    def assign(self, template_ids: np.ndarray, rows: np.ndarray) -> None:
        """Map ids (N,) int64 >= 0 to rows (N,) int64; new ids add to the count."""
        ids = np.asarray(template_ids, dtype=np.int64)
        if ids.size == 0:
            return
        fresh = int(np.count_nonzero(~self.held(ids)))
        highest = int(ids.max())
        if self._dense is not None and highest >= self._dense.shape[0]:
            if highest > DENSE_ID_SLACK * (self._count + fresh) + _INITIAL_CAPACITY:
                self._to_sparse()
            else:
                grown = np.full(max(highest + 1, 2 * self._dense.shape[0]), -1, dtype=np.int64)
                grown[: self._dense.shape[0]] = self._dense
                self._dense = grown
        if self._dense is not None:
            self._dense[ids] = rows
        else:
            self._sparse.update(zip(ids.tolist(), np.asarray(rows).tolist(), strict=True))
        self._count += fresh

    def discard(self, template_ids: np.ndarray) -> None:
        """Forget the ids (N,) int64 (held ones; others are ignored)."""
        ids = np.unique(np.asarray(template_ids, dtype=np.int64))
        held = ids[self.held(ids)]
        if self._dense is not None:
            self._dense[held] = -1
        else:
            for template_id in held.tolist():
                del self._sparse[template_id]
        self._count -= int(held.shape[0])

    def _to_sparse(self) -> None:
        assert self._dense is not None
        ids = np.flatnonzero(self._dense >= 0)
        self._sparse = dict(zip(ids.tolist(), self._dense[ids].tolist(), strict=True))
        self._dense = None


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
