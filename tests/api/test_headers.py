"""Security headers on API, console and documentation responses; the docs load nothing from
another origin."""

from __future__ import annotations

import re

from tests.api.conftest import ApiHarness
from wajah.enrollment.access import Role


def test_api_responses_carry_security_headers_and_are_not_cached(harness: ApiHarness) -> None:
    response = harness.client.get("/v1/me", headers=harness.headers(Role.OFFICER))
    assert response.status_code == 200
    headers = response.headers
    assert headers["X-Content-Type-Options"] == "nosniff"
    assert headers["X-Frame-Options"] == "DENY"
    assert headers["Referrer-Policy"] == "no-referrer"
    assert headers["Cache-Control"] == "no-store"
    assert "frame-ancestors 'none'" in headers["Content-Security-Policy"]
    assert "Strict-Transport-Security" not in headers  # plain http here


def test_problems_carry_them_too(harness: ApiHarness) -> None:
    response = harness.client.get("/v1/me")
    assert response.status_code == 401
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert response.headers["Cache-Control"] == "no-store"


def test_console_policy_allows_only_its_own_scripts(harness: ApiHarness) -> None:
    response = harness.client.get("/console/")
    assert response.status_code == 200
    policy = response.headers["Content-Security-Policy"]
    assert "default-src 'self'" in policy and "unsafe-inline" not in policy


def test_docs_are_served_without_a_cdn(harness: ApiHarness) -> None:
    for page in ("/docs", "/redoc"):
        html = harness.client.get(page)
        assert html.status_code == 200
        sources = re.findall(r'(?:src|href)="([^"]+)"', html.text)
        assert sources and all(source.startswith("/") for source in sources), sources
        for source in sources:
            if source.endswith((".js", ".css")):
                assert harness.client.get(source).status_code == 200, source
        assert "'unsafe-inline'" in html.headers["Content-Security-Policy"]
