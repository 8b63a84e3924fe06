"""The relational schema of the record store and the engine factory.

The database is the source of truth; the FAISS index is rebuilt from the ``templates`` table.
Portable SQL only: the same models run on SQLite (one office, one file) and PostgreSQL.

Names and document numbers live in ``subject_identities``, apart from the biometric rows, so
they can be exported, corrected or erased without touching templates. Templates, face chips and
original images are stored encrypted (``enrollment/crypto.py``); the ORM here sees only bytes.

Ids of ``subjects``, ``face_samples``, ``templates`` and ``reviews`` are never reused: SQLite
``AUTOINCREMENT`` (``sqlite_autoincrement``) and PostgreSQL identity sequences both guarantee it.
A template id is its FAISS id and the index's replay checkpoint, so reuse would make a deleted
person's vector answer for somebody new.

Only the repositories (``subjects``, ``samples``, ``reviews``, ``access``, ``audit``) and the
store that opens them import this module; callers see the frozen records of
``enrollment/records.py``, whose enums the CHECK constraints below list.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import os
from enum import StrEnum
from pathlib import Path
from typing import Any, Final

from sqlalchemy import (
    JSON,
    BigInteger,
    CheckConstraint,
    Date,
    DateTime,
    Dialect,
    Engine,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Text,
    TypeDecorator,
    create_engine,
    event,
    make_url,
)
from sqlalchemy.engine.interfaces import DBAPIConnection
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column, sessionmaker
from sqlalchemy.pool import ConnectionPoolEntry

from wajah.enrollment.records import (
    ApplicationStatus,
    CaptureSource,
    ReviewResolution,
    ReviewStatus,
    Role,
    SubjectStatus,
)

# Deterministic constraint names: PostgreSQL needs them to alter constraints later, and
# alembic's SQLite batch mode needs them to recreate tables.
NAMING_CONVENTION: Final = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

# SQLite waits this long for another writer's lock before failing with "database is locked".
SQLITE_BUSY_TIMEOUT_MS: Final = 10_000

# PostgreSQL gives up a lock wait after as long (``lock_timeout``): a stuck writer answers
# StoreBusy (503, Retry-After) instead of holding a request for ever.
POSTGRES_LOCK_TIMEOUT_MS: Final = SQLITE_BUSY_TIMEOUT_MS

# SQLSTATEs of contention: nothing in the request was wrong, the same request may be retried.
# 40001 serialization_failure, 40P01 deadlock_detected, 55P03 lock_not_available.
POSTGRES_BUSY_SQLSTATES: Final = frozenset({"40001", "40P01", "55P03"})
SQLITE_BUSY_MESSAGES: Final = ("database is locked", "database table is locked")

# Execution option asking the SQLite ``begin`` hook for BEGIN IMMEDIATE (see _begin_sqlite).
WRITE_TRANSACTION_OPTION: Final = "wajah_write_transaction"

SUBJECT_REF_MAX = 64
FULL_NAME_MAX = 200
DOCUMENT_NUMBER_MAX = 64
STATION_MAX = 64
MODEL_TAG_MAX = 64
ACTOR_MAX = 128
APPLICATION_NUMBER_MAX = 32
APPLICATION_TYPE_MAX = 32
APPLICATION_STATUS_MAX = 24
LOOKUP_CHECK_LENGTH = 64  # hex HMAC-SHA256


def _in_values(column: str, values: type[StrEnum]) -> str:
    return f"{column} IN ({', '.join(repr(member.value) for member in values)})"


# SQLite keeps DateTime(timezone=True) as naive text; this type stores UTC and gives back
# aware UTC datetimes on every backend.
class UtcDateTime(TypeDecorator[dt.datetime]):
    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: dt.datetime | None, dialect: Dialect) -> dt.datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime: the record store keeps aware UTC datetimes only")
        return value.astimezone(dt.UTC)

    def process_result_value(self, value: Any | None, dialect: Dialect) -> dt.datetime | None:
        if value is None:
            return None
        assert isinstance(value, dt.datetime)
        if value.tzinfo is None:
            return value.replace(tzinfo=dt.UTC)
        return value.astimezone(dt.UTC)


# BIGINT for PostgreSQL; SQLite's AUTOINCREMENT works only on an INTEGER PRIMARY KEY.
IdType = BigInteger().with_variant(Integer(), "sqlite")


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)


class Subject(Base):
    __tablename__ = "subjects"
    __table_args__ = (
        CheckConstraint(_in_values("status", SubjectStatus), name="status"),
        {"sqlite_autoincrement": True},
    )

    id: Mapped[int] = mapped_column(IdType, primary_key=True, autoincrement=True)
    subject_ref: Mapped[str] = mapped_column(String(SUBJECT_REF_MAX), unique=True)
    status: Mapped[str] = mapped_column(String(16), index=True)
    created_at: Mapped[dt.datetime] = mapped_column(UtcDateTime())
    updated_at: Mapped[dt.datetime] = mapped_column(UtcDateTime())


class SubjectIdentity(Base):
    """Biographic data, one row per subject, kept apart from the biometric rows."""

    __tablename__ = "subject_identities"

    subject_id: Mapped[int] = mapped_column(
        IdType, ForeignKey("subjects.id", ondelete="CASCADE"), primary_key=True
    )
    full_name: Mapped[str] = mapped_column(String(FULL_NAME_MAX))
    date_of_birth: Mapped[dt.date | None] = mapped_column(Date())
    nationality: Mapped[str | None] = mapped_column(String(3), index=True)  # ISO 3166 alpha-3
    document_number: Mapped[str | None] = mapped_column(String(DOCUMENT_NUMBER_MAX))


class FaceSample(Base):
    __tablename__ = "face_samples"
    __table_args__ = (
        CheckConstraint(_in_values("capture_source", CaptureSource), name="capture_source"),
        {"sqlite_autoincrement": True},
    )

    id: Mapped[int] = mapped_column(IdType, primary_key=True, autoincrement=True)
    subject_id: Mapped[int] = mapped_column(
        IdType, ForeignKey("subjects.id", ondelete="CASCADE"), index=True
    )
    capture_source: Mapped[str] = mapped_column(String(16))
    quality: Mapped[dict[str, Any]] = mapped_column(JSON())
    chip_ciphertext: Mapped[bytes] = mapped_column(LargeBinary())  # PNG of the 150x150 chip
    image_ciphertext: Mapped[bytes | None] = mapped_column(LargeBinary())
    image_sha256: Mapped[str] = mapped_column(String(64), index=True)  # of the bytes received
    captured_at: Mapped[dt.datetime] = mapped_column(UtcDateTime())
    station: Mapped[str] = mapped_column(String(STATION_MAX))


class TemplateRow(Base):
    __tablename__ = "templates"
    __table_args__ = (
        # Serves iter_templates(model_tag, after_id): an index range scan in id order.
        Index("ix_templates_model_tag_id", "model_tag", "id"),
        {"sqlite_autoincrement": True},
    )

    id: Mapped[int] = mapped_column(IdType, primary_key=True, autoincrement=True)
    sample_id: Mapped[int] = mapped_column(
        IdType, ForeignKey("face_samples.id", ondelete="CASCADE"), index=True
    )
    # Denormalised from the sample so an index rebuild reads one table.
    subject_id: Mapped[int] = mapped_column(
        IdType, ForeignKey("subjects.id", ondelete="CASCADE"), index=True
    )
    model_tag: Mapped[str] = mapped_column(String(MODEL_TAG_MAX))
    vector_ciphertext: Mapped[bytes] = mapped_column(LargeBinary())
    created_at: Mapped[dt.datetime] = mapped_column(UtcDateTime())


class Review(Base):
    """A duplicate-identity case: a new enrollment that matched existing subjects."""

    __tablename__ = "reviews"
    __table_args__ = (
        CheckConstraint(_in_values("status", ReviewStatus), name="status"),
        CheckConstraint(
            f"resolution IS NULL OR {_in_values('resolution', ReviewResolution)}",
            name="resolution",
        ),
        {"sqlite_autoincrement": True},
    )

    id: Mapped[int] = mapped_column(IdType, primary_key=True, autoincrement=True)
    # The new enrollment; NULL once that subject is erased (a 'merge' or 'reject' erases it):
    # the decision stays readable (migration 0003).
    subject_id: Mapped[int | None] = mapped_column(
        IdType, ForeignKey("subjects.id", ondelete="SET NULL"), index=True
    )
    subject_ref: Mapped[str | None] = mapped_column(String(SUBJECT_REF_MAX))
    # [{"subject_id": int, "subject_ref": str | null, "score": float}, ...]
    candidates: Mapped[list[dict[str, Any]]] = mapped_column(JSON())
    status: Mapped[str] = mapped_column(String(16), index=True)
    resolution: Mapped[str | None] = mapped_column(String(32))
    resolved_by: Mapped[str | None] = mapped_column(String(ACTOR_MAX))
    comment: Mapped[str | None] = mapped_column(Text())
    created_at: Mapped[dt.datetime] = mapped_column(UtcDateTime())
    resolved_at: Mapped[dt.datetime | None] = mapped_column(UtcDateTime())


class Meta(Base):
    """Store-wide key/value pairs (the encryption key-check value, …)."""

    __tablename__ = "meta"

    key: Mapped[str] = mapped_column(String(64), primary_key=True)
    value: Mapped[str] = mapped_column(Text())


def create_database_engine(url: str, *, lock_timeout_ms: int = POSTGRES_LOCK_TIMEOUT_MS) -> Engine:
    """An engine for ``url``. Safe to share between threads (SQLAlchemy's pool).

    On SQLite every connection gets WAL journaling (readers never block the writer),
    ``synchronous=FULL`` (a committed enrollment survives power loss, not only a crash),
    enforced foreign keys (the ON DELETE CASCADEs), a busy timeout, and ``secure_delete`` so an
    erased subject's blobs are overwritten rather than left in free pages. Transactions are
    begun explicitly so that reads inside a transaction see one snapshot, and write
    transactions (``WRITE_TRANSACTION_OPTION``) start with BEGIN IMMEDIATE so two writers queue
    on the busy timeout instead of failing with a stale snapshot.

    On PostgreSQL each connection waits at most ``lock_timeout_ms`` for a lock.
    """
    parsed = make_url(url)
    if parsed.get_backend_name() == "postgresql":
        return create_engine(
            url,
            pool_pre_ping=True,
            connect_args={"options": f"-c lock_timeout={int(lock_timeout_ms)}"},
        )
    if parsed.get_backend_name() != "sqlite":
        return create_engine(url, pool_pre_ping=True)
    if (
        parsed.database
        and parsed.database != ":memory:"
        and not parsed.database.startswith("file:")
    ):
        _owner_only(Path(parsed.database))
    engine = create_engine(
        url,
        connect_args={"check_same_thread": False, "timeout": SQLITE_BUSY_TIMEOUT_MS / 1000},
    )
    event.listen(engine, "connect", _configure_sqlite_connection)
    event.listen(engine, "begin", _begin_sqlite)
    return engine


# The database holds names, document numbers and sealed biometric data: only the service's own
# user may read it. SQLite creates its -wal and -shm files with the database file's mode.
DATABASE_FILE_MODE: Final = 0o600


def _owner_only(database: Path) -> None:
    """Create the database file owner-only if it is new; tighten it (and its journal files) if
    an earlier version or a restore left it readable by others."""
    if not database.exists():
        database.parent.mkdir(parents=True, exist_ok=True)
        with contextlib.suppress(FileExistsError):  # another process created it meanwhile
            os.close(os.open(database, os.O_WRONLY | os.O_CREAT | os.O_EXCL, DATABASE_FILE_MODE))
    for path in (database, *(database.with_name(database.name + s) for s in ("-wal", "-shm"))):
        with contextlib.suppress(FileNotFoundError):
            if path.stat().st_mode & 0o077:
                path.chmod(DATABASE_FILE_MODE)


def _configure_sqlite_connection(
    dbapi_connection: DBAPIConnection, connection_record: ConnectionPoolEntry
) -> None:
    # Take transaction control away from the sqlite3 module (it would BEGIN only before
    # DML, leaving SELECTs outside the transaction); _begin_sqlite emits BEGIN instead.
    dbapi_connection.isolation_level = None
    cursor = dbapi_connection.cursor()
    try:
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=FULL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
        cursor.execute("PRAGMA secure_delete=ON")
    finally:
        cursor.close()


def _begin_sqlite(connection: Any) -> None:
    if connection.get_execution_options().get(WRITE_TRANSACTION_OPTION):
        connection.exec_driver_sql("BEGIN IMMEDIATE")
    else:
        connection.exec_driver_sql("BEGIN")


def is_contention(error: BaseException) -> bool:
    """Whether a driver error is contention (a lock wait that ran out, a deadlock victim, a
    serialisation failure) rather than a fault or a constraint."""
    original = getattr(error, "orig", error)
    sqlstate = getattr(original, "sqlstate", None)
    if sqlstate is not None:
        return str(sqlstate) in POSTGRES_BUSY_SQLSTATES
    return any(message in str(original) for message in SQLITE_BUSY_MESSAGES)


def write_engine(engine: Engine) -> Engine:
    """The same engine (same pool) whose SQLite transactions begin IMMEDIATE."""
    return engine.execution_options(**{WRITE_TRANSACTION_OPTION: True})


def session_factory(engine: Engine) -> sessionmaker[Session]:
    """Sessions bound to ``engine`` that keep loaded values usable after commit."""
    return sessionmaker(bind=engine, expire_on_commit=False)


# -- API keys and the audit trail (enrollment/access.py, enrollment/audit.py) -----------------

KEY_NAME_MAX = 128
KEY_PREFIX_LENGTH = 8
SHA256_HEX_LENGTH = 64
ROLE_MAX = 16
AUDIT_ACTION_MAX = 64
AUDIT_DECISION_MAX = 32
AUDIT_OUTCOME_MAX = 64
REQUEST_ID_MAX = 64
AUDIT_CHAIN_HEAD_ID = 1  # the chain head table holds exactly this one row


class ApiKeyRow(Base):
    """An API key. Only the SHA-256 of the secret is kept; ``key_prefix`` finds the row."""

    __tablename__ = "api_keys"
    __table_args__ = (
        CheckConstraint(_in_values("role", Role), name="role"),
        {"sqlite_autoincrement": True},
    )

    id: Mapped[int] = mapped_column(IdType, primary_key=True, autoincrement=True)
    name: Mapped[str] = mapped_column(String(KEY_NAME_MAX))  # station or person
    role: Mapped[str] = mapped_column(String(ROLE_MAX))
    key_prefix: Mapped[str] = mapped_column(String(KEY_PREFIX_LENGTH), index=True)
    key_hash: Mapped[str] = mapped_column(String(SHA256_HEX_LENGTH), unique=True)
    created_at: Mapped[dt.datetime] = mapped_column(UtcDateTime())
    revoked_at: Mapped[dt.datetime | None] = mapped_column(UtcDateTime())
    last_used_at: Mapped[dt.datetime | None] = mapped_column(UtcDateTime())


class AuditEventRow(Base):
    """One audit record, hash-chained to the one before it (see ``enrollment/audit.py``).

    Ids are assigned by the audit log under the chain lock (last id + 1), not by the database,
    so they are contiguous and a missing id is a deleted record. No foreign keys: a record
    must outlive whatever it mentions.
    """

    __tablename__ = "audit_events"

    id: Mapped[int] = mapped_column(IdType, primary_key=True, autoincrement=False)
    at: Mapped[dt.datetime] = mapped_column(UtcDateTime(), index=True)
    key_id: Mapped[int | None] = mapped_column(IdType)
    key_name: Mapped[str | None] = mapped_column(String(KEY_NAME_MAX))
    station: Mapped[str | None] = mapped_column(String(STATION_MAX), index=True)
    role: Mapped[str | None] = mapped_column(String(ROLE_MAX))
    action: Mapped[str] = mapped_column(String(AUDIT_ACTION_MAX), index=True)
    subject_ref: Mapped[str | None] = mapped_column(String(SUBJECT_REF_MAX), index=True)
    decision: Mapped[str | None] = mapped_column(String(AUDIT_DECISION_MAX))
    score: Mapped[float | None] = mapped_column(Float())
    threshold: Mapped[float | None] = mapped_column(Float())
    request_id: Mapped[str | None] = mapped_column(String(REQUEST_ID_MAX))
    outcome: Mapped[str] = mapped_column(String(AUDIT_OUTCOME_MAX))
    details: Mapped[dict[str, Any]] = mapped_column(JSON())
    prev_hash: Mapped[str] = mapped_column(String(SHA256_HEX_LENGTH))
    hash: Mapped[str] = mapped_column(String(SHA256_HEX_LENGTH), unique=True)


class AuditChainHead(Base):
    """The one row naming the newest audit record. Appenders lock it (``SELECT … FOR UPDATE``
    on PostgreSQL, ``BEGIN IMMEDIATE`` on SQLite), which serialises them, and it lets
    ``verify_chain`` notice records deleted from the end of the chain."""

    __tablename__ = "audit_chain_head"
    __table_args__ = (CheckConstraint(f"id = {AUDIT_CHAIN_HEAD_ID}", name="single_row"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    last_id: Mapped[int] = mapped_column(IdType)  # 0 while the chain is empty
    last_hash: Mapped[str] = mapped_column(String(SHA256_HEX_LENGTH))
    updated_at: Mapped[dt.datetime] = mapped_column(UtcDateTime())


# -- the template change log (enrollment/changes.py) ------------------------------------------

TEMPLATE_CHANGE_HEAD_ID = 1  # the head table holds exactly this one row


class TemplateChangeOperation(StrEnum):
    ADD = "add"
    REMOVE = "remove"


class TemplateChangeRow(Base):
    """One template added to or removed from the gallery, written in the transaction that
    made the change. Replicas replay the log by ``seq`` into their in-memory index.

    ``seq`` is assigned from the head row under its row lock (last + 1), not by a database
    sequence: a sequence hands out numbers at insert and commits them out of order, so a
    replica that had read up to 7 could never see a 6 committed after it. Under the head's
    lock the log commits in ``seq`` order with no gaps. No foreign keys: a removal outlives
    the template it names.
    """

    __tablename__ = "template_changes"
    __table_args__ = (
        CheckConstraint(_in_values("operation", TemplateChangeOperation), name="operation"),
    )

    seq: Mapped[int] = mapped_column(IdType, primary_key=True, autoincrement=False)
    operation: Mapped[str] = mapped_column(String(8))
    template_id: Mapped[int] = mapped_column(IdType)
    subject_id: Mapped[int] = mapped_column(IdType)
    at: Mapped[dt.datetime] = mapped_column(UtcDateTime())


class TemplateChangeHead(Base):
    """The one row holding the newest change's ``seq``. Writers of the log lock it (an UPDATE
    on PostgreSQL, BEGIN IMMEDIATE on SQLite), so the log commits in order."""

    __tablename__ = "template_change_head"
    __table_args__ = (CheckConstraint(f"id = {TEMPLATE_CHANGE_HEAD_ID}", name="single_row"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    last_seq: Mapped[int] = mapped_column(IdType)  # 0 while the log is empty


# -- applications and their timeline (enrollment/applications.py) ----------------------------


class ApplicationRow(Base):
    """An application (passport, visa, stay permit) of one subject.

    ``lookup_check`` is the hex HMAC-SHA256, under a key derived from the records key, of the
    number and the applicant's date of birth as given at creation: the public status lookup
    compares against it without reading the identity, and a copy of the database alone cannot
    be searched for birth dates. ``subject_id`` becomes NULL when the subject is erased (a
    rejected duplicate enrollment): the decision stays readable and counted.
    """

    __tablename__ = "applications"
    __table_args__ = (
        CheckConstraint(_in_values("status", ApplicationStatus), name="status"),
        {"sqlite_autoincrement": True},
    )

    id: Mapped[int] = mapped_column(IdType, primary_key=True, autoincrement=True)
    number: Mapped[str] = mapped_column(String(APPLICATION_NUMBER_MAX), unique=True)
    application_type: Mapped[str] = mapped_column(String(APPLICATION_TYPE_MAX))
    subject_id: Mapped[int | None] = mapped_column(
        IdType, ForeignKey("subjects.id", ondelete="SET NULL"), index=True
    )
    status: Mapped[str] = mapped_column(String(APPLICATION_STATUS_MAX), index=True)
    lookup_check: Mapped[str] = mapped_column(String(LOOKUP_CHECK_LENGTH))
    created_at: Mapped[dt.datetime] = mapped_column(UtcDateTime(), index=True)
    updated_at: Mapped[dt.datetime] = mapped_column(UtcDateTime())


class ApplicationEventRow(Base):
    """One transition of an application: from, to, when, where (station), who (key) and why."""

    __tablename__ = "application_events"
    __table_args__ = (
        CheckConstraint(
            f"from_status IS NULL OR {_in_values('from_status', ApplicationStatus)}",
            name="from_status",
        ),
        CheckConstraint(_in_values("to_status", ApplicationStatus), name="to_status"),
        {"sqlite_autoincrement": True},
    )

    id: Mapped[int] = mapped_column(IdType, primary_key=True, autoincrement=True)
    application_id: Mapped[int] = mapped_column(
        IdType, ForeignKey("applications.id", ondelete="CASCADE"), index=True
    )
    from_status: Mapped[str | None] = mapped_column(String(APPLICATION_STATUS_MAX))
    to_status: Mapped[str] = mapped_column(String(APPLICATION_STATUS_MAX))
    at: Mapped[dt.datetime] = mapped_column(UtcDateTime(), index=True)
    station: Mapped[str] = mapped_column(String(STATION_MAX))
    key_id: Mapped[int | None] = mapped_column(IdType)
    reason: Mapped[str] = mapped_column(Text())
