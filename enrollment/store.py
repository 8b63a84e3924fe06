"""The record store: subjects, their identities, face samples, templates and review cases.

The database is the source of truth; the FAISS index is rebuilt from
:meth:`RecordStore.iter_templates`. The ORM stays inside the repositories (``subjects``,
``samples``, ``reviews``) and ``enrollment/db.py``: callers get frozen dataclasses
(``enrollment/records.py``).

Writes go through a unit of work: ``with store.transaction() as tx: tx.samples.add(capture);
tx.reviews.open(...)`` commits everything or nothing. The one-call methods below (``get_subject``,
``create_subject``, ``delete_subject``…) are each one short transaction of the same repositories.
API keys and the audit trail live in the same database (:attr:`RecordStore.keys`,
:attr:`RecordStore.audit`).
"""

from __future__ import annotations

import base64
import datetime as dt
import logging
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Final

import numpy as np
from sqlalchemy import Engine, select
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session, sessionmaker

from wajah.enrollment.access import KeyStore
from wajah.enrollment.application_states import DECISIONS
from wajah.enrollment.applications import ApplicationPolicy, ApplicationRepository, PublicStatus
from wajah.enrollment.audit import AuditLog
from wajah.enrollment.audit_anchor import ChainAnchor, anchor_key
from wajah.enrollment.changes import (
    TemplateChange,
    changes_after,
    last_change_seq,
    prune_changes,
    record_changes,
    serialise_enrollments,
)
from wajah.enrollment.clock import elapsed_ms
from wajah.enrollment.crypto import RecordCipher, load_or_create_key
from wajah.enrollment.db import (
    FaceSample,
    Meta,
    TemplateRow,
    create_database_engine,
    is_contention,
    session_factory,
    write_engine,
)
from wajah.enrollment.errors import EncryptionKeyError, InvalidSubjectData, StoreBusy
from wajah.enrollment.migrations import upgrade_database
from wajah.enrollment.records import (
    UNSET,
    Actor,
    ApplicationRecord,
    ApplicationStatus,
    Capture,
    MovedSamples,
    ReviewCandidate,
    ReviewRecord,
    ReviewResolution,
    ReviewStatus,
    SampleRecord,
    StoredTemplate,
    SubjectRecord,
    SubjectStatus,
    TemplateBatch,
    Unset,
)
from wajah.enrollment.reviews import ReviewRepository
from wajah.enrollment.samples import SampleRepository, template_columns
from wajah.enrollment.sealing import open_templates
from wajah.enrollment.session_scope import SessionScope
from wajah.enrollment.structured_log import log_event
from wajah.enrollment.subjects import SubjectRepository

__all__ = ["RecordStore", "Transaction", "open_record_store"]

logger = logging.getLogger(__name__)

KEY_CHECK_META_KEY: Final = "key_check"
ID_LIST_CHUNK: Final = 1_000  # ids per IN (...) list: well inside every backend's bind limit


class Transaction:
    """One unit of work: the repositories of one database transaction."""

    def __init__(self, scope: SessionScope) -> None:
        self.subjects = SubjectRepository(scope)
        self.samples = SampleRepository(scope)
        self.reviews = ReviewRepository(scope)
        self.applications = ApplicationRepository(scope)
        self._session = scope.session

    def serialise_enrollments(self) -> None:
        """Wait until no other transaction (of any process) that called this is open, and
        hold the turn until this one ends
        (see :func:`wajah.enrollment.changes.serialise_enrollments`)."""
        serialise_enrollments(self._session)


def open_record_store(
    database_url: str,
    key_b64: str | None,
    key_file: Path,
    *,
    audit_anchor_file: Path | None = None,
) -> RecordStore:
    """Open (creating and migrating if needed) the store at ``database_url``.

    ``audit_anchor_file``: where the audit chain's signed head is kept outside the database
    (``audit_anchor.py``); without it the chain is checked against the database alone.

    A new key file is created only for a database that has no key-check value yet; a database
    with records needs its own key, and a missing one raises :class:`EncryptionKeyError`.
    The returned store owns its engine: call :meth:`RecordStore.dispose` when done.
    """
    engine = create_database_engine(database_url)
    try:
        upgrade_database(engine)
        with engine.connect() as connection:
            has_key_check = (
                connection.execute(
                    select(Meta.value).where(Meta.key == KEY_CHECK_META_KEY)
                ).scalar_one_or_none()
                is not None
            )
        key = load_or_create_key(key_b64, key_file, create=not has_key_check)
        anchor = (
            None if audit_anchor_file is None else ChainAnchor(audit_anchor_file, anchor_key(key))
        )
        return RecordStore(engine, RecordCipher(key), migrated=True, audit_anchor=anchor)
    except BaseException:
        engine.dispose()
        raise


