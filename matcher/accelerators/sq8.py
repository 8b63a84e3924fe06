"""``"sq8"``: exhaustive search over 8-bit scalar-quantised codes (128 bytes a template) in a
:class:`wajah.matcher.storage.Sq8Store`; no float copy is kept, so there is nothing to re-score from
and the codes' scores are the answer (error std ~0.0023, ``SQ8_VALUE_RANGE``)."""

from __future__ import annotations

from typing import ClassVar

import numpy as np

from wajah.matcher.accelerators.flat import ExactSearch
from wajah.matcher.config import IndexKind
from wajah.matcher.storage import FloatStore, Sq8Store


class Sq8Search(ExactSearch):
    """Exact search over approximate codes: the store is the whole of it."""

    kind: ClassVar[IndexKind] = "sq8"

    @staticmethod
    def new_store(rows: np.ndarray | None = None) -> FloatStore | Sq8Store:
        return Sq8Store() if rows is None else Sq8Store(rows)

    @property
    def approximate(self) -> bool:
        return True
