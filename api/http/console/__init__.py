"""The web console for enrollment clerks, counter officers, supervisors and operations.

Plain ES modules, CSS and JSON served as static files: no build step and no third-party
front-end code. The console talks to the service only through the public HTTP API
(docs/api.md) with the station's API key, exactly as any other client would.
"""

from __future__ import annotations

from pathlib import Path
from typing import Final

from fastapi import FastAPI
from fastapi.responses import RedirectResponse
from starlette.exceptions import HTTPException
from starlette.responses import Response
from starlette.staticfiles import StaticFiles
from starlette.types import Scope

CONSOLE_DIR: Final = Path(__file__).resolve().parent
CONSOLE_PATH: Final = "/console"
# The applicants' public status page (no key): a short address for receipts and posters.
STATUS_PATH: Final = "/status"
# Only what a browser needs; the package's Python files are never served.
SERVED_SUFFIXES: Final = frozenset({".html", ".js", ".css", ".json", ".svg", ".png", ".ico"})
# The console has no inline script or style and fetches only its own origin.
CONTENT_SECURITY_POLICY: Final = (
    "default-src 'self'; img-src 'self' blob: data:; media-src 'self' blob: mediastream:; "
    "connect-src 'self'; object-src 'none'; base-uri 'none'; frame-ancestors 'none'"
)


class ConsoleFiles(StaticFiles):
    """StaticFiles restricted to the console's own asset types, with security headers and
    no caching beyond revalidation (a station must pick up a new console after an upgrade)."""

    async def get_response(self, path: str, scope: Scope) -> Response:
        suffix = Path(path).suffix
        if path not in ("", ".") and suffix not in SERVED_SUFFIXES:
            raise HTTPException(status_code=404)
        response = await super().get_response(path, scope)
        response.headers["Content-Security-Policy"] = CONTENT_SECURITY_POLICY
        response.headers["X-Content-Type-Options"] = "nosniff"
        response.headers["Referrer-Policy"] = "no-referrer"
        response.headers["Cache-Control"] = "no-cache"
        return response


def mount_console(app: FastAPI) -> None:
    """Serve the console at ``/console/`` (and redirect ``/console`` there), and the
    applicants' status page ``/console/status.html`` at ``/status`` too."""

    @app.api_route(CONSOLE_PATH, methods=["GET", "HEAD"], include_in_schema=False)
    def console_redirect() -> RedirectResponse:
        return RedirectResponse(url=f"{CONSOLE_PATH}/", status_code=308)

    @app.api_route(STATUS_PATH, methods=["GET", "HEAD"], include_in_schema=False)
    def status_redirect() -> RedirectResponse:
        return RedirectResponse(url=f"{CONSOLE_PATH}/status.html", status_code=308)

    app.mount(CONSOLE_PATH, ConsoleFiles(directory=CONSOLE_DIR, html=True), name="console")
