"""Concurrency SQLite hides (it runs one writer at a time), on PostgreSQL with real concurrent
sessions: separate engines stand for separate processes. A reference race has one winner and
typed losers; concurrent enrollments all land; a lock wait that runs out and a deadlock's
victim get the typed StoreBusy (503 + Retry-After at the API), never a half-written row."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import pytest
from sqlalchemy import text

from tests.enrollment.test_gallery import add_template
from wajah.api.http.errors import problem_for
from wajah.biometric.templates import MODEL_TAG
from wajah.enrollment.crypto import RecordCipher, generate_key
from wajah.enrollment.db import create_database_engine
from wajah.enrollment.errors import StoreBusy, SubjectAlreadyExists
from wajah.enrollment.records import SubjectStatus
from wajah.enrollment.store import RecordStore

WRITERS = 6


@pytest.fixture()
def key() -> bytes:
    return generate_key()


@pytest.fixture()
def open_store(postgres_url: str, key: bytes) -> Iterator[Callable[..., RecordStore]]:
    opened: list[RecordStore] = []

    def open_one(lock_timeout_ms: int = 10_000) -> RecordStore:
        engine = create_database_engine(postgres_url, lock_timeout_ms=lock_timeout_ms)
        store = RecordStore(engine, RecordCipher(key))
        opened.append(store)
        return store

    yield open_one
    for store in opened:
        store.dispose()


def run_together(count: int, action: Callable[[int], str]) -> list[str]:
    """Run ``action(i)`` for i < count in threads released at once; their outcomes."""
    barrier = threading.Barrier(count)
    outcomes: list[str] = []
    errors: list[BaseException] = []

    def run(index: int) -> None:
        barrier.wait()
        try:
            outcomes.append(action(index))
        except BaseException as error:  # reported below, with the test's assertion
            errors.append(error)

    threads = [threading.Thread(target=run, args=(index,)) for index in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert errors == []
    return outcomes


def test_a_reference_race_across_processes_has_one_winner(
    open_store: Callable[..., RecordStore],
) -> None:
    stores = [open_store() for _ in range(3)]

    def create(index: int) -> str:
        try:
            stores[index % 3].create_subject("APP-RACE", f"Applicant {index}")
        except SubjectAlreadyExists as error:
            assert error.subject_ref == "APP-RACE"
            return "exists"
        return "created"

    assert sorted(run_together(WRITERS, create)) == ["created"] + ["exists"] * (WRITERS - 1)
    assert stores[0].list_subjects()[1] == 1


def test_concurrent_enrollments_all_land(open_store: Callable[..., RecordStore]) -> None:
    stores = [open_store(), open_store()]
    shared = stores[0].create_subject("APP-1", "Amal Hassan")

    def enroll(index: int) -> str:
        rng = np.random.default_rng(index)
        for _ in range(4):
            add_template(stores[index % 2], shared.id, rng)
        return "ok"

    assert run_together(WRITERS, enroll) == ["ok"] * WRITERS
    assert stores[1].get_subject(shared.id).sample_count == 4 * WRITERS
    assert stores[1].count_templates(MODEL_TAG) == 4 * WRITERS
    assert stores[1].last_template_change() == 4 * WRITERS
    assert stores[1].integrity_check() == "ok"


def test_a_lock_wait_that_runs_out_is_typed_and_writes_nothing(
    open_store: Callable[..., RecordStore], tmp_path: Path
) -> None:
    store = open_store(lock_timeout_ms=300)
    subject = store.create_subject("APP-1", "Amal Hassan")
    rng = np.random.default_rng(1)
    blocker = create_database_engine(store.engine.url.render_as_string(hide_password=False))
    try:
        with blocker.connect() as connection:
            transaction = connection.begin()
            # Another writer mid-transaction, holding the change log's head.
            connection.execute(text("SELECT last_seq FROM template_change_head FOR UPDATE"))
            with pytest.raises(StoreBusy) as caught:
                add_template(store, subject.id, rng)
            transaction.rollback()
    finally:
        blocker.dispose()
    assert store.get_subject(subject.id).sample_count == 0
    assert store.count_templates(MODEL_TAG) == 0
    problem = problem_for(caught.value)
    assert problem.type.status == 503
    assert problem.headers["Retry-After"] == "1"
    add_template(store, subject.id, rng)  # the lock is gone: the same write goes through
    assert store.count_templates(MODEL_TAG) == 1


def test_a_deadlock_victim_is_typed_and_the_other_writer_commits(
    open_store: Callable[..., RecordStore],
) -> None:
    stores = [open_store(), open_store()]
    first = stores[0].create_subject("APP-1", "Amal Hassan", status="pending_review")
    second = stores[0].create_subject("APP-2", "Ali Osman", status="pending_review")
    order = [(first.id, second.id), (second.id, first.id)]
    both_hold_one = threading.Barrier(2)

    def cross(index: int) -> str:
        try:
            with stores[index].transaction() as tx:
                one, other = order[index]
                tx.subjects.set_status(one, SubjectStatus.ACTIVE)
                both_hold_one.wait()
                tx.subjects.set_status(other, SubjectStatus.ACTIVE)
        except StoreBusy:
            return "busy"
        return "committed"

    assert sorted(run_together(2, cross)) == ["busy", "committed"]
    assert {stores[1].get_subject(s.id).status for s in (first, second)} == {SubjectStatus.ACTIVE}


def test_enrollments_of_different_processes_take_turns(
    open_store: Callable[..., RecordStore],
) -> None:
    """The duplicate search and the commit of one enrollment are not interleaved with
    another process's (IdentityService.enroll_processed takes this turn first)."""
    stores = [open_store(), open_store()]
    first_holds = threading.Event()
    waited_s: list[float] = []

    def first() -> None:
        with stores[0].transaction() as tx:
            tx.serialise_enrollments()
            first_holds.set()
            time.sleep(0.5)

    def second() -> None:
        first_holds.wait()
        started = time.monotonic()
        with stores[1].transaction() as tx:
            tx.serialise_enrollments()
            waited_s.append(time.monotonic() - started)

    threads = [threading.Thread(target=first), threading.Thread(target=second)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    (waited,) = waited_s
    assert waited > 0.4
