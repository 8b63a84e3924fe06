"""``"hnsw"``: a FAISS HNSW graph over the float templates whose answers are rows of the index.

Measured at 1M real-fit templates (M 32, 2 cores; benchmarks/results/
hnsw-1m-20261126T144206Z.md): no efSearch meets p99 <= 2 ms with under 0.1 % of mates lost at
rank 1, which is why "ivfpq" is the kind for large galleries (see ``HNSW_EF_SEARCH``).
"""

from __future__ import annotations

from typing import Any, ClassVar, Self

import faiss
import numpy as np

from wajah.biometric.templates import TEMPLATE_DIM
from wajah.matcher.accelerators.base import Accelerator, AcceleratorState, GalleryRows, serialized
from wajah.matcher.config import HNSW_REBUILD_TOMBSTONE_FRACTION, IndexConfig, IndexKind
from wajah.matcher.storage import GrowableArray, TemplateRows


class HnswAccelerator(Accelerator):
    """``IndexHNSWFlat`` (inner product) whose answers are ROWS of the index's stores, so the
    index re-ranks them with one gather and no id lookups.

    Graph labels are FAISS's sequential ids. Two arrays tie them to rows: label -> row (-1 for
    a tombstone) and row -> label; the index reports every row move of its swap-with-last
    removal (:meth:`move_row`). FAISS cannot remove from an HNSW graph, so a removed template
    becomes a tombstone kept out of every search by a bitmap of live labels
    (``IDSelectorBitmap``); the index rebuilds the graph when tombstones grow
    (``HNSW_REBUILD_TOMBSTONE_FRACTION``). Saved files hold label -> template id (the index
    translates), so their format does not depend on row order."""

    kind: ClassVar[IndexKind] = "hnsw"

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
        self._m = m
        self._ef_construction = ef_construction
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
    def create(cls, config: IndexConfig, model_tag: str) -> Self:
        return cls(config.hnsw_m, config.hnsw_ef_construction)

    @classmethod
    def build(cls, m: int, ef_construction: int, vectors: np.ndarray) -> Self:
        """A graph over ``vectors`` (N, 128) float32, row i of the index labelled i."""
        accelerator = cls(m, ef_construction)
        accelerator._add_vectors(vectors)
        return accelerator

    @classmethod
    def from_state(
        cls, config: IndexConfig, model_tag: str, state: AcceleratorState, gallery: GalleryRows
    ) -> Self:
        if not state.blob.size:
            return cls.build(config.hnsw_m, config.hnsw_ef_construction, gallery.vectors())
        index: Any = faiss.deserialize_index(state.blob)
        return cls(
            index.hnsw.nb_neighbors(0) // 2,
            index.hnsw.efConstruction,
            index=index,
            label_rows=_rows_of_labels(state.label_templates, gallery.template_ids),
        )

    def state(self, template_of_row: np.ndarray) -> AcceleratorState:
        """The faiss bytes and label -> template id (labels,) int64 (-1 dead), given the index's
        template id column (rows,) int64."""
        label_rows = self._label_rows.view()
        label_templates = np.where(
            label_rows >= 0, template_of_row[np.maximum(label_rows, 0)], -1
        ).astype(np.int64)
        return AcceleratorState(blob=serialized(self._index), label_templates=label_templates)

    @property
    def searching(self) -> bool:
        return True

    @property
    def tombstones(self) -> int:
        return self._tombstones

    def _pack_live(self) -> np.ndarray:
        # (ceil(labels / 8),) uint8, bit i of byte i // 8 set when label i is live (faiss order)
        return np.packbits(self._label_rows.view() >= 0, bitorder="little")

    def add(self, template_ids: np.ndarray, vectors: np.ndarray) -> None:
        self._add_vectors(vectors)

    def _add_vectors(self, vectors: np.ndarray) -> None:
        """Add (N, 128) vectors stored in the next N rows of the index."""
        first_label = int(self._index.ntotal)
        first_row = len(self._row_labels)
        count = vectors.shape[0]
        self._index.add(vectors)
        self._label_rows.append(np.arange(first_row, first_row + count, dtype=np.int64))
        self._row_labels.append(np.arange(first_label, first_label + count, dtype=np.int64))
        if self._tombstones:
            self._live_bitmap = self._pack_live()

    def remove(self, rows: np.ndarray, template_ids: np.ndarray) -> None:
        """Tombstone the labels of ``rows`` (unique), before the index moves rows into them."""
        labels = self._row_labels.view()[rows]
        self._label_rows.view()[labels] = -1
        self._tombstones += int(labels.shape[0])
        self._live_bitmap = self._pack_live()

    def move_row(self, source: int, destination: int) -> None:
        label = int(self._row_labels.view()[source])
        self._row_labels.view()[destination] = label
        self._label_rows.view()[label] = destination

    def truncate(self, count: int) -> None:
        self._row_labels.truncate(count)

    def needs_retrain(self, count: int) -> bool:
        """Filtered HNSW search still visits dead nodes, so latency and recall degrade with
        their share: rebuild once they pass ``HNSW_REBUILD_TOMBSTONE_FRACTION`` of the live."""
        return self._tombstones > HNSW_REBUILD_TOMBSTONE_FRACTION * count

    def retrained(self, gallery: GalleryRows) -> Self:
        return self.build(self._m, self._ef_construction, gallery.vectors())

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

    def candidates(
        self, queries: np.ndarray, depth: int, config: IndexConfig, id_rows: TemplateRows
    ) -> np.ndarray:
        _, rows = self.search(queries, depth, config.hnsw_ef_search)
        return np.asarray(rows, dtype=np.int64)

    def memory_bytes(self) -> int:
        count = int(self._index.ntotal)
        # vectors + level-0 links (2M int32) + the two label maps; upper levels add ~1/M more.
        links = 2 * int(self._index.hnsw.nb_neighbors(0)) if count else 0
        return count * (TEMPLATE_DIM * 4 + links * 4 + 8 + 8) + self._row_labels.memory_bytes()


def _rows_of_labels(label_templates: np.ndarray, template_ids: np.ndarray) -> np.ndarray:
    """label -> row (L,) int64 (-1 dead) from a saved label -> template id map (L,) int64 and
    the row-aligned template ids (N,) int64 (unique); vectorised with one sort."""
    order = np.argsort(template_ids, kind="stable")
    sorted_ids = template_ids[order]
    live = label_templates >= 0
    if int(np.count_nonzero(live)) != template_ids.shape[0]:
        raise ValueError("HNSW label map and snapshot differ in live templates")
    position = np.searchsorted(sorted_ids, label_templates[live])
    position = np.minimum(position, max(sorted_ids.shape[0] - 1, 0))
    if live.any() and not np.array_equal(sorted_ids[position], label_templates[live]):
        raise ValueError("HNSW label map names templates the snapshot does not hold")
    rows = np.full(label_templates.shape[0], -1, dtype=np.int64)
    rows[live] = order[position]
    return rows
