"""The HTTP service: ``create_app(settings)`` builds the FastAPI app of docs/api.md.

Start-up (the lifespan) opens the record store and the gallery index (``build_service``),
the API keys and the audit trail on the store's database, writes the first admin key's
secret to ``<data_dir>/keys/admin.key`` when the database has never had one, and then warms
the face workers in the background: ``/readyz`` answers 503 until they have loaded the
models. A failure to open the store (wrong records key, corrupt database) stops start-up.

Every request goes through :class:`RequestContext`: a request id (``X-Request-ID``, accepted
when well-formed, else generated; echoed back), the audit record (appended before the response
starts), metrics, one JSON access-log line, and the last-resort 500 ``internal-error``.
"""

from __future__ import annotations

import json
import logging
import re
import time
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any, Final

import anyio
from anyio import to_thread
from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi
from fastapi_offline import FastAPIOffline
from starlette.datastructures import MutableHeaders
from starlette.requests import Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from wajah.api.http.audit_trail import OUTCOME_OK, AuditEntry
from wajah.api.http.auth import Caller
from wajah.api.http.console import mount_console
from wajah.api.http.errors import install_error_handlers, respond
from wajah.api.http.headers import security_headers
from wajah.api.http.limits import (
    BodyLimitMiddleware,
    FailedAuthentications,
    RateLimiter,
    VerificationLockout,
)
from wajah.api.http.metrics import UNMATCHED_ROUTE, ApiMetrics
from wajah.api.http.routes import ROUTERS
from wajah.api.logs import request_id_var
from wajah.api.runtime import application_policy, build_service
from wajah.api.schemas import ProblemDetails, Readiness
from wajah.api.settings import Settings
from wajah.biometric.models import non_commercial_models
from wajah.enrollment.audit import AuditLog
from wajah.enrollment.service import IdentityService

logger = logging.getLogger("wajah.api")
access_logger = logging.getLogger("wajah.api.access")

API_VERSION: Final = "1"
_REQUEST_ID_PATTERN: Final = re.compile(r"[A-Za-z0-9._:-]{1,64}")
_OPEN_PATHS: Final = ("/healthz", "/readyz", "/docs", "/redoc", "/openapi.json")


def admin_key_path(settings: Settings) -> Path:
    return settings.data_dir / "keys" / "admin.key"


class _Startup:
    """What ``/readyz`` reports: start-up progress, then the face worker pool's health, read
    at every probe (a pool that lost its workers is not ready until it has new ones)."""

    def __init__(self) -> None:
        self.index_open = False
        self.models_loaded = False
        self.failure: str | None = None
        self.service: IdentityService | None = None

    def readiness(self) -> Readiness:
        workers = self.service.face_workers_health() if self.service is not None else None
        workers_ready = workers is not None and workers.ready
        detail = self.failure
        if self.failure is not None:
            status = "failed"
        elif self.index_open and self.models_loaded and workers_ready:
            status = "ready"
        else:
            status = "starting"
            if self.models_loaded and workers is not None:
                detail = workers.detail
        return Readiness(
            status=status,  # type: ignore[arg-type]
            models_loaded=self.models_loaded,
            index_open=self.index_open,
            face_workers_ready=workers_ready,
            face_worker_restarts=workers.restarts if workers is not None else 0,
            detail=detail,
        )


