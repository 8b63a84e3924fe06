"""The one place that turns errors into HTTP answers: RFC 9457 ``application/problem+json``.

The core raises small typed exceptions; the edge itself raises :class:`ApiProblem` (missing key,
rate limit, body too large, timeout). :data:`PROBLEM_TYPES` lists every stable slug with its
status and title (docs/api.md repeats it for the console). A caller's mistake is never a 500:
every :class:`~wajah.biometric.errors.WajahInputError` maps to a 4xx, an unknown one to
``invalid-request``. Only the service's own faults (a bug, a wrong records key, a corrupt row)
are ``internal-error``, logged with the request id and the traceback, and answered without
any detail that could leak data.
"""

from __future__ import annotations

import json
import logging
import traceback
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from wajah.biometric.errors import (
    EngineOverloaded,
    FaceWorkerLost,
    FaceWorkTimedOut,
    ImageDecodeError,
    ImageDimensionsRefused,
    ImageTooComplex,
    ImageTooLarge,
    MultipleFacesFound,
    NoFaceFound,
    UnsupportedImageFormat,
    WajahError,
    WajahInputError,
)
from wajah.enrollment.errors import (
    ApiKeyNotFound,
    ApplicationAlreadyExists,
    ApplicationLookupFailed,
    ApplicationNotFound,
    IllegalTransition,
    InvalidApiKey,
    InvalidKeyData,
    InvalidSubjectData,
    ReviewAlreadyResolved,
    ReviewNotFound,
    SampleNotFound,
    StoreBusy,
    SubjectAlreadyExists,
    SubjectNotActive,
    SubjectNotFound,
)
from wajah.matcher.errors import SubjectHasNoTemplates, VectorBackendUnavailable

logger = logging.getLogger("wajah.api")

PROBLEM_TYPE_PREFIX: Final = "urn:wajah:problem:"
PROBLEM_MEDIA_TYPE: Final = "application/problem+json"


@dataclass(frozen=True)
class ProblemType:
    slug: str
    status: int
    title: str

    @property
    def uri(self) -> str:
        return PROBLEM_TYPE_PREFIX + self.slug


PROBLEM_TYPES: Final[dict[str, ProblemType]] = {
    problem.slug: problem
    for problem in (
        ProblemType("image-decode-error", 422, "The image could not be decoded"),
        ProblemType("unsupported-image-format", 415, "The image format is not accepted"),
        ProblemType("image-too-large", 413, "The image is too large"),
        ProblemType(
            "image-dimensions", 422, "The image's width and height are not those of a photo"
        ),
        ProblemType("image-too-complex", 422, "The image needs more decoding work than a photo"),
        ProblemType("no-face", 422, "No face was found in the image"),
        ProblemType("multiple-faces", 422, "More than one face was found in the image"),
        ProblemType("low-quality", 422, "The photo is not good enough"),
        ProblemType("subject-not-found", 404, "No such subject"),
        ProblemType("subject-exists", 409, "A subject with this reference already exists"),
        ProblemType("subject-not-active", 409, "The subject is not active"),
        ProblemType("subject-not-enrolled", 409, "The subject has no enrolled face"),
        ProblemType("sample-not-found", 404, "No such face sample"),
        ProblemType("review-not-found", 404, "No such review"),
        ProblemType("review-already-resolved", 409, "The review is already resolved"),
        ProblemType("key-not-found", 404, "No such API key"),
        ProblemType("application-not-found", 404, "No such application"),
        ProblemType("application-exists", 409, "An application with this number exists"),
        ProblemType(
            "illegal-transition", 409, "The application cannot move to this status from its own"
        ),
        ProblemType(
            "application-lookup-failed",
            404,
            "No application matches this number and date of birth",
        ),
        ProblemType("invalid-request", 422, "The request is not valid"),
        ProblemType("not-found", 404, "No such resource"),
        ProblemType("method-not-allowed", 405, "Method not allowed"),
        ProblemType("unauthorized", 401, "Missing, invalid or revoked API key"),
        ProblemType("forbidden", 403, "This key's role may not do this"),
        ProblemType("rate-limited", 429, "Too many requests for this key"),
        ProblemType(
            "too-many-failed-attempts", 429, "Too many failed verifications for this subject"
        ),
        ProblemType("payload-too-large", 413, "The request body is too large"),
        ProblemType("request-timeout", 408, "The request body arrived too slowly"),
        ProblemType("overloaded", 503, "The service is busy"),
        ProblemType("timeout", 503, "The request took too long"),
        ProblemType("face-worker-lost", 503, "A face worker stopped; retry"),
        ProblemType("vector-backend-unavailable", 503, "The vector store did not answer; retry"),
        ProblemType("internal-error", 500, "Internal error"),
    )
}


