"""API keys: creation, authentication, revocation, and the first admin key.

A secret is ``wjh_`` followed by 32 random bytes in unpadded base64url (43 characters), shown
once at creation. The database keeps only its SHA-256 and the first eight characters after the
``wjh_`` (``key_prefix``), which find the row and let an operator recognise a key in
``wajah keys list``.

Why a plain SHA-256 and not bcrypt/scrypt/Argon2: those slow, salted hashes exist to stop an
attacker who has stolen the hashes from guessing low-entropy passwords. A secret of 256 random
bits cannot be guessed, salted or not, so a slow hash would add nothing but a few hundred
milliseconds of CPU to every request. (The 48 bits in ``key_prefix`` leave 208 unknown.)

Authentication compares the hash with :func:`hmac.compare_digest`; ``last_used_at`` is written
at most once a minute per key, so authenticating is a read, not a write per request.
"""

from __future__ import annotations

import base64
import dataclasses
import datetime as dt
import hashlib
import hmac
import logging
import re
import secrets
from collections.abc import Callable
from pathlib import Path
from typing import Any, Final

from sqlalchemy import Engine, or_, select, update
from sqlalchemy.exc import IntegrityError, OperationalError

from wajah.enrollment.clock import utcnow
from wajah.enrollment.db import (
    KEY_NAME_MAX,
    KEY_PREFIX_LENGTH,
    ApiKeyRow,
    Meta,
    session_factory,
    write_engine,
)
from wajah.enrollment.errors import ApiKeyNotFound, InvalidApiKey, InvalidKeyData
from wajah.enrollment.records import Role
from wajah.enrollment.structured_log import log_event
from wajah.enrollment.validation import clean_text
from wajah.matcher.atomic_files import atomic_write

__all__ = [
    "INITIAL_ADMIN_KEY_NAME",
    "ApiKey",
    "KeyStore",
    "Role",
    "hash_secret",
]

logger = logging.getLogger(__name__)

SECRET_PREFIX: Final = "wjh_"
SECRET_BYTES: Final = 32  # 256 bits: beyond guessing, so a fast hash is enough (see above)
_SECRET_BODY_LENGTH: Final = 43  # unpadded base64url of 32 bytes
_SECRET_PATTERN: Final = re.compile(rf"{SECRET_PREFIX}[A-Za-z0-9_-]{{{_SECRET_BODY_LENGTH}}}")
# Writing last_used_at on every request would turn each authenticated read into a write (and,
# on SQLite, serialise them all); a minute is fine-grained enough to spot an unused key.
LAST_USED_RESOLUTION: Final = dt.timedelta(minutes=1)
INITIAL_ADMIN_KEY_NAME: Final = "initial admin"
# A meta row written with the first admin key: its primary key lets only one of several
# processes starting together on a new database create that key (portable, unlike a lock).
_INITIAL_ADMIN_META_KEY: Final = "initial_admin_key_id"
_INVALID_MESSAGE: Final = "invalid API key"
# Compared against when no row has the presented prefix, so a miss costs what a hit costs.
_DUMMY_HASH: Final = "0" * 64


@dataclasses.dataclass(frozen=True)
class ApiKey:
    """An API key as the service sees it; never holds the secret or its hash."""

    id: int
    name: str  # station or person
    role: Role
    key_prefix: str  # the 8 characters after "wjh_"
    created_at: dt.datetime
    revoked_at: dt.datetime | None
    last_used_at: dt.datetime | None

    @property
    def active(self) -> bool:
        return self.revoked_at is None


def hash_secret(secret: str) -> str:
    """Hex SHA-256 of the secret's ASCII bytes (what ``api_keys.key_hash`` holds)."""
    return hashlib.sha256(secret.encode("ascii")).hexdigest()


