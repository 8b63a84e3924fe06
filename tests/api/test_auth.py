"""The role matrix of docs/api.md, every endpoint x every role, and the 401 cases."""

from __future__ import annotations

from typing import Any

import pytest

from tests.api.conftest import ApiHarness
from wajah.enrollment.access import Role

CLERK, OFFICER, SUPERVISOR, OPS, ADMIN = (
    Role.CLERK,
    Role.OFFICER,
    Role.SUPERVISOR,
    Role.OPS,
    Role.ADMIN,
)
READERS = {OFFICER, SUPERVISOR, CLERK}
NOT_AN_IMAGE = {"files": {"image": ("x.jpg", b"not an image", "image/jpeg")}}

# (method, path, request arguments, roles allowed). Requests name nobody that exists, so an
# allowed role gets a 4xx from the work itself (404, 422), never a change.
MATRIX: list[tuple[str, str, dict[str, Any], set[Role]]] = [
    ("GET", "/v1/me", {}, set(Role)),
    ("GET", "/v1/keys", {}, {ADMIN}),
    ("POST", "/v1/keys", {"json": {"name": "", "role": "clerk"}}, {ADMIN}),
    ("DELETE", "/v1/keys/999999", {}, {ADMIN}),
    ("POST", "/v1/quality", NOT_AN_IMAGE, {CLERK}),
    ("POST", "/v1/subjects", {"json": {"subject_id": "M-1"}}, {CLERK}),
    ("GET", "/v1/subjects", {}, READERS),
    ("GET", "/v1/subjects/NOBODY", {}, READERS),
    ("PATCH", "/v1/subjects/NOBODY", {"json": {}}, {CLERK, SUPERVISOR}),
    ("DELETE", "/v1/subjects/NOBODY", {}, {SUPERVISOR}),
    ("DELETE", "/v1/subjects/NOBODY/verification-lock", {}, {SUPERVISOR}),
    ("GET", "/v1/subjects/NOBODY/faces", {}, READERS),
    ("GET", "/v1/subjects/NOBODY/faces/1/chip", {}, READERS),
    ("POST", "/v1/subjects/NOBODY/faces", NOT_AN_IMAGE, {CLERK}),
    ("POST", "/v1/verify", {**NOT_AN_IMAGE, "data": {"subject_id": "NOBODY"}}, {OFFICER}),
    ("POST", "/v1/identify", NOT_AN_IMAGE, {OFFICER}),
    ("GET", "/v1/reviews", {}, {SUPERVISOR}),
    ("GET", "/v1/reviews/999999", {}, {SUPERVISOR}),
    (
        "POST",
        "/v1/reviews/999999/resolve",
        {"json": {"resolution": "reject", "comment": "x"}},
        {SUPERVISOR},
    ),
    ("GET", "/v1/audit", {}, {SUPERVISOR, OPS}),
    ("GET", "/v1/ops/summary", {}, {OPS}),
    ("GET", "/metrics", {}, {OPS}),
    (
        "POST",
        "/v1/applications",
        {"json": {"subject_id": "NOBODY", "application_type": "visa"}},
        {CLERK},
    ),
    ("GET", "/v1/applications", {}, READERS),
    ("GET", "/v1/applications/NOAPP-1", {}, READERS),
    (
        "POST",
        "/v1/applications/NOAPP-1/decision",
        {"json": {"decision": "approved", "reason": "x"}},
        {OFFICER, SUPERVISOR},
    ),
    ("GET", "/v1/reports/operations", {}, {OPS, SUPERVISOR}),
]
# Needs no key at all: the applicants' own status lookup (rate-limited per address).
PUBLIC_ROUTES = {("POST", "/v1/public/status-lookup")}


def test_matrix_covers_every_protected_route(harness: ApiHarness) -> None:
    documented = {
        (method.upper(), path)
        for path, operations in harness.client.get("/openapi.json").json()["paths"].items()
        for method in operations
        if path not in ("/healthz", "/readyz")
    } - PUBLIC_ROUTES
    covered = set()
    for method, path, _, _ in MATRIX:
        template = path
        for concrete, name in (("NOBODY", "{subject_id}"), ("999999", "{review_id}")):
            template = template.replace(concrete, name)
        template = template.replace("/v1/keys/{review_id}", "/v1/keys/{key_id}")
        template = template.replace("faces/1/chip", "faces/{sample_id}/chip")
        template = template.replace("NOAPP-1", "{number}")
        covered.add((method, template))
    assert covered == documented


def test_the_status_lookup_needs_no_key(harness: ApiHarness) -> None:
    response = harness.client.post(
        "/v1/public/status-lookup", json={"number": "NOAPP-1", "date_of_birth": "1990-01-01"}
    )
    assert response.status_code == 404
    assert response.json()["type"] == "urn:wajah:problem:application-lookup-failed"


@pytest.mark.parametrize("role", list(Role), ids=lambda role: role.value)
@pytest.mark.parametrize(
    ("method", "path", "arguments", "allowed"),
    MATRIX,
    ids=[f"{method} {path}" for method, path, _, _ in MATRIX],
)
def test_role_matrix(
    harness: ApiHarness,
    role: Role,
    method: str,
    path: str,
    arguments: dict[str, Any],
    allowed: set[Role],
) -> None:
    response = harness.client.request(method, path, headers=harness.headers(role), **arguments)
    if role in allowed:
        assert response.status_code not in (401, 403, 500), response.text
    else:
        assert response.status_code == 403, response.text
        assert response.headers["content-type"] == "application/problem+json"
        assert response.json()["type"] == "urn:wajah:problem:forbidden"


@pytest.mark.parametrize(
    "authorization",
    [
        None,
        "",
        "Bearer",
        "Bearer ",
        "Basic dXNlcjpwYXNz",
        "Bearer wjh_nope",
        "Bearer wjh_" + "A" * 43,
    ],
    ids=["absent", "empty", "scheme-only", "blank", "basic", "malformed", "unknown"],
)
def test_missing_or_invalid_key_is_401(harness: ApiHarness, authorization: str | None) -> None:
    headers = {} if authorization is None else {"Authorization": authorization}
    response = harness.client.get("/v1/me", headers=headers)
    assert response.status_code == 401
    assert response.headers["www-authenticate"] == "Bearer"
    assert response.json()["type"] == "urn:wajah:problem:unauthorized"


def test_revoked_key_is_401(harness: ApiHarness) -> None:
    admin = harness.headers(secret=harness.admin_secret)
    created = harness.client.post(
        "/v1/keys", json={"name": "desk 9", "role": "officer"}, headers=admin
    )
    assert created.status_code == 201
    secret = created.json()["secret"]
    assert harness.client.get("/v1/me", headers=harness.headers(secret=secret)).json() == {
        "key_id": created.json()["key_id"],
        "name": "desk 9",
        "role": "officer",
    }
    revoked = harness.client.delete(f"/v1/keys/{created.json()['key_id']}", headers=admin)
    assert revoked.status_code == 200 and revoked.json()["revoked_at"] is not None
    after = harness.client.get("/v1/subjects", headers=harness.headers(secret=secret))
    assert after.status_code == 401
    assert after.json()["type"] == "urn:wajah:problem:unauthorized"
    listed = harness.client.get("/v1/keys", headers=admin).json()["items"]
    assert "secret" not in listed[0] and all("secret" not in key for key in listed)


def test_open_endpoints_need_no_key(harness: ApiHarness) -> None:
    assert harness.client.get("/healthz").status_code == 200
    assert harness.client.get("/readyz").status_code == 200
    assert harness.client.get("/openapi.json").status_code == 200
