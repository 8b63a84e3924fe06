"""A real ``wajah serve`` in a subprocess on loopback: the process layout the service runs in
(uvicorn, the app, spawned face worker processes), for tests that break things for real."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from tests.api.conftest import write_test_thresholds
from wajah.enrollment.access import Role

READY_TIMEOUT_S = 180.0
ROLES = (Role.CLERK, Role.OFFICER, Role.SUPERVISOR, Role.OPS)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


@dataclass
class LiveServer:
    data_dir: Path
    port: int = field(default_factory=free_port)
    process: subprocess.Popen[bytes] | None = None
    secrets: dict[Role, str] = field(default_factory=dict)
    log_path: Path | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def environment(self, **overrides: str) -> dict[str, str]:
        env = {
            name: value
            for name, value in os.environ.items()
            if not name.startswith("WAJAH_") or name == "WAJAH_FACES_DIR"
        }
        env.update(
            {
                "WAJAH_DATA_DIR": str(self.data_dir),
                "WAJAH_PORT": str(self.port),
                "WAJAH_THRESHOLDS_FILE": str(
                    write_test_thresholds(self.data_dir / "test-thresholds.json")
                ),
                "WAJAH_FACE_WORKERS": "2",
                "WAJAH_RATE_LIMIT_PER_MINUTE": "1000000",
                "WAJAH_FAILED_AUTH_PER_MINUTE": "1000000",
                "WAJAH_FAILED_VERIFY_LIMIT": "1000000",
                **overrides,
            }
        )
        return env

    def start(self, **overrides: str) -> None:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.log_path = self.data_dir / "serve.log"
        wajah = Path(sys.executable).with_name("wajah")
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(
                [str(wajah), "serve"],
                env=self.environment(**overrides),
                stdout=log,
                stderr=log,
                start_new_session=True,  # its own process group: SIGKILL reaches the workers
            )
        self.wait_ready()
        if not self.secrets:
            self.secrets = self._create_keys()

    def wait_ready(self, timeout_s: float = READY_TIMEOUT_S) -> dict[str, Any]:
        deadline = time.monotonic() + timeout_s
        last: Any = None
        while time.monotonic() < deadline:
            assert self.process is not None
            if self.process.poll() is not None:
                raise AssertionError(f"wajah serve exited {self.process.returncode}: {self.log()}")
            try:
                response = httpx.get(self.url + "/readyz", timeout=2.0)
                last = response.json()
                if response.status_code == 200:
                    ready: dict[str, Any] = last
                    return ready
            except httpx.HTTPError as error:
                last = repr(error)
            time.sleep(0.1)
        raise AssertionError(f"not ready after {timeout_s} s: {last}\n{self.log()}")

    def _create_keys(self) -> dict[Role, str]:
        admin = (self.data_dir / "keys" / "admin.key").read_text().strip()
        secrets = {}
        for role in ROLES:
            response = httpx.post(
                self.url + "/v1/keys",
                headers={"Authorization": f"Bearer {admin}"},
                json={"role": role.value, "name": f"live {role.value}"},
                timeout=10.0,
            )
            assert response.status_code == 201, response.text
            secrets[role] = response.json()["secret"]
        return secrets

    def create_subject(self, subject_ref: str, full_name: str, photo: bytes | None = None) -> None:
        """Create a subject as the clerk and, with ``photo``, enroll it (the scan profile)."""
        with self.client() as client:
            clerk = self.headers(Role.CLERK)
            created = client.post(
                "/v1/subjects",
                headers=clerk,
                json={"subject_id": subject_ref, "full_name": full_name},
            )
            assert created.status_code == 201, created.text
            if photo is None:
                return
            enrolled = client.post(
                f"/v1/subjects/{subject_ref}/faces",
                headers=clerk,
                files={"image": ("photo.jpg", photo, "application/octet-stream")},
                data={"source": "scan"},
            )
            assert enrolled.status_code == 201, enrolled.text

    def headers(self, role: Role) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.secrets[role]}"}

    def client(self, timeout_s: float = 60.0) -> httpx.Client:
        return httpx.Client(base_url=self.url, timeout=timeout_s)

    def face_worker_pids(self) -> list[int]:
        """The spawned face workers: the server's child processes running spawn_main."""
        assert self.process is not None
        children = subprocess.run(
            ["pgrep", "-P", str(self.process.pid)], capture_output=True, text=True, check=False
        ).stdout.split()
        workers = []
        for child in children:
            try:
                command = Path(f"/proc/{child}/cmdline").read_bytes()
            except OSError:
                continue
            if b"spawn_main" in command:
                workers.append(int(child))
        return workers

    def kill(self) -> None:
        """SIGKILL the whole process group (server and workers), as a power cut would."""
        if self.process is None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait(timeout=30)
        self.process = None

    def stop(self) -> None:
        if self.process is None:
            return
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.kill()
        self.process = None

    def log(self) -> str:
        if self.log_path is None or not self.log_path.exists():
            return ""
        return self.log_path.read_text(errors="replace")[-4000:]
