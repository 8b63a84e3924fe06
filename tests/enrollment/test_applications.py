"""The applications' repository on a real store (SQLite, and PostgreSQL when configured): the
hold for review that a watchlist hit calls, where a cleared case resumes, a merge moving the
applications, a refused move changing nothing, and the lookup check."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from pathlib import Path

import pytest

from wajah.enrollment.applications import ApplicationPolicy, mark_needs_review
from wajah.enrollment.crypto import encode_key, generate_key
from wajah.enrollment.errors import ApplicationLookupFailed, IllegalTransition
from wajah.enrollment.records import Actor, ApplicationStatus
from wajah.enrollment.store import RecordStore, open_record_store

POLICY = ApplicationPolicy(office_code="TEST")
CLERK = Actor(station="counter-1", key_id=7, role="clerk")


@pytest.fixture
def store(database_url: str, tmp_path: Path) -> Iterator[RecordStore]:
    store = open_record_store(database_url, encode_key(generate_key()), tmp_path / "key")
    yield store
    store.dispose()


def statuses(store: RecordStore, number: str) -> list[str]:
    return [step.to_status.value for step in store.get_application(number).timeline]


def test_hold_resume_merge_and_refusal(store: RecordStore) -> None:
    first = store.create_subject("S-1", "Ani", "1991-02-03")
    second = store.create_subject("S-2", "Ani", "1991-02-03")
    number = store.create_application("S-2", "visa", POLICY, CLERK).number
    assert number == f"TEST-{dt.datetime.now(dt.UTC).year}-{1:06d}"
    with store.transaction() as tx:
        assert tx.applications.on_face_enrolled(second.id, CLERK) == [number]
        assert tx.applications.on_verified(second.id, CLERK) == [number]
    with store.transaction() as tx:
        assert mark_needs_review(tx, second.id, "watchlist hit 3", CLERK) == [number]
    # Held: no decision until the case is cleared, and the refusal changes nothing.
    before = store.get_application(number)
    with pytest.raises(IllegalTransition):
        store.decide_application(number, "approved", CLERK, "fine")
    assert store.get_application(number) == before
    with store.transaction() as tx:
        tx.applications.on_review_cleared(second.id, CLERK, "cleared")
        assert tx.applications.move_to_subject(second.id, first.id) == 1
    record = store.get_application(number)
    assert record.status is ApplicationStatus.VERIFIED  # where the hit had found it
    assert record.subject_ref == "S-1"
    assert statuses(store, number) == [
        "submitted",
        "biometrics_captured",
        "verified",
        "needs_review",
        "verified",
    ]
    assert [step.station for step in record.timeline] == ["counter-1"] * 5
    assert store.decide_application(number, "approved", CLERK, "ok").status.value == "approved"


def test_the_lookup_checks_the_birth_date_without_the_identity(store: RecordStore) -> None:
    store.create_subject("S-3", "Ani", "1991-02-03")
    number = store.create_application("S-3", "passport_new", POLICY, CLERK).number
    assert store.lookup_application(number.lower(), "1991-02-03").status.value == "submitted"
    # The subject's identity can change later: the check is of the birth date given then.
    store.update_subject(store.get_subject_by_ref("S-3").id, date_of_birth="1991-02-04")
    assert store.lookup_application(number, "1991-02-03").number == number
    for wrong in (("1991-02-04",), ("not a date",), ("",)):
        with pytest.raises(ApplicationLookupFailed):
            store.lookup_application(number, wrong[0])
    with pytest.raises(ApplicationLookupFailed):
        store.lookup_application("X" * 200, "1991-02-03")
