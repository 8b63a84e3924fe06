"""The record store: subjects, their identities, face samples, templates and review cases.

The database is the source of truth; the FAISS index is rebuilt from
:meth:`RecordStore.iter_templates`. The ORM stays inside this module and ``enrollment/db.py``:
callers get frozen dataclasses.

Every public method is one short transaction, and every write is atomic. A row that carries a
ciphertext is inserted first, flushed to learn its id, then given its ciphertext, whose associated
data names that id (and the sample, subject and model it belongs to) — all in the same
transaction. So a ciphertext copied to another row, or a template or sample re-linked to another
subject behind the store's back, fails to decrypt rather than matching as somebody else.
"""

from __future__ import annotations

import base64
import datetime as dt
import logging
import math
import time
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any, Final

import numpy as np
from sqlalchemy import Engine, delete, func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from biometric.templates import Template
from enrollment.clock import elapsed_ms, utcnow
from enrollment.crypto import RecordCipher, load_or_create_key
from enrollment.db import (
    ACTOR_MAX,
    STATION_MAX,
    FaceSample,
    Meta,
    Review,
    Subject,
    SubjectIdentity,
    TemplateRow,
    create_database_engine,
    session_factory,
    write_engine,
)
from enrollment.errors import (
    EncryptionKeyError,
    InvalidSubjectData,
    ReviewAlreadyResolved,
    ReviewNotFound,
    SampleNotFound,
    SubjectAlreadyExists,
    SubjectNotFound,
)
from enrollment.migrations import upgrade_database
from enrollment.records import (
    UNSET,
    CaptureSource,
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
from enrollment.sealing import (
    chip_associated,
    decode_chip,
    encode_chip,
    image_associated,
    open_templates,
    read_only_vector,
    template_associated,
    template_plaintext,
)
from enrollment.structured_log import log_event
from enrollment.validation import (
    check_page,
    clean_aware_utc,
    clean_date_of_birth,
    clean_document_number,
    clean_full_name,
    clean_nationality,
    clean_quality_report,
    clean_sha256,
    clean_subject_ref,
    clean_text,
    parse_choice,
)

__all__ = [
    "UNSET",
    "CaptureSource",
    "MovedSamples",
    "RecordStore",
    "ReviewCandidate",
    "ReviewRecord",
    "ReviewResolution",
    "ReviewStatus",
    "SampleRecord",
    "StoredTemplate",
    "SubjectRecord",
    "SubjectStatus",
    "TemplateBatch",
    "Unset",
    "open_record_store",
]

logger = logging.getLogger(__name__)

KEY_CHECK_META_KEY: Final = "key_check"


def open_record_store(database_url: str, key_b64: str | None, key_file: Path) -> RecordStore:
    """Open (creating and migrating if needed) the store at ``database_url``.

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
        return RecordStore(engine, RecordCipher(key))
    except BaseException:
        engine.dispose()
        raise


class RecordStore:
    """Repository over the record database. Safe to share between threads: it holds only the
    engine (pooled), session factories and the cipher, and each call uses its own session.

    Construction migrates the schema to the newest revision and verifies the key against the
    database's key-check value (written on first start), raising :class:`EncryptionKeyError`
    for a wrong key before any record is read.
    """

    def __init__(self, engine: Engine, cipher: RecordCipher) -> None:
        self._engine = engine
        self._cipher = cipher
        self._read_sessions = session_factory(engine)
        self._write_sessions = session_factory(write_engine(engine))
        self._is_sqlite = engine.dialect.name == "sqlite"
        upgrade_database(engine)
        self._check_key()

    @property
    def cipher(self) -> RecordCipher:
        """The records cipher (the gallery index file is sealed with the same key)."""
        return self._cipher

    def dispose(self) -> None:
        """Close the engine's pooled connections."""
        self._engine.dispose()

    # -- start-up ---------------------------------------------------------------------------

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
        _log("records_key_check_written")

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
        ref = clean_subject_ref(subject_ref)
        identity = SubjectIdentity(
            full_name=clean_full_name(full_name),
            date_of_birth=clean_date_of_birth(date_of_birth),
            nationality=clean_nationality(nationality),
            document_number=clean_document_number(document_number),
        )
        subject_status = parse_choice(SubjectStatus, status, "status")
        now = utcnow()
        try:
            with self._write_sessions.begin() as session:
                if session.execute(select(Subject.id).where(Subject.subject_ref == ref)).first():
                    raise _already_exists(ref)
                subject = Subject(
                    subject_ref=ref, status=subject_status.value, created_at=now, updated_at=now
                )
                session.add(subject)
                session.flush()
                identity.subject_id = subject.id
                session.add(identity)
        except IntegrityError:
            # Another writer took the reference between our check and insert (PostgreSQL).
            raise _already_exists(ref) from None
        _log("subject_created", subject_id=subject.id, status=subject_status.value)
        return _subject_record(subject, identity, sample_count=0)

    def get_subject(self, subject_id: int) -> SubjectRecord:
        return self._one_subject(Subject.id == subject_id, subject_id=subject_id)

    def get_subject_by_ref(self, subject_ref: str) -> SubjectRecord:
        return self._one_subject(Subject.subject_ref == subject_ref, subject_ref=subject_ref)

    def _one_subject(
        self, condition: Any, *, subject_id: int | None = None, subject_ref: str | None = None
    ) -> SubjectRecord:
        with self._read_sessions() as session:
            row = session.execute(_subject_query().where(condition)).first()
        if row is None:
            raise SubjectNotFound("no such subject", subject_id=subject_id, subject_ref=subject_ref)
        return _subject_record(row[0], row[1], row[2])

    def list_subjects(
        self,
        offset: int = 0,
        limit: int = 50,
        status: SubjectStatus | str | None = None,
        nationality: str | None = None,
        name_contains: str | None = None,
    ) -> tuple[list[SubjectRecord], int]:
        """A page of subjects in id order, and the total matching the filters.

        ``name_contains`` is a case-insensitive substring match (ASCII case folding only on
        SQLite, whose ``lower()`` leaves other letters alone).
        """
        check_page(offset, limit)
        conditions: list[Any] = []
        if status is not None:
            conditions.append(Subject.status == parse_choice(SubjectStatus, status, "status").value)
        if nationality is not None:
            conditions.append(SubjectIdentity.nationality == clean_nationality(nationality))
        if name_contains:
            conditions.append(
                func.lower(SubjectIdentity.full_name).contains(
                    name_contains.strip().lower(), autoescape=True
                )
            )
        count_query = (
            select(func.count())
            .select_from(Subject)
            .join(SubjectIdentity, SubjectIdentity.subject_id == Subject.id)
            .where(*conditions)
        )
        page_query = _subject_query().where(*conditions).order_by(Subject.id)
        with self._read_sessions() as session:
            total = session.execute(count_query).scalar_one()
            rows = session.execute(page_query.offset(offset).limit(limit)).all()
        return [_subject_record(row[0], row[1], row[2]) for row in rows], int(total)

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
        changes: dict[str, Any] = {}
        if not isinstance(full_name, Unset):
            changes["full_name"] = clean_full_name(full_name)
        if not isinstance(date_of_birth, Unset):
            changes["date_of_birth"] = clean_date_of_birth(date_of_birth)
        if not isinstance(nationality, Unset):
            changes["nationality"] = clean_nationality(nationality)
        if not isinstance(document_number, Unset):
            changes["document_number"] = clean_document_number(document_number)
        with self._write_sessions.begin() as session:
            subject = _require_subject(session, subject_id)
            if changes:
                session.execute(
                    update(SubjectIdentity)
                    .where(SubjectIdentity.subject_id == subject_id)
                    .values(**changes)
                )
                subject.updated_at = utcnow()
        _log("subject_updated", subject_id=subject_id, fields=sorted(changes))
        return self.get_subject(subject_id)

    def set_status(self, subject_id: int, status: SubjectStatus | str) -> SubjectRecord:
        subject_status = parse_choice(SubjectStatus, status, "status")
        with self._write_sessions.begin() as session:
            subject = _require_subject(session, subject_id)
            subject.status = subject_status.value
            subject.updated_at = utcnow()
        _log("subject_status_set", subject_id=subject_id, status=subject_status.value)
        return self.get_subject(subject_id)

    def delete_subject(self, subject_id: int) -> np.ndarray:
        """Erase a subject: its record, identity, samples, chips, images, templates and review
        cases, and its reference in other cases' candidate lists. Returns the removed template
        ids, (N,) int64, for the caller to remove from the index.

        On SQLite the freed pages are zeroed (``secure_delete``) and the WAL is checkpointed
        and truncated afterwards, so the erased ciphertexts do not linger in the files.
        """
        with self._write_sessions.begin() as session:
            _require_subject(session, subject_id)
            template_ids = _int64_array(
                session.execute(
                    select(TemplateRow.id)
                    .where(TemplateRow.subject_id == subject_id)
                    .order_by(TemplateRow.id)
                ).scalars()
            )
            # Children first and explicitly: correct even on a connection without enforced
            # foreign keys; the ON DELETE CASCADEs are the second line.
            session.execute(delete(TemplateRow).where(TemplateRow.subject_id == subject_id))
            session.execute(delete(FaceSample).where(FaceSample.subject_id == subject_id))
            # An open case about this subject is moot; a resolved one is the supervisor's
            # record and stays, without the erased subject's id and reference.
            session.execute(
                delete(Review).where(
                    Review.subject_id == subject_id, Review.status == ReviewStatus.OPEN.value
                )
            )
            session.execute(
                update(Review)
                .where(Review.subject_id == subject_id)
                .values(subject_id=None, subject_ref=None)
                .execution_options(synchronize_session=False)
            )
            session.execute(delete(SubjectIdentity).where(SubjectIdentity.subject_id == subject_id))
            session.execute(delete(Subject).where(Subject.id == subject_id))
            scrubbed = _forget_candidate(session, subject_id)
        self._truncate_wal()
        _log(
            "subject_deleted",
            subject_id=subject_id,
            template_count=len(template_ids),
            reviews_scrubbed=scrubbed,
        )
        return template_ids

    # -- samples and templates --------------------------------------------------------------

    def add_sample(
        self,
        subject_id: int,
        capture_source: CaptureSource | str,
        quality: Mapping[str, Any],
        chip: np.ndarray,
        image_bytes: bytes | None,
        image_sha256: str,
        station: str,
        captured_at: dt.datetime | None,
        template: Template,
    ) -> tuple[SampleRecord, StoredTemplate]:
        """Store one capture and its template in one transaction.

        ``chip`` is the aligned (150, 150, 3) uint8 RGB face chip (kept as an encrypted PNG);
        ``image_bytes`` the original upload, kept encrypted when given; ``image_sha256`` the
        hex SHA-256 of the upload as received (makes bulk import resumable);
        ``captured_at`` an aware datetime, or None for now.
        """
        sample, stored, _ = self._add_sample(
            subject_id,
            capture_source,
            quality,
            chip,
            image_bytes,
            image_sha256,
            station,
            captured_at,
            template,
            review_candidates=(),
        )
        return sample, stored

    def add_sample_for_review(
        self,
        subject_id: int,
        capture_source: CaptureSource | str,
        quality: Mapping[str, Any],
        chip: np.ndarray,
        image_bytes: bytes | None,
        image_sha256: str,
        station: str,
        captured_at: dt.datetime | None,
        template: Template,
        review_candidates: Sequence[ReviewCandidate],
    ) -> tuple[SampleRecord, StoredTemplate, ReviewRecord]:
        """:meth:`add_sample`, and in the SAME transaction open a duplicate-identity case
        against ``review_candidates`` and put the subject in ``pending_review``: a crash can
        never leave a stored look-alike without its case (a resumed import would skip it)."""
        if not review_candidates:
            raise ValueError("a review needs at least one candidate")
        sample, stored, review = self._add_sample(
            subject_id,
            capture_source,
            quality,
            chip,
            image_bytes,
            image_sha256,
            station,
            captured_at,
            template,
            review_candidates=review_candidates,
        )
        assert review is not None
        return sample, stored, review

    def _add_sample(
        self,
        subject_id: int,
        capture_source: CaptureSource | str,
        quality: Mapping[str, Any],
        chip: np.ndarray,
        image_bytes: bytes | None,
        image_sha256: str,
        station: str,
        captured_at: dt.datetime | None,
        template: Template,
        *,
        review_candidates: Sequence[ReviewCandidate],
    ) -> tuple[SampleRecord, StoredTemplate, ReviewRecord | None]:
        """The body of add_sample and add_sample_for_review."""
        source = parse_choice(CaptureSource, capture_source, "capture_source")
        quality_json = clean_quality_report(quality)
        chip_png = encode_chip(chip)
        vector = template_plaintext(template)
        sha = clean_sha256(image_sha256)
        station_name = clean_text(station, "station", STATION_MAX, required=True)
        captured = clean_aware_utc(captured_at) if captured_at is not None else utcnow()
        now = utcnow()
        with self._write_sessions.begin() as session:
            subject = _require_subject(session, subject_id)
            sample = FaceSample(
                subject_id=subject_id,
                capture_source=source.value,
                quality=quality_json,
                chip_ciphertext=b"",
                image_ciphertext=None,
                image_sha256=sha,
                captured_at=captured,
                station=station_name,
            )
            session.add(sample)
            session.flush()
            sample.chip_ciphertext = self._cipher.encrypt(
                chip_png, chip_associated(sample.id, subject_id)
            )
            if image_bytes is not None:
                sample.image_ciphertext = self._cipher.encrypt(
                    image_bytes, image_associated(sample.id, subject_id)
                )
            row = TemplateRow(
                sample_id=sample.id,
                subject_id=subject_id,
                model_tag=template.model_tag,
                vector_ciphertext=b"",
                created_at=now,
            )
            session.add(row)
            session.flush()
            row.vector_ciphertext = self._cipher.encrypt(
                vector.tobytes(),
                template_associated(row.id, sample.id, subject_id, template.model_tag),
            )
            subject.updated_at = now
            review: Review | None = None
            if review_candidates:
                review = Review(
                    subject_id=subject_id,
                    subject_ref=subject.subject_ref,
                    candidates=[_candidate_json(candidate) for candidate in review_candidates],
                    status=ReviewStatus.OPEN.value,
                    created_at=now,
                )
                session.add(review)
                subject.status = SubjectStatus.PENDING_REVIEW.value
        _log("sample_added", subject_id=subject_id, sample_id=sample.id, template_id=row.id)
        stored = StoredTemplate(
            template_id=row.id,
            subject_id=subject_id,
            sample_id=sample.id,
            model_tag=template.model_tag,
            vector=read_only_vector(vector.astype(np.float32)),
        )
        return (
            _sample_record(sample),
            stored,
            None if review is None else _review_record(review),
        )

    def get_sample(self, sample_id: int) -> SampleRecord:
        with self._read_sessions() as session:
            return _sample_record(_require_sample(session, sample_id))

    def list_samples(self, subject_id: int) -> list[SampleRecord]:
        with self._read_sessions() as session:
            _require_subject(session, subject_id)
            samples = session.execute(
                select(FaceSample)
                .where(FaceSample.subject_id == subject_id)
                .order_by(FaceSample.id)
            ).scalars()
            return [_sample_record(sample) for sample in samples]

    def get_chip(self, sample_id: int) -> np.ndarray:
        """The sample's aligned face chip, (150, 150, 3) uint8 RGB."""
        with self._read_sessions() as session:
            sample = _require_sample(session, sample_id)
            ciphertext, subject_id = sample.chip_ciphertext, sample.subject_id
        png = self._cipher.decrypt(ciphertext, chip_associated(sample_id, subject_id))
        return decode_chip(png)

    def get_image(self, sample_id: int) -> bytes | None:
        """The original image bytes, or None when only the chip was kept."""
        with self._read_sessions() as session:
            sample = _require_sample(session, sample_id)
            ciphertext, subject_id = sample.image_ciphertext, sample.subject_id
        if ciphertext is None:
            return None
        return self._cipher.decrypt(ciphertext, image_associated(sample_id, subject_id))

    def subject_templates(self, subject_id: int, model_tag: str) -> list[StoredTemplate]:
        with self._read_sessions() as session:
            _require_subject(session, subject_id)
            rows = session.execute(
                _template_columns()
                .where(TemplateRow.subject_id == subject_id, TemplateRow.model_tag == model_tag)
                .order_by(TemplateRow.id)
            ).all()
        if not rows:
            return []
        batch = self._decrypt_batch(rows, model_tag)
        return [
            StoredTemplate(
                template_id=int(row[0]),
                subject_id=int(row[2]),
                sample_id=int(row[1]),
                model_tag=model_tag,
                vector=read_only_vector(batch.vectors[index]),
            )
            for index, row in enumerate(rows)
        ]

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
                    _template_columns()
                    .where(TemplateRow.model_tag == model_tag, TemplateRow.id > last_id)
                    .order_by(TemplateRow.id)
                    .limit(batch)
                ).all()
            if not rows:
                return
            yield self._decrypt_batch(rows, model_tag)
            if len(rows) < batch:
                return
            last_id = int(rows[-1][0])

    def _decrypt_batch(self, rows: Sequence[Any], model_tag: str) -> TemplateBatch:
        return open_templates(self._cipher, rows, model_tag)

    def all_template_ids(self, model_tag: str) -> np.ndarray:
        """(N,) int64, ascending."""
        with self._engine.connect() as connection:
            return _int64_array(
                connection.execute(
                    select(TemplateRow.id)
                    .where(TemplateRow.model_tag == model_tag)
                    .order_by(TemplateRow.id)
                ).scalars()
            )

    def template_owners(self, model_tag: str) -> tuple[np.ndarray, np.ndarray]:
        """(template ids (N,) int64 ascending, their subject ids (N,) int64): lets the index
        notice templates that changed subject (a review's merge) as well as added or
        removed ones."""
        with self._engine.connect() as connection:
            rows = connection.execute(
                select(TemplateRow.id, TemplateRow.subject_id)
                .where(TemplateRow.model_tag == model_tag)
                .order_by(TemplateRow.id)
            ).all()
        ids = np.fromiter((row[0] for row in rows), dtype=np.int64, count=len(rows))
        owners = np.fromiter((row[1] for row in rows), dtype=np.int64, count=len(rows))
        return ids, owners

    def count_templates(self, model_tag: str) -> int:
        with self._engine.connect() as connection:
            return int(
                connection.execute(
                    select(func.count()).where(TemplateRow.model_tag == model_tag)
                ).scalar_one()
            )

    def template_ids_of_subject(self, subject_id: int, model_tag: str | None = None) -> np.ndarray:
        """(N,) int64, ascending; of every model unless ``model_tag`` is given."""
        query = select(TemplateRow.id).where(TemplateRow.subject_id == subject_id)
        if model_tag is not None:
            query = query.where(TemplateRow.model_tag == model_tag)
        with self._engine.connect() as connection:
            return _int64_array(connection.execute(query.order_by(TemplateRow.id)).scalars())

    def move_samples(self, from_subject_id: int, to_subject_id: int) -> MovedSamples:
        """Re-link every sample (and its templates) of one subject to another, for a review's
        'merge'. Ciphertexts are re-encrypted under the new subject's associated data."""
        if from_subject_id == to_subject_id:
            raise InvalidSubjectData(
                "cannot move samples to the same subject", field="to_subject_id"
            )
        cipher = self._cipher
        now = utcnow()
        with self._write_sessions.begin() as session:
            source = _require_subject(session, from_subject_id)
            target = _require_subject(session, to_subject_id)
            samples = list(
                session.execute(
                    select(FaceSample)
                    .where(FaceSample.subject_id == from_subject_id)
                    .order_by(FaceSample.id)
                ).scalars()
            )
            for sample in samples:
                chip = cipher.decrypt(
                    sample.chip_ciphertext, chip_associated(sample.id, from_subject_id)
                )
                sample.chip_ciphertext = cipher.encrypt(
                    chip, chip_associated(sample.id, to_subject_id)
                )
                if sample.image_ciphertext is not None:
                    image = cipher.decrypt(
                        sample.image_ciphertext, image_associated(sample.id, from_subject_id)
                    )
                    sample.image_ciphertext = cipher.encrypt(
                        image, image_associated(sample.id, to_subject_id)
                    )
                sample.subject_id = to_subject_id
            templates = list(
                session.execute(
                    select(TemplateRow)
                    .where(TemplateRow.subject_id == from_subject_id)
                    .order_by(TemplateRow.id)
                ).scalars()
            )
            for row in templates:
                vector = cipher.decrypt(
                    row.vector_ciphertext,
                    template_associated(row.id, row.sample_id, from_subject_id, row.model_tag),
                )
                row.vector_ciphertext = cipher.encrypt(
                    vector,
                    template_associated(row.id, row.sample_id, to_subject_id, row.model_tag),
                )
                row.subject_id = to_subject_id
            source.updated_at = now
            target.updated_at = now
        moved = MovedSamples(
            sample_ids=tuple(sample.id for sample in samples),
            template_ids=_int64_array(row.id for row in templates),
        )
        _log(
            "samples_moved",
            from_subject_id=from_subject_id,
            to_subject_id=to_subject_id,
            sample_count=len(moved.sample_ids),
            template_count=len(moved.template_ids),
        )
        return moved

    # -- reviews ----------------------------------------------------------------------------

    def create_review(self, subject_id: int, candidates: Sequence[ReviewCandidate]) -> ReviewRecord:
        """Open a duplicate-identity case for ``subject_id`` against ``candidates``."""
        candidate_json = [_candidate_json(candidate) for candidate in candidates]
        with self._write_sessions.begin() as session:
            subject = _require_subject(session, subject_id)
            review = Review(
                subject_id=subject_id,
                subject_ref=subject.subject_ref,
                candidates=candidate_json,
                status=ReviewStatus.OPEN.value,
                created_at=utcnow(),
            )
            session.add(review)
        _log("review_created", review_id=review.id, subject_id=subject_id)
        return _review_record(review)

    def get_review(self, review_id: int) -> ReviewRecord:
        with self._read_sessions() as session:
            review = session.get(Review, review_id)
            if review is None:
                raise ReviewNotFound("no such review", review_id=review_id)
            return _review_record(review)

    def list_reviews(
        self, status: ReviewStatus | str | None = None, offset: int = 0, limit: int = 100
    ) -> list[ReviewRecord]:
        """Reviews in id order (oldest case first), optionally of one status."""
        check_page(offset, limit)
        query = select(Review).order_by(Review.id).offset(offset).limit(limit)
        if status is not None:
            query = query.where(Review.status == parse_choice(ReviewStatus, status, "status").value)
        with self._read_sessions() as session:
            return [_review_record(review) for review in session.execute(query).scalars()]

    def resolve_review(
        self,
        review_id: int,
        resolution: ReviewResolution | str,
        resolved_by: str,
        comment: str | None = None,
    ) -> ReviewRecord:
        """Record a supervisor's decision. Only the first of two concurrent resolutions
        wins; the other gets :class:`ReviewAlreadyResolved`. The decision's consequence
        (merge, delete) is the workflow's to carry out."""
        decided = parse_choice(ReviewResolution, resolution, "resolution")
        actor = clean_text(resolved_by, "resolved_by", ACTOR_MAX, required=True)
        with self._write_sessions.begin() as session:
            result = session.execute(
                update(Review)
                .where(Review.id == review_id, Review.status == ReviewStatus.OPEN.value)
                .values(
                    status=ReviewStatus.RESOLVED.value,
                    resolution=decided.value,
                    resolved_by=actor,
                    comment=comment,
                    resolved_at=utcnow(),
                )
                .execution_options(synchronize_session=False)
            )
            if result.rowcount != 1:  # type: ignore[attr-defined]
                if session.get(Review, review_id) is None:
                    raise ReviewNotFound("no such review", review_id=review_id)
                raise ReviewAlreadyResolved("the review is already resolved", review_id=review_id)
        _log("review_resolved", review_id=review_id, resolution=decided.value)
        return self.get_review(review_id)

    # -- maintenance ------------------------------------------------------------------------

    def has_image_sha256(self, image_sha256: str) -> str | None:
        """The subject_ref of a subject already holding an image with this SHA-256, if any
        (lets a bulk import skip what an interrupted run already stored)."""
        with self._engine.connect() as connection:
            return connection.execute(
                select(Subject.subject_ref)
                .join(FaceSample, FaceSample.subject_id == Subject.id)
                .where(FaceSample.image_sha256 == image_sha256.strip().lower())
                .limit(1)
            ).scalar_one_or_none()

    def integrity_check(self) -> str:
        """SQLite's ``PRAGMA integrity_check`` ('ok' when sound); 'ok' on other backends,
        which check their own storage."""
        if not self._is_sqlite:
            return "ok"
        with self._engine.connect() as connection:
            rows = connection.exec_driver_sql("PRAGMA integrity_check").scalars().all()
        return "\n".join(str(row) for row in rows)

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
            _log("wal_truncate_incomplete", elapsed_ms=elapsed_ms(started))

    @property
    def engine(self) -> Engine:
        """The engine this store owns, for the repositories that share its database (API keys,
        audit log). Disposed with the store."""
        return self._engine


