from __future__ import annotations

import datetime as dt
import re
import stat
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import Engine, text

from wajah.enrollment.access import INITIAL_ADMIN_KEY_NAME, KeyStore, Role, hash_secret
from wajah.enrollment.db import Base, create_database_engine
from wajah.enrollment.errors import ApiKeyNotFound, InvalidApiKey, InvalidKeyData

SECRET_FORMAT = re.compile(r"wjh_[A-Za-z0-9_-]{43}")


class FakeClock:
    def __init__(self) -> None:
        self.now = dt.datetime(2026, 11, 26, 9, 0, tzinfo=dt.UTC)

    def __call__(self) -> dt.datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += dt.timedelta(seconds=seconds)


@pytest.fixture
def database_url(migrated_database_url: str) -> str:
    """Every test runs on SQLite and on PostgreSQL (tests/conftest.py)."""
    return migrated_database_url


@pytest.fixture
def engine(database_url: str) -> Iterator[Engine]:
    engine = create_database_engine(database_url)
    yield engine
    engine.dispose()


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def keys(engine: Engine, clock: FakeClock) -> KeyStore:
    return KeyStore(engine, clock=clock)


def stored_last_used(engine: Engine, key_id: int) -> str | None:
    with engine.connect() as connection:
        value = connection.execute(
            text("SELECT last_used_at FROM api_keys WHERE id = :id"), {"id": key_id}
        ).scalar_one()
    return None if value is None else str(value)


def test_created_key_authenticates_with_its_role(keys: KeyStore) -> None:
    key, secret = keys.create_key("  Counter 3 ", "clerk")
    assert SECRET_FORMAT.fullmatch(secret)
    assert key.name == "Counter 3"
    assert key.role is Role.CLERK
    assert key.key_prefix == secret[4:12]
    assert key.active and key.last_used_at is None

    authenticated = keys.authenticate(secret)
    assert (authenticated.id, authenticated.role, authenticated.name) == (
        key.id,
        Role.CLERK,
        "Counter 3",
    )
    assert authenticated.last_used_at is not None


def test_every_key_gets_its_own_secret(keys: KeyStore) -> None:
    created = [keys.create_key(f"station {n}", Role.OFFICER) for n in range(5)]
    secrets = {secret for _, secret in created}
    assert len(secrets) == 5
    for key, secret in created:
        assert keys.authenticate(secret).id == key.id


def test_wrong_secret_is_refused(keys: KeyStore) -> None:
    _, secret = keys.create_key("desk", Role.OFFICER)
    # Same prefix (so the row is found), different remainder: the hash comparison refuses it.
    last = "A" if secret[-1] != "A" else "B"
    for wrong in (secret[:-1] + last, "wjh_" + "A" * 43):
        with pytest.raises(InvalidApiKey) as refused:
            keys.authenticate(wrong)
        assert refused.value.reason == "unknown"
        assert secret not in str(refused.value)


@pytest.mark.parametrize(
    "malformed",
    [
        "",
        "wjh_",
        "wjh_short",
        "Bearer wjh_" + "A" * 43,
        "WJH_" + "A" * 43,
        "wjh_" + "A" * 42 + "=",
        "wjh_" + "A" * 44,
        "wjh_" + "A" * 42 + "é",
        "wjh_" + "A" * 42 + "\n",
    ],
)
def test_malformed_secret_is_refused(keys: KeyStore, malformed: str) -> None:
    with pytest.raises(InvalidApiKey) as refused:
        keys.authenticate(malformed)
    assert refused.value.reason == "malformed"


def test_revoked_key_is_refused(keys: KeyStore, clock: FakeClock) -> None:
    key, secret = keys.create_key("desk", Role.SUPERVISOR)
    other, other_secret = keys.create_key("other desk", Role.SUPERVISOR)
    revoked = keys.revoke(key.id)
    assert revoked.revoked_at == clock.now and not revoked.active
    with pytest.raises(InvalidApiKey) as refused:
        keys.authenticate(secret)
    assert refused.value.reason == "revoked"
    assert refused.value.key_id == key.id
    assert str(refused.value) == "invalid API key"  # same words as for an unknown key
    assert keys.authenticate(other_secret).id == other.id

    clock.advance(3600)
    assert keys.revoke(key.id).revoked_at == revoked.revoked_at  # the first revocation stands


def test_revoking_an_unknown_key(keys: KeyStore) -> None:
    with pytest.raises(ApiKeyNotFound) as missing:
        keys.revoke(404)
    assert missing.value.key_id == 404


def test_list_keys(keys: KeyStore) -> None:
    first, _ = keys.create_key("a", Role.CLERK)
    second, _ = keys.create_key("b", Role.OPS)
    keys.revoke(first.id)
    assert [key.id for key in keys.list_keys()] == [first.id, second.id]
    assert [key.id for key in keys.list_keys(include_revoked=False)] == [second.id]


