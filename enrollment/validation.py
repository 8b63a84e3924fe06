"""Input checks of the enrollment layer: what a subject, a sample or a key may hold.

Each ``clean_*`` function returns the value as stored (stripped, upper-cased, parsed) or raises
a typed input error naming the field. The messages never quote the value: it may be a name.
"""

from __future__ import annotations

import datetime as dt
import json
import re
from collections.abc import Mapping
from enum import Enum
from typing import Any, Final, Protocol, TypeVar

import numpy as np

from wajah.enrollment.clock import utcnow
from wajah.enrollment.db import DOCUMENT_NUMBER_MAX, FULL_NAME_MAX, SUBJECT_REF_MAX
from wajah.enrollment.errors import InvalidSubjectData

__all__ = [
    "CONTROL_CHARACTERS",
    "MAX_PAGE_SIZE",
    "check_page",
    "clean_aware_utc",
    "clean_date_of_birth",
    "clean_document_number",
    "clean_full_name",
    "clean_nationality",
    "clean_quality_report",
    "clean_sha256",
    "clean_subject_ref",
    "clean_text",
    "parse_choice",
]

# C0 controls and DEL: never part of a name, a reference or a station, and a way to forge log
# lines or terminal output.
CONTROL_CHARACTERS: Final = re.compile(r"[\x00-\x1f\x7f]")
MAX_PAGE_SIZE: Final = 1000
EARLIEST_DATE_OF_BIRTH: Final = dt.date(1900, 1, 1)
_NATIONALITY_PATTERN: Final = re.compile(r"[A-Z]{3}")  # ISO 3166-1 alpha-3
_SHA256_PATTERN: Final = re.compile(r"[0-9a-f]{64}")

_EnumT = TypeVar("_EnumT", bound=Enum)


class InputErrorType(Protocol):
    """An input error class taking ``(message, field=...)``, as the enrollment ones do."""

    def __call__(self, message: str, *, field: str) -> Exception: ...


def clean_text(
    value: str,
    field_name: str,
    max_length: int,
    *,
    required: bool,
    label: str | None = None,
    error: InputErrorType = InvalidSubjectData,
) -> str:
    """``value`` stripped; refused when not text, empty (if ``required``), too long, or holding
    control characters. ``label`` names the field in messages (default ``field_name``);
    ``error`` is the input error to raise, built as ``error(message, field=field_name)``."""
    name = label or field_name
    if not isinstance(value, str):
        raise error(f"{name} must be text", field=field_name)
    text = value.strip()
    if required and not text:
        raise error(f"{name} is empty", field=field_name)
    if len(text) > max_length:
        raise error(f"{name} is longer than {max_length} characters", field=field_name)
    if CONTROL_CHARACTERS.search(text):
        raise error(f"{name} contains control characters", field=field_name)
    return text


def parse_choice(kind: type[_EnumT], value: Any, field_name: str) -> _EnumT:
    """``value`` as a member of ``kind``, or :class:`InvalidSubjectData` listing the choices."""
    try:
        return kind(value)
    except ValueError:
        allowed = ", ".join(str(member.value) for member in kind)
        raise InvalidSubjectData(
            f"{field_name} must be one of {allowed}", field=field_name
        ) from None


def clean_subject_ref(value: str) -> str:
    return clean_text(value, "subject_ref", SUBJECT_REF_MAX, required=True)


def clean_full_name(value: str) -> str:
    return clean_text(value, "full_name", FULL_NAME_MAX, required=True)


def clean_document_number(value: str | None) -> str | None:
    if value is None:
        return None
    return clean_text(value, "document_number", DOCUMENT_NUMBER_MAX, required=False) or None


def clean_nationality(value: str | None) -> str | None:
    if value is None or not value.strip():
        return None
    code = value.strip().upper()
    if not _NATIONALITY_PATTERN.fullmatch(code):
        raise InvalidSubjectData(
            "nationality must be an ISO 3166-1 alpha-3 code", field="nationality"
        )
    return code


def clean_date_of_birth(value: dt.date | str | None) -> dt.date | None:
    if value is None:
        return None
    if isinstance(value, str):
        if not value.strip():
            return None
        try:
            value = dt.date.fromisoformat(value.strip())
        except ValueError:
            raise InvalidSubjectData(
                "date_of_birth must be an ISO date (YYYY-MM-DD)", field="date_of_birth"
            ) from None
    if isinstance(value, dt.datetime):
        value = value.date()
    if not isinstance(value, dt.date):
        raise InvalidSubjectData("date_of_birth must be a date", field="date_of_birth")
    # One day of slack: "today" in the office's time zone can be tomorrow in UTC.
    latest = utcnow().date() + dt.timedelta(days=1)
    if not EARLIEST_DATE_OF_BIRTH <= value <= latest:
        raise InvalidSubjectData("date_of_birth is out of range", field="date_of_birth")
    return value


def clean_sha256(value: str) -> str:
    digest = value.strip().lower() if isinstance(value, str) else ""
    if not _SHA256_PATTERN.fullmatch(digest):
        raise InvalidSubjectData("image_sha256 must be 64 hex digits", field="image_sha256")
    return digest


def clean_aware_utc(value: dt.datetime, field_name: str = "captured_at") -> dt.datetime:
    if value.tzinfo is None:
        raise InvalidSubjectData(f"{field_name} must carry a time zone", field=field_name)
    return value.astimezone(dt.UTC)


def clean_quality_report(quality: Mapping[str, Any]) -> dict[str, Any]:
    """The quality report as plain JSON types (numpy scalars and arrays converted)."""

    def convert(value: Any) -> Any:
        if isinstance(value, np.generic):
            return value.item()
        if isinstance(value, np.ndarray):
            return value.tolist()
        if isinstance(value, Enum):
            return value.value
        raise TypeError(f"{type(value).__name__} is not JSON serialisable")

    try:
        return dict(json.loads(json.dumps(dict(quality), default=convert, allow_nan=False)))
    except (TypeError, ValueError) as error:
        raise InvalidSubjectData(f"quality report is not JSON: {error}", field="quality") from None


def check_page(offset: int, limit: int) -> None:
    if offset < 0 or not 1 <= limit <= MAX_PAGE_SIZE:
        raise ValueError(f"need offset >= 0 and 1 <= limit <= {MAX_PAGE_SIZE}")
