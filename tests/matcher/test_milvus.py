"""The "milvus" index kind on milvus-lite (a local .db directory per test), always checked
against exact search on the same data."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from tests.matcher.synthetic import population
from wajah.biometric.templates import MODEL_TAG
from wajah.matcher.accelerators.milvus import MilvusUnavailable, close_clients, milvus_client
from wajah.matcher.index import GalleryIndex, IndexConfig
from wajah.matcher.persistence import load_index, save_index

# 6,000 templates through milvus-lite's gRPC adapter: ~10 s a test on 2 loaded cores.
pytestmark = pytest.mark.slow

GALLERY_SIZE = 6_000
QUERIES = 200


@pytest.fixture(autouse=True)
def _close_clients() -> Iterator[None]:
    yield
    close_clients()


@pytest.fixture()
def config(tmp_path: Path) -> IndexConfig:
    return IndexConfig(
        "milvus",
        milvus_uri=str(tmp_path / "milvus.db"),
        milvus_collection="test_gallery",
        milvus_nlist=32,
        milvus_nprobe=16,
    )


@pytest.fixture(scope="module")
def data() -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(template ids, subject ids, vectors, mated queries of the first QUERIES subjects)."""
    people = population(GALLERY_SIZE // 2, seed=5)
    vectors = np.concatenate([people.samples(np.arange(GALLERY_SIZE // 2), seed=s) for s in (6, 7)])
    subjects = np.concatenate([np.arange(GALLERY_SIZE // 2)] * 2).astype(np.int64)
    template_ids = np.arange(GALLERY_SIZE, dtype=np.int64) * 3 + 11  # ids are not rows
    queries = people.samples(np.arange(QUERIES), seed=8)
    return template_ids, subjects, vectors, queries


def built(config: IndexConfig, data: tuple[np.ndarray, ...]) -> GalleryIndex:
    template_ids, subjects, vectors, _ = data
    index = GalleryIndex(config)
    index.add(template_ids, subjects, vectors)
    return index


def collection_ids(config: IndexConfig) -> set[int]:
    client: Any = milvus_client(config.milvus_uri)
    client.load_collection(config.milvus_collection)
    rows = client.query(config.milvus_collection, filter="template_id >= 0", output_fields=[])
    return {int(row["template_id"]) for row in rows}


def test_search_and_identify_agree_with_exact_search(
    config: IndexConfig, data: tuple[np.ndarray, ...]
) -> None:
    index = built(config, data)
    exact = built(IndexConfig("flat"), data)
    queries = data[3]
    scores, found = index.search(queries, 10)
    exact_scores, exact_found = exact.search(queries, 10)
    assert index.stats().kind == "milvus" and index.stats().approximate_active
    # candidates are re-scored from the index's float rows: rank 1 and its score are exact's
    # (to float32 rounding: a gathered matmul against the flat kind's sgemv)
    assert np.array_equal(found[:, 0], exact_found[:, 0])
    np.testing.assert_allclose(scores[:, 0], exact_scores[:, 0], rtol=0, atol=1e-6)
    recall = np.mean([len(set(a) & set(b)) / 10 for a, b in zip(found, exact_found, strict=True)])
    assert recall >= 0.95
    for query in queries[:20]:  # per-subject best scores
        answer, expected = index.identify(query, 5), exact.identify(query, 5)
        assert [(c.subject_id, c.template_id) for c in answer] == [
            (c.subject_id, c.template_id) for c in expected
        ]
        np.testing.assert_allclose(
            [c.score for c in answer], [c.score for c in expected], rtol=0, atol=1e-6
        )


def test_a_flat_collection_answers_exactly(
    config: IndexConfig, data: tuple[np.ndarray, ...]
) -> None:
    index = built(replace(config, milvus_index_type="FLAT"), data)
    exact = built(IndexConfig("flat"), data)
    assert not index.stats().approximate_active
    assert np.array_equal(index.search(data[3], 10)[1], exact.search(data[3], 10)[1])


def test_erasure_reaches_the_collection(config: IndexConfig, data: tuple[np.ndarray, ...]) -> None:
    index = built(config, data)
    queries = data[3]
    erased = index.templates_of_subject(0)
    assert erased.shape[0] == 2 and np.isin(index.search(queries[:1], 5)[1], erased).any()
    assert index.remove_subject(0) == 2
    assert not np.isin(index.search(queries[:1], 5)[1], erased).any()
    held = collection_ids(config)
    assert not held & set(erased.tolist())
    assert len(held) == GALLERY_SIZE - 2


def test_a_new_index_replaces_a_stale_collection_and_rebuild_refills_a_dropped_one(
    config: IndexConfig, data: tuple[np.ndarray, ...]
) -> None:
    template_ids, subjects, vectors, queries = data
    stale = GalleryIndex(config)
    stale.add(template_ids[:100] + 10**9, subjects[:100], vectors[:100])  # ids nobody holds
    index = built(config, data)  # its first write replaces the collection
    assert collection_ids(config) == set(template_ids.tolist())

    milvus_client(config.milvus_uri).drop_collection(config.milvus_collection)
    index.rebuild()  # wajah index rebuild: the collection created anew from the rows
    assert collection_ids(config) == set(template_ids.tolist())
    exact = built(IndexConfig("flat"), data)
    assert np.array_equal(index.search(queries, 1)[1], exact.search(queries, 1)[1])


def test_a_saved_index_reopens_on_its_collection_and_resyncs_one_out_of_step(
    config: IndexConfig, data: tuple[np.ndarray, ...], tmp_path: Path
) -> None:
    template_ids, _, _, queries = data
    index = built(config, data)
    path = tmp_path / "gallery.widx"
    save_index(index, path)
    # what is saved for the collection is its identity and last sync, not the vectors
    state = index.snapshot().accelerator.tobytes()
    assert b'"collection": "test_gallery"' in state and len(state) < 300
    expected = index.search(queries, 5)
    del index
    close_clients()

    reopened = load_index(path, MODEL_TAG, config)
    assert np.array_equal(reopened.search(queries, 5)[1], expected[1])
    # rows lost behind the index's back: on the next open the collection is rebuilt
    milvus_client(config.milvus_uri).delete(
        config.milvus_collection, ids=template_ids[:50].tolist()
    )
    again = load_index(path, MODEL_TAG, config)
    assert collection_ids(config) == set(template_ids.tolist())
    assert np.array_equal(again.search(queries, 5)[1], expected[1])


def test_candidates_the_index_does_not_hold_are_never_returned(
    config: IndexConfig, data: tuple[np.ndarray, ...]
) -> None:
    queries = data[3]
    index = built(config, data)
    # a row another writer left in the collection (the mate of query 0 under a foreign id)
    client: Any = milvus_client(config.milvus_uri)
    client.insert(config.milvus_collection, [{"template_id": 10**12, "vector": queries[0]}])
    client.flush(config.milvus_collection)
    _, found = index.search(queries[:1], 10)
    assert 10**12 not in found
    assert np.array_equal(found, built(IndexConfig("flat"), data).search(queries[:1], 10)[1])
    assert len(np.unique(found[0])) == 10


def test_a_milvus_config_is_checked_and_an_index_without_a_uri_fails_at_its_first_write(
    data: tuple[np.ndarray, ...],
) -> None:
    with pytest.raises(ValueError, match="Milvus index type"):
        IndexConfig("milvus", milvus_index_type="IVF_PQ")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="milvus_collection"):
        IndexConfig("milvus", milvus_collection="gallery; drop")
    index = GalleryIndex(IndexConfig("milvus"))  # contacts nothing until it writes
    with pytest.raises(MilvusUnavailable, match="WAJAH_MILVUS_URI"):
        index.add(data[0][:1], data[1][:1], data[2][:1])
    # the failed write was taken back: index and collection agree, the id can come again
    assert len(index) == 0 and not index.contains(int(data[0][0]))
    assert index.last_template_id == -1


def test_an_erasure_milvus_refuses_still_leaves_the_index_and_is_finished_on_reopen(
    config: IndexConfig, data: tuple[np.ndarray, ...], tmp_path: Path
) -> None:
    template_ids, _, _, queries = data
    index = built(config, data)
    erased = index.templates_of_subject(0)
    client: Any = milvus_client(config.milvus_uri)
    client.drop_collection(config.milvus_collection)  # Milvus now refuses the delete
    assert index.remove_subject(0) == 2
    # searches fall back to exact search over the index's rows while Milvus cannot answer
    exact = built(IndexConfig("flat"), data)
    exact.remove_subject(0)
    assert np.array_equal(index.search(queries, 5)[1], exact.search(queries, 5)[1])
    path = tmp_path / "gallery.widx"
    save_index(index, path)
    assert b'"rows": -1' in index.snapshot().accelerator.tobytes()
    close_clients()
    reopened = load_index(path, MODEL_TAG, config)  # the collection is rebuilt from the rows
    assert collection_ids(config) == set(template_ids.tolist()) - set(erased.tolist())
    assert not np.isin(reopened.search(queries[:1], 5)[1], erased).any()
