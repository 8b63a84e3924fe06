"""The audit trail: who did what to which subject, with which decision, hash-chained.

Each record's ``hash`` is the SHA-256 of a canonical JSON document of its fields (id included)
and the ``prev_hash`` of the record before it; the first record chains to ``GENESIS_HASH``.
Ids are contiguous (assigned under the chain lock), and the one-row ``audit_chain_head`` table
names the last id and hash. :meth:`AuditLog.verify_chain` therefore finds an edited record
(its hash no longer matches), a record deleted from the middle (a missing id, a broken link)
and records deleted from the end (the head names an id that is gone).

What the chain does not do: somebody with write access to the database who recomputes every
hash after an edit, and rewrites the head, leaves a consistent chain. Against that, copy the
head hash (``wajah audit verify`` prints it) somewhere they cannot write, and compare later.

Appends are serialised so the chain stays linear: a lock between threads of one process, and
between processes a write transaction that locks the head row (``BEGIN IMMEDIATE`` on SQLite,
``SELECT … FOR UPDATE`` on PostgreSQL) and updates it with the insert.

Canonical form: keys sorted, no whitespace, UTF-8; times as UTC ISO 8601 with microseconds;
``score`` and ``threshold`` as ``repr`` of the float (the shortest text that round-trips, so
re-hashing after a trip through SQLite REAL or PostgreSQL double precision gives the same
bytes). ``details`` is stored as it was hashed (parsed back from its canonical text).

``details`` is for small facts (counts, ids, timings). It never holds images, templates, names
or document numbers; :meth:`AuditLog.append` refuses the obvious keys and anything large.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
import json
import math
import re
import threading
from collections.abc import Callable, Mapping
from typing import Any, Final

from sqlalchemy import Engine, func, or_, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from wajah.enrollment.clock import utcnow
from wajah.enrollment.db import (
    AUDIT_ACTION_MAX,
    AUDIT_CHAIN_HEAD_ID,
    AUDIT_DECISION_MAX,
    AUDIT_OUTCOME_MAX,
    KEY_NAME_MAX,
    REQUEST_ID_MAX,
    STATION_MAX,
    SUBJECT_REF_MAX,
    AuditChainHead,
    AuditEventRow,
    session_factory,
    write_engine,
)
from wajah.enrollment.errors import AuditChainCorrupt
from wajah.enrollment.records import Role
from wajah.enrollment.validation import CONTROL_CHARACTERS, check_page

__all__ = [
    "GENESIS_HASH",
    "OUTCOME_OK",
    "AuditEvent",
    "AuditLog",
    "ChainReport",
    "record_hash",
]

GENESIS_HASH: Final = "0" * 64  # prev_hash of the first record
HASH_FORMAT_VERSION: Final = 1  # part of every hashed document, so the format can evolve
OUTCOME_OK: Final = "ok"  # any other outcome is the problem slug of docs/api.md
MAX_DETAILS_BYTES: Final = 2048  # canonical UTF-8 JSON; an audit record is a line, not a blob
VERIFY_BATCH_SIZE: Final = 1000
# Keys that would carry biometric or identity data; checked at any depth of ``details``.
FORBIDDEN_DETAIL_KEYS: Final = frozenset(
    {
        "image",
        "image_base64",
        "chip",
        "template",
        "vector",
        "embedding",
        "name",
        "full_name",
        "date_of_birth",
        "document_number",
    }
)
# Actions and outcomes are short machine words: "face.enroll", "subject-not-found".
_TOKEN_PATTERN: Final = re.compile(r"[a-z][a-z0-9_.\-]*")


@dataclasses.dataclass(frozen=True)
class AuditEvent:
    id: int
    at: dt.datetime  # aware UTC
    key_id: int | None  # None for actions taken at the server's command line
    key_name: str | None
    station: str | None
    role: Role | None
    action: str
    subject_ref: str | None
    decision: str | None
    score: float | None
    threshold: float | None
    request_id: str | None
    outcome: str  # "ok" or a problem slug
    details: Mapping[str, Any]  # JSON types only
    prev_hash: str
    hash: str

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready (the CLI's and the HTTP API's AuditRecord)."""
        record = dataclasses.asdict(self)
        record["at"] = self.at.isoformat()
        record["role"] = None if self.role is None else self.role.value
        record["details"] = dict(self.details)
        return record


