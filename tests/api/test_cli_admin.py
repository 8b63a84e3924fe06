from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import typer
from click.testing import Result
from sqlalchemy import text
from typer.testing import CliRunner

from tests.enrollment.test_gallery import add_template
from wajah.api.cli.admin import audit_app, keys_app
from wajah.api.cli.records import index_app
from wajah.enrollment.access import KeyStore, Role
from wajah.enrollment.db import create_database_engine
from wajah.enrollment.store import open_record_store


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    return tmp_path / "data"


@pytest.fixture
def database(migrated_database_url: str, data_dir: Path) -> tuple[str | None, str]:
    """``(WAJAH_DATABASE_URL, the URL it means)``, on SQLite and on PostgreSQL: for SQLite the
    setting is unset, so the commands create and migrate the data directory's file."""
    if migrated_database_url.startswith("sqlite"):
        return None, f"sqlite:///{data_dir / 'wajah.db'}"
    return migrated_database_url, migrated_database_url


@pytest.fixture
def run(data_dir: Path, database: tuple[str | None, str]) -> Iterator[Any]:
    runner = CliRunner()
    # None unsets a variable the developer's shell may have set.
    env = {
        "WAJAH_DATA_DIR": str(data_dir),
        "WAJAH_DATABASE_URL": database[0],
        "WAJAH_ENCRYPTION_KEY": None,
    }

    def invoke(app: typer.Typer, *args: str, **more_env: str) -> Result:
        return runner.invoke(app, list(args), env={**env, **more_env})

    yield invoke


def document(result: Result) -> Any:
    assert result.exit_code == 0, result.stderr
    return json.loads(result.stdout)


def test_keys_create_prints_the_secret_once_and_it_works(
    run: Any, database: tuple[str | None, str]
) -> None:
    created = document(run(keys_app, "create", "--role", "clerk", "--name", "Counter 3", "--json"))
    assert {created["key_id"], created["name"], created["role"]} == {1, "Counter 3", "clerk"}
    secret = created["secret"]

    engine = create_database_engine(database[1])
    try:
        assert KeyStore(engine).authenticate(secret).role is Role.CLERK
    finally:
        engine.dispose()

    listed = run(keys_app, "list", "--json")
    assert secret not in listed.stdout and secret[12:] not in listed.stdout
    items = document(listed)["items"]
    assert [(item["key_id"], item["role"], item["active"]) for item in items] == [
        (1, "clerk", True)
    ]


def test_keys_create_human_output_puts_the_secret_on_its_own_line(run: Any) -> None:
    result = run(keys_app, "create", "--role", "OFFICER", "--name", "Desk 1")
    assert result.exit_code == 0, result.stderr
    lines = result.stdout.splitlines()
    assert any(line.startswith("wjh_") and len(line) == 47 for line in lines)
    assert "officer" in result.stdout


def test_keys_revoke(run: Any) -> None:
    run(keys_app, "create", "--role", "ops", "--name", "Monitoring", "--json")
    revoked = document(run(keys_app, "revoke", "1", "--json"))
    assert revoked["key_id"] == 1 and revoked["active"] is False and revoked["revoked_at"]
    assert document(run(keys_app, "list", "--active", "--json"))["items"] == []

    missing = run(keys_app, "revoke", "42")
    assert missing.exit_code == 2
    assert missing.stderr.strip() == "wajah: no API key with id 42"


def test_keys_create_refuses_bad_input(run: Any) -> None:
    assert run(keys_app, "create", "--role", "root", "--name", "x").exit_code == 2
    empty = run(keys_app, "create", "--role", "clerk", "--name", "  ")
    assert empty.exit_code == 2 and "name is empty" in empty.stderr


def test_key_changes_are_audited_and_the_chain_verifies(run: Any) -> None:
    run(keys_app, "create", "--role", "admin", "--name", "Head of office")
    run(keys_app, "revoke", "1")
    report = document(run(audit_app, "verify", "--json"))
    assert report["ok"] is True and report["checked"] == 2
    listed = document(run(audit_app, "list", "--action", "key.create", "--json"))
    assert listed["total"] == 1
    event = listed["items"][0]
    assert event["details"] == {"target_key_id": 1, "target_role": "admin"}
    assert event["key_name"].startswith("cli:")
    human = run(audit_app, "verify")
    assert human.exit_code == 0 and "intact" in human.stdout


def test_audit_verify_exits_1_with_the_first_bad_record(
    run: Any, database: tuple[str | None, str]
) -> None:
    for n in range(3):
        run(keys_app, "create", "--role", "clerk", "--name", f"Counter {n}")
    engine = create_database_engine(database[1])
    try:
        with engine.begin() as connection:
            connection.execute(text("UPDATE audit_events SET action = 'key.revoke' WHERE id = 2"))
    finally:
        engine.dispose()
    broken = run(audit_app, "verify", "--json")
    assert broken.exit_code == 1
    report = json.loads(broken.stdout)
    assert report["ok"] is False and report["first_bad_id"] == 2
    human = run(audit_app, "verify")
    assert human.exit_code == 1 and "BROKEN at record 2" in human.stdout


def test_audit_list_filters_and_refuses_bad_times(run: Any) -> None:
    run(keys_app, "create", "--role", "clerk", "--name", "Counter 1")
    run(keys_app, "create", "--role", "clerk", "--name", "Counter 2")
    everything = document(run(audit_app, "list", "--json", "--since", "2000-01-01"))
    assert everything["total"] == 2 and [e["id"] for e in everything["items"]] == [2, 1]
    assert document(run(audit_app, "list", "--json", "--limit", "1"))["items"][0]["id"] == 2
    assert document(run(audit_app, "list", "--json", "--subject", "APP-1"))["total"] == 0
    assert document(run(audit_app, "list", "--json", "--until", "2000-01-01T00:00Z"))["total"] == 0
    bad = run(audit_app, "list", "--since", "yesterday")
    assert bad.exit_code == 2 and "--since" in bad.stderr
    assert run(audit_app, "list").exit_code == 0


def test_index_prune_changes_prunes_the_change_log_and_is_audited(
    run: Any, database: tuple[str | None, str], data_dir: Path
) -> None:
    store = open_record_store(database[1], None, data_dir / "keys" / "records.key")
    try:
        subject = store.create_subject("APP-1", "Amal Hassan")
        rng = np.random.default_rng(18)
        for _ in range(3):
            add_template(store, subject.id, rng)
    finally:
        store.dispose()

    kept = document(run(index_app, "prune-changes", "--json"))  # the default retention: a week
    assert (kept["deleted"], kept["change_seq"]) == (0, 3)
    pruned = document(run(index_app, "prune-changes", "--older-than-hours", "0", "--json"))
    assert (pruned["deleted"], pruned["change_seq"]) == (3, 3)
    events = document(run(audit_app, "list", "--action", "change_log.prune", "--json"))["items"]
    assert [event["details"]["deleted"] for event in events] == [3, 0]

    forever = run(index_app, "prune-changes", WAJAH_CHANGE_LOG_RETENTION_HOURS="0")
    assert forever.exit_code == 2 and "--older-than-hours" in forever.stderr
    assert run(index_app, "prune-changes", "--older-than-hours", "-1").exit_code == 2
