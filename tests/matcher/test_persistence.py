from __future__ import annotations

import hashlib
import json
import os
import signal
import struct
import subprocess
import sys
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from tests.conftest import PROJECT_ROOT
from tests.matcher.synthetic import population
from wajah.biometric.templates import MODEL_TAG
from wajah.matcher.errors import (
    IndexConfigMismatch,
    IndexCorrupt,
    IndexFileMissing,
    IndexModelMismatch,
)
from wajah.matcher.index import GalleryIndex, IndexConfig
from wajah.matcher.persistence import IndexNotSealed, load_index, save_index

CONFIGS = {
    "flat": IndexConfig(),
    "hnsw": IndexConfig("hnsw", hnsw_m=8, hnsw_ef_construction=32),
    "ivf": IndexConfig("ivf", ivf_nlist=16, ivf_nprobe=4),
    "ivfpq": IndexConfig("ivfpq", ivf_nlist=16, ivfpq_nprobe=4),
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
    index.reconfigure(runtime)  # compare answers under the same runtime settings
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
from wajah.matcher.index import GalleryIndex
from wajah.matcher.persistence import save_index
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


# -- sealed files ------------------------------------------------------------------------------


class Cipher:
    """AES-256-GCM, nonce first: what enrollment's RecordCipher does, without importing it."""

    def __init__(self, key: bytes | None = None) -> None:
        self._aead = AESGCM(key or AESGCM.generate_key(bit_length=256))
        self.plaintext_sizes: list[int] = []

    def encrypt(self, plaintext: bytes, associated: bytes) -> bytes:
        self.plaintext_sizes.append(len(plaintext))
        nonce = os.urandom(12)
        return nonce + self._aead.encrypt(nonce, plaintext, associated)

    def decrypt(self, ciphertext: bytes, associated: bytes) -> bytes:
        return self._aead.decrypt(ciphertext[:12], ciphertext[12:], associated)


SMALL_CHUNK = 64 * 1024  # many chunks for a few thousand templates


@dataclass
class ParsedFile:
    version: int
    header: dict[str, Any]
    chunks: list[bytes]  # ciphertexts, without their length frames

    @classmethod
    def read(cls, path: Path) -> ParsedFile:
        data = path.read_bytes()
        _, version, header_length, _ = struct.unpack_from("<8sII32s", data)
        header_end = 48 + header_length
        header = json.loads(data[48:header_end])
        chunks, position = [], header_end
        while position < len(data):
            (length,) = struct.unpack_from("<I", data, position)
            chunks.append(data[position + 4 : position + 4 + length])
            position += 4 + length
        return cls(version, header, chunks)

    def write(self, path: Path, *, keep_header_hash_of: bytes | None = None) -> None:
        header_bytes = json.dumps(self.header, sort_keys=True).encode("utf-8")
        header_hash = hashlib.sha256(keep_header_hash_of or header_bytes).digest()
        frames = b"".join(struct.pack("<I", len(chunk)) + chunk for chunk in self.chunks)
        prefix = struct.pack("<8sII32s", b"WAJAHIDX", self.version, len(header_bytes), header_hash)
        path.write_bytes(prefix + header_bytes + frames)


@pytest.fixture()
def sealed_flat(tmp_path: Path) -> tuple[Path, GalleryIndex, Cipher]:
    index, _ = _index(CONFIGS["flat"], 500)
    cipher = Cipher()
    path = tmp_path / "gallery.idx"
    save_index(index, path, cipher, chunk_bytes=SMALL_CHUNK)
    return path, index, cipher


@pytest.mark.parametrize("kind", sorted(CONFIGS))
def test_sealed_round_trip_gives_the_same_index(kind: str, tmp_path: Path) -> None:
    index, vectors = _index(CONFIGS[kind])
    cipher = Cipher()
    path = tmp_path / "gallery.idx"
    save_index(index, path, cipher, chunk_bytes=SMALL_CHUNK)
    loaded = load_index(path, MODEL_TAG, CONFIGS[kind], cipher)

    parsed = ParsedFile.read(path)
    assert parsed.version == 2 and parsed.header["sealed"] is True
    assert parsed.header["chunk_bytes"] == SMALL_CHUNK
    payload_bytes = parsed.header["payload_bytes"]
    assert parsed.header["chunk_count"] == len(parsed.chunks) == -(-payload_bytes // SMALL_CHUNK)
    assert len(parsed.chunks) > 5  # sq8 codes are a quarter of the float rows
    # every chunk was at most the chunk size, and they add up to the payload
    assert max(cipher.plaintext_sizes) == SMALL_CHUNK
    assert sum(cipher.plaintext_sizes) == payload_bytes

    assert len(loaded) == len(index)
    np.testing.assert_array_equal(loaded.template_ids(), index.template_ids())
    assert loaded.last_template_id == index.last_template_id
    assert replace(loaded.stats(), memory_bytes=0) == replace(index.stats(), memory_bytes=0)
    expected_scores, expected_ids = index.search(vectors[:20], 5)
    scores, ids = loaded.search(vectors[:20], 5)
    np.testing.assert_array_equal(ids, expected_ids)
    np.testing.assert_array_equal(scores, expected_scores)
    assert not list(tmp_path.glob("*.tmp"))


@pytest.mark.parametrize("kind", sorted(CONFIGS))
def test_a_sealed_file_holds_no_template_bytes(kind: str, tmp_path: Path) -> None:
    index, _ = _index(CONFIGS[kind], 1_000)
    rows = index.snapshot().rows  # float32 templates, or sq8 codes
    probes = [np.ascontiguousarray(rows[position]).tobytes() for position in (0, 500, 990)]
    plain, sealed = tmp_path / "plain.idx", tmp_path / "sealed.idx"
    save_index(index, plain)
    save_index(index, sealed, Cipher())
    assert all(probe in plain.read_bytes() for probe in probes)  # the scan can see them
    sealed_bytes = sealed.read_bytes()
    assert not any(probe in sealed_bytes for probe in probes)
    # not even a quarter of a template (32 float32 values) appears
    assert not any(probe[:128] in sealed_bytes for probe in probes)


def test_the_default_chunk_size_round_trips(tmp_path: Path) -> None:
    index, _ = _index(CONFIGS["hnsw"], 500)
    cipher = Cipher()
    save_index(index, tmp_path / "gallery.idx", cipher)
    assert len(cipher.plaintext_sizes) == 1  # < 16 MiB: one chunk
    loaded = load_index(tmp_path / "gallery.idx", MODEL_TAG, CONFIGS["hnsw"], cipher)
    np.testing.assert_array_equal(loaded.template_ids(), index.template_ids())


@pytest.mark.parametrize("count", [0, 1])
def test_an_empty_or_tiny_index_is_still_sealed(count: int, tmp_path: Path) -> None:
    index = GalleryIndex()
    if count:
        index.add(np.array([7]), np.array([3]), np.eye(1, 128, dtype=np.float32))
    cipher = Cipher()
    path = tmp_path / "gallery.idx"
    save_index(index, path, cipher, chunk_bytes=SMALL_CHUNK)
    assert len(ParsedFile.read(path).chunks) == 1  # the header is authenticated even so
    assert len(load_index(path, MODEL_TAG, IndexConfig(), cipher)) == count


def test_a_payload_of_exactly_whole_chunks(tmp_path: Path) -> None:
    index = GalleryIndex()
    index.add(np.arange(4), np.arange(4), np.eye(4, 128, dtype=np.float32))
    payload_bytes = 4 * 8 + 4 * 8 + 4 * 128 * 4  # template ids, subject ids, rows
    cipher = Cipher()
    path = tmp_path / "gallery.idx"
    save_index(index, path, cipher, chunk_bytes=payload_bytes // 4)
    assert cipher.plaintext_sizes == [payload_bytes // 4] * 4  # no trailing empty chunk
    assert len(load_index(path, MODEL_TAG, IndexConfig(), cipher)) == 4


def test_a_chunk_size_out_of_range_is_refused(tmp_path: Path) -> None:
    index, _ = _index(CONFIGS["flat"], 10)
    for chunk_bytes in (0, -1, 2**31):
        with pytest.raises(ValueError, match="chunk_bytes"):
            save_index(index, tmp_path / "gallery.idx", Cipher(), chunk_bytes=chunk_bytes)
    assert not list(tmp_path.iterdir())


def test_another_key_is_corrupt(sealed_flat: tuple[Path, GalleryIndex, Cipher]) -> None:
    path, _, _ = sealed_flat
    with pytest.raises(IndexCorrupt, match="failed authentication"):
        load_index(path, MODEL_TAG, IndexConfig(), Cipher())


def test_reordered_dropped_or_foreign_chunks_are_corrupt(
    sealed_flat: tuple[Path, GalleryIndex, Cipher], tmp_path: Path
) -> None:
    path, index, cipher = sealed_flat
    original = ParsedFile.read(path)
    assert len(original.chunks) >= 3
    load_index(path, MODEL_TAG, IndexConfig(), cipher)  # intact: loads

    swapped = ParsedFile.read(path)
    swapped.chunks[0], swapped.chunks[1] = swapped.chunks[1], swapped.chunks[0]
    swapped.write(path)
    with pytest.raises(IndexCorrupt, match="chunk 0 failed authentication"):
        load_index(path, MODEL_TAG, IndexConfig(), cipher)

    dropped = ParsedFile.read(path)
    dropped.chunks = original.chunks[:-1]
    dropped.write(path)
    with pytest.raises(IndexCorrupt, match="truncated"):
        load_index(path, MODEL_TAG, IndexConfig(), cipher)

    # the same index saved again under the same key: a chunk from that file does not fit here
    other_path = tmp_path / "other.idx"
    save_index(index, other_path, cipher, chunk_bytes=SMALL_CHUNK)
    foreign = ParsedFile.read(path)
    foreign.chunks = list(original.chunks)
    foreign.chunks[1] = ParsedFile.read(other_path).chunks[1]
    foreign.write(path)
    with pytest.raises(IndexCorrupt, match="chunk 1 failed authentication"):
        load_index(path, MODEL_TAG, IndexConfig(), cipher)


def test_a_rewritten_header_with_a_fresh_checksum_is_corrupt(
    sealed_flat: tuple[Path, GalleryIndex, Cipher],
) -> None:
    path, _, cipher = sealed_flat
    forged = ParsedFile.read(path)
    forged.header["last_template_id"] = 10**9  # would make a loader skip the replay
    forged.write(path)  # with a correct sha256 of the new header: only the seal catches it
    with pytest.raises(IndexCorrupt, match="failed authentication"):
        load_index(path, MODEL_TAG, IndexConfig(), cipher)


def test_a_truncated_or_flipped_sealed_file_is_corrupt(
    sealed_flat: tuple[Path, GalleryIndex, Cipher],
) -> None:
    path, _, cipher = sealed_flat
    data = path.read_bytes()
    for length in (0, 20, 100, len(data) // 2, len(data) - 1):
        path.write_bytes(data[:length])
        with pytest.raises(IndexCorrupt):
            load_index(path, MODEL_TAG, IndexConfig(), cipher)
    path.write_bytes(data + b"\x00")
    with pytest.raises(IndexCorrupt, match="after the last sealed chunk"):
        load_index(path, MODEL_TAG, IndexConfig(), cipher)
    for offset in (0, 9, 13, 20, 60, 200, len(data) // 2, len(data) - 1):
        damaged = bytearray(data)
        damaged[offset] ^= 0x01
        path.write_bytes(bytes(damaged))
        with pytest.raises(IndexCorrupt):
            load_index(path, MODEL_TAG, IndexConfig(), cipher)


def test_an_unsealed_file_is_refused_when_sealing_is_required(
    saved_flat: tuple[Path, GalleryIndex],
) -> None:
    path, index = saved_flat
    with pytest.raises(IndexNotSealed):
        load_index(path, MODEL_TAG, IndexConfig(), Cipher())
    assert len(load_index(path, MODEL_TAG, IndexConfig())) == len(index)  # fine without one


def test_a_sealed_file_without_a_cipher_is_corrupt(
    sealed_flat: tuple[Path, GalleryIndex, Cipher],
) -> None:
    path, _, _ = sealed_flat
    with pytest.raises(IndexCorrupt, match="no cipher"):
        load_index(path, MODEL_TAG, IndexConfig())


def test_a_version_1_file_loads_unsealed_only(saved_flat: tuple[Path, GalleryIndex]) -> None:
    path, index = saved_flat
    data = path.read_bytes()
    parsed = ParsedFile.read(path)
    assert parsed.header.pop("sealed") is False
    header_bytes = json.dumps(parsed.header, sort_keys=True).encode("utf-8")
    payload = data[48 + struct.unpack_from("<I", data, 12)[0] :]
    prefix = struct.pack(
        "<8sII32s", b"WAJAHIDX", 1, len(header_bytes), hashlib.sha256(header_bytes).digest()
    )
    path.write_bytes(prefix + header_bytes + payload)  # as format 1 wrote it
    assert len(load_index(path, MODEL_TAG, IndexConfig())) == len(index)
    with pytest.raises(IndexNotSealed):
        load_index(path, MODEL_TAG, IndexConfig(), Cipher())
