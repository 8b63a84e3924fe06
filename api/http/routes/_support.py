"""What the route modules share: the app's long-lived objects, image uploads in either
encoding, blocking calls in worker threads, and the OpenAPI description of problems."""

from __future__ import annotations

import base64
import binascii
import json
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any, Final, TypeVar

from fastapi import Request
from pydantic import BaseModel, ValidationError
from starlette.datastructures import UploadFile
from starlette.exceptions import HTTPException as StarletteHTTPException

from wajah.api.http.errors import PROBLEM_MEDIA_TYPE, ApiProblem, validation_errors
from wajah.api.http.limits import VerificationLockout, run_blocking
from wajah.api.http.metrics import ApiMetrics
from wajah.api.settings import Settings
from wajah.enrollment.service import IdentityService

T = TypeVar("T")
ModelT = TypeVar("ModelT", bound=BaseModel)

_DATA_URL_PREFIX: Final = re.compile(r"^data:[\w/+.-]*;base64,", re.IGNORECASE)
IMAGE_FIELD: Final = "image"
IMAGE_BASE64_FIELD: Final = "image_base64"


def service_of(request: Request) -> IdentityService:
    service: IdentityService = request.app.state.service
    return service


def settings_of(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


def metrics_of(request: Request) -> ApiMetrics:
    metrics: ApiMetrics = request.app.state.metrics
    return metrics


def failed_verifications_of(request: Request) -> VerificationLockout:
    tracker: VerificationLockout = request.app.state.failed_verifications
    return tracker


async def blocking(request: Request, function: Callable[[], T]) -> T:
    """Run ``function`` (face or database work) in a worker thread under the request
    timeout."""
    return await run_blocking(function, settings_of(request).request_timeout_s)


# -- image uploads ------------------------------------------------------------------------


@dataclass(frozen=True)
class ImageUpload:
    image: bytes
    fields: dict[str, Any]  # the other form or JSON fields, unvalidated


def _invalid(message: str, loc: Iterable[str]) -> ApiProblem:
    return ApiProblem(
        "invalid-request",
        message,
        extensions={"errors": [{"loc": list(loc), "msg": message, "type": "value_error"}]},
    )


async def read_image_upload(request: Request) -> ImageUpload:
    """The image and the other fields of a ``multipart/form-data`` (file field ``image``) or
    ``application/json`` (``image_base64``) body. The body-size limit is enforced while it
    streams (``api.http.limits.BodyLimitMiddleware``); the image's own byte and pixel limits by the
    decoder."""
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if content_type == "multipart/form-data":
        return await _read_multipart(request)
    if content_type == "application/json" or content_type.endswith("+json"):
        return await _read_json(request)
    raise ApiProblem(
        "invalid-request",
        "send the image as multipart/form-data (file field 'image') or as application/json "
        "with 'image_base64'",
        extensions={
            "errors": [
                {
                    "loc": ["header", "content-type"],
                    "msg": "unsupported content type",
                    "type": "value_error",
                }
            ]
        },
    )


async def _read_multipart(request: Request) -> ImageUpload:
    try:
        form = await request.form(max_files=1, max_fields=20)
    except StarletteHTTPException as error:
        raise _invalid(f"malformed multipart body: {error.detail}", ["body"]) from None
    try:
        upload = form.get(IMAGE_FIELD)
        if not isinstance(upload, UploadFile):
            raise _invalid("the file field 'image' is required", ["body", IMAGE_FIELD])
        image = await upload.read()
        fields = {
            name: value
            for name, value in form.multi_items()
            if name != IMAGE_FIELD and isinstance(value, str)
        }
    finally:
        await form.close()
    return ImageUpload(image, fields)


async def _read_json(request: Request) -> ImageUpload:
    body = await request.body()
    try:
        document = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        raise _invalid("the body is not valid JSON", ["body"]) from None
    if not isinstance(document, dict):
        raise _invalid("the body must be a JSON object", ["body"])
    encoded = document.pop(IMAGE_BASE64_FIELD, None)
    if not isinstance(encoded, str):
        raise _invalid("'image_base64' is required (a base64 string)", ["body", IMAGE_BASE64_FIELD])
    encoded = _DATA_URL_PREFIX.sub("", encoded.strip(), count=1)
    try:
        image = base64.b64decode(encoded, validate=True)
    except (binascii.Error, ValueError):
        raise _invalid("'image_base64' is not valid base64", ["body", IMAGE_BASE64_FIELD]) from None
    return ImageUpload(image, document)


def parse_fields(model: type[ModelT], fields: dict[str, Any]) -> ModelT:
    """Validate the non-image fields; a failure is 422 ``invalid-request``."""
    try:
        return model.model_validate(fields)
    except ValidationError as error:
        errors = validation_errors(error.errors())
        for item in errors:
            item["loc"] = ["body", *item["loc"]]
        raise ApiProblem(
            "invalid-request", "the request fields are not valid", extensions={"errors": errors}
        ) from None


def image_request_body(fields: type[BaseModel], description: str) -> dict[str, Any]:
    """``openapi_extra`` documenting both encodings of an image request."""
    schema = fields.model_json_schema()
    properties = dict(schema.get("properties", {}))
    required = list(schema.get("required", []))
    multipart_schema = {
        "type": "object",
        "properties": {
            IMAGE_FIELD: {
                "type": "string",
                "format": "binary",
                "description": "JPEG, PNG or WebP photo",
            },
            **properties,
        },
        "required": [IMAGE_FIELD, *required],
    }
    json_schema = {
        "type": "object",
        "properties": {
            IMAGE_BASE64_FIELD: {
                "type": "string",
                "contentEncoding": "base64",
                "description": "the photo, base64 (a data: URL prefix is allowed)",
            },
            **properties,
        },
        "required": [IMAGE_BASE64_FIELD, *required],
    }
    example = schema.get("example")
    json_content: dict[str, Any] = {"schema": json_schema}
    if example is not None:
        json_content["example"] = {IMAGE_BASE64_FIELD: "/9j/4AAQSkZJRgABAQ...", **example}
    return {
        "requestBody": {
            "required": True,
            "description": description,
            "content": {
                "multipart/form-data": {"schema": multipart_schema},
                "application/json": json_content,
            },
        }
    }


# -- problems in the OpenAPI schema ---------------------------------------------------------

_STATUS_DESCRIPTIONS: Final = {
    401: "unauthorized: missing, invalid or revoked API key",
    403: "forbidden: the key's role may not do this",
    404: (
        "subject-not-found, sample-not-found, review-not-found, key-not-found, "
        "application-not-found, application-lookup-failed or not-found"
    ),
    405: "method-not-allowed",
    408: "request-timeout: the body arrived too slowly",
    409: (
        "subject-exists, subject-not-active, subject-not-enrolled, review-already-resolved, "
        "application-exists or illegal-transition"
    ),
    413: "payload-too-large or image-too-large",
    415: "unsupported-image-format",
    422: (
        "invalid-request, image-decode-error, image-dimensions, image-too-complex, no-face, "
        "multiple-faces or low-quality"
    ),
    429: "rate-limited or too-many-failed-attempts (Retry-After)",
    500: "internal-error",
    503: "overloaded, timeout, face-worker-lost or vector-backend-unavailable (Retry-After)",
}

# What any authenticated /v1 route can answer besides its own problems.
AUTH_PROBLEMS: Final = (401, 403, 404, 405, 408, 413, 422, 429, 500, 503)
IMAGE_PROBLEMS: Final = (*AUTH_PROBLEMS, 415)


def problems(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """``responses=`` for the given problem statuses (application/problem+json)."""
    return {
        status: {
            "description": _STATUS_DESCRIPTIONS[status],
            "content": {
                PROBLEM_MEDIA_TYPE: {"schema": {"$ref": "#/components/schemas/ProblemDetails"}}
            },
        }
        for status in sorted(set(statuses))
    }
