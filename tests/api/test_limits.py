"""Per-key rate limit, the failed-verification lock-out, the face queue bound and timeouts."""

from __future__ import annotations

import base64
import time
from pathlib import Path
from typing import Any

import anyio
import pytest

from api.errors import ApiProblem
from api.limits import FailedVerifications, RateLimiter, run_blocking
from enrollment.access import Role
from tests.api.conftest import ApiHarness
from tests.api.photos import lfw, upload


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture(scope="module")
def api_overrides() -> dict[str, Any]:
    return {"failed_verify_limit": 2, "failed_verify_window_s": 300.0}


def test_token_bucket_refills() -> None:
    clock = FakeClock()
    limiter = RateLimiter(per_minute=3, clock=clock)
    for _ in range(3):
        limiter.check("k1")
    with pytest.raises(ApiProblem) as refused:
        limiter.check("k1")
    assert refused.value.problem.slug == "rate-limited"
    assert refused.value.headers["Retry-After"] == "20"
    limiter.check("k2")  # buckets are per key
    clock.now += 20.0
    limiter.check("k1")


def test_failed_verifications_lock_until_the_window_passes() -> None:
    clock = FakeClock()
    attempts = FailedVerifications(limit=3, window_s=60.0, clock=clock)
    for _ in range(2):
        attempts.record_failure("S")
    attempts.check("S")
    attempts.record_match("S")  # a match resets the run
    for _ in range(3):
        clock.now += 1.0
        attempts.record_failure("S")
    with pytest.raises(ApiProblem) as locked:
        attempts.check("S")
    assert locked.value.problem.slug == "too-many-failed-attempts"
    assert locked.value.headers["Retry-After"] == "58"
    attempts.check("OTHER")
    clock.now += 58.0
    attempts.check("S")


def test_rate_limit_over_http(harness: ApiHarness) -> None:
    app: Any = harness.client.app
    original = app.state.rate_limiter
    app.state.rate_limiter = RateLimiter(per_minute=2)
    try:
        headers = harness.headers(Role.OPS)
        statuses = [harness.client.get("/v1/me", headers=headers).status_code for _ in range(3)]
        assert statuses == [200, 200, 429]
        limited = harness.client.get("/v1/me", headers=headers)
        assert limited.json()["type"] == "urn:wajah:problem:rate-limited"
        assert int(limited.headers["retry-after"]) >= 1
        assert harness.client.get("/v1/me", headers=harness.headers(Role.CLERK)).status_code == 200
    finally:
        app.state.rate_limiter = original


def test_impostor_is_locked_out_and_a_match_resets(harness: ApiHarness, faces_dir: Path) -> None:
    clerk, officer = harness.headers(Role.CLERK), harness.headers(Role.OFFICER)
    for ref, name in (("LOCK-1", "Tony_Blair"), ("LOCK-2", "Vladimir_Putin")):
        harness.client.post(
            "/v1/subjects", json={"subject_id": ref, "full_name": "L"}, headers=clerk
        )
        enrolled = harness.client.post(
            f"/v1/subjects/{ref}/faces",
            files=upload(lfw(faces_dir, name, 1)),
            data={"source": "scan"},
            headers=clerk,
        )
        assert enrolled.status_code == 201, enrolled.text

    def verify(ref: str, name: str, number: int) -> Any:
        image = base64.b64encode(lfw(faces_dir, name, number)).decode()
        return harness.client.post(
            "/v1/verify", json={"subject_id": ref, "image_base64": image}, headers=officer
        )

    # LOCK-2: a failure, a match (resets), a failure: still open.
    assert verify("LOCK-2", "Donald_Rumsfeld", 1).json()["decision"] == "no_match"
    assert verify("LOCK-2", "Vladimir_Putin", 2).json()["decision"] == "match"
    assert verify("LOCK-2", "Donald_Rumsfeld", 1).json()["decision"] == "no_match"
    # LOCK-1: two failures in a row lock it (limit 2 in this module), even for the genuine face.
    assert verify("LOCK-1", "Donald_Rumsfeld", 1).json()["decision"] == "no_match"
    assert verify("LOCK-1", "Donald_Rumsfeld", 2).json()["decision"] == "no_match"
    locked = verify("LOCK-1", "Tony_Blair", 2)
    assert locked.status_code == 429
    assert locked.json()["type"] == "urn:wajah:problem:too-many-failed-attempts"
    assert 290 <= int(locked.headers["retry-after"]) <= 300
    audit = harness.client.get(
        "/v1/audit",
        params={"subject_id": "LOCK-1", "action": "verify"},
        headers=harness.headers(Role.SUPERVISOR),
    ).json()["items"]
    assert [r["outcome"] for r in audit][:1] == ["too-many-failed-attempts"]
    assert verify("LOCK-2", "Vladimir_Putin", 3).status_code == 200


def test_full_face_queue_is_503_overloaded(harness: ApiHarness, faces_dir: Path) -> None:
    # The slots are what EnginePool.submit takes before it raises EngineOverloaded; holding
    # them stands in for face_queue_limit requests in flight.
    pool = harness.parts.pool
    taken = 0
    while pool._slots.acquire(blocking=False):  # occupy every admission slot
        taken += 1
    try:
        response = harness.client.post(
            "/v1/identify",
            files=upload(lfw(faces_dir, "Tony_Blair", 1)),
            headers=harness.headers(Role.OFFICER),
        )
    finally:
        for _ in range(taken):
            pool._slots.release()
    assert taken == harness.settings.face_queue_limit
    assert response.status_code == 503
    assert response.json()["type"] == "urn:wajah:problem:overloaded"
    assert response.headers["retry-after"] == "1"
    # Released: face work is admitted again.
    after = harness.client.post(
        "/v1/quality",
        files=upload(lfw(faces_dir, "Tony_Blair", 1)),
        headers=harness.headers(Role.CLERK),
    )
    assert after.status_code == 200


def test_slow_work_times_out() -> None:
    started = time.perf_counter()
    with pytest.raises(ApiProblem) as timed_out:
        anyio.run(run_blocking, lambda: time.sleep(1.0), 0.1)
    assert timed_out.value.problem.slug == "timeout"
    assert time.perf_counter() - started < 0.9
