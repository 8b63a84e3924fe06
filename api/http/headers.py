"""Security headers on every response (OWASP Secure Headers Project recommendations).

The API's JSON and the console are same-origin only: no framing, no sniffing, no referrer,
and answers that carry personal or biometric data are never cached. The console's Content
Security Policy allows only its own scripts and styles (it has no inline code); its camera
preview and face chips use ``blob:``/``data:`` images. The API documentation pages (Swagger UI
and ReDoc, served from local copies) need inline start-up scripts, so they get a policy of
their own that still loads nothing from another origin.
"""

from __future__ import annotations

from typing import Final

# Everything but the documentation pages.
_CONTENT_SECURITY_POLICY: Final = (
    "default-src 'self'; img-src 'self' data: blob:; media-src 'self' blob:; "
    "object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
)
_DOCS_CONTENT_SECURITY_POLICY: Final = (
    "default-src 'self'; script-src 'self' 'unsafe-inline'; style-src 'self' 'unsafe-inline'; "
    "img-src 'self' data:; worker-src 'self' blob:; object-src 'none'; base-uri 'none'; "
    "frame-ancestors 'none'"
)
DOCS_PATHS: Final = ("/docs", "/redoc", "/static-offline-docs/")

_ALWAYS: Final[tuple[tuple[str, str], ...]] = (
    ("X-Content-Type-Options", "nosniff"),
    ("X-Frame-Options", "DENY"),
    ("Referrer-Policy", "no-referrer"),
    ("Cross-Origin-Opener-Policy", "same-origin"),
    ("Cross-Origin-Resource-Policy", "same-origin"),
    # The console's enrollment and counter screens use the camera; nothing uses the rest.
    ("Permissions-Policy", "camera=(self), microphone=(), geolocation=(), payment=()"),
)
# Behind a TLS-terminating proxy that sets the scheme (the deployment recipe's), one year.
_HSTS: Final = ("Strict-Transport-Security", "max-age=31536000")


def security_headers(path: str, scheme: str) -> list[tuple[str, str]]:
    """The headers to add to the response for ``path`` served over ``scheme``."""
    docs = path.startswith(DOCS_PATHS)
    headers = [
        *_ALWAYS,
        (
            "Content-Security-Policy",
            _DOCS_CONTENT_SECURITY_POLICY if docs else _CONTENT_SECURITY_POLICY,
        ),
    ]
    if path.startswith("/v1/") or path == "/metrics":
        headers.append(("Cache-Control", "no-store"))
    if scheme == "https":
        headers.append(_HSTS)
    return headers
