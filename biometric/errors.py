"""Typed domain errors of the face engine.

Every error Wajah raises for a caller's mistake derives from :class:`WajahInputError`;
``api/errors.py`` maps each class to an RFC 9457 problem type and the CLI maps them to
exit code 2. Errors that are the service's own fault derive from :class:`WajahError` only.
"""

from __future__ import annotations


class WajahError(Exception):
    """Base of every Wajah domain error."""


class WajahInputError(WajahError):
    """The caller's input cannot be processed (HTTP 4xx, CLI exit 2)."""


class ImageDecodeError(WajahInputError):
    """The bytes are not a decodable image (empty, truncated, corrupt, not an image)."""


class UnsupportedImageFormat(WajahInputError):
    """The bytes are an image in a format Wajah does not accept."""


class ImageTooLarge(WajahInputError):
    """The image exceeds the byte or pixel limit; checked before the full decode."""

    def __init__(self, message: str, *, limit: int, actual: int, unit: str) -> None:
        super().__init__(message)
        self.limit = limit
        self.actual = actual
        self.unit = unit  # "bytes" or "pixels"


class NoFaceFound(WajahInputError):
    """No face was detected in the image."""


class MultipleFacesFound(WajahInputError):
    """More than one face was detected where exactly one is required."""

    def __init__(self, message: str, *, face_count: int) -> None:
        super().__init__(message)
        self.face_count = face_count


class ModelFilesMissing(WajahError):
    """The model weights are not installed (the face-recognition-models package)."""


class EngineOverloaded(WajahError):
    """Every face worker is busy and the bounded queue is full; try again shortly."""

    def __init__(self, message: str, *, retry_after_s: int) -> None:
        super().__init__(message)
        self.retry_after_s = retry_after_s