# -- queries and conversions ----------------------------------------------------------------


def _subject_query() -> Any:
    sample_count = (
        select(func.count(FaceSample.id))
        .where(FaceSample.subject_id == Subject.id)
        .correlate(Subject)
        .scalar_subquery()
    )
    return select(Subject, SubjectIdentity, sample_count).join(
        SubjectIdentity, SubjectIdentity.subject_id == Subject.id
    )


def _template_columns() -> Any:
    return select(
        TemplateRow.id, TemplateRow.sample_id, TemplateRow.subject_id, TemplateRow.vector_ciphertext
    )


def _require_subject(session: Session, subject_id: int) -> Subject:
    subject = session.get(Subject, subject_id)
    if subject is None:
        raise SubjectNotFound("no such subject", subject_id=subject_id)
    return subject


def _require_sample(session: Session, sample_id: int) -> FaceSample:
    sample = session.get(FaceSample, sample_id)
    if sample is None:
        raise SampleNotFound("no such sample", sample_id=sample_id)
    return sample


def _forget_candidate(session: Session, subject_id: int) -> int:
    """Drop an erased subject's reference from other cases' candidate lists (keeping its id
    and score, so the history of the decision stays readable). Returns the cases changed."""
    changed = 0
    for review in session.execute(select(Review)).scalars():
        if any(candidate.get("subject_id") == subject_id for candidate in review.candidates):
            review.candidates = [
                {**candidate, "subject_ref": None}
                if candidate.get("subject_id") == subject_id
                else candidate
                for candidate in review.candidates
            ]
            changed += 1
    return changed


