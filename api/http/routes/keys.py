"""Who am I (every role), and API key administration (admin)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Path, Request

from wajah.api.http.audit_trail import AuditEntry, audited
from wajah.api.http.auth import Caller, require
from wajah.api.http.routes._support import AUTH_PROBLEMS, blocking, problems
from wajah.api.schemas import KeyCreate, KeyCreated, KeyInfo, KeyList, Me
from wajah.enrollment.access import KeyStore, Role

router = APIRouter(prefix="/v1", tags=["keys"])


def _keys(request: Request) -> KeyStore:
    keys: KeyStore = request.app.state.keys
    return keys


@router.get("/me", response_model=Me, summary="The calling key", responses=problems(*AUTH_PROBLEMS))
async def me(*, caller: Annotated[Caller, Depends(require())]) -> Me:
    return Me(key_id=caller.key_id, name=caller.name, role=caller.role.value)


@router.get(
    "/keys",
    response_model=KeyList,
    summary="List API keys (never their secrets)",
    responses=problems(*AUTH_PROBLEMS),
)
async def list_keys(
    *, request: Request, _: Annotated[Caller, Depends(require(Role.ADMIN))]
) -> KeyList:
    keys = await blocking(request, _keys(request).list_keys)
    return KeyList(items=[KeyInfo.from_key(key) for key in keys])


@router.post(
    "/keys",
    response_model=KeyCreated,
    status_code=201,
    summary="Create an API key; the secret is in this response only",
    responses=problems(*AUTH_PROBLEMS),
    dependencies=[Depends(audited("key.create"))],
)
async def create_key(
    *, request: Request, body: KeyCreate, _: Annotated[Caller, Depends(require(Role.ADMIN))]
) -> KeyCreated:
    key, secret = await blocking(request, lambda: _keys(request).create_key(body.name, body.role))
    entry: AuditEntry = request.state.audit
    entry.details = {"created_key_id": key.id, "created_role": str(key.role)}
    return KeyCreated(**KeyInfo.from_key(key).model_dump(), secret=secret)


@router.delete(
    "/keys/{key_id}",
    response_model=KeyInfo,
    summary="Revoke an API key (it fails authentication from now on)",
    responses=problems(*AUTH_PROBLEMS),
    dependencies=[Depends(audited("key.revoke"))],
)
async def revoke_key(
    *,
    request: Request,
    key_id: int = Path(ge=1, le=2**62),
    _: Annotated[Caller, Depends(require(Role.ADMIN))],
) -> KeyInfo:
    entry: AuditEntry = request.state.audit
    entry.details = {"revoked_key_id": key_id}
    key = await blocking(request, lambda: _keys(request).revoke(key_id))
    return KeyInfo.from_key(key)