@dataclasses.dataclass(frozen=True)
class ChainReport:
    ok: bool
    checked: int  # records whose hash and link were verified
    first_bad_id: int | None  # the first record found altered or missing
    problem: str | None
    head_id: int = 0  # the last id the chain head names
    head_hash: str | None = None  # worth copying somewhere the database's writers cannot reach


class AuditLog:
    """Append-only, hash-chained audit log over the record database's engine.

    Safe to share between threads (appends take an in-process lock, then the database lock);
    several processes may append to the same database. ``clock`` returns aware UTC datetimes.
    """

    def __init__(self, engine: Engine, *, clock: Callable[[], dt.datetime] = utcnow) -> None:
        self._read_sessions = session_factory(engine)
        self._write_sessions = session_factory(write_engine(engine))
        self._clock = clock
        self._append_lock = threading.Lock()

    def append(
        self,
        action: str,
        *,
        outcome: str = OUTCOME_OK,
        key_id: int | None = None,
        key_name: str | None = None,
        station: str | None = None,
        role: Role | str | None = None,
        subject_ref: str | None = None,
        decision: str | None = None,
        score: float | None = None,
        threshold: float | None = None,
        request_id: str | None = None,
        details: Mapping[str, Any] | None = None,
    ) -> AuditEvent:
        """Append one record and return it, chained and committed.

        Raises ``ValueError`` for fields that break the audit rules (an unknown role, a
        non-finite score, oversized or identity-bearing details): those are bugs in the caller,
        not input to report. :class:`AuditChainCorrupt` if the chain head is missing.
        """
        fields: dict[str, Any] = {
            "key_id": key_id,
            "key_name": _text(key_name, "key_name", KEY_NAME_MAX),
            "station": _text(station, "station", STATION_MAX),
            "role": None if role is None else _role(role).value,
            "action": _token(action, "action", AUDIT_ACTION_MAX),
            "subject_ref": _text(subject_ref, "subject_ref", SUBJECT_REF_MAX),
            "decision": _text(decision, "decision", AUDIT_DECISION_MAX),
            "score": _finite(score, "score"),
            "threshold": _finite(threshold, "threshold"),
            "request_id": _text(request_id, "request_id", REQUEST_ID_MAX),
            "outcome": _token(outcome, "outcome", AUDIT_OUTCOME_MAX),
            "details": _clean_details(details),
        }
        if key_id is not None and (isinstance(key_id, bool) or not isinstance(key_id, int)):
            raise ValueError("key_id must be an integer")
        with self._append_lock:
            try:
                with self._write_sessions.begin() as session:
                    row = self._append_locked(session, fields)
            except IntegrityError:
                # The id after the head is taken: the head was set back behind the records.
                raise AuditChainCorrupt(
                    "the audit chain head is behind its records; run `wajah audit verify`"
                ) from None
        return _event(row)

    def _append_locked(self, session: Session, fields: dict[str, Any]) -> AuditEventRow:
        head = session.execute(
            select(AuditChainHead)
            .where(AuditChainHead.id == AUDIT_CHAIN_HEAD_ID)
            .with_for_update()  # PostgreSQL; SQLite already holds the write lock (IMMEDIATE)
        ).scalar_one_or_none()
        if head is None:
            raise AuditChainCorrupt("the audit chain head is missing; run `wajah audit verify`")
        # Read the clock under the lock, so times never go backwards along the chain.
        at = self._clock()
        if at.tzinfo is None:
            raise ValueError("the audit clock must return aware datetimes")
        row = AuditEventRow(
            id=head.last_id + 1, at=at.astimezone(dt.UTC), prev_hash=head.last_hash, **fields
        )
        row.hash = record_hash(row)
        session.add(row)
        head.last_id = row.id
        head.last_hash = row.hash
        head.updated_at = row.at
        session.flush()
        return row

    def query(
        self,
        since: dt.datetime | None = None,
        until: dt.datetime | None = None,
        station: str | None = None,
        subject_ref: str | None = None,
        action: str | None = None,
        offset: int = 0,
        limit: int = 100,
    ) -> tuple[list[AuditEvent], int]:
        """Records matching every given filter, newest first, and how many match in all.

        ``since`` is inclusive and ``until`` exclusive; both must carry a time zone.
        """
        check_page(offset, limit)
        conditions: list[Any] = []
        if since is not None:
            conditions.append(AuditEventRow.at >= _aware(since, "since"))
        if until is not None:
            conditions.append(AuditEventRow.at < _aware(until, "until"))
        if station is not None:
            conditions.append(AuditEventRow.station == station)
        if subject_ref is not None:
            conditions.append(AuditEventRow.subject_ref == subject_ref)
        if action is not None:
            conditions.append(AuditEventRow.action == action)
        with self._read_sessions() as session:
            total = session.scalar(
                select(func.count()).select_from(AuditEventRow).where(*conditions)
            )
            rows = session.scalars(
                select(AuditEventRow)
                .where(*conditions)
                .order_by(AuditEventRow.id.desc())
                .offset(offset)
                .limit(limit)
            ).all()
            return [_event(row) for row in rows], int(total or 0)

    def verify_chain(self) -> ChainReport:
        """Re-hash every record in id order and check links, ids and the head.

        Streams in batches, so memory stays flat on a long chain; runs in one read transaction
        (one snapshot on SQLite) and never blocks appenders.
        """
        with self._read_sessions() as session:
            head = session.execute(
                select(AuditChainHead.last_id, AuditChainHead.last_hash).where(
                    AuditChainHead.id == AUDIT_CHAIN_HEAD_ID
                )
            ).first()
            if head is None:
                return ChainReport(False, 0, None, "the chain head row is missing")
            head_id, head_hash = int(head.last_id), str(head.last_hash)

            def broken(checked: int, first_bad_id: int | None, problem: str) -> ChainReport:
                return ChainReport(False, checked, first_bad_id, problem, head_id, head_hash)

            expected_id, previous_hash, checked = 1, GENESIS_HASH, 0
            while True:
                rows = session.scalars(
                    select(AuditEventRow)
                    .where(AuditEventRow.id >= expected_id, AuditEventRow.id <= head_id)
                    .order_by(AuditEventRow.id)
                    .limit(VERIFY_BATCH_SIZE)
                ).all()
                if not rows:
                    break
                for row in rows:
                    if row.id != expected_id:
                        missing = f"{expected_id}" + (
                            f"..{row.id - 1}" if row.id - 1 > expected_id else ""
                        )
                        return broken(
                            checked, expected_id, f"record {missing} is missing (deleted)"
                        )
                    if row.prev_hash != previous_hash:
                        return broken(
                            checked,
                            row.id,
                            f"record {row.id} does not link to record {row.id - 1} "
                            "(the one before was replaced, or this one was altered)",
                        )
                    if record_hash(row) != row.hash:
                        return broken(
                            checked, row.id, f"record {row.id} was altered (hash mismatch)"
                        )
                    previous_hash = row.hash
                    expected_id += 1
                    checked += 1
                session.expunge_all()
            if checked != head_id:
                return broken(
                    checked,
                    expected_id,
                    f"records {expected_id}..{head_id} are missing: the chain head names "
                    f"record {head_id} as the last",
                )
            if previous_hash != head_hash:
                return broken(
                    checked,
                    head_id or None,
                    "the chain head's hash does not match the last record",
                )
            stray = session.scalar(
                select(func.min(AuditEventRow.id)).where(
                    or_(AuditEventRow.id < 1, AuditEventRow.id > head_id)
                )
            )
            if stray is not None and (stray < 1 or stray > self._current_head_id(session)):
                return broken(checked, stray, f"record {stray} lies outside the chain")
        return ChainReport(True, checked, None, None, head_id, head_hash)

    @staticmethod
    def _current_head_id(session: Session) -> int:
        # Under PostgreSQL's READ COMMITTED this sees appends committed since the first read,
        # which explain records past the head we verified up to; SQLite repeats its snapshot.
        value = session.scalar(
            select(AuditChainHead.last_id).where(AuditChainHead.id == AUDIT_CHAIN_HEAD_ID)
        )
        return int(value or 0)


