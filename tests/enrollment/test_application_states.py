"""The application transition table: what may follow what, and where a cleared case resumes."""

from __future__ import annotations

import pytest

from wajah.enrollment.application_states import (
    OPEN_STATUSES,
    TERMINAL_STATUSES,
    TRANSITIONS,
    check_transition,
    resume_status,
)
from wajah.enrollment.errors import IllegalTransition
from wajah.enrollment.records import ApplicationStatus as S


def test_the_table_covers_every_status_and_ends_in_decisions() -> None:
    assert set(TRANSITIONS) == set(S)
    assert {S.APPROVED, S.REJECTED} == TERMINAL_STATUSES
    # Every open status can be rejected, and only a verified one approved.
    assert all(S.REJECTED in TRANSITIONS[status] for status in OPEN_STATUSES)
    assert [s for s in S if S.APPROVED in TRANSITIONS[s]] == [S.VERIFIED]


@pytest.mark.parametrize(
    ("from_status", "to_status"),
    [
        (S.SUBMITTED, S.VERIFIED),  # no verification without a captured face
        (S.SUBMITTED, S.APPROVED),
        (S.NEEDS_REVIEW, S.APPROVED),  # a held application is cleared first
        (S.APPROVED, S.REJECTED),  # decisions are final
        (S.REJECTED, S.SUBMITTED),
    ],
)
def test_illegal_moves_are_refused(from_status: S, to_status: S) -> None:
    with pytest.raises(IllegalTransition) as raised:
        check_transition(from_status, to_status)
    assert (raised.value.from_status, raised.value.to_status) == (from_status, to_status)


def test_a_cleared_case_resumes_where_the_biometric_step_left_it() -> None:
    # The enrollment itself opened the case: the face is captured all the same.
    assert resume_status([S.SUBMITTED, S.NEEDS_REVIEW]) is S.BIOMETRICS_CAPTURED
    # A hit after the counter's match: back to verified.
    assert resume_status([S.SUBMITTED, S.BIOMETRICS_CAPTURED, S.VERIFIED, S.NEEDS_REVIEW]) is (
        S.VERIFIED
    )
    assert resume_status([S.SUBMITTED, S.BIOMETRICS_CAPTURED, S.NEEDS_REVIEW]) is (
        S.BIOMETRICS_CAPTURED
    )


def test_report_percentiles_agree_with_numpy() -> None:
    import numpy as np

    from wajah.enrollment.reports import Percentiles

    values = [3.0, 1.0, 4.0, 1.5, 9.0, 2.6, 5.0]
    figures = Percentiles.of(values)
    assert figures.count == 7
    assert figures.median == round(float(np.median(values)), 1)
    assert figures.p90 == round(float(np.percentile(values, 90)), 1)
    assert Percentiles.of([]) == Percentiles(0, None, None)
