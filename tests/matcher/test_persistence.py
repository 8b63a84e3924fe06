from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from biometric.templates import MODEL_TAG
from matcher.errors import (
    IndexConfigMismatch,
    IndexCorrupt,
    IndexFileMissing,
    IndexModelMismatch,
)
from matcher.index import GalleryIndex, IndexConfig
from matcher.persistence import load_index, save_index
from tests.conftest import PROJECT_ROOT
from tests.matcher.synthetic import population

CONFIGS = {
    "flat": IndexConfig(),
    "hnsw": IndexConfig("hnsw", hnsw_m=8, hnsw_ef_construction=32),
    "ivf": IndexConfig("ivf", ivf_nlist=16, ivf_nprobe=4),
    "sq8": IndexConfig("sq8"),
}


def _index(config: IndexConfig, count: int = 3_000) -> tuple[GalleryIndex, np.ndarray]:
    people = population(count, seed=3)
    vectors = people.samples(np.arange(count), seed=4)
    index = GalleryIndex(config)
    index.add(np.arange(count) * 2 + 1, np.arange(count) // 3, vectors)
    index.remove_subject(4)  # removals (and HNSW tombstones) must survive the round trip
    return index, vectors


@pytest.fixture()
def saved_flat(tmp_path: Path) -> tuple[Path, GalleryIndex]:
    index, _ = _index(CONFIGS["flat"], 500)
    path = tmp_path / "gallery.idx"
    save_index(index, path)
    return path, index


@pytest.mark.parametrize("kind", sorted(CONFIGS))
def test_round_trip_gives_the_same_index(kind: str, tmp_path: Path) -> None:
    index, vectors = _index(CONFIGS[kind])
    path = tmp_path / "gallery.idx"
    save_index(index, path)
    runtime = IndexConfig(**{**CONFIGS[kind].to_dict(), "rerank_candidates": 50})
    loaded = load_index(path, MODEL_TAG, runtime)

    assert loaded.config == runtime  # runtime fields come from the caller
    assert len(loaded) == len(index)
    np.testing.assert_array_equal(loaded.template_ids(), index.template_ids())
    assert loaded.last_template_id == index.last_template_id
    # memory_bytes differs by spare capacity only
    assert replace(loaded.stats(), memory_bytes=0) == replace(index.stats(), memory_bytes=0)
    for position in (0, 100, 2_000):
        assert loaded.identify(vectors[position], 3) == index.identify(vectors[position], 3)
    expected_scores, expected_ids = index.search(vectors[:20], 5)
    scores, ids = loaded.search(vectors[:20], 5)
    np.testing.assert_array_equal(ids, expected_ids)
    np.testing.assert_array_equal(scores, expected_scores)
    assert not list(tmp_path.glob("*.tmp"))  # the temporary file was renamed, not left behind


def test_a_missing_file_is_reported(tmp_path: Path) -> None:
    with pytest.raises(IndexFileMissing):
        load_index(tmp_path / "nothing.idx", MODEL_TAG, IndexConfig())


def test_a_truncated_file_is_corrupt(saved_flat: tuple[Path, GalleryIndex]) -> None:
    path, _ = saved_flat
    data = path.read_bytes()
    for length in (0, 20, 100, len(data) // 2, len(data) - 1):
        path.write_bytes(data[:length])
        with pytest.raises(IndexCorrupt):
            load_index(path, MODEL_TAG, IndexConfig())


def test_a_flipped_byte_anywhere_is_corrupt(saved_flat: tuple[Path, GalleryIndex]) -> None:
    path, _ = saved_flat
    data = path.read_bytes()
    for offset in (0, 9, 13, 20, 60, 200, len(data) // 2, len(data) - 1):
        damaged = bytearray(data)
        damaged[offset] ^= 0x01
        path.write_bytes(bytes(damaged))
        with pytest.raises(IndexCorrupt):
            load_index(path, MODEL_TAG, IndexConfig())


def test_another_model_or_structure_is_refused(saved_flat: tuple[Path, GalleryIndex]) -> None:
    path, _ = saved_flat
    with pytest.raises(IndexModelMismatch) as raised:
        load_index(path, "arcface-r100", IndexConfig())
    assert (raised.value.expected, raised.value.found) == ("arcface-r100", MODEL_TAG)
    with pytest.raises(IndexConfigMismatch):
        load_index(path, MODEL_TAG, IndexConfig("sq8"))


_SAVER = """
import sys
import numpy as np
from matcher.index import GalleryIndex
from matcher.persistence import save_index
rng = np.random.default_rng(0)
vectors = rng.standard_normal((200_000, 128)).astype(np.float32)
vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
index = GalleryIndex()
index.add(np.arange(200_000), np.arange(200_000), vectors)
print("ready", flush=True)
while True:
    save_index(index, sys.argv[1])
"""


def test_a_process_killed_mid_save_leaves_the_previous_file_intact(
    saved_flat: tuple[Path, GalleryIndex],
) -> None:
    path, original = saved_flat
    before = path.read_bytes()
    saver = subprocess.Popen(
        [sys.executable, "-c", _SAVER, str(path)],
        cwd=PROJECT_ROOT,
        stdout=subprocess.PIPE,
        env={**os.environ, "PYTHONPATH": str(PROJECT_ROOT)},
    )
    try:
        assert saver.stdout is not None and saver.stdout.readline().strip() == b"ready"
        deadline = time.monotonic() + 30
        while not list(path.parent.glob(f".{path.name}.*.tmp")):  # a save is under way
            assert time.monotonic() < deadline, "the saver never started writing"
            time.sleep(0.001)
        saver.send_signal(signal.SIGKILL)
        saver.wait(timeout=10)
    finally:
        if saver.poll() is None:
            saver.kill()
            saver.wait()
    leftovers = list(path.parent.glob(f".{path.name}.*.tmp"))
    loaded = load_index(path, MODEL_TAG, IndexConfig())  # complete: old or fully new, never torn
    assert len(loaded) in (len(original), 200_000)
    if leftovers:  # killed while writing: the target was not touched by that save
        assert path.read_bytes() == before or len(loaded) == 200_000
    # and the next save still works next to the stale temporary file
    save_index(original, path)
    assert len(load_index(path, MODEL_TAG, IndexConfig())) == len(original)
