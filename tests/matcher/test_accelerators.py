from __future__ import annotations

import pytest

from wajah.matcher.accelerators import ACCELERATORS, Accelerator, accelerator_class, register
from wajah.matcher.config import INDEX_KINDS, IndexConfig
from wajah.matcher.index import GalleryIndex


def test_every_configurable_kind_has_one_registered_accelerator() -> None:
    assert sorted(ACCELERATORS) == sorted(INDEX_KINDS)
    for kind in INDEX_KINDS:
        accelerator = accelerator_class(kind)
        assert issubclass(accelerator, Accelerator) and accelerator.kind == kind
        index = GalleryIndex(IndexConfig(kind))
        assert isinstance(index._accelerator, accelerator)


def test_a_kind_cannot_be_registered_twice_nor_looked_up_unknown() -> None:
    with pytest.raises(ValueError, match="registered twice"):
        register(accelerator_class("hnsw"))
    with pytest.raises(ValueError, match="milvus"):
        accelerator_class("milvus")
