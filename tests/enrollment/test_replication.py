"""The template change log and replicas catching up from it (enrollment/changes.py,
GalleryKeeper.catch_up, enrollment/replication.py), on SQLite and PostgreSQL. Two stores on
one database stand for two processes; the two-server test is tests/api/test_replicas.py."""

from __future__ import annotations

import datetime as dt
import logging
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from sqlalchemy import text

from tests.enrollment.test_gallery import add_template
from wajah.biometric.templates import MODEL_TAG
from wajah.enrollment.clock import utcnow
from wajah.enrollment.gallery import GalleryKeeper
from wajah.enrollment.replication import ChangeFollower
from wajah.enrollment.store import RecordStore, open_record_store
from wajah.matcher.index import IndexConfig
from wajah.matcher.persistence import saved_change_seq


@pytest.fixture()
def stores(tmp_path: Path, migrated_database_url: str) -> Iterator[tuple[RecordStore, RecordStore]]:
    key_file = tmp_path / "keys" / "records.key"
    first = open_record_store(migrated_database_url, None, key_file)
    second = open_record_store(migrated_database_url, None, key_file)
    yield first, second
    first.dispose()
    second.dispose()


def keeper(store: RecordStore, path: Path) -> GalleryKeeper:
    gallery = GalleryKeeper(store, path, IndexConfig(), MODEL_TAG, cipher=store.cipher)
    gallery.open()
    return gallery


def changes(store: RecordStore) -> list[tuple[int, str, int, int]]:
    return [
        (change.seq, change.operation.value, change.template_id, change.subject_id)
        for change in store.template_changes_after(0)
    ]


def test_every_template_write_is_logged_in_order(
    stores: tuple[RecordStore, RecordStore], rng: np.random.Generator
) -> None:
    store, _ = stores
    first = store.create_subject("APP-1", "Amal Hassan")
    second = store.create_subject("APP-2", "Amal Hasan")
    add_template(store, first.id, rng)
    add_template(store, second.id, rng)
    (moved_id,) = store.template_ids_of_subject(second.id).tolist()
    (kept_id,) = store.template_ids_of_subject(first.id).tolist()
    store.move_samples(second.id, first.id)
    store.delete_subject(first.id)
    assert changes(store) == [
        (1, "add", kept_id, first.id),
        (2, "add", moved_id, second.id),
        (3, "remove", moved_id, second.id),
        (4, "add", moved_id, first.id),
        (5, "remove", kept_id, first.id),
        (6, "remove", moved_id, first.id),
    ]
    assert store.last_template_change() == 6


def test_a_rolled_back_write_logs_nothing(
    stores: tuple[RecordStore, RecordStore], rng: np.random.Generator
) -> None:
    store, _ = stores
    subject = store.create_subject("APP-1", "Amal Hassan")
    with pytest.raises(RuntimeError, match="abandoned"), store.transaction() as tx:
        tx.subjects.erase(subject.id)
        raise RuntimeError("abandoned")
    add_template(store, subject.id, rng)
    assert [change[:2] for change in changes(store)] == [(1, "add")]