def create_app(settings: Settings, service: IdentityService | None = None) -> FastAPI:
    """The app. With ``service`` given (tests), the app uses it and leaves closing it to the
    caller; otherwise it builds one at start-up and closes it at shutdown."""
    startup = _Startup()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        owned = service is None
        running: IdentityService
        if service is not None:
            running = service
        else:
            running, report = await to_thread.run_sync(lambda: build_service(settings))
            logger.info(
                json.dumps(
                    {
                        "event": "gallery_opened",
                        "templates": report.templates,
                        "loaded_from_file": report.loaded_from_file,
                        "change_seq": report.change_seq,
                        "elapsed_ms": round(report.elapsed_ms, 1),
                    }
                )
            )
            if settings.replica_poll_s > 0:
                running.follow_changes(settings.replica_poll_s, settings.change_log_retention_s)
        for licence in non_commercial_models():
            # Visible at every start: the operator must know before using it commercially.
            logger.warning(
                json.dumps(
                    {
                        "event": "model_licence",
                        "file": licence.file,
                        "licence": licence.licence,
                        "commercial_use": False,
                        "used_for": licence.used_for,
                    }
                )
            )
        try:
            keys = running.keys
            app.state.service = running
            app.state.keys = keys
            app.state.audit_log = running.audit_log
            created = await to_thread.run_sync(keys.ensure_admin_key, admin_key_path(settings))
            if created is not None:
                # The path only: the secret is in the file (mode 0600), never in a log.
                logger.warning(
                    json.dumps({"event": "initial_admin_key_written", "path": str(created)})
                )
            startup.service = running
            startup.index_open = True
            async with anyio.create_task_group() as tasks:
                tasks.start_soon(_warm_up, running, startup)
                yield
                tasks.cancel_scope.cancel()
        finally:
            if owned:
                await to_thread.run_sync(running.close)

    # The documentation pages load Swagger UI and ReDoc from the package, not from a CDN (an
    # office network may have no internet, and a page of the service must not run others'
    # scripts).
    app = FastAPIOffline(
        title="Wajah",
        version=API_VERSION,
        summary="Face enrollment, 1:1 verification and 1:N search for immigration offices.",
        description=(
            "Every endpoint but `/healthz` and `/readyz` needs `Authorization: Bearer <API key>`. "
            "Errors are RFC 9457 `application/problem+json` with a stable `type` "
            "(`urn:wajah:problem:<slug>`). Image endpoints take `multipart/form-data` (file "
            "field `image`) or `application/json` (`image_base64`)."
        ),
        lifespan=lifespan,
    )
    app.state.settings = settings
    app.state.metrics = ApiMetrics()
    app.state.rate_limiter = RateLimiter(settings.rate_limit_per_minute)
    app.state.failed_authentications = FailedAuthentications(settings.failed_auth_per_minute)
    app.state.failed_verifications = VerificationLockout(
        settings.failed_verify_limit,
        settings.failed_verify_subject_limit,
        settings.failed_verify_window_s,
    )
    app.state.application_policy = application_policy(settings)
    # The applicants' public status lookup: a bucket per client address (no key to count by).
    app.state.public_lookups = RateLimiter(settings.public_lookup_per_minute)
    app.state.readiness = startup.readiness
    for router in ROUTERS:
        app.include_router(router)
    mount_console(app)  # the web console, a static client of the same public API
    install_error_handlers(app)
    # Added last = outermost: the body limit runs inside the request context, so a refused
    # body still gets a request id, an access-log line and its metrics.
    app.add_middleware(
        BodyLimitMiddleware,
        max_bytes=settings.max_request_bytes,
        upload_timeout_s=settings.upload_timeout_s,
    )
    app.add_middleware(RequestContext)
    app.openapi = lambda: _openapi(app)  # type: ignore[method-assign]
    return app


async def _warm_up(service: IdentityService, startup: _Startup) -> None:
    started = time.perf_counter()
    try:
        await to_thread.run_sync(service.warm_up, abandon_on_cancel=True)
    except Exception as error:
        startup.failure = f"the face workers failed to start: {type(error).__name__}"
        logger.exception(json.dumps({"event": "warm_up_failed"}))
        return
    startup.models_loaded = True
    logger.info(
        json.dumps(
            {
                "event": "face_workers_ready",
                "elapsed_ms": round((time.perf_counter() - started) * 1000.0, 1),
            }
        )
    )


