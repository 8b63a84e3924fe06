"""Typed errors of the matcher.

They derive from :class:`wajah.biometric.errors.WajahError` and not from ``WajahInputError``: a
corrupt index file or a model mismatch is the service's fault, not the caller's.
"""

from __future__ import annotations

from wajah.biometric.errors import WajahError


class MatcherError(WajahError):
    """Base of the matcher's errors."""


class TemplateModelMismatch(MatcherError):
    """Templates of one model were added to, or searched in, an index of another model."""

    def __init__(self, message: str, *, index_model_tag: str, template_model_tag: str) -> None:
        super().__init__(message)
        self.index_model_tag = index_model_tag
        self.template_model_tag = template_model_tag


class DuplicateTemplateId(MatcherError):
    """A template id that the index already holds was added again."""

    def __init__(self, message: str, *, template_ids: tuple[int, ...]) -> None:
        super().__init__(message)
        self.template_ids = template_ids


class SubjectHasNoTemplates(MatcherError):
    """A 1:1 comparison was asked for a subject the index holds no template of."""

    def __init__(self, message: str, *, subject_id: int) -> None:
        super().__init__(message)
        self.subject_id = subject_id


class IndexFileError(MatcherError):
    """Base of the errors of loading a saved index."""


class IndexFileMissing(IndexFileError):
    """There is no saved index at the path."""


class IndexCorrupt(IndexFileError):
    """The file is not a readable Wajah index: bad magic, unknown version, truncated, or its
    checksum does not match."""


class IndexModelMismatch(IndexFileError):
    """The saved index holds templates of another model than the running one."""

    def __init__(self, message: str, *, expected: str, found: str) -> None:
        super().__init__(message)
        self.expected = expected
        self.found = found


class IndexConfigMismatch(IndexFileError):
    """The saved index was built with another structure (kind, graph or list parameters)."""


class ThresholdsError(MatcherError):
    """A thresholds file is missing, unreadable or inconsistent."""