def test_concurrent_writers_get_contiguous_sequence_numbers(
    stores: tuple[RecordStore, RecordStore], rng: np.random.Generator
) -> None:
    subjects = [stores[0].create_subject(f"APP-{n}", "Amal Hassan").id for n in range(4)]
    barrier = threading.Barrier(4)
    failures: list[BaseException] = []

    def enroll(index: int) -> None:
        local = np.random.default_rng(index)
        barrier.wait()
        try:
            for _ in range(5):
                add_template(stores[index % 2], subjects[index], local)
        except BaseException as error:
            failures.append(error)

    threads = [threading.Thread(target=enroll, args=(n,)) for n in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert failures == []
    logged = changes(stores[0])
    assert [change[0] for change in logged] == list(range(1, 21))
    # Committed in seq order: template ids (handed out at insert) follow the log's order
    # only per writer, but every stored template is in the log exactly once.
    assert sorted(change[2] for change in logged) == stores[0].all_template_ids(MODEL_TAG).tolist()


def test_a_replica_catches_up_with_another_ones_writes(
    stores: tuple[RecordStore, RecordStore], tmp_path: Path, rng: np.random.Generator
) -> None:
    writer_store, reader_store = stores
    writer = keeper(writer_store, tmp_path / "a" / "gallery.widx")
    reader = keeper(reader_store, tmp_path / "b" / "gallery.widx")
    subject = writer_store.create_subject("APP-1", "Amal Hassan")
    vector = add_template(writer_store, subject.id, rng)
    other = writer_store.create_subject("APP-2", "Ali Osman")
    add_template(writer_store, other.id, rng)

    assert len(reader) == 0
    assert reader.catch_up() == 2
    assert reader.template_owners()[1].tolist() == [subject.id, other.id]
    (best,) = reader.identify(vector, 1)
    assert best.subject_id == subject.id
    assert reader.catch_up() == 0  # nothing new: nothing read twice

    # A merge re-links the template: the replica indexes it under the surviving subject.
    writer_store.move_samples(subject.id, other.id)
    reader.catch_up()
    assert sorted(reader.template_owners()[1].tolist()) == [other.id, other.id]

    # An erasure disappears from the replica.
    writer_store.delete_subject(other.id)
    reader.catch_up()
    assert len(reader) == 0
    assert reader.applied_change_seq == writer_store.last_template_change()

    # Applying a change twice is harmless (the writer's own index applies its own log).
    writer.catch_up()
    writer.catch_up()
    assert len(writer) == 0


def test_the_saved_file_records_the_applied_change_and_a_restart_catches_up(
    stores: tuple[RecordStore, RecordStore], tmp_path: Path, rng: np.random.Generator
) -> None:
    writer_store, reader_store = stores
    path = tmp_path / "b" / "gallery.widx"
    reader = keeper(reader_store, path)
    kept = writer_store.create_subject("APP-1", "Amal Hassan")
    add_template(writer_store, kept.id, rng)
    erased = writer_store.create_subject("APP-2", "Ali Osman")
    add_template(writer_store, erased.id, rng)
    reader.catch_up()
    reader.save()
    assert saved_change_seq(path) == 2

    # While the replica is down another one erases a subject and enrolls a third.
    reader.close()
    writer_store.delete_subject(erased.id)
    third = writer_store.create_subject("APP-3", "Sara Ali")
    add_template(writer_store, third.id, rng)

    restarted = keeper(reader_store, path)
    assert sorted(restarted.template_owners()[1].tolist()) == [kept.id, third.id]
    assert restarted.applied_change_seq == 4
    restarted.save()
    assert saved_change_seq(path) == 4


def test_the_follower_applies_changes_within_its_poll(
    stores: tuple[RecordStore, RecordStore], tmp_path: Path, rng: np.random.Generator
) -> None:
    writer_store, reader_store = stores
    reader = keeper(reader_store, tmp_path / "b" / "gallery.widx")
    on_postgres = reader_store.engine.dialect.name == "postgresql"
    # On PostgreSQL a long poll, so that a lag well under it shows the NOTIFY woke the
    # follower even on a loaded machine (a 0.2 s poll left too little margin there).
    poll_s = 1.0 if on_postgres else 0.2
    follower = ChangeFollower(reader, reader_store.engine, poll_s)
    follower.start()
    try:
        subject = writer_store.create_subject("APP-1", "Amal Hassan")
        time.sleep(0.3)  # the follower is waiting (LISTENing on PostgreSQL)
        written = time.monotonic()
        add_template(writer_store, subject.id, rng)
        while len(reader) == 0:
            assert time.monotonic() - written < 5.0, "the follower did not catch up"
            time.sleep(0.005)
        lag_s = time.monotonic() - written
    finally:
        follower.stop()
    # Woken by NOTIFY on PostgreSQL (the poll alone would take ~0.7 s here); by the poll on
    # SQLite.
    bound_s = 0.5 if on_postgres else poll_s + 0.2
    assert lag_s < bound_s, lag_s


def test_catch_up_survives_the_database_going_away_for_a_moment(
    stores: tuple[RecordStore, RecordStore], tmp_path: Path, rng: np.random.Generator
) -> None:
    writer_store, reader_store = stores
    reader = keeper(reader_store, tmp_path / "b" / "gallery.widx")
    follower = ChangeFollower(reader, reader_store.engine, 0.1)
    follower.start()
    try:
        if reader_store.engine.dialect.name == "postgresql":
            # Kill every other session of this database: the follower's LISTEN connection too.
            with writer_store.engine.connect() as connection:
                connection.execute(
                    text(
                        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                        "WHERE datname = current_database() AND pid <> pg_backend_pid()"
                    )
                )
        subject = writer_store.create_subject("APP-1", "Amal Hassan")
        add_template(writer_store, subject.id, rng)
        deadline = time.monotonic() + 5.0
        while len(reader) == 0:
            assert time.monotonic() < deadline, "the follower did not recover"
            time.sleep(0.01)
    finally:
        follower.stop()


# -- pruning the log (changes.prune_changes) and replicas that fall behind it -----------------


def age_changes(store: RecordStore, seqs: list[int], days: float) -> None:
    """Stamp these changes as logged ``days`` ago."""
    at = utcnow() - dt.timedelta(days=days)
    with store.engine.begin() as connection:
        for seq in seqs:
            connection.execute(
                text("UPDATE template_changes SET at = :at WHERE seq = :seq"),
                {"at": at.replace(tzinfo=None) if store.engine.dialect.name == "sqlite" else at,
                 "seq": seq},
            )  # fmt: skip


def resyncs(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if "index_resynced_after_log_gap" in r.message]


def test_pruning_deletes_a_prefix_of_the_log_and_keeps_the_head(
    stores: tuple[RecordStore, RecordStore], rng: np.random.Generator
) -> None:
    store, _ = stores
    subject = store.create_subject("APP-1", "Amal Hassan")
    for _ in range(6):
        add_template(store, subject.id, rng)
    week_ago = utcnow() - dt.timedelta(days=7)
    assert store.prune_template_changes(week_ago) == 0  # nothing that old yet
    # 1-3 are ten days old, 5 too (a replica with a skewed clock), 4 and 6 are new: the
    # prefix through 5 goes, so what is kept stays contiguous up to the head.
    age_changes(store, [1, 2, 3, 5], days=10)
    assert store.prune_template_changes(week_ago) == 5
    assert [change[0] for change in changes(store)] == [6]
    assert store.last_template_change() == 6
    assert store.prune_template_changes(week_ago) == 0
    add_template(store, subject.id, rng)  # numbering goes on from the head
    assert [change[0] for change in changes(store)] == [6, 7]
    assert store.prune_template_changes(utcnow() + dt.timedelta(seconds=1)) == 2
    assert changes(store) == [] and store.last_template_change() == 7


def test_a_replica_behind_the_pruned_log_reconciles_with_the_database(
    stores: tuple[RecordStore, RecordStore],
    tmp_path: Path,
    rng: np.random.Generator,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, logger="wajah.gallery")
    writer_store, reader_store = stores
    reader = keeper(reader_store, tmp_path / "b" / "gallery.widx")
    kept = writer_store.create_subject("APP-1", "Amal Hassan")
    kept_vector = add_template(writer_store, kept.id, rng)
    merged = writer_store.create_subject("APP-2", "Amal Hasan")
    add_template(writer_store, merged.id, rng)
    erased = writer_store.create_subject("APP-3", "Ali Osman")
    add_template(writer_store, erased.id, rng)
    assert reader.catch_up() == 3 and len(reader) == 3

    # While the reader is stalled: a merge, an erasure and a new enrollment (seq 4-7) ...
    writer_store.move_samples(merged.id, kept.id)
    writer_store.delete_subject(erased.id)
    late = writer_store.create_subject("APP-4", "Sara Ali")
    late_vector = add_template(writer_store, late.id, rng)
    assert writer_store.last_template_change() == 7
    # ... and every one of them is pruned, so nothing after the reader's position is left.
    assert writer_store.prune_template_changes(utcnow() + dt.timedelta(seconds=1)) == 7
    assert changes(writer_store) == []

    assert reader.catch_up() == 4  # stood in for by one reconcile
    assert len(resyncs(caplog)) == 1
    ids, owners = reader.template_owners()
    assert ids.tolist() == writer_store.all_template_ids(MODEL_TAG).tolist()
    assert sorted(owners.tolist()) == sorted([kept.id, kept.id, late.id])
    assert reader.identify(late_vector, 1)[0].subject_id == late.id
    assert reader.identify(kept_vector, 1)[0].subject_id == kept.id
    assert reader.applied_change_seq == 7

    # From there on it replays again: no false gap at the pruned log's edge.
    writer_store.delete_subject(late.id)
    assert reader.catch_up() == 1
    assert reader.catch_up() == 0
    assert len(resyncs(caplog)) == 1
    assert late.id not in reader.template_owners()[1].tolist()


def test_a_replica_behind_a_partly_pruned_log_reconciles_and_one_in_step_does_not(
    stores: tuple[RecordStore, RecordStore],
    tmp_path: Path,
    rng: np.random.Generator,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, logger="wajah.gallery")
    writer_store, reader_store = stores
    writer = keeper(writer_store, tmp_path / "a" / "gallery.widx")
    lagging = keeper(reader_store, tmp_path / "b" / "gallery.widx")
    first = writer_store.create_subject("APP-1", "Amal Hassan")
    add_template(writer_store, first.id, rng)
    assert lagging.catch_up() == 1
    second = writer_store.create_subject("APP-2", "Ali Osman")
    for _ in range(4):
        add_template(writer_store, second.id, rng)  # seq 2-5
    assert writer.catch_up() == 5  # the writer's own index is in step
    age_changes(writer_store, [1, 2, 3], days=10)
    assert writer_store.prune_template_changes(utcnow() - dt.timedelta(days=7)) == 3
    assert [change[0] for change in changes(writer_store)] == [4, 5]

    assert writer.catch_up() == 0  # in step: the pruned rows were behind it
    assert resyncs(caplog) == []
    assert lagging.catch_up() == 4  # needed 2 and 3: reconciled, not replayed from 4
    assert len(resyncs(caplog)) == 1
    assert len(lagging) == 5 and lagging.applied_change_seq == 5


def test_the_follower_prunes_and_a_stalled_replica_recovers_through_the_database(
    stores: tuple[RecordStore, RecordStore], tmp_path: Path, rng: np.random.Generator
) -> None:
    writer_store, reader_store = stores
    writer = keeper(writer_store, tmp_path / "a" / "gallery.widx")
    reader = keeper(reader_store, tmp_path / "b" / "gallery.widx")
    # The writer's follower keeps 50 ms of log and prunes every 50 ms.
    pruner = ChangeFollower(writer, writer_store.engine, 0.05, retention_s=0.05, prune_every_s=0.05)
    pruner.start()
    try:
        subject = writer_store.create_subject("APP-1", "Amal Hassan")
        vector = add_template(writer_store, subject.id, rng)
        erased = writer_store.create_subject("APP-2", "Ali Osman")
        add_template(writer_store, erased.id, rng)
        writer_store.delete_subject(erased.id)
        deadline = time.monotonic() + 5.0
        while changes(writer_store):
            assert time.monotonic() < deadline, "the follower did not prune"
            time.sleep(0.02)
    finally:
        pruner.stop()
    assert len(reader) == 0  # the stalled replica missed all four, and they are gone

    follower = ChangeFollower(reader, reader_store.engine, 0.05)
    follower.start()
    try:
        deadline = time.monotonic() + 5.0
        while reader.applied_change_seq < writer_store.last_template_change():
            assert time.monotonic() < deadline, "the replica did not recover"
            time.sleep(0.01)
    finally:
        follower.stop()
    assert reader.template_owners()[1].tolist() == [subject.id]
    assert reader.identify(vector, 1)[0].subject_id == subject.id


@pytest.fixture()
def rng() -> np.random.Generator:
    return np.random.default_rng(18)