class ApiProblem(Exception):
    """A problem raised by the HTTP edge itself (auth, limits, request shape)."""

    def __init__(
        self,
        slug: str,
        detail: str,
        *,
        headers: Mapping[str, str] | None = None,
        extensions: Mapping[str, Any] | None = None,
    ) -> None:
        super().__init__(detail)
        self.problem = PROBLEM_TYPES[slug]
        self.detail = detail
        self.headers = dict(headers or {})
        self.extensions = dict(extensions or {})


class LowQuality(WajahInputError):
    """The quality gate refused an enrollment photo; ``components`` are the failing ones."""

    def __init__(self, message: str, *, components: Sequence[Mapping[str, Any]]) -> None:
        super().__init__(message)
        self.components = [dict(component) for component in components]


@dataclass(frozen=True)
class Problem:
    """A resolved problem: what the response will say."""

    type: ProblemType
    detail: str
    headers: dict[str, str]
    extensions: dict[str, Any]


# Most specific first: the first class the error is an instance of decides.
_DOMAIN_PROBLEMS: Final[tuple[tuple[type[Exception], str], ...]] = (
    (ImageTooLarge, "image-too-large"),
    (ImageDimensionsRefused, "image-dimensions"),
    (ImageTooComplex, "image-too-complex"),
    (UnsupportedImageFormat, "unsupported-image-format"),
    (ImageDecodeError, "image-decode-error"),
    (NoFaceFound, "no-face"),
    (MultipleFacesFound, "multiple-faces"),
    (LowQuality, "low-quality"),
    (SubjectNotFound, "subject-not-found"),
    (SubjectAlreadyExists, "subject-exists"),
    (SubjectNotActive, "subject-not-active"),
    (SubjectHasNoTemplates, "subject-not-enrolled"),
    (SampleNotFound, "sample-not-found"),
    (ReviewNotFound, "review-not-found"),
    (ReviewAlreadyResolved, "review-already-resolved"),
    (InvalidSubjectData, "invalid-request"),
    (ApiKeyNotFound, "key-not-found"),
    (ApplicationNotFound, "application-not-found"),
    (ApplicationAlreadyExists, "application-exists"),
    (IllegalTransition, "illegal-transition"),
    (ApplicationLookupFailed, "application-lookup-failed"),
    (InvalidKeyData, "invalid-request"),
    (InvalidApiKey, "unauthorized"),
    (EngineOverloaded, "overloaded"),
    (StoreBusy, "overloaded"),  # database contention: the same 503 + Retry-After
    (FaceWorkerLost, "face-worker-lost"),
    (FaceWorkTimedOut, "timeout"),
    (VectorBackendUnavailable, "vector-backend-unavailable"),
    # Any other caller's mistake: a 4xx, never a 500.
    (WajahInputError, "invalid-request"),
)

# Messages of these are written for the caller (no names, no refs: see the errors modules).
_SAFE_DETAIL: Final = (
    WajahInputError,
    EngineOverloaded,
    StoreBusy,
    FaceWorkerLost,
    FaceWorkTimedOut,
    SubjectHasNoTemplates,
    InvalidApiKey,
)


def problem_for(error: Exception) -> Problem:
    """The problem an exception answers with; ``internal-error`` for anything unknown."""
    if isinstance(error, ApiProblem):
        return Problem(error.problem, error.detail, error.headers, error.extensions)
    if isinstance(error, RequestValidationError):
        return Problem(
            PROBLEM_TYPES["invalid-request"],
            "the request does not match the API schema",
            {},
            {"errors": validation_errors(error.errors())},
        )
    if isinstance(error, StarletteHTTPException):
        return _http_problem(error)
    if isinstance(error, RecursionError) and _raised_by_json_decoder(error):
        # A body nested deeper than Python's recursion limit ([[[[...]]]] 100,000 deep): the
        # caller's mistake, wherever the body was parsed (our readers or FastAPI's).
        return Problem(
            PROBLEM_TYPES["invalid-request"],
            "the JSON body is nested too deeply",
            {},
            {"errors": [{"loc": ["body"], "msg": "nested too deeply", "type": "value_error"}]},
        )
    for kind, slug in _DOMAIN_PROBLEMS:
        if isinstance(error, kind):
            detail = str(error) if isinstance(error, _SAFE_DETAIL) else slug
            return Problem(PROBLEM_TYPES[slug], detail or slug, *_extras(error))
    return Problem(PROBLEM_TYPES["internal-error"], "an internal error occurred", {}, {})


def _raised_by_json_decoder(error: BaseException) -> bool:
    frames = traceback.extract_tb(error.__traceback__)
    return bool(frames) and Path(frames[-1].filename).parts[-2:] == ("json", "decoder.py")


