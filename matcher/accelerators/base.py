"""The interface every index kind implements, and the values it exchanges with the index.

An accelerator is the kind-specific part of a :class:`wajah.matcher.index.GalleryIndex`: which row
store holds the templates, and the optional search structure that proposes candidates, which
the index then re-scores exactly from its float store. The index keeps the rows, the id
columns and the template id -> row map, and calls the accelerator at each write and search:

* ``add`` after the index appended rows; ``remove`` before it moves rows into the holes its
  swap-with-last removal leaves, then ``move_row`` for each move and ``truncate``;
* ``needs_retrain`` after every write, and ``retrained`` when it says so (and at
  :meth:`~wajah.matcher.index.GalleryIndex.rebuild`);
* ``candidates`` for searches while ``searching`` is true; exact search over the store
  otherwise;
* ``state`` / ``from_state`` for snapshots (:mod:`wajah.matcher.persistence` writes the state's two
  arrays as the ``accelerator`` and ``hnsw_label_templates`` sections).

Accelerators do not lock: the index calls them under its readers-writer lock (``candidates``
under the read lock, everything else under the write lock).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import Any, ClassVar, Self

import faiss
import numpy as np

from wajah.matcher.config import IndexConfig, IndexKind
from wajah.matcher.storage import FloatStore, Sq8Store, TemplateRows


def _empty_bytes() -> np.ndarray:
    return np.zeros(0, dtype=np.uint8)


def _empty_labels() -> np.ndarray:
    return np.zeros(0, dtype=np.int64)


@dataclass(frozen=True)
class AcceleratorState:
    """What an accelerator saves: both arrays empty when it has nothing to save."""

    blob: np.ndarray = field(default_factory=_empty_bytes)  # (B,) uint8 faiss.serialize_index
    label_templates: np.ndarray = field(  # (L,) int64 graph label -> template id, -1 dead
        default_factory=_empty_labels
    )


@dataclass(frozen=True)
class GalleryRows:
    """The index's rows as an accelerator trains or builds from them."""

    template_ids: np.ndarray  # (N,) int64, row-aligned with the store
    store: FloatStore | Sq8Store

    def vectors(self) -> np.ndarray:
        """(N, 128) float32 templates (a view of the store's matrix)."""
        if not isinstance(self.store, FloatStore):
            raise TypeError("this gallery keeps no float templates")
        return self.store.matrix()


def serialized(index: Any) -> np.ndarray:
    """``faiss.serialize_index`` bytes as a (B,) uint8 array."""
    return np.asarray(faiss.serialize_index(index), dtype=np.uint8)


class Accelerator(ABC):
    """The kind-specific part of a gallery index: a row store and an optional search
    structure. Subclasses register under their ``kind`` in :mod:`wajah.matcher.accelerators`."""

    kind: ClassVar[IndexKind]

    @classmethod
    @abstractmethod
    def create(cls, config: IndexConfig, model_tag: str) -> Self:
        """The accelerator of a new, empty index."""

    @classmethod
    @abstractmethod
    def from_state(
        cls, config: IndexConfig, model_tag: str, state: AcceleratorState, gallery: GalleryRows
    ) -> Self:
        """The accelerator of a restored index: from ``state``, or built from ``gallery``
        when the state is empty."""

    @abstractmethod
    def state(self, template_of_row: np.ndarray) -> AcceleratorState:
        """What to save, given the index's template id column (N,) int64."""

    @staticmethod
    def new_store(rows: np.ndarray | None = None) -> FloatStore | Sq8Store:
        """The row store of this kind, empty or holding ``rows`` (as its ``export`` gave)."""
        if rows is None:
            return FloatStore()
        return FloatStore(np.ascontiguousarray(rows, dtype=np.float32))

    @property
    def searching(self) -> bool:
        """True when :meth:`candidates` answers; False: exact search over the store."""
        return False

    @property
    def approximate(self) -> bool:
        """True when answers may differ from exact search (``IndexStats.approximate_active``)."""
        return self.searching

    @property
    def tombstones(self) -> int:
        return 0

    @property
    def lists(self) -> int:
        """Inverted lists held (``IndexStats.ivf_lists``); 0 for kinds without lists."""
        return 0

    @abstractmethod
    def add(self, template_ids: np.ndarray, vectors: np.ndarray) -> None:
        """The index appended ``vectors`` (N, 128) float32 under ``template_ids`` (N,) int64
        in its next N rows."""

    @abstractmethod
    def remove(self, rows: np.ndarray, template_ids: np.ndarray) -> None:
        """The index is removing ``rows`` (unique) holding ``template_ids``; called before any
        row is moved."""

    def move_row(self, source: int, destination: int) -> None:  # noqa: B027 (optional hook)
        """The index moved row ``source`` (live) into ``destination`` (removed)."""

    def truncate(self, count: int) -> None:  # noqa: B027 (optional hook)
        """The index now holds ``count`` rows."""

    @abstractmethod
    def candidates(
        self, queries: np.ndarray, depth: int, config: IndexConfig, id_rows: TemplateRows
    ) -> np.ndarray:
        """Candidate rows (Q, F) int64, -1 padded, F >= ``depth``, for queries (Q, 128)
        float32; ``config`` gives the runtime fields, ``id_rows`` maps template ids to rows."""

    @abstractmethod
    def needs_retrain(self, count: int) -> bool:
        """True when, at ``count`` templates, the structure should be built anew."""

    @abstractmethod
    def retrained(self, gallery: GalleryRows) -> Accelerator:
        """The accelerator built anew for ``gallery`` (``self`` when there is nothing to do)."""

    @abstractmethod
    def memory_bytes(self) -> int:
        """Estimated bytes of the search structure (the store is counted by the index)."""
