"""The states of an application and the one table of the moves between them.

``submitted → biometrics_captured → verified → approved | rejected``, and ``needs_review``
from any open state while a supervisor looks at a duplicate-identity case (or a watchlist hit).
Who moves it: the biometric steps themselves (enrollment, the verification at the counter,
the duplicate review) and the officers' decisions. Any move not in :data:`TRANSITIONS` is an
:class:`~wajah.enrollment.errors.IllegalTransition` and changes nothing.

Leaving ``needs_review`` when the case is cleared (``confirm_distinct``, or a merge into the
same person's existing record): back to where the biometric step had taken the application
(:func:`resume_status`). A rejected duplicate rejects the application.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Final

from wajah.enrollment.errors import IllegalTransition
from wajah.enrollment.records import ApplicationStatus

__all__ = [
    "DECISIONS",
    "OPEN_STATUSES",
    "TERMINAL_STATUSES",
    "TRANSITIONS",
    "check_transition",
    "resume_status",
]

S = ApplicationStatus

TRANSITIONS: Final[Mapping[ApplicationStatus, frozenset[ApplicationStatus]]] = {
    # enrollment accepted; a duplicate case or a hit; refused outright (incomplete, withdrawn)
    S.SUBMITTED: frozenset({S.BIOMETRICS_CAPTURED, S.NEEDS_REVIEW, S.REJECTED}),
    # a verify match at the counter; a case or a hit; refused
    S.BIOMETRICS_CAPTURED: frozenset({S.VERIFIED, S.NEEDS_REVIEW, S.REJECTED}),
    # the officer's decision; a hit found after the verification
    S.VERIFIED: frozenset({S.APPROVED, S.REJECTED, S.NEEDS_REVIEW}),
    # the case cleared (back to where it was) or upheld
    S.NEEDS_REVIEW: frozenset({S.BIOMETRICS_CAPTURED, S.VERIFIED, S.REJECTED}),
    S.APPROVED: frozenset(),
    S.REJECTED: frozenset(),
}

TERMINAL_STATUSES: Final = frozenset(s for s, moves in TRANSITIONS.items() if not moves)
OPEN_STATUSES: Final = frozenset(S) - TERMINAL_STATUSES
# What an officer or a supervisor may decide by hand; the other moves are the biometric steps'.
DECISIONS: Final = frozenset({S.APPROVED, S.REJECTED})


def check_transition(from_status: ApplicationStatus, to_status: ApplicationStatus) -> None:
    """Raise :class:`IllegalTransition` unless the table allows the move."""
    if to_status not in TRANSITIONS[from_status]:
        allowed = ", ".join(sorted(s.value for s in TRANSITIONS[from_status])) or "none"
        raise IllegalTransition(
            f"an application that is {from_status.value} cannot become {to_status.value} "
            f"(allowed: {allowed})",
            from_status=from_status.value,
            to_status=to_status.value,
        )


def resume_status(history: Sequence[ApplicationStatus]) -> ApplicationStatus:
    """Where an application in ``needs_review`` goes when its case is cleared: the last status
    before it entered review, but at least ``biometrics_captured`` (any case comes from a face
    on record, so the capture is done even when the enrollment itself raised the case).
    ``history``: the statuses it has been in, oldest first."""
    for status in reversed(history):
        if status is S.VERIFIED:
            return S.VERIFIED
        if status is not S.NEEDS_REVIEW:
            return S.BIOMETRICS_CAPTURED
    return S.BIOMETRICS_CAPTURED
