"""``wajah bench api``: the HTTP service under load, end to end through ``wajah serve``.

The benchmark starts ``wajah serve`` on 127.0.0.1 (a free port, a fresh temporary data
directory, the rate limit and the failed-verification lockout raised for the run) or connects
to one already running on loopback (``--url`` with ``--data-dir`` for its admin key). It makes
a clerk and an officer key, enrols one LFW photo per identity through the API (``source=scan``)
and then sends a FIXED number of requests to each of verify, identify and quality from 1, 2,
4, 8 concurrent clients (threads, one ``httpx.Client`` each). Probes are OTHER photos of the
enrolled identities; verify alternates genuine claims and impostor claims (the probe claims the
next enrolled subject). Every request's latency, status and problem ``type`` is kept.

Baseline, measured in the same run under the same concurrency: ``GET /healthz`` (the HTTP stack
alone). The service's own ``time_ms`` (verify, identify: the handler, face work and search,
queue wait included) and ``timings_ms`` (quality: the face engine's stages) are kept beside the
client-side latency. 503 ``overloaded`` is the bounded face pool refusing work: it is counted,
never retried or hidden.

Optionally (``distractors``) the same probes are then sent with the gallery grown by synthetic
subjects whose templates are written directly into the store (drawn from the ``real-fit`` model
of :mod:`wajah.benchmarks.galleries`, chips all zeros) while the server is stopped; only done in a
data directory the benchmark created itself.
"""

from __future__ import annotations

import hashlib
import ipaddress
import os
import socket
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import numpy as np

from wajah.benchmarks.galleries import TemplateModel
from wajah.benchmarks.report import DATA_CAVEAT, markdown_table, with_ratio

ENDPOINTS = ("verify", "identify", "quality")
EXPECTED_PROBLEMS = frozenset({"urn:wajah:problem:overloaded", "urn:wajah:problem:timeout"})
READY_TIMEOUT_S = 180.0
# Far above anything the run sends: the benchmark measures the service, not its rate limit.
RUN_RATE_LIMIT_PER_MINUTE = 10_000_000
SUBJECT_PREFIX = "BENCH-"
DISTRACTOR_PREFIX = "SYNTH-"
CHIP_SHAPE = (150, 150, 3)  # the store's aligned chip, uint8 RGB


@dataclass(frozen=True)
class ApiLoadOptions:
    faces_dir: Path
    url: str | None = None  # a running server on loopback; None = start one
    data_dir: Path | None = None  # its data directory (admin key); None = a fresh temp dir
    gallery_size: int = 200
    requests: int = 200  # per endpoint and concurrency
    concurrency: tuple[int, ...] = (1, 2, 4, 8)
    distractors: int = 0
    distractor_model: TemplateModel | None = None
    distractor_concurrency: tuple[int, ...] = (1, 4)
    total_timeout_s: float = 1800.0  # the whole run; requests not sent by then are counted
    request_timeout_s: float = 120.0
    seed: int = 20240611


@dataclass(frozen=True)
class RequestSpec:
    method: str
    path: str
    label: str = ""  # "genuine" / "impostor" for verify
    files: dict[str, tuple[str, bytes, str]] | None = None
    data: dict[str, str] | None = None
    params: dict[str, str] | None = None


@dataclass(frozen=True)
class RequestResult:
    latency_ms: float
    status: int  # 0 = no response (transport error or client timeout)
    problem_type: str | None
    server_ms: float | None  # time_ms (verify, identify) or the sum of timings_ms (quality)
    label: str
    decision: str | None


@dataclass(frozen=True)
class Probe:
    subject_ref: str
    photo: bytes


@dataclass
class Gallery:
    enrolled: list[str] = field(default_factory=list)  # subject refs with one accepted face
    probes: list[Probe] = field(default_factory=list)  # one other photo each, face found
    refused: Counter[str] = field(default_factory=Counter)  # enrolment refusals by type


# --- the server -----------------------------------------------------------------------------


