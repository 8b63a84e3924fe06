"""What the console's browser tests and the README screenshots share: a live service on
loopback, station keys made through the public API, a fake-camera video made from a real
photo, and Debian's Chromium driven by Playwright (never a downloaded browser)."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import cv2
import httpx
import numpy as np

PROJECT_ROOT = Path(__file__).resolve().parents[2]
CHROMIUM = Path("/usr/bin/chromium")
ARTIFACTS_DIR = PROJECT_ROOT / "test-artifacts" / "console"
DESKTOP = {"width": 1366, "height": 768}  # the counter screen
TABLET = {"width": 800, "height": 1280}  # a portrait tablet
READY_TIMEOUT_S = 120.0
STATION_ROLES = ("clerk", "officer", "supervisor", "ops")

# Real photos (../shared/faces) the scenarios use; every one passes the enrollment profile
# once framed as a counter camera would frame it (checked with `wajah inspect`).
APPLICANT = "deepface/deepface_p00/img2.jpg"  # enrolled through the fake camera
APPLICANT_AT_COUNTER = "deepface/deepface_p00/img4.jpg"  # same person, another day
APPLICANT_AGAIN = "deepface/deepface_p00/img5.jpg"  # same person, a new application
OTHER_PERSON = "face_recognition/biden/biden2.jpg"
SCAN_PERSON = "face_recognition/alex_lacamoire/alex_lacamoire1.jpg"

# Flags that keep a test browser off the network and away from any first-run UI.
QUIET_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
FAKE_CAMERA_FLAGS = ["--use-fake-ui-for-media-stream", "--use-fake-device-for-media-stream"]

# What `wajah serve` does, for as long as the CLI has no `serve` command.
# The guard matters: the face workers are processes that may re-import the main module.
_LAUNCHER = """
import sys, uvicorn
from wajah.api.http.app import create_app
from wajah.api.settings import Settings
if __name__ == "__main__":
    uvicorn.run(create_app(Settings()), host="127.0.0.1", port=int(sys.argv[1]),
                log_level="warning")
"""


# -- the fake camera ---------------------------------------------------------------------------


def camera_frame(
    rgb_or_bgr: np.ndarray, face_box: tuple[int, int, int, int], face_width_fraction: float = 0.35
) -> np.ndarray:
    """A 640×480 BGR frame with the face centred and ``face_width_fraction`` of the frame
    wide, as an applicant standing at the counter camera would appear."""
    left, top, right, bottom = face_box
    crop_width = (right - left) / face_width_fraction
    crop_height = crop_width * 3 / 4
    centre_x, centre_y = (left + right) / 2, (top + bottom) / 2
    x0, y0 = centre_x - crop_width / 2, centre_y - crop_height / 2
    scale = 640 / crop_width
    warp = np.float32([[scale, 0, -x0 * scale], [0, scale, -y0 * scale]])
    return cv2.warpAffine(
        rgb_or_bgr, warp, (640, 480), flags=cv2.INTER_AREA, borderMode=cv2.BORDER_REPLICATE
    )


def face_box_of(bgr: np.ndarray) -> tuple[int, int, int, int]:
    """The largest face's box, found by the project's own face engine."""
    from wajah.api.runtime import build_engine
    from wajah.api.settings import Settings
    from wajah.biometric.quality import PROFILES

    engine = build_engine(Settings(), warm_up=False)
    ok, encoded = cv2.imencode(".png", bgr)
    assert ok
    analysis = engine.analyse(encoded.tobytes(), PROFILES["enrollment"])
    assert analysis.faces, "no face in the photo chosen for the fake camera"
    face = max(analysis.faces, key=lambda f: (f.right - f.left) * (f.bottom - f.top))
    return face.left, face.top, face.right, face.bottom


def write_y4m(frame_bgr: np.ndarray, path: Path, frames: int = 2) -> Path:
    """A Y4M file Chromium's fake capture device loops: a text header, then I420 frames."""
    height, width = frame_bgr.shape[:2]
    planes = cv2.cvtColor(frame_bgr, cv2.COLOR_BGR2YUV_I420).tobytes()
    with path.open("wb") as handle:
        handle.write(f"YUV4MPEG2 W{width} H{height} F10:1 Ip A1:1 C420jpeg\n".encode("ascii"))
        for _ in range(frames):
            handle.write(b"FRAME\n")
            handle.write(planes)
    return path


def fake_camera_video(photo: Path | np.ndarray, path: Path) -> Path:
    """The fake camera's video from a real photo (a path, or a BGR array)."""
    bgr = cv2.imread(str(photo)) if isinstance(photo, Path) else photo
    assert bgr is not None, f"cannot read {photo}"
    return write_y4m(camera_frame(bgr, face_box_of(bgr)), path)


# -- the live service --------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _wajah_has_serve(python: Path) -> bool:
    wajah = python.parent / "wajah"
    if not wajah.exists():
        return False
    result = subprocess.run(
        [str(wajah), "serve", "--help"],
        capture_output=True,
        timeout=60,
        cwd=PROJECT_ROOT,
        check=False,
    )
    return result.returncode == 0