def record_hash(row: AuditEventRow) -> str:
    """Hex SHA-256 of the record's canonical JSON, ``prev_hash`` included."""
    document = {
        "v": HASH_FORMAT_VERSION,
        "id": row.id,
        "at": _canonical_time(row.at),
        "key_id": row.key_id,
        "key_name": row.key_name,
        "station": row.station,
        "role": row.role,
        "action": row.action,
        "subject_ref": row.subject_ref,
        "decision": row.decision,
        "score": _canonical_float(row.score),
        "threshold": _canonical_float(row.threshold),
        "request_id": row.request_id,
        "outcome": row.outcome,
        "details": row.details,
        "prev_hash": row.prev_hash,
    }
    return hashlib.sha256(_canonical_json(document)).hexdigest()


def _canonical_json(value: Any) -> bytes:
    return json.dumps(
        value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False
    ).encode("utf-8")


def _canonical_time(value: dt.datetime) -> str:
    return value.astimezone(dt.UTC).isoformat(timespec="microseconds")


def _canonical_float(value: float | None) -> str | None:
    # repr: the shortest text that reads back as the same double, on every Python since 3.1.
    return None if value is None else repr(float(value))


def _event(row: AuditEventRow) -> AuditEvent:
    return AuditEvent(
        id=row.id,
        at=row.at,
        key_id=row.key_id,
        key_name=row.key_name,
        station=row.station,
        role=None if row.role is None else Role(row.role),
        action=row.action,
        subject_ref=row.subject_ref,
        decision=row.decision,
        score=row.score,
        threshold=row.threshold,
        request_id=row.request_id,
        outcome=row.outcome,
        details=dict(row.details),
        prev_hash=row.prev_hash,
        hash=row.hash,
    )


