from __future__ import annotations

import hashlib
import json
import struct
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import cast

import numpy as np
import pytest
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from tests.matcher.synthetic import dlib_like_population
from wajah.biometric.templates import MODEL_TAG, Template, normalise
from wajah.enrollment.gallery import GalleryKeeper, rebuild_index
from wajah.enrollment.records import Capture, TemplateBatch
from wajah.enrollment.store import RecordStore, open_record_store
from wajah.matcher.config import automatic_nlist
from wajah.matcher.index import GalleryIndex, IndexConfig
from wajah.matcher.persistence import load_index, save_index

CHIP = np.zeros((150, 150, 3), dtype=np.uint8)


@pytest.fixture()
def store(tmp_path: Path, database_url: str) -> Iterator[RecordStore]:
    records = open_record_store(database_url, None, tmp_path / "keys" / "records.key")
    yield records
    records.dispose()


@pytest.fixture()
def index_path(tmp_path: Path) -> Path:
    return tmp_path / "index" / "gallery.widx"


def keeper(store: RecordStore, index_path: Path) -> GalleryKeeper:
    # the store's records cipher, as api.runtime.build_service passes it
    return GalleryKeeper(store, index_path, IndexConfig(), MODEL_TAG, cipher=store.cipher)


def add_template(store: RecordStore, subject_id: int, rng: np.random.Generator) -> np.ndarray:
    vector = normalise(rng.standard_normal(128))
    _, stored = store.add_sample(
        Capture(
            subject_id=subject_id,
            capture_source="camera",
            quality={},
            chip=CHIP,
            image_bytes=None,
            image_sha256=hashlib.sha256(vector.tobytes()).hexdigest(),
            station="test-desk",
            captured_at=None,
            template=Template(vector=vector),
        )
    )
    return stored.vector


def enrol(
    store: RecordStore, people: int, per_person: int, seed: int = 0
) -> dict[int, list[bytes]]:
    """Subjects with synthetic unit-vector templates: {subject id: [template <f4 bytes]}."""
    rng = np.random.default_rng(seed)
    templates: dict[int, list[bytes]] = {}
    for person in range(people):
        subject = store.create_subject(f"APP-{seed}-{person}", f"Person {person}")
        templates[subject.id] = [
            add_template(store, subject.id, rng).astype("<f4").tobytes() for _ in range(per_person)
        ]
    return templates


def file_header(path: Path) -> dict[str, object]:
    data = path.read_bytes()
    (header_length,) = struct.unpack_from("<I", data, 12)
    header: dict[str, object] = json.loads(data[48 : 48 + header_length])
    return header


def sealed_contents(store: RecordStore, index_path: Path) -> bytes:
    """What the index file holds once decrypted: its rows, as <f4 bytes."""
    loaded = load_index(index_path, MODEL_TAG, IndexConfig(), store.cipher)
    return loaded.snapshot().rows.astype("<f4").tobytes()


def assert_matches_database(index: GalleryKeeper | GalleryIndex, store: RecordStore) -> None:
    database_ids, database_owners = store.template_owners(MODEL_TAG)
    index_ids, index_owners = index.template_owners()
    order = np.argsort(index_ids)
    np.testing.assert_array_equal(index_ids[order], database_ids)
    np.testing.assert_array_equal(index_owners[order], database_owners)


def test_open_rebuilds_a_missing_file_and_saves_it_sealed(
    store: RecordStore, index_path: Path
) -> None:
    templates = enrol(store, people=10, per_person=3)
    report = keeper(store, index_path).open()
    assert not report.loaded_from_file
    assert report.rebuilt_reason is not None and "IndexFileMissing" in report.rebuilt_reason
    assert report.templates == 30

    header = file_header(index_path)
    assert header["sealed"] is True and header["count"] == 30
    on_disk = index_path.read_bytes()
    every_template = [row for rows in templates.values() for row in rows]
    assert not any(row in on_disk for row in every_template)
    assert not any(row[:64] in on_disk for row in every_template)
    # ... yet the file holds them all, under the records key
    contents = sealed_contents(store, index_path)
    assert all(row in contents for row in every_template)


def test_a_sealed_file_round_trips(store: RecordStore, index_path: Path) -> None:
    templates = enrol(store, people=8, per_person=2)
    first = keeper(store, index_path)
    first.open()
    probe = np.frombuffer(next(iter(templates.values()))[0], dtype="<f4")
    expected = first.identify(probe, 3)

    second = keeper(store, index_path)
    report = second.open()
    assert report.loaded_from_file, report.rebuilt_reason
    assert (report.added_on_replay, report.removed_on_replay) == (0, 0)
    assert report.templates == 16
    assert_matches_database(second, store)
    assert second.identify(probe, 3) == expected