class KeyStore:
    """Repository of API keys over the record database's engine.

    Safe to share between threads: it holds the engine (pooled) and session factories, and each
    call uses its own session. ``clock`` returns aware UTC datetimes (tests pass a fake one).
    """

    def __init__(self, engine: Engine, *, clock: Callable[[], dt.datetime] = utcnow) -> None:
        self._read_sessions = session_factory(engine)
        self._write_sessions = session_factory(write_engine(engine))
        self._clock = clock

    def create_key(self, name: str, role: Role | str) -> tuple[ApiKey, str]:
        """A new key and its secret. The secret is returned here and never again."""
        clean_name = _clean_name(name)
        key_role = _parse_role(role)
        with self._write_sessions.begin() as session:
            row, secret = self._insert_key(session, clean_name, key_role)
        _log("api_key_created", key_id=row.id, role=key_role.value)
        return _api_key(row), secret

    def authenticate(self, secret: str) -> ApiKey:
        """The active key with this secret; :class:`InvalidApiKey` if malformed, unknown or
        revoked."""
        if not isinstance(secret, str) or not _SECRET_PATTERN.fullmatch(secret):
            raise InvalidApiKey(_INVALID_MESSAGE, reason="malformed")
        presented = hash_secret(secret)
        prefix = _prefix_of(secret)
        with self._read_sessions() as session:
            candidates = session.scalars(
                select(ApiKeyRow).where(ApiKeyRow.key_prefix == prefix).order_by(ApiKeyRow.id)
            ).all()
        found: ApiKeyRow | None = None
        # Compare against every row with the prefix (almost always one), and against a dummy
        # when there is none, so a miss costs about what a hit costs.
        if not candidates:
            hmac.compare_digest(_DUMMY_HASH, presented)
        for row in candidates:
            if hmac.compare_digest(row.key_hash, presented):
                found = row
        if found is None:
            raise InvalidApiKey(_INVALID_MESSAGE, reason="unknown")
        if found.revoked_at is not None:
            raise InvalidApiKey(_INVALID_MESSAGE, reason="revoked", key_id=found.id)
        return self._touch(_api_key(found))

    def _touch(self, key: ApiKey) -> ApiKey:
        now = self._clock()
        stale_before = now - LAST_USED_RESOLUTION
        if key.last_used_at is not None and key.last_used_at > stale_before:
            return key
        try:
            with self._write_sessions.begin() as session:
                # Conditional, so concurrent requests (or processes) write it once a minute.
                result = session.execute(
                    update(ApiKeyRow)
                    .where(
                        ApiKeyRow.id == key.id,
                        or_(
                            ApiKeyRow.last_used_at.is_(None),
                            ApiKeyRow.last_used_at <= stale_before,
                        ),
                    )
                    .values(last_used_at=now)
                    .execution_options(synchronize_session=False)
                )
        except OperationalError as error:
            # Bookkeeping only: a busy database must not turn a valid key into a 401/500.
            _log("api_key_touch_failed", key_id=key.id, error=type(error.orig).__name__)
            return key
        if result.rowcount != 1:  # type: ignore[attr-defined]
            return key  # another request touched it a moment ago
        return dataclasses.replace(key, last_used_at=now)

    def get_key(self, key_id: int) -> ApiKey:
        with self._read_sessions() as session:
            row = session.get(ApiKeyRow, key_id)
            if row is None:
                raise ApiKeyNotFound(f"no API key with id {key_id}", key_id=key_id)
            return _api_key(row)

    def list_keys(self, *, include_revoked: bool = True) -> list[ApiKey]:
        """Every key in creation order (revoked ones too, unless told otherwise)."""
        query = select(ApiKeyRow).order_by(ApiKeyRow.id)
        if not include_revoked:
            query = query.where(ApiKeyRow.revoked_at.is_(None))
        with self._read_sessions() as session:
            return [_api_key(row) for row in session.scalars(query)]

    def revoke(self, key_id: int) -> ApiKey:
        """Revoke the key; it fails authentication from now on. Revoking a revoked key keeps
        its first revocation time. :class:`ApiKeyNotFound` for an unknown id."""
        with self._write_sessions.begin() as session:
            row = session.get(ApiKeyRow, key_id)
            if row is None:
                raise ApiKeyNotFound(f"no API key with id {key_id}", key_id=key_id)
            newly_revoked = row.revoked_at is None
            if newly_revoked:
                row.revoked_at = self._clock()
        if newly_revoked:
            _log("api_key_revoked", key_id=key_id)
        return _api_key(row)

    def ensure_admin_key(self, key_file: Path) -> Path | None:
        """On a database that has never had an admin key, create one named "initial admin",
        write its secret to ``key_file`` (mode 0600, parent 0700) and return the path;
        otherwise None.

        "Never had" includes revoked admin keys: once an office has revoked every admin key,
        a new one comes from ``wajah keys create --role admin`` on the server, not from a
        restart quietly writing a fresh secret to disk.

        The file is written inside the creating transaction, so a failed write leaves no key
        whose secret nobody holds. Of several processes starting together, one creates the
        key; the others return None.
        """
        try:
            with self._write_sessions.begin() as session:
                has_admin = session.execute(
                    select(ApiKeyRow.id).where(ApiKeyRow.role == Role.ADMIN.value).limit(1)
                ).first()
                marker = session.get(Meta, _INITIAL_ADMIN_META_KEY)
                if has_admin is not None or marker is not None:
                    return None
                row, secret = self._insert_key(session, INITIAL_ADMIN_KEY_NAME, Role.ADMIN)
                session.add(Meta(key=_INITIAL_ADMIN_META_KEY, value=str(row.id)))
                session.flush()  # a concurrent creator fails here, before any file is written
                _write_secret_file(key_file, secret)
        except IntegrityError:
            return None  # another process created the initial admin key first
        _log("api_key_created", key_id=row.id, role=Role.ADMIN.value, initial=True)
        return key_file

    def _insert_key(self, session: Any, name: str, role: Role) -> tuple[ApiKeyRow, str]:
        secret = SECRET_PREFIX + _b64url(secrets.token_bytes(SECRET_BYTES))
        row = ApiKeyRow(
            name=name,
            role=role.value,
            key_prefix=_prefix_of(secret),
            key_hash=hash_secret(secret),
            created_at=self._clock(),
        )
        session.add(row)
        session.flush()
        return row, secret


