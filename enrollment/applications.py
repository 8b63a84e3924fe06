"""Applications (passport, visa, stay permit) and their timeline, inside one transaction.

An application belongs to a subject; its status moves only through
:func:`~wajah.enrollment.application_states.check_transition`, and each move is one timeline
row with the time, the station, the key and the reason. The biometric workflows
(``enrollment/service.py``) call the ``on_*`` methods in the same transaction as the biometric
step that causes them, so an enrollment and the application it moved commit together or not
at all. :func:`mark_needs_review` is the entry point for other checks (a watchlist hit) that
must hold a subject's applications for a supervisor.
"""

from __future__ import annotations

import datetime as dt
import hmac
import re
import secrets
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Final

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError

from wajah.enrollment.application_states import (
    OPEN_STATUSES,
    check_transition,
    resume_status,
)
from wajah.enrollment.clock import utcnow
from wajah.enrollment.db import (
    APPLICATION_NUMBER_MAX,
    APPLICATION_TYPE_MAX,
    STATION_MAX,
    ApplicationEventRow,
    ApplicationRow,
    Subject,
)
from wajah.enrollment.errors import (
    ApplicationAlreadyExists,
    ApplicationLookupFailed,
    ApplicationNotFound,
    InvalidSubjectData,
)
from wajah.enrollment.records import (
    Actor,
    ApplicationEvent,
    ApplicationRecord,
    ApplicationStatus,
)
from wajah.enrollment.session_scope import SessionScope, require_subject
from wajah.enrollment.validation import check_page, clean_date_of_birth, clean_text, parse_choice

if TYPE_CHECKING:
    from wajah.enrollment.store import Transaction

__all__ = [
    "DEFAULT_APPLICATION_TYPES",
    "DEFAULT_NUMBER_FORMAT",
    "ApplicationPolicy",
    "ApplicationRepository",
    "PublicStatus",
    "mark_needs_review",
]

DEFAULT_APPLICATION_TYPES: Final = (
    "passport_new",
    "passport_renewal",
    "visa",
    "stay_permit_kitas",
    "stay_permit_kitap",
)
# {office}: the office code; {year}: the year of creation; {seq}: the application's own id
# (never reused), so a generated number is unique without a counter of its own.
DEFAULT_NUMBER_FORMAT: Final = "{office}-{year}-{seq:06d}"
NUMBER_PATTERN: Final = re.compile(r"[A-Z0-9][A-Z0-9/\-]*")
REASON_MAX: Final = 500
# What the lookup compares against when no application has the number: the same HMAC and the
# same comparison as for a real one, so both failures take the same work.
_ABSENT_CHECK: Final = "0" * 64

_TargetOf = Callable[[ApplicationRow], ApplicationStatus]


@dataclass(frozen=True)
class ApplicationPolicy:
    """The office's application types and number format (from the settings, at the edge)."""

    types: tuple[str, ...] = DEFAULT_APPLICATION_TYPES
    number_format: str = DEFAULT_NUMBER_FORMAT
    office_code: str = "KANIM"

    def number(self, seq: int, at: dt.datetime) -> str:
        try:
            number = self.number_format.format(office=self.office_code, year=at.year, seq=seq)
        except (KeyError, IndexError, ValueError) as error:
            raise ValueError(
                f"application_number_format is not valid: {error}; use {{office}}, {{year}} "
                "and {seq}"
            ) from None
        number = number.strip().upper()
        if len(number) > APPLICATION_NUMBER_MAX or not NUMBER_PATTERN.fullmatch(number):
            raise ValueError(
                "application_number_format must give at most "
                f"{APPLICATION_NUMBER_MAX} characters of A-Z, 0-9, '-' and '/'"
            )
        return number


@dataclass(frozen=True)
class PublicStatus:
    """What the applicant may see: the number, type, status and the timeline's statuses and
    times. Never a name, a photo, a score, a station, a key or a reason written by staff."""

    number: str
    application_type: str
    status: ApplicationStatus
    steps: tuple[tuple[ApplicationStatus, dt.datetime], ...] = field(default=())


def normalised_number(value: str) -> str:
    """A number as stored and looked up (trimmed, upper case)."""
    return value.strip().upper() if isinstance(value, str) else value


def lookup_message(number: str, date_of_birth: dt.date) -> bytes:
    return f"{number}\x00{date_of_birth.isoformat()}".encode()