def _extras(error: Exception) -> tuple[dict[str, str], dict[str, Any]]:
    headers: dict[str, str] = {}
    extensions: dict[str, Any] = {}
    if isinstance(error, ImageTooLarge):
        extensions = {"limit": error.limit, "actual": error.actual, "unit": error.unit}
    elif isinstance(error, ImageDimensionsRefused):
        extensions = {
            "width": error.width,
            "height": error.height,
            "max_aspect_ratio": error.max_aspect_ratio,
        }
    elif isinstance(error, ImageTooComplex):
        extensions = {"limit": error.limit, "actual": error.actual, "unit": "jpeg-scans"}
    elif isinstance(error, MultipleFacesFound):
        extensions = {"face_count": error.face_count}
    elif isinstance(error, LowQuality):
        extensions = {"components": error.components}
    elif isinstance(error, SubjectNotActive):
        status = getattr(error, "status", None)
        if status is not None:
            extensions = {"subject_status": str(status)}
    elif isinstance(error, IllegalTransition):
        extensions = {"from_status": error.from_status, "to_status": error.to_status}
    elif isinstance(error, InvalidSubjectData | InvalidKeyData):
        extensions = {
            "errors": [{"loc": ["body", error.field], "msg": str(error), "type": "value_error"}]
        }
    elif isinstance(error, EngineOverloaded | StoreBusy | FaceWorkerLost | FaceWorkTimedOut):
        headers = {"Retry-After": str(max(1, error.retry_after_s))}
    elif isinstance(error, VectorBackendUnavailable):
        headers = {"Retry-After": "5"}
    elif isinstance(error, InvalidApiKey):
        headers = {"WWW-Authenticate": "Bearer"}
    return headers, extensions


def _http_problem(error: StarletteHTTPException) -> Problem:
    headers = dict(error.headers or {})
    if error.status_code == 404:
        return Problem(PROBLEM_TYPES["not-found"], "no such resource", headers, {})
    if error.status_code == 405:
        return Problem(PROBLEM_TYPES["method-not-allowed"], "method not allowed", headers, {})
    if error.status_code == 401:
        headers.setdefault("WWW-Authenticate", "Bearer")
        return Problem(PROBLEM_TYPES["unauthorized"], str(error.detail), headers, {})
    if error.status_code == 403:
        return Problem(PROBLEM_TYPES["forbidden"], str(error.detail), headers, {})
    if error.status_code == 413:
        return Problem(PROBLEM_TYPES["payload-too-large"], str(error.detail), headers, {})
    if 400 <= error.status_code < 500:
        # FastAPI's and Starlette's own 400s (a body that is not JSON, a broken multipart):
        # the same caller's mistake as a schema violation, so the same type and status.
        return Problem(
            PROBLEM_TYPES["invalid-request"],
            str(error.detail),
            headers,
            {"errors": [{"loc": ["body"], "msg": str(error.detail), "type": "value_error"}]},
        )
    return Problem(PROBLEM_TYPES["internal-error"], "an internal error occurred", headers, {})


def validation_errors(errors: Sequence[Any]) -> list[dict[str, Any]]:
    """Pydantic's errors without the offending input (it may be a name or an image)."""
    cleaned = []
    for error in errors:
        cleaned.append(
            {
                "loc": [str(part) for part in error.get("loc", ())],
                "msg": str(error.get("msg", "")),
                "type": str(error.get("type", "")),
            }
        )
    return cleaned


def request_id_of(request: Request) -> str:
    return str(getattr(request.state, "request_id", "") or "")


def problem_response(problem: Problem, *, instance: str, request_id: str) -> JSONResponse:
    body: dict[str, Any] = {
        "type": problem.type.uri,
        "title": problem.type.title,
        "status": problem.type.status,
        "detail": problem.detail,
        "instance": instance,
        "request_id": request_id,
        **problem.extensions,
    }
    headers = dict(problem.headers)
    if request_id:
        headers["X-Request-ID"] = request_id
    return JSONResponse(
        body, status_code=problem.type.status, headers=headers, media_type=PROBLEM_MEDIA_TYPE
    )


def respond(request: Request, error: Exception) -> JSONResponse:
    """The response for ``error``; notes the slug for the audit trail and the metrics, and
    logs internal errors with their traceback."""
    problem = problem_for(error)
    request.state.problem_slug = problem.type.slug
    request_id = request_id_of(request)
    if problem.type.status >= 500 and problem.type.slug == "internal-error":
        logger.error(
            json.dumps(
                {
                    "event": "internal_error",
                    "request_id": request_id,
                    "error": type(error).__name__,
                    "method": request.method,
                    "path": request.url.path,
                }
            ),
            exc_info=error,
        )
    return problem_response(problem, instance=request.url.path, request_id=request_id)


async def _handle(request: Request, error: Exception) -> JSONResponse:
    return respond(request, error)


def install_error_handlers(app: FastAPI) -> None:
    """Route every error class through :func:`respond`. ``Exception`` itself is caught by the
    request middleware in ``api/http/app.py`` (Starlette re-raises it from its outermost layer)."""
    for kind in (
        ApiProblem,
        RequestValidationError,
        StarletteHTTPException,
        WajahError,
    ):
        app.add_exception_handler(kind, _handle)
