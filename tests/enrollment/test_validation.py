"""Subject references: one stored form for look-alike spellings, no invisible characters."""

from __future__ import annotations

import pytest

from wajah.enrollment.errors import InvalidSubjectData
from wajah.enrollment.validation import clean_subject_ref, normalised_subject_ref


def test_full_width_and_ascii_references_are_one_reference() -> None:
    assert clean_subject_ref("ＡＢ-２０２４-1") == "AB-2024-1"
    assert clean_subject_ref("  A-1 ") == "A-1"


@pytest.mark.parametrize(
    "reference", ["A\u200b-1", "A-1\u200d", "\u202eA-1", "A\ufeff1", "A\u2060-1"]
)
def test_invisible_format_characters_are_refused(reference: str) -> None:
    with pytest.raises(InvalidSubjectData) as refused:
        clean_subject_ref(reference)
    assert refused.value.field == "subject_ref"


def test_lookups_use_the_stored_form() -> None:
    assert normalised_subject_ref("Ａ-1") == "A-1"
    assert normalised_subject_ref("A\u200b-1") == "A\u200b-1"  # invalid: found by nothing