@pytest.mark.parametrize(
    ("name", "role", "field"),
    [("", "clerk", "name"), ("x" * 129, "clerk", "name"), ("a\tb", "clerk", "name"),
     ("desk", "root", "role")],
)  # fmt: skip
def test_bad_key_data_is_refused(keys: KeyStore, name: str, role: str, field: str) -> None:
    with pytest.raises(InvalidKeyData) as refused:
        keys.create_key(name, role)
    assert refused.value.field == field
    assert keys.list_keys() == []


def test_last_used_is_written_at_most_once_a_minute(
    keys: KeyStore, engine: Engine, clock: FakeClock
) -> None:
    key, secret = keys.create_key("desk", Role.OFFICER)
    first_use = clock.now
    assert keys.authenticate(secret).last_used_at == first_use
    written = stored_last_used(engine, key.id)
    assert written is not None

    clock.advance(30)
    assert keys.authenticate(secret).last_used_at == first_use
    assert stored_last_used(engine, key.id) == written  # no write within the minute

    clock.advance(31)
    assert keys.authenticate(secret).last_used_at == clock.now
    assert stored_last_used(engine, key.id) != written
    assert keys.get_key(key.id).last_used_at == clock.now


def stored_bytes(engine: Engine) -> bytes:
    """Everything the database holds for the tests to search: SQLite's files (free pages and
    the write-ahead log included), or every row of every table as PostgreSQL's text."""
    if engine.dialect.name == "sqlite":
        path = Path(str(engine.url.database))
        engine.dispose()
        return b"".join(
            file.read_bytes()
            for file in (path, Path(f"{path}-wal"), Path(f"{path}-shm"))
            if file.exists()
        )
    with engine.connect() as connection:
        return "\n".join(
            str(row)
            for table in Base.metadata.sorted_tables
            for row in connection.execute(
                text(f'SELECT t::text FROM "{table.name}" AS t')
            ).scalars()
        ).encode()


def test_database_holds_only_hashes(keys: KeyStore, engine: Engine) -> None:
    created = [keys.create_key(f"desk {n}", Role.CLERK) for n in range(3)]
    for _, secret in created:
        keys.authenticate(secret)
    on_disk = stored_bytes(engine)
    for _, secret in created:
        assert secret.encode() not in on_disk
        assert secret[12:].encode() not in on_disk  # the part after the stored prefix
        assert hash_secret(secret).encode() in on_disk  # we scanned the right bytes


def test_ensure_admin_key_writes_a_private_file_once(keys: KeyStore, tmp_path: Path) -> None:
    key_file = tmp_path / "keys" / "admin.key"
    assert keys.ensure_admin_key(key_file) == key_file
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    assert stat.S_IMODE(key_file.parent.stat().st_mode) == 0o700
    secret = key_file.read_text().strip()
    admin = keys.authenticate(secret)
    assert (admin.role, admin.name) == (Role.ADMIN, INITIAL_ADMIN_KEY_NAME)

    contents = key_file.read_bytes()
    assert keys.ensure_admin_key(key_file) is None
    assert key_file.read_bytes() == contents
    assert len(keys.list_keys()) == 1

    # Revoking every admin key does not make a restart mint a new one.
    keys.revoke(admin.id)
    assert keys.ensure_admin_key(tmp_path / "again.key") is None
    assert not (tmp_path / "again.key").exists()


def test_ensure_admin_key_leaves_a_database_with_an_admin_alone(
    keys: KeyStore, tmp_path: Path
) -> None:
    keys.create_key("Head of office", Role.ADMIN)
    assert keys.ensure_admin_key(tmp_path / "admin.key") is None
    assert not (tmp_path / "admin.key").exists()


def test_concurrent_first_starts_create_one_admin_key(
    database_url: str, engine: Engine, tmp_path: Path
) -> None:
    # Separate engines, as separate processes would have.
    engines = [create_database_engine(database_url) for _ in range(4)]
    results: list[Path | None] = []
    barrier = threading.Barrier(len(engines))

    def start(index: int) -> None:
        barrier.wait()
        results.append(KeyStore(engines[index]).ensure_admin_key(tmp_path / f"admin-{index}.key"))

    threads = [threading.Thread(target=start, args=(index,)) for index in range(len(engines))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    for other in engines:
        other.dispose()
    written = [path for path in results if path is not None]
    assert len(results) == 4 and len(written) == 1
    admins = KeyStore(engine).list_keys()
    assert [key.role for key in admins] == [Role.ADMIN]
    assert KeyStore(engine).authenticate(written[0].read_text().strip()).id == admins[0].id