class ApplicationRepository:
    """The applications, inside one transaction."""

    def __init__(self, scope: SessionScope) -> None:
        self._scope = scope
        self._session = scope.session

    # -- creation and reads -------------------------------------------------------------------

    def create(
        self,
        subject_id: int,
        application_type: str,
        policy: ApplicationPolicy,
        actor: Actor,
        *,
        date_of_birth: dt.date,
    ) -> ApplicationRecord:
        kind = clean_text(application_type, "application_type", APPLICATION_TYPE_MAX, required=True)
        if kind not in policy.types:
            raise InvalidSubjectData(
                f"application_type must be one of {', '.join(policy.types)}",
                field="application_type",
            )
        require_subject(self._session, subject_id)
        now = utcnow()
        # A placeholder until the id is known (the number is made from it).
        row = ApplicationRow(
            number="~" + secrets.token_hex(15),
            application_type=kind,
            subject_id=subject_id,
            status=ApplicationStatus.SUBMITTED.value,
            lookup_check=_ABSENT_CHECK,
            created_at=now,
            updated_at=now,
        )
        self._session.add(row)
        self._session.flush()
        row.number = policy.number(row.id, now)
        row.lookup_check = self._scope.cipher.lookup_check(
            lookup_message(row.number, date_of_birth)
        )
        try:
            self._session.flush()
        except IntegrityError:
            raise ApplicationAlreadyExists(
                "an application with this number already exists", number=row.number
            ) from None
        self._add_event(row, None, ApplicationStatus.SUBMITTED, actor, "application submitted")
        self._scope.note("application_created", application_id=row.id, subject_id=subject_id)
        return self._record(row)

    def get(self, number: str) -> ApplicationRecord:
        return self._record(self._require(number))

    def page(
        self,
        *,
        subject_id: int | None = None,
        status: ApplicationStatus | str | None = None,
        offset: int = 0,
        limit: int = 50,
    ) -> tuple[list[ApplicationRecord], int]:
        """A page of applications, newest first, and how many match in all."""
        check_page(offset, limit)
        conditions = []
        if subject_id is not None:
            conditions.append(ApplicationRow.subject_id == subject_id)
        if status is not None:
            chosen = parse_choice(ApplicationStatus, status, "status")
            conditions.append(ApplicationRow.status == chosen.value)
        total = self._session.scalar(
            select(func.count()).select_from(ApplicationRow).where(*conditions)
        )
        rows = self._session.scalars(
            select(ApplicationRow)
            .where(*conditions)
            .order_by(ApplicationRow.id.desc())
            .offset(offset)
            .limit(limit)
        ).all()
        return [self._record(row) for row in rows], int(total or 0)

    def lookup(self, number: str, date_of_birth: dt.date | str) -> PublicStatus:
        """The public view of an application, if ``date_of_birth`` is the applicant's.
        :class:`ApplicationLookupFailed` alike for an unknown number and a wrong date (one
        indexed read, one HMAC and one constant-time comparison either way)."""
        wanted = normalised_number(number)
        try:
            birth = clean_date_of_birth(date_of_birth)
        except InvalidSubjectData:
            birth = None
        row = None
        if isinstance(wanted, str) and len(wanted) <= APPLICATION_NUMBER_MAX:
            row = self._session.scalars(
                select(ApplicationRow).where(ApplicationRow.number == wanted)
            ).one_or_none()
        expected = row.lookup_check if row is not None else _ABSENT_CHECK
        presented = self._scope.cipher.lookup_check(
            lookup_message(str(wanted), birth or dt.date.min)
        )
        matches = hmac.compare_digest(expected, presented)
        if row is None or birth is None or not matches:
            raise ApplicationLookupFailed("no application matches this number and date of birth")
        events = self._events(row.id)
        return PublicStatus(
            number=row.number,
            application_type=row.application_type,
            status=ApplicationStatus(row.status),
            steps=tuple((ApplicationStatus(e.to_status), e.at) for e in events),
        )

    # -- transitions --------------------------------------------------------------------------

    def decide(
        self, number: str, to_status: ApplicationStatus | str, actor: Actor, reason: str
    ) -> ApplicationRecord:
        """An officer's or a supervisor's move of one application (checked by the table)."""
        target = parse_choice(ApplicationStatus, to_status, "status")
        why = clean_text(reason, "reason", REASON_MAX, required=True)
        row = self._require(number, for_update=True)
        self._move(row, target, actor, why)
        return self._record(row)

    def on_face_enrolled(self, subject_id: int, actor: Actor) -> list[str]:
        """An accepted enrollment: the subject's submitted applications have their biometrics."""
        return self._move_subject(
            subject_id,
            {ApplicationStatus.SUBMITTED},
            lambda _row: ApplicationStatus.BIOMETRICS_CAPTURED,
            actor,
            "face enrolled",
        )

    def on_verified(self, subject_id: int, actor: Actor) -> list[str]:
        """A verify ``match`` at the counter: captured applications become verified."""
        return self._move_subject(
            subject_id,
            {ApplicationStatus.BIOMETRICS_CAPTURED},
            lambda _row: ApplicationStatus.VERIFIED,
            actor,
            "identity verified at the counter",
        )

    def mark_needs_review(self, subject_id: int, reason: str, actor: Actor) -> list[str]:
        """Hold every open application of the subject for a supervisor."""
        return self._move_subject(
            subject_id,
            OPEN_STATUSES - {ApplicationStatus.NEEDS_REVIEW},
            lambda _row: ApplicationStatus.NEEDS_REVIEW,
            actor,
            clean_text(reason, "reason", REASON_MAX, required=True),
        )

    def on_review_cleared(self, subject_id: int, actor: Actor, reason: str) -> list[str]:
        """The case was cleared: each held application goes back to where it was."""
        return self._move_subject(
            subject_id,
            {ApplicationStatus.NEEDS_REVIEW},
            lambda row: resume_status(
                [ApplicationStatus(e.to_status) for e in self._events(row.id)]
            ),
            actor,
            reason,
        )

    def on_review_rejected(self, subject_id: int, actor: Actor, reason: str) -> list[str]:
        """The enrollment was rejected (a fraudulent or mistaken identity): every open
        application of the subject is rejected."""
        return self._move_subject(
            subject_id, OPEN_STATUSES, lambda _row: ApplicationStatus.REJECTED, actor, reason
        )

    def move_to_subject(self, from_subject_id: int, to_subject_id: int) -> int:
        """A merge: the applications follow the samples to the surviving subject."""
        rows = self._session.scalars(
            select(ApplicationRow).where(ApplicationRow.subject_id == from_subject_id)
        ).all()
        for row in rows:
            row.subject_id = to_subject_id
        self._session.flush()
        return len(rows)

    # -- helpers ------------------------------------------------------------------------------

    def _move_subject(
        self,
        subject_id: int,
        from_statuses: set[ApplicationStatus] | frozenset[ApplicationStatus],
        target_of: _TargetOf,
        actor: Actor,
        reason: str,
    ) -> list[str]:
        rows = self._session.scalars(
            select(ApplicationRow)
            .where(
                ApplicationRow.subject_id == subject_id,
                ApplicationRow.status.in_([s.value for s in from_statuses]),
            )
            .order_by(ApplicationRow.id)
            .with_for_update()
        ).all()
        for row in rows:
            self._move(row, target_of(row), actor, reason)
        return [row.number for row in rows]

    def _move(
        self, row: ApplicationRow, target: ApplicationStatus, actor: Actor, reason: str
    ) -> None:
        current = ApplicationStatus(row.status)
        check_transition(current, target)
        row.status = target.value
        row.updated_at = utcnow()
        self._add_event(row, current, target, actor, reason)
        self._scope.note(
            "application_moved",
            application_id=row.id,
            from_status=current.value,
            to_status=target.value,
        )

    def _add_event(
        self,
        row: ApplicationRow,
        from_status: ApplicationStatus | None,
        to_status: ApplicationStatus,
        actor: Actor,
        reason: str,
    ) -> None:
        self._session.add(
            ApplicationEventRow(
                application_id=row.id,
                from_status=from_status.value if from_status else None,
                to_status=to_status.value,
                at=row.updated_at,
                station=actor.station[:STATION_MAX],
                key_id=actor.key_id,
                reason=reason,
            )
        )
        self._session.flush()

    def _require(self, number: str, *, for_update: bool = False) -> ApplicationRow:
        wanted = normalised_number(number)
        query = select(ApplicationRow).where(ApplicationRow.number == wanted)
        if for_update:
            query = query.with_for_update()
        row = self._session.scalars(query).one_or_none()
        if row is None:
            raise ApplicationNotFound("no such application", number=str(wanted))
        return row

    def _events(self, application_id: int) -> Sequence[ApplicationEventRow]:
        return self._session.scalars(
            select(ApplicationEventRow)
            .where(ApplicationEventRow.application_id == application_id)
            .order_by(ApplicationEventRow.id)
        ).all()

    def _record(self, row: ApplicationRow) -> ApplicationRecord:
        subject_ref = None
        if row.subject_id is not None:
            subject = self._session.get(Subject, row.subject_id)
            subject_ref = subject.subject_ref if subject is not None else None
        return ApplicationRecord(
            id=row.id,
            number=row.number,
            application_type=row.application_type,
            subject_id=row.subject_id,
            subject_ref=subject_ref,
            status=ApplicationStatus(row.status),
            created_at=row.created_at,
            updated_at=row.updated_at,
            timeline=tuple(
                ApplicationEvent(
                    at=event.at,
                    from_status=ApplicationStatus(event.from_status) if event.from_status else None,
                    to_status=ApplicationStatus(event.to_status),
                    station=event.station,
                    key_id=event.key_id,
                    reason=event.reason,
                )
                for event in self._events(row.id)
            ),
        )


def mark_needs_review(tx: Transaction, subject_id: int, reason: str, actor: Actor) -> list[str]:
    """Hold the subject's open applications for a supervisor, inside the caller's transaction
    (a watchlist hit calls this in the transaction that records the hit). Returns the numbers
    of the applications it moved."""
    return tx.applications.mark_needs_review(subject_id, reason, actor)