class RecordStore:
    """Repository over the record database. Safe to share between threads: it holds only the
    engine (pooled), session factories, the cipher and the key and audit repositories (both
    thread-safe), and each call or transaction uses its own session.

    Construction migrates the schema to the newest revision (unless the caller just did:
    ``migrated=True``) and verifies the key against the database's key-check value (written on
    first start), raising :class:`EncryptionKeyError` for a wrong key before any record is read.
    """

    def __init__(
        self,
        engine: Engine,
        cipher: RecordCipher,
        *,
        migrated: bool = False,
        audit_anchor: ChainAnchor | None = None,
    ) -> None:
        self._engine = engine
        self._cipher = cipher
        self._read_sessions = session_factory(engine)
        self._write_sessions = session_factory(write_engine(engine))
        self._is_sqlite = engine.dialect.name == "sqlite"
        if not migrated:
            upgrade_database(engine)
        self._check_key()
        self._keys = KeyStore(engine)
        self._audit = AuditLog(engine, anchor=audit_anchor)

    @property
    def cipher(self) -> RecordCipher:
        """The records cipher (the gallery index file is sealed with the same key)."""
        return self._cipher

    @property
    def engine(self) -> Engine:
        """The engine this store owns, for tools that seed its tables directly. Disposed with
        the store."""
        return self._engine

    @property
    def keys(self) -> KeyStore:
        """The API keys, kept in the same database."""
        return self._keys

    @property
    def audit(self) -> AuditLog:
        """The audit trail, kept in the same database."""
        return self._audit

    def dispose(self) -> None:
        """Close the engine's pooled connections."""
        self._engine.dispose()

    # -- units of work ----------------------------------------------------------------------

    @contextmanager
    def transaction(self) -> Iterator[Transaction]:
        """A write transaction (BEGIN IMMEDIATE on SQLite, so writers queue instead of failing
        on a stale snapshot): committed when the block ends, rolled back if it raises. Its log
        lines are written after the commit."""
        yield from self._unit(self._write_sessions, writing=True)

    @contextmanager
    def _reading(self) -> Iterator[Transaction]:
        """A read-only transaction: one snapshot, never blocking the writer."""
        yield from self._unit(self._read_sessions, writing=False)

    def _unit(self, sessions: sessionmaker[Session], *, writing: bool) -> Iterator[Transaction]:
        try:
            with sessions.begin() as session:
                scope = SessionScope(session, self._cipher)
                yield Transaction(scope)
                record_changes(session, scope.template_changes)
        except DBAPIError as error:
            if not is_contention(error):
                raise
            log_event(logger, "store_busy", level=logging.WARNING, writing=writing)
            raise StoreBusy(
                "the database is busy with other writers; nothing was written, try again"
            ) from error
        for event, fields in scope.events:
            log_event(logger, event, **fields)
        if writing and scope.erased_subject:
            self._truncate_wal()

    # -- subjects ---------------------------------------------------------------------------

    def create_subject(
        self,
        subject_ref: str,
        full_name: str,
        date_of_birth: dt.date | str | None = None,
        nationality: str | None = None,
        document_number: str | None = None,
        status: SubjectStatus | str = SubjectStatus.ACTIVE,
    ) -> SubjectRecord:
        """A new subject with its identity; :class:`SubjectAlreadyExists` for a used ref."""
        with self.transaction() as tx:
            return tx.subjects.create(
                subject_ref, full_name, date_of_birth, nationality, document_number, status
            )

    def get_subject(self, subject_id: int) -> SubjectRecord:
        with self._reading() as tx:
            return tx.subjects.get(subject_id)

    def get_subject_by_ref(self, subject_ref: str) -> SubjectRecord:
        with self._reading() as tx:
            return tx.subjects.get_by_ref(subject_ref)

    def list_subjects(
        self,
        offset: int = 0,
        limit: int = 50,
        status: SubjectStatus | str | None = None,
        nationality: str | None = None,
        name_contains: str | None = None,
    ) -> tuple[list[SubjectRecord], int]:
        """A page of subjects in id order, and the total matching the filters."""
        with self._reading() as tx:
            return tx.subjects.list(offset, limit, status, nationality, name_contains)

    def update_subject(
        self,
        subject_id: int,
        *,
        full_name: str | Unset = UNSET,
        date_of_birth: dt.date | str | Unset | None = UNSET,
        nationality: str | Unset | None = UNSET,
        document_number: str | Unset | None = UNSET,
    ) -> SubjectRecord:
        """Change the given identity fields; ``None`` clears an optional field."""
        with self.transaction() as tx:
            return tx.subjects.update(
                subject_id,
                full_name=full_name,
                date_of_birth=date_of_birth,
                nationality=nationality,
                document_number=document_number,
            )

    def set_status(self, subject_id: int, status: SubjectStatus | str) -> SubjectRecord:
        with self.transaction() as tx:
            return tx.subjects.set_status(subject_id, status)

    def delete_subject(self, subject_id: int) -> np.ndarray:
        """Erase a subject (see :meth:`SubjectRepository.erase`); returns the removed template
        ids, (N,) int64."""
        with self.transaction() as tx:
            return tx.subjects.erase(subject_id)

    # -- samples and templates --------------------------------------------------------------

    def add_sample(self, capture: Capture) -> tuple[SampleRecord, StoredTemplate]:
        """Store one capture and its template in one transaction."""
        with self.transaction() as tx:
            return tx.samples.add(capture)

    def get_sample(self, sample_id: int) -> SampleRecord:
        with self._reading() as tx:
            return tx.samples.get(sample_id)

    def list_samples(self, subject_id: int) -> list[SampleRecord]:
        with self._reading() as tx:
            return tx.samples.list_of_subject(subject_id)

    def get_chip(self, sample_id: int) -> np.ndarray:
        """The sample's aligned face chip, (150, 150, 3) uint8 RGB."""
        with self._reading() as tx:
            return tx.samples.chip(sample_id)

    def get_image(self, sample_id: int) -> bytes | None:
        """The original image bytes, or None when only the chip was kept."""
        with self._reading() as tx:
            return tx.samples.image(sample_id)

    def has_image_sha256(self, image_sha256: str) -> str | None:
        """The subject_ref of a subject already holding an image with this SHA-256, if any."""
        with self._reading() as tx:
            return tx.samples.owner_of_image(image_sha256)

    def subject_templates(self, subject_id: int, model_tag: str) -> list[StoredTemplate]:
        with self._reading() as tx:
            return tx.samples.templates_of_subject(subject_id, model_tag)

    def all_template_ids(self, model_tag: str) -> np.ndarray:
        """(N,) int64, ascending."""
        with self._reading() as tx:
            return tx.samples.template_ids(model_tag)

    def template_owners(self, model_tag: str) -> tuple[np.ndarray, np.ndarray]:
        """(template ids (N,) int64 ascending, their subject ids (N,) int64)."""
        with self._reading() as tx:
            return tx.samples.template_owners(model_tag)

    def count_templates(self, model_tag: str) -> int:
        with self._reading() as tx:
            return tx.samples.count_templates(model_tag)

    def template_ids_of_subject(self, subject_id: int, model_tag: str | None = None) -> np.ndarray:
        """(N,) int64, ascending; of every model unless ``model_tag`` is given."""
        with self._reading() as tx:
            return tx.samples.template_ids_of_subject(subject_id, model_tag)

    def move_samples(self, from_subject_id: int, to_subject_id: int) -> MovedSamples:
        """Re-link every sample (and its templates) of one subject to another (a merge)."""
        with self.transaction() as tx:
            return tx.samples.move(from_subject_id, to_subject_id)

    def iter_templates(
        self, model_tag: str, after_id: int = 0, batch: int = 10_000
    ) -> Iterator[TemplateBatch]:
        """All templates of ``model_tag`` with id > ``after_id``, decrypted, in batches of
        ascending id (keyset pagination: one short read per batch, no long-held snapshot).
        For an index rebuild (``after_id=0``) or a replay from the index's checkpoint."""
        if batch < 1:
            raise ValueError("batch must be at least 1")
        last_id = after_id
        while True:
            with self._engine.connect() as connection:
                rows = connection.execute(
                    template_columns()
                    .where(TemplateRow.model_tag == model_tag, TemplateRow.id > last_id)
                    .order_by(TemplateRow.id)
                    .limit(batch)
                ).all()
            if not rows:
                return
            yield open_templates(self._cipher, rows, model_tag)
            if len(rows) < batch:
                return
            last_id = int(rows[-1][0])

    def templates_by_id(self, template_ids: np.ndarray, model_tag: str) -> TemplateBatch:
        """The templates of ``model_tag`` among ``template_ids`` ((N,) int64) that the database
        still holds, decrypted, in ascending id order (a replica replaying the change log)."""
        ids = sorted({int(template_id) for template_id in template_ids.tolist()})
        rows: list[Any] = []
        with self._engine.connect() as connection:
            for start in range(0, len(ids), ID_LIST_CHUNK):
                rows.extend(
                    connection.execute(
                        template_columns()
                        .where(
                            TemplateRow.model_tag == model_tag,
                            TemplateRow.id.in_(ids[start : start + ID_LIST_CHUNK]),
                        )
                        .order_by(TemplateRow.id)
                    ).all()
                )
        return open_templates(self._cipher, rows, model_tag)

    # -- the template change log (enrollment/changes.py) -------------------------------------

    def template_changes_after(self, after_seq: int, limit: int = 10_000) -> list[TemplateChange]:
        """Up to ``limit`` logged template changes with ``seq > after_seq``, in order."""
        with self._engine.connect() as connection:
            return changes_after(connection, after_seq, limit)

    def last_template_change(self) -> int:
        """The ``seq`` of the newest committed template change (0 for none)."""
        with self._engine.connect() as connection:
            return last_change_seq(connection)

    def prune_template_changes(self, older_than: dt.datetime) -> int:
        """Delete the template changes logged before ``older_than`` (a prefix of the log:
        ``changes.prune_changes``); returns how many. A replica that had not applied them
        reconciles its index with the database instead (``GalleryKeeper.catch_up``)."""
        return prune_changes(self._engine, older_than)

    # -- reviews ----------------------------------------------------------------------------

    def create_review(self, subject_id: int, candidates: Sequence[ReviewCandidate]) -> ReviewRecord:
        """Open a duplicate-identity case for ``subject_id`` against ``candidates``."""
        with self.transaction() as tx:
            return tx.reviews.open(subject_id, candidates)

    def get_review(self, review_id: int) -> ReviewRecord:
        with self._reading() as tx:
            return tx.reviews.get(review_id)

    def list_reviews(
        self, status: ReviewStatus | str | None = None, offset: int = 0, limit: int = 100
    ) -> list[ReviewRecord]:
        """Reviews in id order (oldest case first), optionally of one status."""
        with self._reading() as tx:
            return tx.reviews.list(status, offset, limit)

    def resolve_review(
        self,
        review_id: int,
        resolution: ReviewResolution | str,
        resolved_by: str,
        comment: str | None = None,
    ) -> ReviewRecord:
        """Record a supervisor's decision; :class:`ReviewAlreadyResolved` for the loser of two
        concurrent resolutions."""
        with self.transaction() as tx:
            return tx.reviews.resolve(review_id, resolution, resolved_by, comment)

    # -- applications -----------------------------------------------------------------------

    def create_application(
        self, subject_ref: str, application_type: str, policy: ApplicationPolicy, actor: Actor
    ) -> ApplicationRecord:
        """A new ``submitted`` application of the subject, numbered by ``policy``. The subject
        needs a date of birth: it is what the applicant's status lookup asks for."""
        with self.transaction() as tx:
            subject = tx.subjects.get_by_ref(subject_ref)
            if subject.date_of_birth is None:
                raise InvalidSubjectData(
                    "the subject has no date of birth; the applicant's status lookup needs one",
                    field="date_of_birth",
                )
            return tx.applications.create(
                subject.id, application_type, policy, actor, date_of_birth=subject.date_of_birth
            )

    def decide_application(
        self, number: str, decision: ApplicationStatus | str, actor: Actor, reason: str
    ) -> ApplicationRecord:
        """An officer's or a supervisor's decision: ``approved`` or ``rejected``; the
        transition table refuses any other move with :class:`IllegalTransition`."""
        try:
            target = ApplicationStatus(decision)
        except ValueError:
            target = None
        if target is None or target not in DECISIONS:
            raise InvalidSubjectData("decision must be approved or rejected", field="decision")
        with self.transaction() as tx:
            return tx.applications.decide(number, target, actor, reason)

    def get_application(self, number: str) -> ApplicationRecord:
        with self._reading() as tx:
            return tx.applications.get(number)

    def list_applications(
        self,
        *,
        subject_id: int | None = None,
        status: ApplicationStatus | str | None = None,
        offset: int = 0,
        limit: int = 50,
    ) -> tuple[list[ApplicationRecord], int]:
        with self._reading() as tx:
            return tx.applications.page(
                subject_id=subject_id, status=status, offset=offset, limit=limit
            )

    def lookup_application(self, number: str, date_of_birth: dt.date | str) -> PublicStatus:
        with self._reading() as tx:
            return tx.applications.lookup(number, date_of_birth)

    # -- maintenance ------------------------------------------------------------------------

    def integrity_check(self) -> str:
        """'ok' when sound, else one line per problem found.

        On SQLite, ``PRAGMA integrity_check`` (pages, indexes, b-trees). PostgreSQL checks its
        own pages (checksums, WAL replay) and has no portable equivalent a non-superuser may
        run (``amcheck`` needs an extension); there the check is of the store's own
        invariants the schema cannot enforce: every template belongs to its sample's subject
        (the column is denormalised for the index rebuild), and every sample and template to
        an existing subject."""
        if not self._is_sqlite:
            return self._check_postgresql_invariants()
        with self._engine.connect() as connection:
            rows = connection.exec_driver_sql("PRAGMA integrity_check").scalars().all()
        return "\n".join(str(row) for row in rows)

    def _check_postgresql_invariants(self) -> str:
        checks = {
            "templates whose subject differs from their sample's": (
                "SELECT count(*) FROM templates JOIN face_samples "
                "ON face_samples.id = templates.sample_id "
                "WHERE face_samples.subject_id <> templates.subject_id"
            ),
            "samples of a missing subject": (
                "SELECT count(*) FROM face_samples LEFT JOIN subjects "
                "ON subjects.id = face_samples.subject_id WHERE subjects.id IS NULL"
            ),
            "templates of a missing sample": (
                "SELECT count(*) FROM templates LEFT JOIN face_samples "
                "ON face_samples.id = templates.sample_id WHERE face_samples.id IS NULL"
            ),
        }
        problems = []
        with self._engine.connect() as connection:
            for problem, query in checks.items():
                count = int(connection.exec_driver_sql(query).scalar_one())
                if count:
                    problems.append(f"{count} {problem}")
        return "\n".join(problems) or "ok"

    def _check_key(self) -> None:
        with self._write_sessions.begin() as session:
            stored = session.get(Meta, KEY_CHECK_META_KEY)
            if stored is not None:
                try:
                    value = base64.b64decode(stored.value, validate=True)
                except ValueError:
                    raise EncryptionKeyError("the stored key-check value is corrupt") from None
                self._cipher.verify_key_check(value)
                return
            holds_records = session.execute(select(FaceSample.id).limit(1)).first() is not None
            if holds_records:
                raise EncryptionKeyError(
                    "the database holds encrypted records but no key-check value; "
                    "refusing to start rather than guess whether this key is the right one"
                )
            check = base64.b64encode(self._cipher.key_check_value()).decode("ascii")
            session.add(Meta(key=KEY_CHECK_META_KEY, value=check))
        log_event(logger, "records_key_check_written")

    def _truncate_wal(self) -> None:
        if not self._is_sqlite:
            return
        started = time.perf_counter()
        with self._engine.connect() as connection:
            # On the driver connection: outside any transaction, as a checkpoint must be.
            driver = connection.connection.driver_connection
            assert driver is not None
            busy, _, _ = driver.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()
        if busy:
            log_event(logger, "wal_truncate_incomplete", elapsed_ms=elapsed_ms(started))