def _write_secret_file(path: Path, secret: str) -> None:
    """Write atomically with mode 0600 from the start (never briefly world-readable), via a
    temporary file renamed over ``path`` so a symlink planted at ``path`` is replaced, not
    followed."""
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    with atomic_write(path, encoding="ascii", permissions=0o600, prefix=".admin-key-") as handle:
        handle.write(secret + "\n")


def _b64url(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


def _prefix_of(secret: str) -> str:
    return secret[len(SECRET_PREFIX) : len(SECRET_PREFIX) + KEY_PREFIX_LENGTH]


def _clean_name(value: str) -> str:
    return clean_text(
        value, "name", KEY_NAME_MAX, required=True, label="key name", error=InvalidKeyData
    )


def _parse_role(value: Role | str) -> Role:
    try:
        return Role(value)
    except ValueError:
        allowed = ", ".join(role.value for role in Role)
        raise InvalidKeyData(f"role must be one of {allowed}", field="role") from None


def _api_key(row: ApiKeyRow) -> ApiKey:
    return ApiKey(
        id=row.id,
        name=row.name,
        role=Role(row.role),
        key_prefix=row.key_prefix,
        created_at=row.created_at,
        revoked_at=row.revoked_at,
        last_used_at=row.last_used_at,
    )


def _log(event: str, **fields: Any) -> None:
    # Ids and roles only: key names may be a person's name, and secrets never leave create_key.
    log_event(logger, event, **fields)