def server_command(port: int) -> list[str]:
    python = Path(sys.executable)
    if _wajah_has_serve(python):
        return [str(python.parent / "wajah"), "serve", "--host", "127.0.0.1", "--port", str(port)]
    return [str(python), "-c", _LAUNCHER, str(port)]


@dataclass
class LiveService:
    base_url: str
    data_dir: Path
    process: subprocess.Popen[bytes]
    log_path: Path
    keys: dict[str, str] = field(default_factory=dict)  # role -> secret

    @property
    def console_url(self) -> str:
        return f"{self.base_url}/console/"

    def client(self, role: str) -> httpx.Client:
        return httpx.Client(
            base_url=self.base_url,
            timeout=60.0,
            headers={"Authorization": f"Bearer {self.keys[role]}"},
        )

    def log_tail(self, lines: int = 40) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""


@contextmanager
def live_service(data_dir: Path) -> Iterator[LiveService]:
    """Start the real service on a free loopback port with its data in ``data_dir``; wait
    until /readyz says the models are loaded; make one key per station role."""
    port = free_port()
    log_path = data_dir.parent / f"{data_dir.name}-server.log"
    env = {**os.environ, "WAJAH_DATA_DIR": str(data_dir), "WAJAH_FACE_WORKERS": "2"}
    env.pop("WAJAH_DATABASE_URL", None)
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            server_command(port), cwd=PROJECT_ROOT, env=env, stdout=log, stderr=subprocess.STDOUT
        )
    service = LiveService(f"http://127.0.0.1:{port}", data_dir, process, log_path)
    try:
        _wait_ready(service)
        admin_key = (data_dir / "keys" / "admin.key").read_text().strip()
        with httpx.Client(
            base_url=service.base_url,
            timeout=30.0,
            headers={"Authorization": f"Bearer {admin_key}"},
        ) as admin:
            for role in STATION_ROLES:
                created = admin.post("/v1/keys", json={"name": f"test-{role}", "role": role})
                assert created.status_code == 201, created.text
                service.keys[role] = created.json()["secret"]
        yield service
    finally:
        process.terminate()
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)


def _wait_ready(service: LiveService) -> None:
    deadline = time.monotonic() + READY_TIMEOUT_S
    last = "no answer"
    while time.monotonic() < deadline:
        if service.process.poll() is not None:
            raise AssertionError(
                f"the service exited with {service.process.returncode}:\n{service.log_tail()}"
            )
        try:
            answer = httpx.get(f"{service.base_url}/readyz", timeout=2.0)
            if answer.status_code == 200:
                console = httpx.get(service.console_url, timeout=5.0)
                assert console.status_code == 200, (
                    f"GET /console/ answered {console.status_code}: create_app must call "
                    "api.http.console.mount_console(app)"
                )
                return
            last = answer.text
            if answer.status_code == 503 and '"failed"' in last:
                break
        except httpx.TransportError as error:
            last = repr(error)
        time.sleep(0.5)
    raise AssertionError(
        f"the service was not ready in {READY_TIMEOUT_S:.0f} s ({last}):\n{service.log_tail()}"
    )


def enroll_via_api(
    service: LiveService, subject_id: str, full_name: str, photo: Path, source: str = "scan"
) -> dict[str, Any]:
    with service.client("clerk") as clerk:
        created = clerk.post(
            "/v1/subjects", json={"subject_id": subject_id, "full_name": full_name}
        )
        assert created.status_code == 201, created.text
        with photo.open("rb") as handle:
            enrolled = clerk.post(
                f"/v1/subjects/{subject_id}/faces",
                files={"image": (photo.name, handle, "image/jpeg")},
                data={"source": source},
            )
        assert enrolled.status_code == 201, enrolled.text
        return dict(enrolled.json())


# -- the browser -------------------------------------------------------------------------------


def browser_missing() -> str | None:
    """Why the browser tests cannot run here, or None."""
    if not CHROMIUM.exists():
        return f"{CHROMIUM} not found (apt-get install -y chromium)"
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        return "playwright is not installed (pip install playwright; never `playwright install`)"
    if not os.access(CHROMIUM, os.X_OK):
        return f"{CHROMIUM} is not executable"
    return None


def launch(playwright: Any, video: Path | None = None) -> Any:
    """Chromium from Debian. With ``video``, a fake camera that plays it and is allowed
    without asking; without, no fake devices at all."""
    args = list(QUIET_FLAGS)
    if video is not None:
        args += [*FAKE_CAMERA_FLAGS, f"--use-file-for-fake-video-capture={video}"]
    return playwright.chromium.launch(executable_path=str(CHROMIUM), args=args, headless=True)


def sign_in(page: Any, service: LiveService, role: str) -> None:
    page.goto(service.console_url)
    page.locator("#api-key").fill(service.keys[role])
    page.locator("#signin-form button[type=submit]").click()
    page.locator("#station").wait_for(state="visible")


def screenshot(page: Any, name: str, directory: Path = ARTIFACTS_DIR) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / f"{name}.png"
    page.screenshot(path=str(path), full_page=False)
    return path
