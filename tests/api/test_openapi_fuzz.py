"""Schemathesis against the live OpenAPI schema: generated requests (valid and invalid) on
every operation, with an officer's, a clerk's ... key. No 5xx, and every answer conforms to
the schema: documented status, content type, headers and body."""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, reject, settings
from schemathesis.checks import (
    content_type_conformance,
    not_a_server_error,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from tests.api.conftest import ApiHarness
from wajah.api.http.app import create_app
from wajah.api.settings import Settings
from wajah.enrollment.access import Role

CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
]
# The operation's own role, so generated requests get past auth and reach the work.
ROLE_OF_TAG = {
    "keys": Role.ADMIN,
    "quality": Role.CLERK,
    "subjects": Role.SUPERVISOR,
    "faces": Role.CLERK,
    "matching": Role.OFFICER,
    "reviews": Role.SUPERVISOR,
    "audit": Role.OPS,
    "ops": Role.OPS,
    "health": Role.OPS,
    "applications": Role.CLERK,
    "public": Role.OPS,  # no key needed; a key changes nothing
    "reports": Role.OPS,
}


# The schema of the app the harness runs, built the same way (no start-up needed for it).
schema = schemathesis.openapi.from_dict(
    create_app(Settings(data_dir=Path(tempfile.gettempdir()) / "wajah-schema-only")).openapi()
)


@pytest.mark.slow
@schema.parametrize()
@settings(max_examples=20, deadline=None, suppress_health_check=list(HealthCheck))
def test_api_conforms_to_its_schema(case: Any, harness: ApiHarness) -> None:
    tags = case.operation.definition.raw.get("tags", ["health"])
    role = ROLE_OF_TAG[tags[0]]
    if case.path == "/v1/subjects" and case.method == "POST":
        role = Role.CLERK
    if case.path.startswith("/v1/subjects/{subject_id}/faces") and case.method == "GET":
        role = Role.OFFICER
    if case.path.endswith("/decision"):
        role = Role.OFFICER
    if case.path.startswith("/v1/me"):
        role = Role.OFFICER
    transport = case.as_transport_kwargs(
        base_url="http://testserver", headers=harness.headers(role)
    )
    if not transport.get("cookies"):
        transport.pop("cookies", None)
    try:
        request = harness.client.build_request(**transport)
        request.read()  # multipart bodies stream; the checks read the request back
    except (TypeError, AttributeError):
        # Negative multipart data httpx cannot encode at all (a file part that is a number):
        # nothing would reach the server, so there is nothing to check.
        reject()
    response = harness.client.send(request)
    case.validate_response(response, checks=CHECKS, transport_kwargs=transport)
