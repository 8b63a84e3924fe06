"""Typed domain errors of the face engine.

Every error Wajah raises for a caller's mistake derives from :class:`WajahInputError`;
``api/http/errors.py`` maps each class to an RFC 9457 problem type and the CLI maps them to
exit code 2. Errors that are the service's own fault derive from :class:`WajahError` only.

Every error survives pickling with its type, message and attributes intact: face work runs in
worker processes, and an error that cannot be rebuilt on the caller's side would break the
pool for every later request (``pickle`` rebuilds an exception as ``cls(*args)``, which fails
for the keyword-only attributes many of these take).
"""

from __future__ import annotations

from typing import Any


def _rebuild(kind: type[WajahError], args: tuple[Any, ...], state: dict[str, Any]) -> WajahError:
    error = kind.__new__(kind, *args)
    error.args = args
    error.__dict__.update(state)
    return error


class WajahError(Exception):
    """Base of every Wajah domain error."""

    def __reduce__(self) -> tuple[Any, ...]:
        # Rebuild without calling __init__: subclasses' keyword-only attributes travel in the
        # instance dict (traceback and chained causes are not pickled, as for any exception).
        return (_rebuild, (type(self), self.args, dict(self.__dict__)))


class WajahInputError(WajahError):
    """The caller's input cannot be processed (HTTP 4xx, CLI exit 2)."""


class ImageRefused(WajahInputError):
    """The bytes cannot be used as an image at all (before any face is looked for)."""


class ImageDecodeError(ImageRefused):
    """The bytes are not a decodable image (empty, truncated, corrupt, not an image)."""


class UnsupportedImageFormat(ImageRefused):
    """The bytes are an image in a format Wajah does not accept."""


class ImageTooLarge(ImageRefused):
    """The image exceeds the byte or pixel limit; checked before the full decode."""

    def __init__(self, message: str, *, limit: int, actual: int, unit: str) -> None:
        super().__init__(message)
        self.limit = limit
        self.actual = actual
        self.unit = unit  # "bytes" or "pixels"


class ImageDimensionsRefused(ImageRefused):
    """The declared width and height are not those of a photograph (e.g. a 1 x 40,000 strip);
    checked from the header, before decoding."""

    def __init__(self, message: str, *, width: int, height: int, max_aspect_ratio: float) -> None:
        super().__init__(message)
        self.width = width
        self.height = height
        self.max_aspect_ratio = max_aspect_ratio


class ImageTooComplex(ImageRefused):
    """The image declares more decoding work than any photo needs (e.g. a progressive JPEG of
    thousands of scans, which costs seconds of CPU per scan pass); refused before decoding."""

    def __init__(self, message: str, *, limit: int, actual: int) -> None:
        super().__init__(message)
        self.limit = limit
        self.actual = actual


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


class FaceWorkerLost(WajahError):
    """The worker process doing this job died (killed, crashed, out of memory); the pool has
    replaced it. The job may be retried; it is the service's fault, not the caller's."""

    def __init__(self, message: str, *, retry_after_s: int) -> None:
        super().__init__(message)
        self.retry_after_s = retry_after_s


class FaceWorkTimedOut(WajahError):
    """The job ran past the pool's per-job deadline; its worker was stopped and replaced."""

    def __init__(self, message: str, *, timeout_s: float, retry_after_s: int) -> None:
        super().__init__(message)
        self.timeout_s = timeout_s
        self.retry_after_s = retry_after_s


class FaceWorkerFault(WajahError):
    """An unexpected error inside a face worker, carried back by type name and message because
    the original exception could not cross the process boundary."""

    def __init__(self, message: str, *, original_type: str) -> None:
        super().__init__(message)
        self.original_type = original_type
