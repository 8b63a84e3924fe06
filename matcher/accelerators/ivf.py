"""``"ivf"``: FAISS inverted lists (``IndexIVFFlat``) over the float templates, labelled with the
template ids, trained once the gallery holds ``IVF_MIN_POINTS_PER_LIST`` templates a list
(exact search before that)."""

from __future__ import annotations

import copy
from typing import Any, ClassVar, Self

import faiss
import numpy as np

from wajah.biometric.templates import TEMPLATE_DIM
from wajah.matcher.accelerators.base import Accelerator, AcceleratorState, GalleryRows, serialized
from wajah.matcher.config import IndexConfig, IndexKind, ivf_training_size
from wajah.matcher.storage import TemplateRows


class IvfAccelerator(Accelerator):
    """``IndexIVFFlat`` (inner product) labelled with the template ids themselves, so removal is
    FAISS's own ``remove_ids`` and results need no translation; untrained (``_index`` None)
    until the gallery is large enough for its lists."""

    kind: ClassVar[IndexKind] = "ivf"

    def __init__(self, config: IndexConfig, model_tag: str) -> None:
        self._nlist_asked = config.ivf_nlist  # None: automatic at each training
        self._index: Any = None  # the trained faiss index, None while untrained

    @classmethod
    def create(cls, config: IndexConfig, model_tag: str) -> Self:
        return cls(config, model_tag)

    @classmethod
    def from_state(
        cls, config: IndexConfig, model_tag: str, state: AcceleratorState, gallery: GalleryRows
    ) -> Self:
        accelerator = cls(config, model_tag)
        if state.blob.size:
            accelerator._attach(faiss.deserialize_index(state.blob))
            return accelerator
        return accelerator.retrained(gallery)

    def _attach(self, index: Any) -> None:
        self._index = index

    def state(self, template_of_row: np.ndarray) -> AcceleratorState:
        if self._index is None:
            return AcceleratorState()
        return AcceleratorState(blob=serialized(self._index))

    @property
    def searching(self) -> bool:
        return self._index is not None

    @property
    def lists(self) -> int:
        return int(self._index.nlist) if self._index is not None else 0

    def add(self, template_ids: np.ndarray, vectors: np.ndarray) -> None:
        if self._index is not None:
            self._index.add_with_ids(vectors, template_ids)

    def remove(self, rows: np.ndarray, template_ids: np.ndarray) -> None:
        if self._index is not None:
            self._index.remove_ids(np.ascontiguousarray(template_ids, dtype=np.int64))

    def needs_retrain(self, count: int) -> bool:
        """Untrained lists are trained as soon as ``count`` templates are enough for them;
        trained "ivf" lists are kept (``rebuild`` retrains them for the current size)."""
        if self._index is not None:
            return False
        _, needed = ivf_training_size(self._nlist_asked, count, self.kind)
        return count >= needed

    def retrained(self, gallery: GalleryRows) -> Self:
        """Lists trained for the gallery's size, or untrained when it is too small for them."""
        count = int(gallery.template_ids.shape[0])
        lists, needed = ivf_training_size(self._nlist_asked, count, self.kind)
        fresh = self._empty_copy()
        if count >= needed:
            fresh._attach(self._train(lists, needed, gallery))
        return fresh

    def _empty_copy(self) -> Self:
        fresh = copy.copy(self)  # the same settings (and, for "ivfpq", the same space)
        fresh._index = None
        return fresh

    def _train(self, lists: int, needed: int, gallery: GalleryRows) -> Any:
        vectors = gallery.vectors()
        quantizer = faiss.IndexFlatIP(TEMPLATE_DIM)
        index = faiss.IndexIVFFlat(quantizer, TEMPLATE_DIM, lists, faiss.METRIC_INNER_PRODUCT)
        index.train(vectors)
        index.add_with_ids(vectors, gallery.template_ids.copy())
        return index

    def search(self, queries: np.ndarray, depth: int, nprobe: int) -> tuple[np.ndarray, np.ndarray]:
        """(scores (Q, depth) float32, template ids (Q, depth) int64, -1 padded)."""
        parameters = faiss.SearchParametersIVF()
        parameters.nprobe = min(nprobe, self.lists)
        scores, template_ids = self._index.search(queries, depth, params=parameters)
        return scores, np.asarray(template_ids, dtype=np.int64)

    def _nprobe(self, config: IndexConfig) -> int:
        return config.ivf_nprobe

    def candidates(
        self, queries: np.ndarray, depth: int, config: IndexConfig, id_rows: TemplateRows
    ) -> np.ndarray:
        _, found_ids = self.search(queries, depth, self._nprobe(config))
        return id_rows.rows(found_ids)  # -1 padding stays -1

    def memory_bytes(self) -> int:
        if self._index is None:
            return 0
        return int(self._index.ntotal) * (TEMPLATE_DIM * 4 + 8) + self.lists * TEMPLATE_DIM * 4