def _text(value: str | None, field: str, max_length: int) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str):
        raise ValueError(f"{field} must be text")
    if len(value) > max_length or CONTROL_CHARACTERS.search(value):
        raise ValueError(f"{field} is too long or contains control characters")
    return value


def _token(value: str, field: str, max_length: int) -> str:
    if not isinstance(value, str) or len(value) > max_length or not _TOKEN_PATTERN.fullmatch(value):
        raise ValueError(f"{field} must be a short lowercase word like 'face.enroll'")
    return value


def _role(value: Role | str) -> Role:
    try:
        return Role(value)
    except ValueError:
        raise ValueError(f"unknown role {value!r}") from None


def _finite(value: float | None, field: str) -> float | None:
    if value is None:
        return None
    number = float(value)  # numpy scalars too
    if not math.isfinite(number):
        raise ValueError(f"{field} must be a finite number")
    return number


def _clean_details(details: Mapping[str, Any] | None) -> dict[str, Any]:
    """The details as stored and hashed: checked, then parsed back from canonical JSON (so a
    tuple becomes a list here, not on the way back from the database)."""
    if details is None:
        return {}
    if not isinstance(details, Mapping):
        raise ValueError("details must be a mapping")
    _check_detail_value(details, "details")
    try:
        canonical = _canonical_json(details)
    except (TypeError, ValueError) as error:
        raise ValueError(f"details must be plain finite JSON: {error}") from None
    if len(canonical) > MAX_DETAILS_BYTES:
        raise ValueError(f"details exceed {MAX_DETAILS_BYTES} bytes")
    parsed: dict[str, Any] = json.loads(canonical)
    return parsed


def _check_detail_value(value: Any, path: str) -> None:
    if isinstance(value, Mapping):
        for key, item in value.items():
            if not isinstance(key, str):
                raise ValueError(f"{path}: keys must be text")
            if key.lower() in FORBIDDEN_DETAIL_KEYS:
                raise ValueError(f"{path}.{key}: audit details never hold images or identities")
            _check_detail_value(item, f"{path}.{key}")
    elif isinstance(value, list | tuple):
        for index, item in enumerate(value):
            _check_detail_value(item, f"{path}[{index}]")
    elif isinstance(value, bytes | bytearray | memoryview):
        raise ValueError(f"{path}: audit details never hold binary data")
    elif value is not None and not isinstance(value, str | int | float):
        raise ValueError(f"{path}: {type(value).__name__} is not a JSON type")


def _aware(value: dt.datetime, field: str) -> dt.datetime:
    if value.tzinfo is None:
        raise ValueError(f"{field} must carry a time zone")
    return value.astimezone(dt.UTC)
