"""``wajah keys`` and ``wajah audit``: API keys and the audit trail, from the server's shell.

Registered on the main app by ``api/cli/main.py``. Whoever can run these commands can read the
database directly, so they need no API key; key creation and revocation are still written to
the audit trail, with the operating-system user as the actor (``cli:<user>``).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import sys
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.table import Table

from wajah.api.cli.support import (
    Exit,
    cli_actor,
    emit_json,
    fail,
    opened_store,
    run_guarded,
    stderr_console,
    stdout_console,
)
from wajah.enrollment.roles import Role  # light (no numpy): typer reads --role's type

# The store, the index and the HTTP models are imported inside the commands that use them, so
# that registering every command costs little and a one-shot command starts quickly.
if TYPE_CHECKING:
    from wajah.enrollment.access import ApiKey
    from wajah.enrollment.audit import AuditEvent
    from wajah.enrollment.store import RecordStore


keys_app = typer.Typer(
    name="keys",
    help="API keys: create (the secret is shown once), list, revoke.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
audit_app = typer.Typer(
    name="audit",
    help="The hash-chained audit trail: verify it, list records.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)

JsonOption = Annotated[bool, typer.Option("--json", help="Print one JSON document on stdout.")]
DEFAULT_LIST_LIMIT = 50


def key_to_dict(key: ApiKey) -> dict[str, Any]:
    return {
        "key_id": key.id,
        "name": key.name,
        "role": key.role.value,
        "key_prefix": key.key_prefix,
        "active": key.active,
        "created_at": key.created_at.isoformat(),
        "revoked_at": None if key.revoked_at is None else key.revoked_at.isoformat(),
        "last_used_at": None if key.last_used_at is None else key.last_used_at.isoformat(),
    }


def _audit_key_change(store: RecordStore, action: str, key: ApiKey) -> bool:
    """Record a key change; False (after a line on stderr) if the audit trail refused it."""
    from wajah.enrollment.errors import AuditChainCorrupt

    try:
        store.audit.append(
            action,
            key_name=cli_actor(),
            details={"target_key_id": key.id, "target_role": key.role.value},
        )
    except AuditChainCorrupt as error:
        stderr_console.print(
            f"wajah: {action} of key {key.id} was not audited: {error}",
            markup=False,
            highlight=False,
        )
        return False
    return True


# -- keys ---------------------------------------------------------------------------------------


@keys_app.command("create")
def keys_create(
    role: Annotated[
        Role, typer.Option("--role", help="What the key may do.", case_sensitive=False)
    ],
    name: Annotated[str, typer.Option("--name", help="The station or person holding it.")],
    json_output: JsonOption = False,
) -> None:
    """Create an API key and print its secret, once: it cannot be shown again."""

    def body() -> Exit:
        with opened_store() as store:
            key, secret = store.keys.create_key(name, role)
            audited = _audit_key_change(store, "key.create", key)
        if json_output:
            emit_json({**key_to_dict(key), "secret": secret})
        else:
            stdout_console.print(
                f"Created key {key.id} for {key.name!r} with role {key.role.value}. "
                "Store the secret now; it is not shown again:",
                markup=False,
                highlight=False,
            )
            # Plain write: no wrapping or styling around something that will be copied.
            sys.stdout.write(secret + "\n")
        return Exit.OK if audited else Exit.INTERNAL

    run_guarded(body)


@keys_app.command("list")
def keys_list(
    active_only: Annotated[bool, typer.Option("--active", help="Leave out revoked keys.")] = False,
    json_output: JsonOption = False,
) -> None:
    """List API keys (never their secrets)."""

    def body() -> Exit:
        with opened_store() as store:
            keys = store.keys.list_keys(include_revoked=not active_only)
        if json_output:
            emit_json({"items": [key_to_dict(key) for key in keys], "total": len(keys)})
            return Exit.OK
        table = Table(title=f"API keys ({len(keys)})", title_justify="left")
        for column in ("id", "name", "role", "prefix", "created", "last used", "status"):
            table.add_column(column)
        for key in keys:
            table.add_row(
                str(key.id),
                key.name,
                key.role.value,
                f"wjh_{key.key_prefix}…",
                _short_time(key.created_at),
                _short_time(key.last_used_at),
                "active" if key.active else f"revoked {_short_time(key.revoked_at)}",
            )
        stdout_console.print(table)
        return Exit.OK

    run_guarded(body)


@keys_app.command("revoke")
def keys_revoke(
    key_id: Annotated[int, typer.Argument(help="The key's id (see `wajah keys list`).")],
    json_output: JsonOption = False,
) -> None:
    """Revoke an API key: it is refused from the next request on."""

    def body() -> Exit:
        with opened_store() as store:
            key = store.keys.revoke(key_id)
            audited = _audit_key_change(store, "key.revoke", key)
        if json_output:
            emit_json(key_to_dict(key))
        else:
            stdout_console.print(
                f"Revoked key {key.id} ({key.name!r}, {key.role.value}).",
                markup=False,
                highlight=False,
            )
        return Exit.OK if audited else Exit.INTERNAL

    run_guarded(body)


# -- audit --------------------------------------------------------------------------------------


@audit_app.command("verify")
def audit_verify(json_output: JsonOption = False) -> None:
    """Re-hash the whole audit chain; exit 0 when intact, 1 when broken."""

    def body() -> Exit:
        with opened_store() as store:
            report = store.audit.verify_chain()
        if json_output:
            emit_json(dataclasses.asdict(report))
        elif report.ok:
            stdout_console.print(
                f"audit chain intact: {report.checked} records; "
                f"head record {report.head_id}, hash {report.head_hash}",
                markup=False,
                highlight=False,
            )
        else:
            stdout_console.print(
                f"audit chain BROKEN at record {report.first_bad_id}: {report.problem} "
                f"({report.checked} records verified before it)",
                markup=False,
                highlight=False,
            )
        return Exit.OK if report.ok else Exit.NEGATIVE

    run_guarded(body)


@audit_app.command("list")
def audit_list(
    since: Annotated[
        str | None, typer.Option("--since", help="From this time (ISO 8601; no zone = UTC).")
    ] = None,
    until: Annotated[
        str | None, typer.Option("--until", help="Before this time (ISO 8601; no zone = UTC).")
    ] = None,
    subject: Annotated[str | None, typer.Option("--subject", help="Subject reference.")] = None,
    action: Annotated[
        str | None, typer.Option("--action", help="e.g. verify, face.enroll, key.create.")
    ] = None,
    station: Annotated[str | None, typer.Option("--station", help="Station name.")] = None,
    offset: Annotated[int, typer.Option("--offset", min=0)] = 0,
    limit: Annotated[int, typer.Option("--limit", min=1, max=1000)] = DEFAULT_LIST_LIMIT,
    json_output: JsonOption = False,
) -> None:
    """List audit records, newest first."""
    since_at = _parse_time(since, "--since")
    until_at = _parse_time(until, "--until")

    def body() -> Exit:
        with opened_store() as store:
            items, total = store.audit.query(
                since=since_at,
                until=until_at,
                station=station,
                subject_ref=subject,
                action=action,
                offset=offset,
                limit=limit,
            )
        if json_output:
            emit_json(
                {
                    "items": [event.to_dict() for event in items],
                    "total": total,
                    "offset": offset,
                    "limit": limit,
                }
            )
        else:
            stdout_console.print(_audit_table(items, total, offset))
        return Exit.OK

    run_guarded(body)


def _audit_table(items: list[AuditEvent], total: int, offset: int) -> Table:
    shown = f"{offset + 1}–{offset + len(items)} of {total}" if items else f"none of {total}"
    table = Table(title=f"audit records ({shown})", title_justify="left")
    for column in ("id", "at (UTC)", "action", "outcome", "actor", "station", "subject"):
        table.add_column(column)
    table.add_column("decision")
    table.add_column("score", justify="right")
    for event in items:
        table.add_row(
            str(event.id),
            _short_time(event.at),
            event.action,
            event.outcome,
            event.key_name or "—",
            event.station or "—",
            event.subject_ref or "—",
            event.decision or "—",
            "—" if event.score is None else f"{event.score:.4f}",
        )
    return table


def _parse_time(value: str | None, option: str) -> dt.datetime | None:
    if value is None:
        return None
    try:
        parsed = dt.datetime.fromisoformat(value.strip())
    except ValueError:
        fail(f"{option} must be an ISO 8601 date or time, e.g. 2026-11-26T09:00+03:00")
    return parsed if parsed.tzinfo is not None else parsed.replace(tzinfo=dt.UTC)


def _short_time(value: dt.datetime | None) -> str:
    return "—" if value is None else value.astimezone(dt.UTC).strftime("%Y-%m-%d %H:%M:%S")
