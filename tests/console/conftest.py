"""Fixtures of the console's browser tests: Debian's Chromium under Playwright, one live
service per test session, and fake-camera videos made from real photos at test time.

Under CI (env ``CI`` set) a missing Chromium or Playwright fails these tests; elsewhere it
skips them with the reason."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.console.support import (
    LiveService,
    browser_missing,
    fake_camera_video,
    live_service,
)


@pytest.fixture(scope="session")
def playwright_runtime() -> Iterator[Any]:
    reason = browser_missing()
    if reason is not None:
        if os.environ.get("CI"):
            pytest.fail(f"browser tests cannot run: {reason}")
        pytest.skip(reason)
    from playwright.sync_api import sync_playwright

    with sync_playwright() as runtime:
        yield runtime


@pytest.fixture(scope="session")
def service(tmp_path_factory: pytest.TempPathFactory, faces_dir: Path) -> Iterator[LiveService]:
    with live_service(tmp_path_factory.mktemp("wajah-console") / "data") as running:
        yield running


@pytest.fixture(scope="session")
def photo(faces_dir: Path) -> Any:
    def resolve(relative: str) -> Path:
        path = faces_dir / relative
        assert path.is_file(), f"missing test photo {path}"
        return path

    return resolve


@pytest.fixture(scope="session")
def camera_video(tmp_path_factory: pytest.TempPathFactory, photo: Any) -> Any:
    """``camera_video(relative_photo)`` -> a .y4m made from that photo (cached)."""
    directory = tmp_path_factory.mktemp("fake-camera")
    made: dict[str, Path] = {}

    def make(relative: str) -> Path:
        if relative not in made:
            name = relative.replace("/", "_").rsplit(".", 1)[0] + ".y4m"
            made[relative] = fake_camera_video(photo(relative), directory / name)
        return made[relative]

    return make