def check_loopback(url: str) -> None:
    """Refuse any address but loopback: this benchmark floods what it talks to."""
    host = urlsplit(url).hostname or ""
    if host == "localhost":
        return
    try:
        if ipaddress.ip_address(host).is_loopback:
            return
    except ValueError:
        pass
    raise ValueError(f"refusing a non-loopback address: {url}")


def free_loopback_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def wait_ready(url: str, process: subprocess.Popen[bytes] | None, timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if process is not None and process.poll() is not None:
            raise RuntimeError(f"wajah serve exited with code {process.returncode}")
        try:
            if httpx.get(f"{url}/readyz", timeout=2.0).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.2)
    raise RuntimeError(f"the service at {url} was not ready within {timeout_s:.0f} s")


@contextmanager
def served(data_dir: Path, log_path: Path) -> Iterator[str]:
    """``wajah serve`` on 127.0.0.1 with ``data_dir``; yields its URL, stops it on exit."""
    port = free_loopback_port()
    environment = {
        **os.environ,
        "WAJAH_DATA_DIR": str(data_dir),
        "WAJAH_HOST": "127.0.0.1",
        "WAJAH_RATE_LIMIT_PER_MINUTE": str(RUN_RATE_LIMIT_PER_MINUTE),
        # Impostor claims in a row would lock a subject out (429) and end the measurement.
        "WAJAH_FAILED_VERIFY_LIMIT": str(RUN_RATE_LIMIT_PER_MINUTE),
    }
    command = [
        sys.executable,
        "-c",
        "from api.cli.main import main; main()",
        "serve",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
    ]
    url = f"http://127.0.0.1:{port}"
    with log_path.open("ab") as log:
        process = subprocess.Popen(command, env=environment, stdout=log, stderr=log)
        try:
            try:
                wait_ready(url, process, READY_TIMEOUT_S)
            except RuntimeError as error:
                tail = log_path.read_text(errors="replace")[-2000:]
                raise RuntimeError(f"{error}; its log ends:\n{tail}") from None
            yield url
        finally:
            process.terminate()
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=30)


def create_keys(client: httpx.Client, admin_secret: str) -> dict[str, str]:
    """A clerk and an officer key; returns role -> secret."""
    secrets = {}
    for role in ("clerk", "officer"):
        response = client.post(
            "/v1/keys",
            json={"name": f"bench-api-{role}", "role": role},
            headers={"Authorization": f"Bearer {admin_secret}"},
        )
        response.raise_for_status()
        secrets[role] = str(response.json()["secret"])
    return secrets


# --- the gallery ----------------------------------------------------------------------------


def identities_with_two_photos(faces_dir: Path) -> list[list[Path]]:
    """LFW identities (name order) with at least two photos: each one's photos, sorted."""
    folder = faces_dir / "lfw_deepfunneled"
    found = []
    for identity_dir in sorted(p for p in folder.iterdir() if p.is_dir()):
        photos = sorted(identity_dir.glob("*.jpg"))
        if len(photos) >= 2:
            found.append(photos)
    return found


def _problem_type(response: httpx.Response) -> str | None:
    if response.status_code < 400:
        return None
    try:
        return str(response.json().get("type", f"http-{response.status_code}"))
    except ValueError:
        return f"http-{response.status_code}"


