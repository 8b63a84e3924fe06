"""``wajah bench api``: a --quick run against a server the benchmark starts itself (real
``wajah serve`` process, real LFW photos), and the refusal of any non-loopback address."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from wajah.api.cli.main import app
from wajah.benchmarks.api_load import ENDPOINTS, EXPECTED_PROBLEMS, check_loopback

runner = CliRunner()


@pytest.mark.slow  # about 40 s: a server start, 5 enrolments and 80 requests
def test_quick_run_reports_every_endpoint_without_unexpected_errors(
    faces_dir: Path, tmp_path: Path
) -> None:
    result = runner.invoke(
        app,
        [
            "bench",
            "api",
            "--quick",
            "--json",
            "--out",
            str(tmp_path),
            "--faces-dir",
            str(faces_dir),
        ],
    )
    assert result.exit_code == 0, result.output
    document = json.loads((tmp_path / "latest-api.json").read_text())
    results = document["results"]
    assert results["server"]["started_by_benchmark"]
    assert results["server"]["url"].startswith("http://127.0.0.1:")
    assert results["gallery"]["enrolled_subjects"] >= 2
    measured = results["endpoints"]
    assert set(measured) == {"healthz", *ENDPOINTS}
    for endpoint, by_clients in measured.items():
        assert set(by_clients) == {"1", "2"}, endpoint
        for clients, entry in by_clients.items():
            unexpected = {t: n for t, n in entry["errors"].items() if t not in EXPECTED_PROBLEMS}
            assert unexpected == {}, (endpoint, clients, entry["errors"])
            assert entry["sent"] == 10 and entry["ok"] > 0, (endpoint, clients)
            assert 0 < entry["p50_ms"] <= entry["p95_ms"] <= entry["p99_ms"], (endpoint, clients)
    # Face work costs more than the bare HTTP stack, and the service reports its own time.
    for endpoint in ENDPOINTS:
        assert measured[endpoint]["1"]["p50_ms"] > measured["healthz"]["1"]["p50_ms"]
        assert measured[endpoint]["1"]["server_median_ms"] > 0
    assert (tmp_path / "latest-api.md").read_text().count("| verify |") == 2
    assert (tmp_path / "latest-api-latency.png").stat().st_size > 0
    assert "secret" not in (tmp_path / "latest-api.json").read_text()


@pytest.mark.parametrize("url", ["http://127.0.0.1:8000", "http://localhost:1", "http://[::1]:9"])
def test_loopback_addresses_are_accepted(url: str) -> None:
    check_loopback(url)


@pytest.mark.parametrize("url", ["http://10.0.0.5:8000", "http://example.org", "http://0.0.0.0:1"])
def test_other_addresses_are_refused_before_any_request(url: str, tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="non-loopback"):
        check_loopback(url)
    result = runner.invoke(
        app, ["bench", "api", "--url", url, "--data-dir", str(tmp_path), "--out", str(tmp_path)]
    )
    assert result.exit_code == 2
    assert not list(tmp_path.glob("*.json"))
