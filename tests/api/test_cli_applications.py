"""``wajah application`` and ``wajah report``: --json documents, exit codes, one-line errors,
and a refused transition that changes nothing. No face work: the subject is created in the
store directly."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

from typer.testing import CliRunner

from wajah.api.cli.main import app
from wajah.api.runtime import open_store
from wajah.api.settings import Settings

runner = CliRunner()


def test_create_decide_show_list_and_report(tmp_path: Path) -> None:
    env = {"WAJAH_DATA_DIR": str(tmp_path / "data"), "WAJAH_OFFICE_CODE": "JKT"}
    store = open_store(Settings(data_dir=tmp_path / "data"))
    try:
        store.create_subject("CLI-1", "Siti Rahmawati", "1990-04-17")
        store.create_subject("CLI-NO-BIRTH", "Budi")
    finally:
        store.dispose()
    created = runner.invoke(
        app, ["application", "create", "CLI-1", "--type", "visa", "--json"], env=env
    )
    assert created.exit_code == 0, created.output
    application = json.loads(created.stdout)
    number = application["number"]
    assert number.startswith("JKT-") and application["status"] == "submitted"
    assert application["timeline"][0]["station"].startswith("cli:")

    no_birth = runner.invoke(
        app, ["application", "create", "CLI-NO-BIRTH", "--type", "visa"], env=env
    )
    assert no_birth.exit_code == 2
    assert no_birth.stderr.count("\n") == 1 and "date of birth" in no_birth.stderr
    bad_type = runner.invoke(app, ["application", "create", "CLI-1", "--type", "boat"], env=env)
    assert bad_type.exit_code == 2

    illegal = runner.invoke(
        app, ["application", "decide", number, "--decision", "approved", "--reason", "ok"], env=env
    )
    assert illegal.exit_code == 2
    assert "cannot become approved" in illegal.stderr
    shown = runner.invoke(app, ["application", "show", number, "--json"], env=env)
    assert json.loads(shown.stdout) == application  # nothing changed

    rejected = runner.invoke(
        app,
        [
            "application",
            "decide",
            number,
            "--decision",
            "rejected",
            "--reason",
            "withdrawn",
            "--json",
        ],
        env=env,
    )
    assert rejected.exit_code == 0, rejected.output
    assert json.loads(rejected.stdout)["status"] == "rejected"
    listed = runner.invoke(app, ["application", "list", "--status", "rejected", "--json"], env=env)
    assert [item["number"] for item in json.loads(listed.stdout)["items"]] == [number]
    unknown = runner.invoke(app, ["application", "show", "JKT-0000-000000"], env=env)
    assert unknown.exit_code == 2

    report = runner.invoke(app, ["report", "--json"], env=env)
    assert report.exit_code == 0, report.output
    totals = json.loads(report.stdout)["totals"]
    assert totals["applications_decided"] == {"rejected": 1}
    assert totals["time_to_decision_s"]["count"] == 1
    as_csv = runner.invoke(app, ["report", "--csv", "--period", "week"], env=env)
    assert as_csv.exit_code == 0
    assert list(csv.DictReader(io.StringIO(as_csv.stdout)))[-1]["applications_rejected"] == "1"
    reversed_window = runner.invoke(
        app, ["report", "--since", "2026-12-02", "--until", "2026-12-01"], env=env
    )
    assert reversed_window.exit_code == 2