class RequestContext:
    """Request id, audit append, metrics, access log and the last-resort 500 (pure ASGI, so
    streaming bodies are not buffered)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        state: dict[str, Any] = scope.setdefault("state", {})
        state["started"] = started
        request_id = _request_id(scope)
        state["request_id"] = request_id
        token = request_id_var.set(request_id)
        status = 500
        response_started = False
        swallow_rest = False
        request = Request(scope)

        async def send_with_context(message: Message) -> None:
            nonlocal status, response_started, swallow_rest
            if swallow_rest:
                return
            if message["type"] == "http.response.start":
                status = int(message["status"])
                if not await _append_audit(request, status):
                    # The trail must hold what the client is told; it could not: refuse.
                    swallow_rest = True
                    status = 500
                    response = respond(request, RuntimeError("audit append failed"))
                    response_started = True
                    await response(scope, _no_receive, send)
                    return
                response_started = True
                headers = MutableHeaders(scope=message)
                headers["X-Request-ID"] = request_id
                for name, value in security_headers(scope["path"], scope.get("scheme", "http")):
                    headers.setdefault(name, value)
            await send(message)

        try:
            await self.app(scope, receive, send_with_context)
        except Exception as error:
            if response_started:
                raise
            response = respond(request, error)
            await response(scope, _no_receive, send_with_context)
        finally:
            request_id_var.reset(token)
            self._observe(request, scope, status, started)

    def _observe(self, request: Request, scope: Scope, status: int, started: float) -> None:
        state = scope["state"]
        duration_s = time.perf_counter() - started
        route = scope.get("route")
        template = getattr(route, "path", None) or UNMATCHED_ROUTE
        outcome = state.get("problem_slug") or (OUTCOME_OK if status < 400 else f"http-{status}")
        metrics: ApiMetrics = request.app.state.metrics
        metrics.observe_request(
            request.method, template, status, outcome, duration_s, state["request_id"]
        )
        caller = state.get("caller")
        access_logger.info(
            json.dumps(
                {
                    "event": "request",
                    "request_id": state["request_id"],
                    "method": request.method,
                    "route": template,
                    "status": status,
                    "outcome": outcome,
                    "duration_ms": round(duration_s * 1000.0, 1),
                    "key_id": caller.key_id if isinstance(caller, Caller) else None,
                }
            )
        )


async def _append_audit(request: Request, status: int) -> bool:
    """Append the request's audit record, if its route keeps one; False if that failed."""
    state = request.scope["state"]
    entry = state.get("audit")
    if not isinstance(entry, AuditEntry):
        return True
    outcome = state.get("problem_slug") or (OUTCOME_OK if status < 400 else f"http-{status}")
    caller = state.get("caller")
    fields = entry.record(
        caller=caller if isinstance(caller, Caller) else None,
        request_id=str(state.get("request_id", "")),
        outcome=outcome,
    )
    started = state.get("started")
    if isinstance(started, float):
        # How long the decision took, as the caller waited for it (the reports' latency).
        fields["details"].setdefault("elapsed_ms", round((time.perf_counter() - started) * 1e3, 1))
    audit_log: AuditLog = request.app.state.audit_log
    try:
        await to_thread.run_sync(lambda: audit_log.append(**fields))
    except Exception:
        logger.exception(
            json.dumps(
                {
                    "event": "audit_append_failed",
                    "action": entry.action,
                    "request_id": state.get("request_id"),
                }
            )
        )
        state.pop("audit", None)
        return False
    return True


async def _no_receive() -> Message:
    return {"type": "http.disconnect"}


def _request_id(scope: Scope) -> str:
    for name, value in scope.get("headers", ()):
        if name == b"x-request-id":
            candidate = bytes(value).decode("latin-1").strip()
            if _REQUEST_ID_PATTERN.fullmatch(candidate):
                return candidate
            break
    return uuid.uuid4().hex


def _openapi(app: FastAPI) -> dict[str, Any]:
    """FastAPI's schema, plus the problem schema and the Bearer scheme on /v1 and /metrics."""
    if app.openapi_schema is not None:
        cached: dict[str, Any] = app.openapi_schema
        return cached
    schema = get_openapi(
        title=app.title,
        version=app.version,
        summary=app.summary,
        description=app.description,
        routes=app.routes,
    )
    components = schema.setdefault("components", {})
    components.setdefault("schemas", {})["ProblemDetails"] = ProblemDetails.model_json_schema()
    components["securitySchemes"] = {
        "bearerAuth": {"type": "http", "scheme": "bearer", "description": "Wajah API key"}
    }
    for path, operations in schema.get("paths", {}).items():
        if path in _OPEN_PATHS:
            continue
        for operation in operations.values():
            operation["security"] = [{"bearerAuth": []}]
    app.openapi_schema = schema
    return schema
