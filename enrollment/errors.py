"""Typed domain errors of the record store.

The caller's mistakes (an unknown subject, a duplicate reference, bad identity data) derive from
:class:`~wajah.biometric.errors.WajahInputError`; ``api/http/errors.py`` maps each to a problem type
and the CLI to exit code 2. A wrong or missing encryption key, or a stored ciphertext that fails
authentication, is the service's own problem and derives from :class:`WajahError` only.

Messages never contain a name, a document number or a subject reference: they may be logged or
shown. The offending identifier is kept on the exception as an attribute instead.
"""

from __future__ import annotations

from wajah.biometric.errors import WajahError, WajahInputError


class SubjectNotFound(WajahInputError):
    """No subject with the given id or reference."""

    def __init__(
        self, message: str, *, subject_id: int | None = None, subject_ref: str | None = None
    ) -> None:
        super().__init__(message)
        self.subject_id = subject_id
        self.subject_ref = subject_ref


class SubjectAlreadyExists(WajahInputError):
    """A subject with this reference is already enrolled (references are unique)."""

    def __init__(self, message: str, *, subject_ref: str) -> None:
        super().__init__(message)
        self.subject_ref = subject_ref


class SampleNotFound(WajahInputError):
    """No face sample with the given id."""

    def __init__(self, message: str, *, sample_id: int) -> None:
        super().__init__(message)
        self.sample_id = sample_id


class ReviewNotFound(WajahInputError):
    """No duplicate-identity review with the given id."""

    def __init__(self, message: str, *, review_id: int) -> None:
        super().__init__(message)
        self.review_id = review_id


class ReviewAlreadyResolved(WajahInputError):
    """The review was already resolved (possibly by another supervisor a moment ago)."""

    def __init__(self, message: str, *, review_id: int) -> None:
        super().__init__(message)
        self.review_id = review_id


class InvalidSubjectData(WajahInputError):
    """Identity or sample data the store refuses: bad date, bad country code, bad status…"""

    def __init__(self, message: str, *, field: str) -> None:
        super().__init__(message)
        self.field = field


class EncryptionKeyError(WajahError):
    """The records key is missing, malformed, or not the key the database was written with.

    Raised at start-up, before any template is decrypted, so a wrong key can never turn into
    garbage templates and therefore garbage matches.
    """


class RecordDecryptionError(WajahError):
    """A stored ciphertext failed authentication: altered, copied from another row, or corrupt.

    The key itself was verified at start-up, so this points at tampering or corruption of one
    row, not at a configuration mistake.
    """


class SubjectNotActive(WajahInputError):
    """The subject exists but cannot be matched now (e.g. waiting for a duplicate review)."""

    def __init__(self, message: str, *, status: str) -> None:
        super().__init__(message)
        self.status = status


# -- API keys and the audit trail (enrollment/access.py, enrollment/audit.py) -----------------


class InvalidApiKey(WajahInputError):
    """The presented API key is malformed, unknown or revoked (HTTP 401).

    The message is the same for all three so a caller cannot probe which keys exist; ``reason``
    ("malformed", "unknown" or "revoked") and ``key_id`` (for a revoked key) are for the log.
    The secret itself is never kept on the exception.
    """

    def __init__(self, message: str, *, reason: str, key_id: int | None = None) -> None:
        super().__init__(message)
        self.reason = reason
        self.key_id = key_id


class ApiKeyNotFound(WajahInputError):
    """No API key with the given id."""

    def __init__(self, message: str, *, key_id: int) -> None:
        super().__init__(message)
        self.key_id = key_id


class InvalidKeyData(WajahInputError):
    """A key name or role the key store refuses (empty, too long, control characters, no such
    role)."""

    def __init__(self, message: str, *, field: str) -> None:
        super().__init__(message)
        self.field = field


class AuditChainCorrupt(WajahError):
    """The audit chain cannot be extended: its head row is missing or disagrees with the
    records. Appending is refused rather than starting a second chain over the damage; run
    ``wajah audit verify`` to find the first bad record."""


class StoreBusy(WajahError):
    """The database could not finish the transaction for contention, not for anything in
    the request: a lock wait ran out (SQLite's busy timeout, PostgreSQL's ``lock_timeout``),
    PostgreSQL chose this transaction as a deadlock's victim, or a serialisation failure.
    Nothing was written; the same request may simply be sent again."""

    def __init__(self, message: str, *, retry_after_s: int = 1) -> None:
        super().__init__(message)
        self.retry_after_s = retry_after_s


# -- applications (enrollment/applications.py) ------------------------------------------------


class ApplicationNotFound(WajahInputError):
    """No application with the given number."""

    def __init__(self, message: str, *, number: str | None = None) -> None:
        super().__init__(message)
        self.number = number


class ApplicationAlreadyExists(WajahInputError):
    """An application with this number exists (numbers are unique)."""

    def __init__(self, message: str, *, number: str) -> None:
        super().__init__(message)
        self.number = number


class IllegalTransition(WajahInputError):
    """The application cannot move from its status to the one asked for (nothing changed)."""

    def __init__(self, message: str, *, from_status: str, to_status: str) -> None:
        super().__init__(message)
        self.from_status = from_status
        self.to_status = to_status


class ApplicationLookupFailed(WajahInputError):
    """The public status lookup found no application with this number and date of birth. The
    same error, message and work for an unknown number and a wrong date of birth, so the
    answer cannot tell which numbers exist."""
