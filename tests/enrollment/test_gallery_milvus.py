"""GalleryKeeper on the "milvus" kind (milvus-lite): the collection is rebuilt from the
database, survives a reopen through the index file, and forgets erasures."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from tests.enrollment.test_gallery import assert_matches_database, enrol, index_path, store
from wajah.api.runtime import index_config
from wajah.api.settings import Settings
from wajah.biometric.templates import MODEL_TAG
from wajah.enrollment.gallery import GalleryKeeper
from wajah.enrollment.store import RecordStore
from wajah.matcher.accelerators.milvus import close_clients, milvus_client
from wajah.matcher.index import IndexConfig

__all__ = ["index_path", "store"]  # fixtures shared with test_gallery


@pytest.fixture(autouse=True)
def _close_clients() -> Iterator[None]:
    yield
    close_clients()


def collection_ids(config: IndexConfig) -> set[int]:
    client: Any = milvus_client(config.milvus_uri)
    rows = client.query(config.milvus_collection, filter="template_id >= 0", output_fields=[])
    return {int(row["template_id"]) for row in rows}


def test_a_milvus_gallery_is_built_from_the_database_reopens_and_forgets_erasures(
    store: RecordStore, index_path: Path, tmp_path: Path
) -> None:
    config = index_config(Settings(data_dir=tmp_path, vector_backend="milvus"))
    assert config.kind == "milvus" and config.milvus_uri == str(tmp_path / "index" / "milvus.db")

    def milvus_keeper() -> GalleryKeeper:
        return GalleryKeeper(store, index_path, config, MODEL_TAG, cipher=store.cipher)

    templates = enrol(store, people=30, per_person=2, seed=4)
    first = milvus_keeper()
    assert not first.open().loaded_from_file  # no file yet: rebuilt from the database
    database_ids, _ = store.template_owners(MODEL_TAG)
    assert collection_ids(config) == set(database_ids.tolist())
    erased_subject = sorted(templates)[3]
    erased = np.frombuffer(templates[erased_subject][0], dtype="<f4")
    assert first.identify(erased, 1)[0].subject_id == erased_subject
    close_clients()

    second = milvus_keeper()
    report = second.open()
    assert report.loaded_from_file, report.rebuilt_reason
    assert_matches_database(second, store)
    erased_ids = second.templates_of_subject(erased_subject)
    store.delete_subject(erased_subject)
    second.remove_subject(erased_subject)
    second.note_erasure()
    assert all(c.subject_id != erased_subject for c in second.identify(erased, 5))
    assert not collection_ids(config) & set(erased_ids.tolist())  # gone from Milvus too

    assert second.rebuild() == len(database_ids) - 2  # wajah index rebuild
    assert collection_ids(config) == set(store.template_owners(MODEL_TAG)[0].tolist())
    close_clients()
    third = milvus_keeper()
    assert third.open().loaded_from_file
    assert_matches_database(third, store)


def test_the_backend_settings_choose_the_kind() -> None:
    assert index_config(Settings(index_kind="ivf")).kind == "ivf"
    assert index_config(Settings(vector_backend="faiss", index_kind="ivfpq")).kind == "ivfpq"
    remote = index_config(
        Settings(index_kind="milvus", milvus_uri="http://milvus:19530", milvus_collection="g2")
    )
    assert (remote.milvus_uri, remote.milvus_collection) == ("http://milvus:19530", "g2")
    with pytest.raises(ValueError, match="contradicts"):
        index_config(Settings(vector_backend="faiss", index_kind="milvus"))