def _subject_record(
    subject: Subject, identity: SubjectIdentity, sample_count: int
) -> SubjectRecord:
    return SubjectRecord(
        id=subject.id,
        subject_ref=subject.subject_ref,
        status=SubjectStatus(subject.status),
        full_name=identity.full_name,
        date_of_birth=identity.date_of_birth,
        nationality=identity.nationality,
        document_number=identity.document_number,
        created_at=subject.created_at,
        updated_at=subject.updated_at,
        sample_count=int(sample_count),
    )


def _sample_record(sample: FaceSample) -> SampleRecord:
    return SampleRecord(
        id=sample.id,
        subject_id=sample.subject_id,
        capture_source=CaptureSource(sample.capture_source),
        quality=dict(sample.quality),
        image_sha256=sample.image_sha256,
        has_image=sample.image_ciphertext is not None,
        station=sample.station,
        captured_at=sample.captured_at,
    )


def _review_record(review: Review) -> ReviewRecord:
    return ReviewRecord(
        id=review.id,
        subject_id=review.subject_id,
        subject_ref=review.subject_ref,
        candidates=tuple(
            ReviewCandidate(
                subject_id=int(candidate["subject_id"]),
                subject_ref=candidate.get("subject_ref"),
                score=float(candidate["score"]),
            )
            for candidate in review.candidates
        ),
        status=ReviewStatus(review.status),
        resolution=ReviewResolution(review.resolution) if review.resolution else None,
        resolved_by=review.resolved_by,
        comment=review.comment,
        created_at=review.created_at,
        resolved_at=review.resolved_at,
    )


def _candidate_json(candidate: ReviewCandidate) -> dict[str, Any]:
    score = float(candidate.score)
    if not math.isfinite(score):
        raise InvalidSubjectData("candidate score must be finite", field="candidates")
    return {
        "subject_id": int(candidate.subject_id),
        "subject_ref": candidate.subject_ref,
        "score": score,
    }


def _already_exists(subject_ref: str) -> SubjectAlreadyExists:
    return SubjectAlreadyExists(
        "a subject with this reference already exists", subject_ref=subject_ref
    )


def _int64_array(values: Any) -> np.ndarray:
    return np.fromiter((int(value) for value in values), dtype=np.int64)


def _log(event: str, **fields: Any) -> None:
    # Ids, decisions and counts only: never a name, document number, image or template.
    log_event(logger, event, **fields)
