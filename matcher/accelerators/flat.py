"""``"flat"``: exact search over the float32 store, no search structure (512 bytes a
template). The store's single-query sgemv and batched BLAS paths are measured in
:mod:`wajah.matcher.index` and :mod:`wajah.matcher.storage`."""

from __future__ import annotations

from typing import ClassVar, Self

import numpy as np

from wajah.matcher.accelerators.base import Accelerator, AcceleratorState, GalleryRows
from wajah.matcher.config import IndexConfig, IndexKind
from wajah.matcher.storage import TemplateRows


class ExactSearch(Accelerator):
    """No structure: every search is exact over the store."""

    kind: ClassVar[IndexKind] = "flat"

    @classmethod
    def create(cls, config: IndexConfig, model_tag: str) -> Self:
        return cls()

    @classmethod
    def from_state(
        cls, config: IndexConfig, model_tag: str, state: AcceleratorState, gallery: GalleryRows
    ) -> Self:
        return cls()

    def state(self, template_of_row: np.ndarray) -> AcceleratorState:
        return AcceleratorState()

    def add(self, template_ids: np.ndarray, vectors: np.ndarray) -> None:
        pass

    def remove(self, rows: np.ndarray, template_ids: np.ndarray) -> None:
        pass

    def candidates(
        self, queries: np.ndarray, depth: int, config: IndexConfig, id_rows: TemplateRows
    ) -> np.ndarray:
        raise RuntimeError("exact search has no candidates: the index searches its store")

    def needs_retrain(self, count: int) -> bool:
        return False

    def retrained(self, gallery: GalleryRows) -> Self:
        return self

    def memory_bytes(self) -> int:
        return 0
