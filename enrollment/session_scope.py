"""What the repositories of one transaction share (see ``RecordStore.transaction``)."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from sqlalchemy.orm import Session

from wajah.enrollment.crypto import RecordCipher
from wajah.enrollment.db import FaceSample, Subject, TemplateChangeOperation
from wajah.enrollment.errors import SampleNotFound, SubjectNotFound


@dataclass
class SessionScope:
    """One transaction's session and the records cipher, plus what must wait for its commit:
    log lines (a rolled-back write is not logged as done) and whether a subject was erased
    (SQLite's WAL is then truncated, so the erased ciphertexts leave the files). Template
    additions and removals are noted for the change log, which the store writes in the same
    transaction just before it commits (``enrollment/changes.py``)."""

    session: Session
    cipher: RecordCipher
    events: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    erased_subject: bool = False
    template_changes: list[tuple[TemplateChangeOperation, int, int]] = field(default_factory=list)

    def note(self, event: str, **fields: Any) -> None:
        """Log ``event`` once the transaction commits. Ids, decisions and counts only."""
        self.events.append((event, fields))

    def note_template_change(
        self, operation: TemplateChangeOperation, template_id: int, subject_id: int
    ) -> None:
        """Log a template's addition to or removal from the gallery in the change log."""
        self.template_changes.append((operation, int(template_id), int(subject_id)))


def require_subject(session: Session, subject_id: int) -> Subject:
    subject = session.get(Subject, subject_id)
    if subject is None:
        raise SubjectNotFound("no such subject", subject_id=subject_id)
    return subject


def require_sample(session: Session, sample_id: int) -> FaceSample:
    sample = session.get(FaceSample, sample_id)
    if sample is None:
        raise SampleNotFound("no such sample", sample_id=sample_id)
    return sample


def int64_array(values: Iterable[Any]) -> np.ndarray:
    """(N,) int64 of ``values``."""
    return np.fromiter((int(value) for value in values), dtype=np.int64)