def flip_bytes(path: Path) -> None:
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    path.write_bytes(bytes(data))


def truncate(path: Path) -> None:
    data = path.read_bytes()
    path.write_bytes(data[: len(data) * 2 // 3])


@pytest.mark.parametrize("damage", [flip_bytes, truncate], ids=["flipped", "truncated"])
def test_a_damaged_file_is_rebuilt(
    store: RecordStore, index_path: Path, damage: Callable[[Path], None]
) -> None:
    enrol(store, people=6, per_person=2)
    keeper(store, index_path).open()
    damage(index_path)
    rebuilt = keeper(store, index_path)
    report = rebuilt.open()
    assert not report.loaded_from_file
    assert report.rebuilt_reason is not None and "IndexCorrupt" in report.rebuilt_reason
    assert_matches_database(rebuilt, store)
    assert keeper(store, index_path).open().loaded_from_file  # the rebuilt file was saved


class ForeignCipher:
    """A cipher with its own key: a file someone else sealed."""

    def __init__(self) -> None:
        self._aead = AESGCM(AESGCM.generate_key(bit_length=256))

    def encrypt(self, plaintext: bytes, associated: bytes) -> bytes:
        nonce = bytes(12)  # one message per key in this test
        return nonce + self._aead.encrypt(nonce, plaintext, associated)

    def decrypt(self, ciphertext: bytes, associated: bytes) -> bytes:
        return self._aead.decrypt(ciphertext[:12], ciphertext[12:], associated)


def test_a_file_sealed_under_another_key_is_rebuilt(store: RecordStore, index_path: Path) -> None:
    enrol(store, people=4, per_person=2)
    index = GalleryIndex(IndexConfig(), MODEL_TAG)
    save_index(index, index_path, ForeignCipher())
    report = keeper(store, index_path).open()
    assert report.rebuilt_reason is not None and "IndexCorrupt" in report.rebuilt_reason
    assert report.templates == 8


def test_an_unsealed_file_is_refused_rebuilt_and_replaced_sealed(
    store: RecordStore, index_path: Path
) -> None:
    templates = enrol(store, people=5, per_person=2)
    plaintext_keeper = keeper(store, index_path)
    plaintext_keeper.open()
    # a plaintext file, as format 1 or a tool without the key wrote it: it holds the templates
    save_index(rebuild_index(store, IndexConfig(), MODEL_TAG), index_path)
    every_template = [row for rows in templates.values() for row in rows]
    assert all(row in index_path.read_bytes() for row in every_template)

    reopened = keeper(store, index_path)
    report = reopened.open()
    assert not report.loaded_from_file
    assert report.rebuilt_reason is not None and "IndexNotSealed" in report.rebuilt_reason
    assert_matches_database(reopened, store)
    assert file_header(index_path)["sealed"] is True
    on_disk = index_path.read_bytes()
    assert not any(row in on_disk for row in every_template)


def test_reconcile_adds_missing_removes_extra_and_follows_moves(
    store: RecordStore, index_path: Path
) -> None:
    templates = enrol(store, people=6, per_person=2)
    first = keeper(store, index_path)
    first.open()
    first.close()  # nothing unsaved: the file is what open() saved

    subjects = sorted(templates)
    rng = np.random.default_rng(9)
    for _ in range(3):  # written after the file was saved
        add_template(store, subjects[0], rng)
    erased = store.delete_subject(subjects[1])  # erased while the index was not told
    moved = store.move_samples(subjects[2], subjects[3])  # a merge the file does not know
    assert len(erased) == 2 and len(moved.template_ids) == 2

    second = keeper(store, index_path)
    report = second.open()
    assert report.loaded_from_file, report.rebuilt_reason
    assert report.added_on_replay == 3 + 2  # new ones, and the moved ones under their new owner
    assert report.removed_on_replay == 2 + 2  # erased ones, and the moved ones' old entries
    assert_matches_database(second, store)
    assert len(second.templates_of_subject(subjects[1])) == 0
    assert len(second.templates_of_subject(subjects[2])) == 0
    assert len(second.templates_of_subject(subjects[3])) == 4
    # the reconciled index was saved: the next start has nothing to replay
    third = keeper(store, index_path)
    assert (third.open().added_on_replay, len(third)) == (0, 13)


def test_note_erasure_removes_the_template_from_the_file_at_once(
    store: RecordStore, index_path: Path
) -> None:
    templates = enrol(store, people=4, per_person=2)
    gallery = keeper(store, index_path)
    gallery.open()
    erased_subject = sorted(templates)[1]
    erased_templates = templates[erased_subject]
    kept_templates = [
        row for subject, rows in templates.items() if subject != erased_subject for row in rows
    ]

    store.delete_subject(erased_subject)  # what the service does on an erasure ...
    gallery.remove_subject(erased_subject)
    gallery.note_writes(1)  # ... ordinary writes wait for the periodic save
    assert all(row in sealed_contents(store, index_path) for row in erased_templates)

    gallery.note_erasure()
    contents = sealed_contents(store, index_path)
    assert not any(row in contents for row in erased_templates)
    assert all(row in contents for row in kept_templates)
    on_disk = index_path.read_bytes()
    assert not any(row in on_disk for row in erased_templates)
    assert not list(index_path.parent.glob("*.tmp"))
    reopened = keeper(store, index_path)
    report = reopened.open()
    assert report.loaded_from_file and report.removed_on_replay == 0
    assert len(reopened.templates_of_subject(erased_subject)) == 0


def test_an_ivfpq_gallery_trains_from_the_database_survives_a_reopen_and_forgets_erasures(
    store: RecordStore, index_path: Path
) -> None:
    config = IndexConfig("ivfpq", ivf_nlist=8, ivfpq_nprobe=8)  # trains from 39 * 8 templates

    def ivfpq_keeper() -> GalleryKeeper:
        return GalleryKeeper(store, index_path, config, MODEL_TAG, cipher=store.cipher)

    templates = enrol(store, people=170, per_person=2, seed=3)
    first = ivfpq_keeper()
    first.open()
    stats = first.stats()
    assert stats.kind == "ivfpq" and stats.approximate_active and stats.ivf_lists == 8
    erased_subject = sorted(templates)[7]
    erased = np.frombuffer(templates[erased_subject][0], dtype="<f4")
    assert first.identify(erased, 1)[0].subject_id == erased_subject

    second = ivfpq_keeper()
    report = second.open()
    assert report.loaded_from_file, report.rebuilt_reason
    assert second.stats().approximate_active  # the trained lists came from the file
    assert_matches_database(second, store)

    erased_ids = second.templates_of_subject(erased_subject)
    assert erased_ids.shape[0] == 2
    store.delete_subject(erased_subject)
    second.remove_subject(erased_subject)
    second.note_erasure()
    assert all(c.subject_id != erased_subject for c in second.identify(erased, 5))
    third = ivfpq_keeper()
    assert third.open().loaded_from_file
    assert len(third.templates_of_subject(erased_subject)) == 0
    _, found = load_index(index_path, MODEL_TAG, config, store.cipher).search(erased, 5)
    assert not np.isin(found, erased_ids).any()
    assert_matches_database(third, store)


class _BatchedTemplates:
    """The two reads rebuild_index makes of a RecordStore, over templates held in memory."""

    def __init__(self, vectors: np.ndarray, batch: int) -> None:
        self._vectors = vectors
        self._batch = batch

    def count_templates(self, model_tag: str) -> int:
        return len(self._vectors)

    def iter_templates(self, model_tag: str) -> Iterator[TemplateBatch]:
        for start in range(0, len(self._vectors), self._batch):
            ids = np.arange(start, min(start + self._batch, len(self._vectors)), dtype=np.int64)
            yield TemplateBatch(ids + 1, ids + 1, self._vectors[ids])


def test_a_rebuilt_ivfpq_index_has_lists_for_the_whole_gallery() -> None:
    # The database is read 10,000 templates at a time; the lists the index trained on the
    # first batches are replaced by lists sized for all of it (2 sqrt(N)).
    vectors = dlib_like_population(30_000, seed=5).samples(np.arange(30_000), seed=6)
    seen: list[tuple[int, int]] = []
    index = rebuild_index(
        cast(RecordStore, _BatchedTemplates(vectors, 10_000)),
        IndexConfig("ivfpq"),
        MODEL_TAG,
        lambda done, total: seen.append((done, total)),
    )
    assert len(index) == 30_000 and seen[-1] == (30_000, 30_000)
    assert index.stats().ivf_lists == automatic_nlist(30_000, "ivfpq") == 346
    _, ids = index.search(vectors[::300], 1)
    np.testing.assert_array_equal(ids[:, 0], np.arange(1, 30_001, 300))