def enrol_gallery(
    client: httpx.Client,
    secrets: dict[str, str],
    faces_dir: Path,
    size: int,
    count: Callable[[int, int], None],
) -> Gallery:
    """Enrol ``size`` identities through the API (first photo, ``source=scan``); keep as probe
    the first other photo in which the quality check finds exactly one face."""
    clerk = {"Authorization": f"Bearer {secrets['clerk']}"}
    gallery = Gallery()
    candidates = identities_with_two_photos(faces_dir)
    run_tag = uuid.uuid4().hex[:6]  # a given --data-dir may hold an earlier run's subjects
    for attempt, photos in enumerate(candidates):
        if len(gallery.enrolled) >= size:
            break
        ref = f"{SUBJECT_PREFIX}{run_tag}-{attempt:05d}"
        # A neutral name: the photo's identity is a real person's name and stays out of it.
        created = client.post(
            "/v1/subjects", json={"subject_id": ref, "full_name": f"Bench subject {ref}"}
        )
        created.raise_for_status()
        enrolled = client.post(
            f"/v1/subjects/{ref}/faces",
            files={"image": (photos[0].name, photos[0].read_bytes(), "image/jpeg")},
            data={"source": "scan"},
            headers=clerk,
        )
        problem = _problem_type(enrolled)
        if problem is not None or enrolled.json()["status"] != "accepted":
            gallery.refused[problem or "pending_review"] += 1
            continue
        probe = _first_probe(client, clerk, photos[1:])
        gallery.enrolled.append(ref)
        if probe is not None:
            gallery.probes.append(Probe(ref, probe))
        count(len(gallery.enrolled), size)
    return gallery


def _first_probe(
    client: httpx.Client, clerk: dict[str, str], photos: Sequence[Path]
) -> bytes | None:
    for path in photos[:3]:
        data = path.read_bytes()
        checked = client.post(
            "/v1/quality",
            files={"image": (path.name, data, "image/jpeg")},
            params={"profile": "verification"},
            headers=clerk,
        )
        if checked.status_code == 200 and checked.json()["face_count"] == 1:
            return data
    return None


def insert_distractors(
    data_dir: Path,
    model: TemplateModel,
    count: int,
    seed: int,
    progress: Callable[[int, int], None],
) -> float:
    """``count`` synthetic subjects, one template each, written straight into the store of
    ``data_dir`` (the server must be stopped). Returns the seconds taken."""
    from wajah.api.runtime import open_store
    from wajah.api.settings import Settings
    from wajah.biometric.templates import MODEL_TAG, Template
    from wajah.enrollment.records import Capture

    started = time.perf_counter()
    store = open_store(Settings(data_dir=data_dir))
    try:
        chip = np.zeros(CHIP_SHAPE, dtype=np.uint8)
        vectors = model.draw(count, np.random.default_rng(seed))  # (count, 128) float32
        for number, vector in enumerate(vectors):
            ref = f"{DISTRACTOR_PREFIX}{number:06d}"
            subject = store.create_subject(ref, f"Synthetic distractor {number}")
            store.add_sample(
                Capture(
                    subject_id=subject.id,
                    capture_source="scan",
                    quality={"synthetic": True},
                    chip=chip,
                    image_bytes=None,
                    image_sha256=hashlib.sha256(ref.encode()).hexdigest(),
                    station="bench-synthetic",
                    captured_at=None,
                    template=Template(vector, MODEL_TAG),
                )
            )
            if number % 250 == 0 or number == count - 1:
                progress(number + 1, count)
    finally:
        store.dispose()
    return time.perf_counter() - started


# --- the load -------------------------------------------------------------------------------


