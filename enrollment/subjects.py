"""Subjects and their identities: create, read, page, correct, change status, erase.

Names and document numbers live in ``subject_identities``, apart from the biometric rows, so
they can be corrected or erased without touching templates.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import numpy as np
from sqlalchemy import delete, func, select, update
from sqlalchemy.exc import IntegrityError

from wajah.enrollment.clock import utcnow
from wajah.enrollment.db import FaceSample, Subject, SubjectIdentity, TemplateChangeOperation
from wajah.enrollment.errors import SubjectAlreadyExists, SubjectNotFound
from wajah.enrollment.records import UNSET, SubjectRecord, SubjectStatus, Unset
from wajah.enrollment.reviews import detach_erased_subject
from wajah.enrollment.samples import remove_samples_of_subject
from wajah.enrollment.session_scope import SessionScope, require_subject
from wajah.enrollment.validation import (
    check_page,
    clean_date_of_birth,
    clean_document_number,
    clean_full_name,
    clean_nationality,
    clean_subject_ref,
    normalised_subject_ref,
    parse_choice,
)

__all__ = ["SubjectRepository", "already_exists"]


class SubjectRepository:
    """The subjects, inside one transaction."""

    def __init__(self, scope: SessionScope) -> None:
        self._scope = scope
        self._session = scope.session

    def create(
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
        session = self._session
        if session.execute(select(Subject.id).where(Subject.subject_ref == ref)).first():
            raise already_exists(ref)
        subject = Subject(
            subject_ref=ref, status=subject_status.value, created_at=now, updated_at=now
        )
        session.add(subject)
        try:
            session.flush()
        except IntegrityError:
            # Another writer took the reference between our check and insert (PostgreSQL).
            raise already_exists(ref) from None
        identity.subject_id = subject.id
        session.add(identity)
        session.flush()
        self._scope.note("subject_created", subject_id=subject.id, status=subject_status.value)
        return _subject_record(subject, identity, sample_count=0)

    def get(self, subject_id: int) -> SubjectRecord:
        return self._one(Subject.id == subject_id, subject_id=subject_id)

    def get_by_ref(self, subject_ref: str) -> SubjectRecord:
        ref = normalised_subject_ref(subject_ref)
        return self._one(Subject.subject_ref == ref, subject_ref=subject_ref)

    def _one(
        self, condition: Any, *, subject_id: int | None = None, subject_ref: str | None = None
    ) -> SubjectRecord:
        row = self._session.execute(_subject_query().where(condition)).first()
        if row is None:
            raise SubjectNotFound("no such subject", subject_id=subject_id, subject_ref=subject_ref)
        return _subject_record(row[0], row[1], row[2])

    def list(
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
        total = self._session.execute(count_query).scalar_one()
        rows = self._session.execute(page_query.offset(offset).limit(limit)).all()
        return [_subject_record(row[0], row[1], row[2]) for row in rows], int(total)

    def update(
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
        subject = require_subject(self._session, subject_id)
        if changes:
            self._session.execute(
                update(SubjectIdentity)
                .where(SubjectIdentity.subject_id == subject_id)
                .values(**changes)
            )
            subject.updated_at = utcnow()
            self._session.flush()
            self._session.expire_all()  # the bulk update bypassed the loaded identity
        self._scope.note("subject_updated", subject_id=subject_id, fields=sorted(changes))
        return self.get(subject_id)

    def set_status(self, subject_id: int, status: SubjectStatus | str) -> SubjectRecord:
        subject_status = parse_choice(SubjectStatus, status, "status")
        subject = require_subject(self._session, subject_id)
        subject.status = subject_status.value
        subject.updated_at = utcnow()
        self._session.flush()
        self._scope.note("subject_status_set", subject_id=subject_id, status=subject_status.value)
        return self.get(subject_id)

    def erase(self, subject_id: int) -> np.ndarray:
        """Erase a subject: its record, identity, samples, chips, images, templates and open
        review cases, and its reference in other cases. Returns the removed template ids,
        (N,) int64, for the caller to remove from the index.

        On SQLite the freed pages are zeroed (``secure_delete``) and, after the commit, the WAL
        is checkpointed and truncated, so the erased ciphertexts do not linger in the files.
        """
        session = self._session
        require_subject(session, subject_id)
        template_ids = remove_samples_of_subject(session, subject_id)
        for template_id in template_ids.tolist():
            self._scope.note_template_change(
                TemplateChangeOperation.REMOVE, template_id, subject_id
            )
        scrubbed = detach_erased_subject(session, subject_id)
        session.execute(delete(SubjectIdentity).where(SubjectIdentity.subject_id == subject_id))
        session.execute(delete(Subject).where(Subject.id == subject_id))
        self._scope.erased_subject = True
        self._scope.note(
            "subject_deleted",
            subject_id=subject_id,
            template_count=len(template_ids),
            reviews_scrubbed=scrubbed,
        )
        return template_ids


def already_exists(subject_ref: str) -> SubjectAlreadyExists:
    return SubjectAlreadyExists(
        "a subject with this reference already exists", subject_ref=subject_ref
    )


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
