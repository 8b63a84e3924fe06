"""The template change log: what every replica replays into its in-memory index.

A transaction that adds or removes templates notes each change on its scope
(:meth:`SessionScope.note_template_change`); the store writes them here just before the commit,
in the same transaction, so a change is logged if and only if it happened. Numbers come from
the head row under its row lock (``UPDATE … SET last_seq = last_seq + n``), so the log commits
in ``seq`` order with no gaps and a reader that has applied up to ``seq`` never misses an
earlier row committed later. On PostgreSQL the transaction also sends ``NOTIFY``
(:data:`CHANGE_CHANNEL`, delivered at commit) to wake the replicas' followers at once.

Pruning (:func:`prune_changes`) deletes only a prefix of the log, so what is kept stays
contiguous and ends at the head: a reader whose next row (``seq + 1``) is missing while the
head is past it knows the rows were pruned, and reconciles its index with the templates table
instead of replaying (``GalleryKeeper.catch_up``). No replica can skip a change unnoticed.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Final

from sqlalchemy import Connection, Engine, delete, func, insert, select, text, update
from sqlalchemy.orm import Session

from wajah.enrollment.clock import utcnow
from wajah.enrollment.db import (
    TEMPLATE_CHANGE_HEAD_ID,
    TemplateChangeHead,
    TemplateChangeOperation,
    TemplateChangeRow,
    write_engine,
)

__all__ = [
    "CHANGE_CHANNEL",
    "TemplateChange",
    "TemplateChangeOperation",
    "changes_after",
    "last_change_seq",
    "prune_changes",
    "record_changes",
    "serialise_enrollments",
]

CHANGE_CHANNEL: Final = "wajah_template_changes"  # PostgreSQL LISTEN/NOTIFY channel
PRUNE_BATCH: Final = 10_000  # rows deleted per transaction, so no prune holds a lock for long
# The advisory lock enrollments take turns on: a fixed 64-bit key, "wajahenr" in ASCII.
ENROLLMENT_LOCK_KEY: Final = int.from_bytes(b"wajahenr", "big") & 0x7FFF_FFFF_FFFF_FFFF


@dataclass(frozen=True)
class TemplateChange:
    seq: int
    operation: TemplateChangeOperation
    template_id: int
    subject_id: int


def record_changes(
    session: Session, changes: Sequence[tuple[TemplateChangeOperation, int, int]]
) -> None:
    """Append ``(operation, template_id, subject_id)`` rows, numbered in order, in the
    session's transaction."""
    if not changes:
        return
    last = session.execute(
        update(TemplateChangeHead)
        .where(TemplateChangeHead.id == TEMPLATE_CHANGE_HEAD_ID)
        .values(last_seq=TemplateChangeHead.last_seq + len(changes))
        .returning(TemplateChangeHead.last_seq)
    ).scalar_one()
    first = int(last) - len(changes) + 1
    now = utcnow()
    session.execute(
        insert(TemplateChangeRow),
        [
            {
                "seq": first + offset,
                "operation": operation.value,
                "template_id": int(template_id),
                "subject_id": int(subject_id),
                "at": now,
            }
            for offset, (operation, template_id, subject_id) in enumerate(changes)
        ],
    )
    if session.get_bind().dialect.name == "postgresql":
        session.execute(
            text("SELECT pg_notify(:channel, :seq)"), {"channel": CHANGE_CHANNEL, "seq": str(last)}
        )


def serialise_enrollments(session: Session) -> None:
    """Take the enrollment turn for the rest of the session's transaction: on PostgreSQL a
    transaction-scoped advisory lock (released at commit or rollback; taken first, by
    enrollments only, so it cannot close a cycle with row locks); on SQLite the write
    transaction's BEGIN IMMEDIATE already is that turn, and this statement begins it."""
    if session.get_bind().dialect.name == "postgresql":
        session.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": ENROLLMENT_LOCK_KEY})
    else:
        session.execute(text("SELECT 1"))


def changes_after(connection: Connection, after_seq: int, limit: int) -> list[TemplateChange]:
    """Up to ``limit`` changes with ``seq > after_seq``, in ``seq`` order."""
    rows = connection.execute(
        select(
            TemplateChangeRow.seq,
            TemplateChangeRow.operation,
            TemplateChangeRow.template_id,
            TemplateChangeRow.subject_id,
        )
        .where(TemplateChangeRow.seq > after_seq)
        .order_by(TemplateChangeRow.seq)
        .limit(limit)
    ).all()
    return [
        TemplateChange(int(seq), TemplateChangeOperation(operation), int(template), int(subject))
        for seq, operation, template, subject in rows
    ]


def last_change_seq(connection: Connection) -> int:
    """The newest committed change's ``seq`` (0 for an empty log): the head row, which the
    same transactions update, so it stays right when the rows are pruned."""
    return int(
        connection.execute(
            select(TemplateChangeHead.last_seq).where(
                TemplateChangeHead.id == TEMPLATE_CHANGE_HEAD_ID
            )
        ).scalar_one()
    )


def prune_changes(engine: Engine, older_than: dt.datetime, batch: int = PRUNE_BATCH) -> int:
    """Delete the changes logged before ``older_than``; returns how many rows went.

    What goes is the log's prefix up to the newest change older than ``older_than`` (a change
    logged a little out of time order by a replica with a skewed clock goes with it), in
    transactions of at most ``batch`` rows. Safe beside writers, readers and other pruners:
    writers append above the prefix, and a reader that needed a pruned row notices the gap."""
    if batch < 1:
        raise ValueError("batch must be at least 1")
    with engine.connect() as connection:
        through = connection.execute(
            select(func.max(TemplateChangeRow.seq)).where(TemplateChangeRow.at < older_than)
        ).scalar()
    if through is None:
        return 0
    deleted = 0
    while True:
        with write_engine(engine).begin() as connection:
            lowest = connection.execute(select(func.min(TemplateChangeRow.seq))).scalar()
            if lowest is None or lowest > through:
                return deleted
            upto = min(int(through), int(lowest) + batch - 1)
            result = connection.execute(
                delete(TemplateChangeRow).where(TemplateChangeRow.seq <= upto)
            )
            deleted += int(result.rowcount)
