"""Who is calling, and may they do this: Bearer API keys and the role matrix of docs/api.md.

Each route declares its roles with ``Depends(require(Role.OFFICER, ...))``. The dependency
authenticates the key (401 ``unauthorized`` with ``WWW-Authenticate: Bearer`` for a missing,
malformed, unknown or revoked key), checks the role (403 ``forbidden``), takes a token from the
key's rate-limit bucket (429 ``rate-limited``) and notes the key on the request for the audit
trail and the logs. Secrets are never logged; a failed authentication logs nothing about the
presented value.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from anyio import to_thread
from fastapi import Request

from wajah.api.http.errors import ApiProblem
from wajah.api.http.limits import FailedAuthentications
from wajah.enrollment.access import ApiKey, KeyStore, Role
from wajah.enrollment.db import STATION_MAX
from wajah.enrollment.errors import InvalidApiKey
from wajah.enrollment.records import Actor

ALL_ROLES: frozenset[Role] = frozenset(Role)


@dataclass(frozen=True)
class Caller:
    """The authenticated caller of one request."""

    key_id: str
    name: str  # the key's name; doubles as the station in the audit trail
    role: Role

    @classmethod
    def of(cls, key: ApiKey) -> Caller:
        return cls(key_id=str(key.id), name=key.name, role=Role(key.role))

    @property
    def actor(self) -> Actor:
        """The caller as the records keep who did something (the station is the key's name)."""
        return Actor(station=self.name[:STATION_MAX], key_id=int(self.key_id), role=self.role.value)


def _unauthorized(detail: str) -> ApiProblem:
    return ApiProblem("unauthorized", detail, headers={"WWW-Authenticate": "Bearer"})


def bearer_secret(request: Request) -> str:
    header = request.headers.get("authorization")
    if not header:
        raise _unauthorized("an API key is required: Authorization: Bearer <key>")
    scheme, _, secret = header.partition(" ")
    secret = secret.strip()
    if scheme.lower() != "bearer" or not secret:
        raise _unauthorized("the Authorization header must be 'Bearer <key>'")
    return secret


async def authenticate(request: Request) -> Caller:
    """The caller of ``request``, authenticated (cached on the request)."""
    cached = getattr(request.state, "caller", None)
    if isinstance(cached, Caller):
        return cached
    try:
        secret = bearer_secret(request)
        keys: KeyStore = request.app.state.keys
        try:
            key = await to_thread.run_sync(keys.authenticate, secret)
        except InvalidApiKey:
            raise _unauthorized("the API key is invalid or revoked") from None
    except ApiProblem:
        _count_failure(request)
        raise
    caller = Caller.of(key)
    request.state.caller = caller
    return caller


def _count_failure(request: Request) -> None:
    """Count a failed authentication against the client's address; past the budget the answer
    becomes 429 and the request is dropped from the audit trail."""
    failures: FailedAuthentications = request.app.state.failed_authentications
    address = request.client.host if request.client is not None else "unknown"
    try:
        failures.record_failure(address)
    except ApiProblem:
        request.state.audit = None  # throttled: counted in the metrics, not the trail
        raise


def require(*roles: Role) -> Callable[[Request], Awaitable[Caller]]:
    """A dependency admitting the given roles (every role when none is given)."""
    allowed = frozenset(roles) or ALL_ROLES

    async def dependency(request: Request) -> Caller:
        caller = await authenticate(request)
        if caller.role not in allowed:
            names = ", ".join(sorted(role.value for role in allowed))
            raise ApiProblem(
                "forbidden",
                f"the {caller.role.value} role may not do this (needs: {names})",
                extensions={"role": caller.role.value, "allowed_roles": sorted(allowed)},
            )
        request.app.state.rate_limiter.check(caller.key_id)
        return caller

    dependency.__name__ = "require_" + "_".join(sorted(role.value for role in allowed))
    return dependency