def request_builders(gallery: Gallery) -> dict[str, Callable[[int], RequestSpec]]:
    """The i-th request of each workload (cycling through the probes)."""
    probes = gallery.probes
    refs = gallery.enrolled

    def image(probe: Probe) -> dict[str, tuple[str, bytes, str]]:
        return {"image": ("probe.jpg", probe.photo, "image/jpeg")}

    def verify(i: int) -> RequestSpec:
        probe = probes[(i // 2) % len(probes)]
        genuine = i % 2 == 0
        claimed = probe.subject_ref
        if not genuine:  # the next enrolled subject: another person
            claimed = refs[(refs.index(probe.subject_ref) + 1) % len(refs)]
        return RequestSpec(
            "POST",
            "/v1/verify",
            "genuine" if genuine else "impostor",
            files=image(probe),
            data={"subject_id": claimed},
        )

    def identify(i: int) -> RequestSpec:
        probe = probes[i % len(probes)]
        return RequestSpec("POST", "/v1/identify", "mated", files=image(probe), data={"k": "5"})

    def quality(i: int) -> RequestSpec:
        probe = probes[i % len(probes)]
        return RequestSpec(
            "POST", "/v1/quality", files=image(probe), params={"profile": "verification"}
        )

    def healthz(i: int) -> RequestSpec:
        return RequestSpec("GET", "/healthz")

    return {"verify": verify, "identify": identify, "quality": quality, "healthz": healthz}


def _server_ms(body: Any) -> float | None:
    if not isinstance(body, dict):
        return None
    if isinstance(body.get("time_ms"), int | float):
        return float(body["time_ms"])
    timings = body.get("timings_ms")
    if isinstance(timings, dict) and timings:
        return float(sum(float(v) for v in timings.values()))
    return None


def send(client: httpx.Client, spec: RequestSpec) -> RequestResult:
    started = time.perf_counter()
    try:
        response = client.request(
            spec.method, spec.path, files=spec.files, data=spec.data, params=spec.params
        )
    except httpx.HTTPError as error:
        elapsed_ms = (time.perf_counter() - started) * 1000.0
        return RequestResult(
            elapsed_ms, 0, f"client:{type(error).__name__}", None, spec.label, None
        )
    elapsed_ms = (time.perf_counter() - started) * 1000.0
    problem = _problem_type(response)
    body: Any = None
    if problem is None and response.headers.get("content-type", "").startswith("application/json"):
        body = response.json()
    decision = body.get("decision") if isinstance(body, dict) else None
    return RequestResult(
        elapsed_ms, response.status_code, problem, _server_ms(body), spec.label, decision
    )


def run_load(
    url: str,
    headers: dict[str, str],
    build: Callable[[int], RequestSpec],
    requests: int,
    clients: int,
    deadline: float,
    timeout_s: float,
) -> tuple[list[RequestResult], float, int]:
    """``requests`` requests from ``clients`` threads pulling from one counter.

    Returns the results, the wall time in seconds and how many were not sent because the
    run's deadline (a ``time.monotonic`` value) passed."""
    results: list[RequestResult] = []
    lock = threading.Lock()
    next_index = [0]
    unsent = [0]

    def worker() -> None:
        with httpx.Client(base_url=url, headers=headers, timeout=timeout_s) as client:
            send(client, RequestSpec("GET", "/healthz"))  # connect before the clock matters
            start_barrier.wait()
            while True:
                with lock:
                    index = next_index[0]
                    if index >= requests:
                        return
                    next_index[0] += 1
                    if time.monotonic() > deadline:
                        unsent[0] += 1
                        continue
                result = send(client, build(index))
                with lock:
                    results.append(result)

    start_barrier = threading.Barrier(clients + 1)
    threads = [threading.Thread(target=worker, daemon=True) for _ in range(clients)]
    for thread in threads:
        thread.start()
    start_barrier.wait()
    started = time.perf_counter()
    for thread in threads:
        thread.join()
    return results, time.perf_counter() - started, unsent[0]


def summarise(results: Sequence[RequestResult], wall_s: float, unsent: int) -> dict[str, Any]:
    ok = [r for r in results if 200 <= r.status < 300]
    failed = [r for r in results if not 200 <= r.status < 300]
    latencies = np.array([r.latency_ms for r in ok], dtype=np.float64)
    server = np.array([r.server_ms for r in ok if r.server_ms is not None], dtype=np.float64)
    errors = Counter(r.problem_type or f"http-{r.status}" for r in failed)
    decisions = Counter(f"{r.label}:{r.decision}" for r in ok if r.decision is not None)

    def percentile(values: np.ndarray, q: float) -> float:
        return float(np.percentile(values, q)) if values.size else float("nan")

    return {
        "sent": len(results),
        "unsent_after_deadline": unsent,
        "ok": len(ok),
        "wall_s": wall_s,
        "ok_per_s": len(ok) / wall_s if wall_s > 0 else float("nan"),
        "responses_per_s": len(results) / wall_s if wall_s > 0 else float("nan"),
        "p50_ms": percentile(latencies, 50),
        "p95_ms": percentile(latencies, 95),
        "p99_ms": percentile(latencies, 99),
        "max_ms": float(latencies.max()) if latencies.size else float("nan"),
        "server_median_ms": percentile(server, 50),
        "errors": dict(errors),
        "unexpected_errors": sum(n for t, n in errors.items() if t not in EXPECTED_PROBLEMS),
        "decisions": dict(decisions),
    }


def measure(
    url: str,
    secrets: dict[str, str],
    gallery: Gallery,
    endpoints: Sequence[str],
    concurrency: Sequence[int],
    options: ApiLoadOptions,
    deadline: float,
    progress: Callable[[str], None],
) -> dict[str, dict[str, Any]]:
    """endpoint -> str(clients) -> summary, healthz (the baseline) included."""
    builders = request_builders(gallery)
    role_of = {"verify": "officer", "identify": "officer", "quality": "clerk", "healthz": "clerk"}
    found: dict[str, dict[str, Any]] = {}
    for endpoint in ("healthz", *endpoints):
        found[endpoint] = {}
        for clients in concurrency:
            progress(f"{endpoint}: {options.requests} requests from {clients} client(s)")
            headers = {"Authorization": f"Bearer {secrets[role_of[endpoint]]}"}
            results, wall_s, unsent = run_load(
                url,
                headers,
                builders[endpoint],
                options.requests,
                clients,
                deadline,
                options.request_timeout_s,
            )
            found[endpoint][str(clients)] = summarise(results, wall_s, unsent)
    return found


# --- the run --------------------------------------------------------------------------------


def run_api_load(
    options: ApiLoadOptions,
    step: Callable[[str], None],
    count: Callable[[int, int], None],
) -> tuple[dict[str, Any], str, dict[str, Any]]:
    deadline = time.monotonic() + options.total_timeout_s
    if options.url is not None:
        check_loopback(options.url)
        if options.data_dir is None:
            raise ValueError("--url needs --data-dir (the server's, for its admin key)")
        results, _, _ = _run(options, options.url, options.data_dir, deadline, step, count)
        return results, _markdown(results), _plots(results)
    with tempfile.TemporaryDirectory(prefix="wajah-bench-api-") as scratch:
        own_dir = options.data_dir is None
        data_dir = options.data_dir or Path(scratch) / "data"
        data_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        log_path = Path(scratch) / "serve.log"
        step("starting wajah serve on 127.0.0.1")
        with served(data_dir, log_path) as url:
            results, secrets, gallery = _run(options, url, data_dir, deadline, step, count)
        if options.distractors and options.distractor_model is not None and own_dir:
            results["distractor_run"] = _distractor_run(
                options, data_dir, log_path, secrets, gallery, deadline, step, count
            )
        elif options.distractors:
            results["distractor_run"] = {
                "skipped": "needs a data directory the benchmark created and a template model"
            }
    return results, _markdown(results), _plots(results)


def _run(
    options: ApiLoadOptions,
    url: str,
    data_dir: Path,
    deadline: float,
    step: Callable[[str], None],
    count: Callable[[int, int], None],
) -> tuple[dict[str, Any], dict[str, str], Gallery]:
    """Keys, gallery and the measurements; returns the results and, apart because they are
    never written, the run's key secrets and its gallery (photos)."""
    from wajah.api.http.app import admin_key_path
    from wajah.api.settings import Settings

    admin_secret = admin_key_path(Settings(data_dir=data_dir)).read_text().strip()
    with httpx.Client(base_url=url, timeout=options.request_timeout_s) as client:
        secrets = create_keys(client, admin_secret)
        client.headers["Authorization"] = f"Bearer {secrets['clerk']}"
        step(f"enrolling {options.gallery_size} LFW identities through the API")
        setup_started = time.perf_counter()
        gallery = enrol_gallery(client, secrets, options.faces_dir, options.gallery_size, count)
        setup_s = time.perf_counter() - setup_started
    if len(gallery.probes) < 2:
        raise RuntimeError("fewer than two usable probes: the gallery is too small")
    measured = measure(
        url, secrets, gallery, ENDPOINTS, options.concurrency, options, deadline, step
    )
    results = {
        "server": {"url": url, "started_by_benchmark": options.url is None},
        "gallery": {
            "enrolled_subjects": len(gallery.enrolled),
            "probes": len(gallery.probes),
            "enrolment_refused": dict(gallery.refused),
            "setup_s": setup_s,
        },
        "requests_per_run": options.requests,
        "concurrency": list(options.concurrency),
        "endpoints": measured,
    }
    return results, secrets, gallery


def _distractor_run(
    options: ApiLoadOptions,
    data_dir: Path,
    log_path: Path,
    secrets: dict[str, str],
    gallery: Gallery,
    deadline: float,
    step: Callable[[str], None],
    count: Callable[[int, int], None],
) -> dict[str, Any]:
    assert options.distractor_model is not None
    step(f"writing {options.distractors} synthetic subjects into the stopped server's store")
    insert_s = insert_distractors(
        data_dir, options.distractor_model, options.distractors, options.seed, count
    )
    step("restarting wajah serve (the index takes in the new templates)")
    with served(data_dir, log_path) as url:
        measured = measure(
            url,
            secrets,
            gallery,
            ("verify", "identify"),
            options.distractor_concurrency,
            options,
            deadline,
            step,
        )
    return {
        "synthetic_subjects": options.distractors,
        "real_subjects": len(gallery.enrolled),
        "template_model": options.distractor_model.name,
        "insert_s": insert_s,
        "concurrency": list(options.distractor_concurrency),
        "endpoints": measured,
    }


# --- the report -----------------------------------------------------------------------------


def _cell(value: float, digits: int = 3) -> str:
    return f"{value:.{digits}g}" if np.isfinite(value) else "n/a"


def _errors_cell(errors: dict[str, int]) -> str:
    if not errors:
        return "0"
    return ", ".join(f"{t.removeprefix('urn:wajah:problem:')} {n}" for t, n in errors.items())


def _table(measured: dict[str, dict[str, Any]], endpoints: Sequence[str]) -> str:
    rows = []
    health = measured["healthz"]
    for endpoint in ("healthz", *endpoints):
        for clients, entry in measured[endpoint].items():
            base = health[clients]["p50_ms"]
            server = entry["server_median_ms"]
            rows.append(
                [
                    endpoint if endpoint != "healthz" else "GET /healthz (baseline)",
                    clients,
                    f"{entry['ok']}/{entry['sent'] + entry['unsent_after_deadline']}",
                    with_ratio(entry["p50_ms"], base),
                    _cell(entry["p95_ms"]),
                    _cell(entry["p99_ms"]),
                    _cell(entry["ok_per_s"]),
                    _cell(server),
                    f"{entry['p50_ms'] / server:.2f}x" if np.isfinite(server) and server else "",
                    _errors_cell(entry["errors"]),
                ]
            )
    return markdown_table(
        [
            "endpoint",
            "clients",
            "ok/requests",
            "p50 ms (x healthz p50)",
            "p95 ms",
            "p99 ms",
            "ok req/s",
            "server median ms",
            "p50 / server",
            "errors by type",
        ],
        rows,
    )


def _markdown(results: dict[str, Any]) -> str:
    gallery = results["gallery"]
    measured = results["endpoints"]
    quality_single = measured["quality"][str(results["concurrency"][0])]["server_median_ms"]
    started_here = results["server"]["started_by_benchmark"]
    server_note = (
        "started by the benchmark, fresh data directory, rate limit and verify lockout raised "
        "for the run"
        if started_here
        else "given with --url"
    )
    lines = [
        f"Photos from ../shared/faces (LFW). {DATA_CAVEAT}",
        "",
        f"Server: `wajah serve` at {results['server']['url']} ({server_note}). "
        f"Gallery: {gallery['enrolled_subjects']} subjects enrolled through the API "
        f"(one LFW photo each, source=scan; {gallery['setup_s']:.0f} s), "
        f"{gallery['probes']} probes (another photo of an enrolled identity with one face). "
        f"Each row: {results['requests_per_run']} requests from that many concurrent clients "
        "(threads, keep-alive). Verify alternates genuine and impostor claims; identify sends "
        "mated probes (k=5); quality uses the verification profile.",
        "",
        "Latency percentiles are of successful (2xx) responses, measured by the client; the "
        "ratio in brackets is to GET /healthz p50 at the same concurrency (the HTTP stack "
        "alone, this run). 'server median' is the service's own figure: `time_ms` for verify "
        "and identify (handler: queue wait, face work, search) and the sum of `timings_ms` for "
        "quality (the face engine's stages only). 503 overloaded is the bounded face pool "
        "refusing work: counted in 'errors', not retried.",
        "",
        f"In-process face pipeline (quality `timings_ms`, 1 client): median "
        f"{_cell(quality_single)} ms.",
        "",
        f"## Gallery of {gallery['enrolled_subjects']} real subjects",
        "",
        _table(measured, ENDPOINTS),
    ]
    decisions = {clients: entry["decisions"] for clients, entry in measured["verify"].items()}
    lines.append(
        "Verify decisions (label:decision, per client count): "
        + "; ".join(
            f"{c}: " + ", ".join(f"{k} {v}" for k, v in sorted(d.items()))
            for c, d in decisions.items()
        )
        + "\n"
    )
    extra = results.get("distractor_run")
    if extra and "skipped" not in extra:
        lines += [
            f"## {extra['synthetic_subjects']:,}-subject gallery, synthetic distractors",
            "",
            f"{extra['synthetic_subjects']:,} synthetic subjects (one template each, drawn from "
            f"the '{extra['template_model']}' model of real dlib templates, chips all zeros, "
            f"written into the store in {extra['insert_s']:.0f} s with the server stopped) plus "
            f"the {extra['real_subjects']} real subjects above, which the probes are of. The "
            "server was restarted on the same data directory; the flat (exact) index.",
            "",
            _table(extra["endpoints"], ("verify", "identify")),
        ]
    elif extra:
        lines += [f"Synthetic-distractor gallery skipped: {extra['skipped']}.", ""]
    return "\n".join(lines)


def _plots(results: dict[str, Any]) -> dict[str, Any]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axis = plt.subplots(figsize=(8, 4.5))
    measured = results["endpoints"]
    for endpoint in ("healthz", *ENDPOINTS):
        clients = [int(c) for c in measured[endpoint]]
        p50 = [measured[endpoint][str(c)]["p50_ms"] for c in clients]
        p99 = [measured[endpoint][str(c)]["p99_ms"] for c in clients]
        (line,) = axis.plot(clients, p50, marker="o", label=f"{endpoint} p50")
        axis.plot(
            clients,
            p99,
            marker="x",
            linestyle="--",
            color=line.get_color(),
            label=f"{endpoint} p99",
        )
    extra = results.get("distractor_run")
    if extra and "skipped" not in extra:
        for endpoint in ("verify", "identify"):
            clients = [int(c) for c in extra["endpoints"][endpoint]]
            p50 = [extra["endpoints"][endpoint][str(c)]["p50_ms"] for c in clients]
            axis.plot(
                clients,
                p50,
                marker="s",
                linestyle=":",
                label=f"{endpoint} p50, +{extra['synthetic_subjects']:,} synthetic",
            )
    axis.set_xscale("log", base=2)
    axis.set_yscale("log")
    axis.set_xlabel("concurrent clients")
    axis.set_ylabel("latency ms (client side, 2xx)")
    axis.set_title(f"wajah serve: {results['gallery']['enrolled_subjects']} enrolled subjects")
    axis.legend(fontsize=7, ncol=2)
    axis.grid(True, which="both", alpha=0.3)
    return {"latency": figure}
