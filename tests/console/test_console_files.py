"""The console's static files, without a browser: every message key the console uses exists
in every language, the languages have the same keys and placeholders, no file pulls code or
fonts from another origin, and the mount serves the console and nothing else."""

from __future__ import annotations

import json
import re

from fastapi import FastAPI
from fastapi.testclient import TestClient

from wajah.api.http.console import CONSOLE_DIR, mount_console

LANGUAGES = ("id", "en")
# A quoted "group.name" literal in JS or a data-i18n attribute in HTML.
KEY_LITERAL = re.compile(r"""["'`]((?:[a-z_]+)\.[a-z_.\-]+)["'`]""")
TEMPLATE_KEY = re.compile(r"`([a-z_]+\.[a-z_.]*)\$\{")
HTML_KEY = re.compile(r'data-i18n="([^"]+)"|data-i18n-attr="[^"]*?:([^";]+)"')


def messages(lang: str) -> dict[str, str]:
    return dict(json.loads((CONSOLE_DIR / "i18n" / f"{lang}.json").read_text("utf-8")))


def used_keys() -> tuple[set[str], set[str]]:
    """(keys used literally, prefixes of keys built at run time)."""
    literal: set[str] = set()
    prefixes: set[str] = set()
    for script in CONSOLE_DIR.glob("*.js"):
        text = script.read_text("utf-8")
        literal |= {
            key
            for key in KEY_LITERAL.findall(text)
            if not key.endswith((".js", ".json")) and "/" not in key
        }
        prefixes |= set(TEMPLATE_KEY.findall(text))
    html = (CONSOLE_DIR / "index.html").read_text("utf-8")
    for text_key, attr_key in HTML_KEY.findall(html):
        literal.add(text_key or attr_key)
    return literal, prefixes


def test_languages_have_the_same_keys_and_placeholders() -> None:
    indonesian, english = messages("id"), messages("en")
    assert indonesian.keys() == english.keys()
    for key, text in indonesian.items():
        assert set(re.findall(r"\{(\w+)\}", text)) == set(re.findall(r"\{(\w+)\}", english[key])), (
            key
        )
        assert text.strip(), key


def test_every_key_the_console_uses_is_translated() -> None:
    literal, prefixes = used_keys()
    known = messages("id").keys()
    groups = {key.split(".", 1)[0] for key in known}
    # Only literals in a message group: CSS selectors and storage names look alike.
    literal = {key for key in literal if key.split(".", 1)[0] in groups}
    missing = sorted(
        key
        for key in literal
        if key not in known and not any(key.startswith(prefix) for prefix in prefixes)
    )
    assert len(literal) > 100  # the scan itself works
    assert missing == []
    for prefix in prefixes:  # every key built at run time has some translation
        assert any(key.startswith(prefix) for key in known), prefix


def test_every_quality_component_has_an_instruction() -> None:
    from wajah.biometric.quality import COMPONENT_NAMES

    quality_js = (CONSOLE_DIR / "quality.js").read_text("utf-8")
    for name in COMPONENT_NAMES:
        assert f'"{name}"' in quality_js, name
    for check in re.findall(r'id: "(\w+)", components', quality_js):
        for lang in LANGUAGES:
            assert f"quality.{check}.ok" in messages(lang)
            assert f"quality.{check}.fix" in messages(lang)


def test_every_problem_slug_is_translated() -> None:
    from wajah.api.http.errors import PROBLEM_TYPES

    assert "low-quality" in PROBLEM_TYPES
    for lang in LANGUAGES:
        assert [slug for slug in PROBLEM_TYPES if f"problem.{slug}" not in messages(lang)] == []


def test_no_code_or_fonts_from_elsewhere() -> None:
    for path in CONSOLE_DIR.rglob("*"):
        if path.suffix in {".js", ".html", ".css"}:
            text = path.read_text("utf-8")
            assert not re.search(r"(src|href)=[\"']?(https?:)?//", text), path
            assert not re.search(r"import[^;]*from\s+[\"'](https?:)?//", text), path
            assert "@import" not in text, path
            assert "<script>" not in text and " onclick=" not in text, path  # CSP: no inline


def test_mount_serves_the_console_and_nothing_else() -> None:
    app = FastAPI()
    mount_console(app)
    client = TestClient(app)
    redirect = client.get("/console", follow_redirects=False)
    assert redirect.status_code in (307, 308)
    assert redirect.headers["location"] == "/console/"
    page = client.get("/console/")
    assert page.status_code == 200
    assert '<html lang="id">' in page.text
    assert "default-src 'self'" in page.headers["content-security-policy"]
    assert (
        client.get("/console/app.js")
        .headers["content-type"]
        .startswith(("text/javascript", "application/javascript"))
    )
    assert client.get("/console/i18n/en.json").json()["signin.submit"] == "Sign in"
    assert client.get("/console/__init__.py").status_code == 404
    assert client.get("/console/../settings.py").status_code == 404
