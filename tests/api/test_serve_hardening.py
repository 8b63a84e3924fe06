"""Hardening checked against a running ``wajah serve`` (issue 20): security headers and local
docs, deep JSON, failed-login throttling, the per-counter verification lock, look-alike
references, and the audit chain's anchor read by the real CLI beside the server."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.api.live_server import LiveServer
from tests.api.photos import lfw, upload
from wajah.enrollment.access import Role

pytestmark = pytest.mark.slow

FAILED_AUTH_BUDGET = 5


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory, faces_dir: Path) -> Iterator[LiveServer]:
    live = LiveServer(tmp_path_factory.mktemp("live-hardening"))
    live.start(
        WAJAH_FAILED_AUTH_PER_MINUTE=str(FAILED_AUTH_BUDGET),
        WAJAH_FAILED_VERIFY_LIMIT="2",
        WAJAH_FACE_WORKERS="1",
    )
    try:
        live.create_subject("HARD-1", "Hard Ening", lfw(faces_dir, "Jean_Chretien", 1))
        yield live
    finally:
        live.stop()


def test_security_headers_and_docs_without_a_cdn(server: LiveServer) -> None:
    with server.client() as client:
        me = client.get("/v1/me", headers=server.headers(Role.OPS))
        docs = client.get("/docs")
    assert me.status_code == 200
    for name in ("X-Content-Type-Options", "X-Frame-Options", "Content-Security-Policy"):
        assert name in me.headers, name
    assert me.headers["Cache-Control"] == "no-store"
    sources = re.findall(r'(?:src|href)="([^"]+)"', docs.text)
    assert docs.status_code == 200 and sources
    assert all(source.startswith("/") for source in sources), sources


def test_json_nested_100000_deep_is_a_422(server: LiveServer) -> None:
    body = b"[" * 100_000 + b"]" * 100_000
    headers = {**server.headers(Role.CLERK), "Content-Type": "application/json"}
    with server.client() as client:
        for path in ("/v1/quality", "/v1/subjects"):
            answer = client.post(path, headers=headers, content=body)
            assert answer.status_code == 422, answer.text
            assert answer.json()["type"] == "urn:wajah:problem:invalid-request"


def test_failed_logins_are_throttled_and_valid_keys_still_served(server: LiveServer) -> None:
    bogus = {"Authorization": "Bearer wajah_" + "q" * 40}
    with server.client() as client:
        statuses = [client.get("/v1/subjects", headers=bogus).status_code for _ in range(8)]
        valid = client.get("/v1/subjects", headers=server.headers(Role.OFFICER))
    assert statuses[:FAILED_AUTH_BUDGET] == [401] * FAILED_AUTH_BUDGET
    assert set(statuses[FAILED_AUTH_BUDGET:]) == {429}
    assert valid.status_code == 200


def test_one_counter_cannot_lock_a_subject_out_everywhere(
    server: LiveServer, faces_dir: Path
) -> None:
    admin = (server.data_dir / "keys" / "admin.key").read_text().strip()
    with server.client() as client:
        second = client.post(
            "/v1/keys",
            headers={"Authorization": f"Bearer {admin}"},
            json={"role": "officer", "name": "Counter 7"},
        ).json()["secret"]
        first = server.headers(Role.OFFICER)

        def verify(headers: dict[str, str], name: str, number: int) -> httpx.Response:
            return client.post(
                "/v1/verify",
                headers=headers,
                files=upload(lfw(faces_dir, name, number)),
                data={"subject_id": "HARD-1"},
            )

        for number in (1, 2):
            assert verify(first, "Donald_Rumsfeld", number).json()["decision"] == "no_match"
        assert verify(first, "Jean_Chretien", 2).status_code == 429
        other = {"Authorization": f"Bearer {second}"}
        assert verify(other, "Jean_Chretien", 2).status_code == 200
        cleared = client.delete(
            "/v1/subjects/HARD-1/verification-lock", headers=server.headers(Role.SUPERVISOR)
        )
        assert cleared.status_code == 204
        assert verify(first, "Jean_Chretien", 2).status_code == 200


def test_look_alike_references_are_one_subject(server: LiveServer) -> None:
    with server.client() as client:
        officer = server.headers(Role.OFFICER)
        found = client.get("/v1/subjects/ＨＡＲＤ-１", headers=officer)
        assert found.status_code == 200 and found.json()["subject_id"] == "HARD-1"
        hidden = client.post(
            "/v1/subjects",
            headers=server.headers(Role.CLERK),
            json={"subject_id": "HARD\u200b-1", "full_name": "Zero Width"},
        )
        assert hidden.status_code == 422, hidden.text


def test_the_audit_chain_and_its_anchor_verify_from_the_cli(server: LiveServer) -> None:
    anchor = server.data_dir / "audit" / "chain-anchor.json"
    assert anchor.is_file() and anchor.stat().st_mode & 0o777 == 0o600
    assert (server.data_dir / "wajah.db").stat().st_mode & 0o777 == 0o600
    env = {**os.environ, "WAJAH_DATA_DIR": str(server.data_dir)}
    result = subprocess.run(
        [str(Path(sys.executable).with_name("wajah")), "audit", "verify", "--json"],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["ok"] is True and report["checked"] >= 5
    assert json.loads(anchor.read_text())["last_id"] <= report["head_id"]
