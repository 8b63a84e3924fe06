"""Per-key rate limit, the failed-verification lock-out, the face queue bound and timeouts."""

from __future__ import annotations

import base64
import time
from pathlib import Path
from typing import Any

import anyio
import pytest

from tests.api.conftest import ApiHarness
from tests.api.photos import lfw, upload
from wajah.api.http.errors import ApiProblem
from wajah.api.http.limits import (
    FailedVerifications,
    RateLimiter,
    VerificationLockout,
    run_blocking,
)
from wajah.enrollment.access import Role


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


def test_one_station_locks_only_itself_out() -> None:
    clock = FakeClock()
    lockout = VerificationLockout(
        per_station_limit=2, per_subject_limit=4, window_s=60.0, clock=clock
    )
    for _ in range(2):
        lockout.record_failure("S", "counter-1")
    with pytest.raises(ApiProblem) as locked:
        lockout.check("S", "counter-1")
    assert locked.value.problem.slug == "too-many-failed-attempts"
    lockout.check("S", "counter-2")  # another counter may still verify the subject
    lockout.record_failure("S", "counter-2")
    lockout.record_failure("S", "counter-3")
    for station in ("counter-2", "counter-3", "counter-4"):  # 4 across counters: all locked
        with pytest.raises(ApiProblem):
            lockout.check("S", station)
    assert lockout.clear("S") is True
    for station in ("counter-1", "counter-2", "counter-4"):
        lockout.check("S", station)
    assert lockout.clear("S") is False


def test_a_match_clears_every_station() -> None:
    clock = FakeClock()
    lockout = VerificationLockout(2, 4, 60.0, clock=clock)
    lockout.record_failure("S", "counter-1")
    lockout.record_failure("S", "counter-2")
    lockout.record_match("S")
    lockout.record_failure("S", "counter-1")
    lockout.check("S", "counter-1")
    raised = VerificationLockout(3, 1, 60.0, clock=clock)  # subject limit raised to 3
    for _ in range(2):
        raised.record_failure("T", "counter-1")
    raised.check("T", "counter-2")
    raised.record_failure("T", "counter-1")
    with pytest.raises(ApiProblem):
        raised.check("T", "counter-2")


def test_lock_is_per_key_over_http_and_a_supervisor_clears_it(
    harness: ApiHarness, faces_dir: Path
) -> None:
    clerk = harness.headers(Role.CLERK)
    harness.client.post(
        "/v1/subjects", json={"subject_id": "LOCK-3", "full_name": "L"}, headers=clerk
    )
    enrolled = harness.client.post(
        "/v1/subjects/LOCK-3/faces",
        files=upload(lfw(faces_dir, "Jean_Chretien", 1)),
        data={"source": "scan"},
        headers=clerk,
    )
    assert enrolled.status_code == 201, enrolled.text
    _, second = harness.keys.create_key("Counter 9", Role.OFFICER)
    first_officer, second_officer = harness.headers(Role.OFFICER), harness.headers(secret=second)

    def verify(headers: dict[str, str], name: str, number: int) -> Any:
        return harness.client.post(
            "/v1/verify",
            files=upload(lfw(faces_dir, name, number)),
            data={"subject_id": "LOCK-3"},
            headers=headers,
        )

    for number in (1, 2):  # limit 2 in this module
        failed = verify(first_officer, "Donald_Rumsfeld", number)
        assert failed.json().get("decision") == "no_match", failed.text
    assert verify(first_officer, "Jean_Chretien", 2).status_code == 429
    assert verify(second_officer, "Jean_Chretien", 2).status_code == 200  # another counter
    assert verify(second_officer, "Donald_Rumsfeld", 1).json()["decision"] == "no_match"
    cleared = harness.client.delete(
        "/v1/subjects/LOCK-3/verification-lock", headers=harness.headers(Role.SUPERVISOR)
    )
    assert cleared.status_code == 204
    assert verify(first_officer, "Jean_Chretien", 2).status_code == 200
    refused = harness.client.delete("/v1/subjects/LOCK-3/verification-lock", headers=first_officer)
    assert refused.status_code == 403
    audit = harness.client.get(
        "/v1/audit",
        params={"subject_id": "LOCK-3", "action": "verify.unlock"},
        headers=harness.headers(Role.SUPERVISOR),
    ).json()["items"]
    assert [record["outcome"] for record in audit] == ["forbidden", "ok"]  # newest first
