"""Approximate search structures over the float templates of a gallery: FAISS HNSW and IVF.

They are accelerators, not the store: the authoritative vectors live in
:class:`matcher.storage.FloatStore`, and :class:`matcher.index.GalleryIndex` re-scores their
candidates exactly from it. Neither class locks; the index does.
"""

from __future__ import annotations

from typing import Any

import faiss
import numpy as np

from biometric.templates import TEMPLATE_DIM
from matcher.storage import GrowableArray


def _as_bytes_array(index: Any) -> np.ndarray:
    return np.asarray(faiss.serialize_index(index), dtype=np.uint8)  # (bytes,) uint8


class HnswAccelerator:
    """``IndexHNSWFlat`` (inner product). FAISS cannot remove from an HNSW graph, so a removed
    template becomes a tombstone: its graph label maps to template id -1 and a bitmap of live
    labels (``IDSelectorBitmap``) keeps it out of every search. The index rebuilds the graph
    when tombstones grow (``HNSW_REBUILD_TOMBSTONE_FRACTION``)."""

    def __init__(
        self,
        m: int,
        ef_construction: int,
        *,
        index: Any = None,
        label_templates: np.ndarray | None = None,
    ) -> None:
        if index is None:
            index = faiss.IndexHNSWFlat(TEMPLATE_DIM, m, faiss.METRIC_INNER_PRODUCT)
            index.hnsw.efConstruction = ef_construction
        self._index: Any = index  # faiss.IndexHNSWFlat (the stubs lack its attributes)
        # graph label -> template id, -1 for a tombstone: (labels,) int64
        self._label_templates = GrowableArray(np.int64, label_templates)
        if len(self._label_templates) != index.ntotal:
            raise ValueError("HNSW label map does not match the graph")
        self._tombstones = int(np.count_nonzero(self._label_templates.view() < 0))
        self._live_bitmap = self._pack_live()

    @classmethod
    def build(
        cls, m: int, ef_construction: int, template_ids: np.ndarray, vectors: np.ndarray
    ) -> HnswAccelerator:
        accelerator = cls(m, ef_construction)
        accelerator.add(template_ids, vectors)
        return accelerator

    @property
    def tombstones(self) -> int:
        return self._tombstones

    def _pack_live(self) -> np.ndarray:
        # (ceil(labels / 8),) uint8, bit i of byte i // 8 set when label i is live (faiss order)
        return np.packbits(self._label_templates.view() >= 0, bitorder="little")

    def add(self, template_ids: np.ndarray, vectors: np.ndarray) -> None:
        self._index.add(vectors)
        self._label_templates.append(template_ids)
        if self._tombstones:
            self._live_bitmap = self._pack_live()

    def remove(self, template_ids: np.ndarray) -> None:
        labels = self._label_templates.view()
        dead = np.flatnonzero(np.isin(labels, template_ids) & (labels >= 0))
        labels[dead] = -1
        self._tombstones += int(dead.shape[0])
        self._live_bitmap = self._pack_live()

    def search(
        self, queries: np.ndarray, depth: int, ef_search: int
    ) -> tuple[np.ndarray, np.ndarray]:
        """(scores (Q, depth) float32, template ids (Q, depth) int64, -1 padded)."""
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
        labels_map = self._label_templates.view()
        template_ids = np.where(labels >= 0, labels_map[np.maximum(labels, 0)], -1)
        return scores, np.asarray(template_ids, dtype=np.int64)

    def memory_bytes(self) -> int:
        count = int(self._index.ntotal)
        # vectors + level-0 links (2M int32) + label map; upper levels add ~1/M more.
        links = 2 * int(self._index.hnsw.nb_neighbors(0)) if count else 0
        return count * (TEMPLATE_DIM * 4 + links * 4 + 8 + 8)

    def serialize(self) -> tuple[np.ndarray, np.ndarray]:
        """(faiss bytes (B,) uint8, label -> template id (labels,) int64)."""
        return _as_bytes_array(self._index), self._label_templates.view().copy()

    @classmethod
    def deserialize(cls, data: np.ndarray, label_templates: np.ndarray) -> HnswAccelerator:
        index: Any = faiss.deserialize_index(data)
        return cls(
            index.hnsw.nb_neighbors(0) // 2,
            index.hnsw.efConstruction,
            index=index,
            label_templates=label_templates,
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
