"""Which requests leave an audit record, and what goes in it.

A route that touches a subject or makes a decision declares ``Depends(audited("verify"))``
among its dependencies, before the auth dependency, so that refused requests (401, 403, 429)
are recorded too. The route then fills in the decision, score and threshold as it learns them.
The request middleware (``api/http/app.py``) appends the record just before the response starts,
with ``outcome`` = ``ok`` or the problem slug: the client never sees an answer the trail does
not hold. Never a name, an image, a template or a document number: ``details`` carries ids
and counts only.
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, Final

from fastapi import Request

from wajah.enrollment.db import (
    AUDIT_DECISION_MAX,
    REQUEST_ID_MAX,
    STATION_MAX,
    SUBJECT_REF_MAX,
)

OUTCOME_OK: Final = "ok"
MAX_LISTED_REFS: Final = 10  # subject refs listed in one record's details (2 KB cap)
_CONTROL_CHARACTERS: Final = re.compile(r"[\x00-\x1f\x7f]")


@dataclass
class AuditEntry:
    """One request's audit record, filled in as the request proceeds."""

    action: str
    subject_ref: str | None = None
    decision: str | None = None
    score: float | None = None
    threshold: float | None = None
    details: dict[str, Any] = field(default_factory=dict)

    def record(
        self,
        *,
        caller: Any,
        request_id: str,
        outcome: str,
    ) -> dict[str, Any]:
        """Keyword arguments for ``AuditLog.append``; ``caller`` is an ``api.http.auth.Caller``
        or None when authentication failed."""
        subject_ref = self.subject_ref
        details = dict(self.details)
        if subject_ref is not None and (
            len(subject_ref) > SUBJECT_REF_MAX or _CONTROL_CHARACTERS.search(subject_ref)
        ):
            # No stored reference is this long or holds control characters (the store refuses
            # them), so the request named nobody: keep a readable, bounded form of it.
            subject_ref = _CONTROL_CHARACTERS.sub("?", subject_ref)[:SUBJECT_REF_MAX]
            details["subject_ref_altered"] = True
        return {
            "action": self.action,
            "key_id": int(caller.key_id) if caller is not None else None,
            "key_name": caller.name if caller is not None else None,
            "station": caller.name[:STATION_MAX] if caller is not None else None,
            "role": caller.role.value if caller is not None else None,
            "subject_ref": subject_ref,
            "decision": self.decision[:AUDIT_DECISION_MAX] if self.decision else None,
            "score": self.score,
            "threshold": self.threshold,
            "request_id": request_id[:REQUEST_ID_MAX] or None,
            "outcome": outcome,
            "details": details,
        }


def audited(action: str) -> Callable[[Request], Awaitable[AuditEntry]]:
    """A dependency that opens the request's audit record (the subject from the path)."""

    async def dependency(request: Request) -> AuditEntry:
        entry = AuditEntry(action=action, subject_ref=request.path_params.get("subject_id"))
        request.state.audit = entry
        return entry

    dependency.__name__ = "audit_" + action.replace(".", "_")
    return dependency


def entry_of(request: Request) -> AuditEntry:
    entry = getattr(request.state, "audit", None)
    assert isinstance(entry, AuditEntry), "route without an audited() dependency"
    return entry
