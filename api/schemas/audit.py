"""The audit log."""

from __future__ import annotations

import datetime as dt
from typing import Any

from wajah.api.schemas.common import SubjectRef, _Model


class AuditRecord(_Model):
    id: int
    at: dt.datetime
    key_id: int | None
    key_name: str | None
    station: str | None
    role: str | None
    action: str
    subject_id: SubjectRef | None
    decision: str | None
    score: float | None
    threshold: float | None
    request_id: str | None
    outcome: str
    details: dict[str, Any]
    prev_hash: str
    hash: str


class AuditPage(_Model):
    items: list[AuditRecord]
    total: int
