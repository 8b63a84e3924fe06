"""API keys: who am I, creating, listing and revoking keys."""

from __future__ import annotations

import datetime as dt
from typing import Literal

from pydantic import ConfigDict, Field

from wajah.api.schemas.common import _Model
from wajah.enrollment.access import ApiKey


class Me(_Model):
    model_config = ConfigDict(
        frozen=True,
        json_schema_extra={"example": {"key_id": "3", "name": "counter-2", "role": "officer"}},
    )

    key_id: str
    name: str
    role: str


class KeyCreate(_Model):
    model_config = ConfigDict(
        frozen=True, json_schema_extra={"example": {"name": "enrollment-1", "role": "clerk"}}
    )

    name: str = Field(min_length=1, max_length=128)
    role: Literal["clerk", "officer", "supervisor", "ops", "admin"]


class KeyInfo(_Model):
    key_id: str
    name: str
    role: str
    key_prefix: str
    created_at: dt.datetime
    revoked_at: dt.datetime | None
    last_used_at: dt.datetime | None

    @classmethod
    def from_key(cls, key: ApiKey) -> KeyInfo:
        return cls(
            key_id=str(key.id),
            name=key.name,
            role=str(key.role),
            key_prefix=key.key_prefix,
            created_at=key.created_at,
            revoked_at=key.revoked_at,
            last_used_at=key.last_used_at,
        )


class KeyCreated(KeyInfo):
    secret: str = Field(description="Shown once; only its hash is kept.")


class KeyList(_Model):
    items: list[KeyInfo]
