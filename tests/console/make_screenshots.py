"""The README's console screenshots, made with scikit-image's public-domain ``astronaut``
portrait (Eileen Collins, NASA) as the only face, so that the project's own images hold no
photo from ../shared.

    .venv/bin/python -m tests.console.make_screenshots [OUT_DIR]   (default docs/screenshots)
    .venv/bin/python -m tests.console.make_screenshots --applications [OUT_DIR]

Needs what the browser tests need (Debian's Chromium, Playwright) plus scikit-image.

``--applications`` makes only the screens of issue 17 that show no face (the applicant's status
page, the ops screen's report plots); the activity behind them is enrolled and verified
through the API with LFW photos from ../shared/faces (or WAJAH_FACES_DIR), which appear in no
screenshot."""

from __future__ import annotations

import os
import sys
import tempfile
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from tests.console.support import (
    DESKTOP,
    PROJECT_ROOT,
    LiveService,
    browser_missing,
    camera_frame,
    face_box_of,
    launch,
    live_service,
    screenshot,
    sign_in,
    write_y4m,
)

TIMEOUT_MS = 45_000


def astronaut_bgr() -> np.ndarray:
    from skimage import data

    return cv2.cvtColor(data.astronaut(), cv2.COLOR_RGB2BGR)


def enroll_jpeg(service: LiveService, subject_id: str, full_name: str, jpeg: bytes) -> None:
    with service.client("clerk") as clerk:
        created = clerk.post(
            "/v1/subjects",
            json={"subject_id": subject_id, "full_name": full_name, "nationality": "USA"},
        )
        assert created.status_code == 201, created.text
        enrolled = clerk.post(
            f"/v1/subjects/{subject_id}/faces",
            files={"image": ("scan.jpg", jpeg, "image/jpeg")},
            data={"source": "scan"},
        )
        assert enrolled.status_code == 201, enrolled.text


def make(out_dir: Path) -> list[Path]:
    from playwright.sync_api import expect, sync_playwright

    written: list[Path] = []
    portrait = astronaut_bgr()
    frame = camera_frame(portrait, face_box_of(portrait))
    with (
        tempfile.TemporaryDirectory(prefix="wajah-screens-") as scratch,
        live_service(Path(scratch) / "data") as service,
        sync_playwright() as runtime,
    ):
        video = write_y4m(frame, Path(scratch) / "astronaut.y4m")
        browser = launch(runtime, video)
        try:
            page = browser.new_context(viewport=DESKTOP, locale="id-ID").new_page()
            page.goto(service.console_url)
            written.append(screenshot(page, "signin", out_dir))

            sign_in(page, service, "clerk")
            page.locator("#subject-id").fill("PMH-2026-000123")
            page.locator("#full-name").fill("Eileen Collins")
            page.locator("#date-of-birth").fill("1956-11-19")
            page.locator("#nationality").fill("USA")
            page.locator("#document-number").fill("C01234567")
            page.locator("#applicant-submit").click()
            expect(page.locator("#enroll-capture-button")).to_be_enabled(timeout=TIMEOUT_MS)
            written.append(screenshot(page, "enroll", out_dir))
            page.locator("#enroll-capture-button").click()
            expect(page.locator("#enroll-result .outcome")).to_be_visible(timeout=TIMEOUT_MS)
            page.locator("#enroll-result").scroll_into_view_if_needed()
            written.append(screenshot(page, "enroll-accepted", out_dir))

            english = browser.new_context(viewport=DESKTOP, locale="en-GB").new_page()
            english.goto(service.console_url)
            english.locator("#language").select_option("en")
            sign_in(english, service, "clerk")
            expect(english.locator("#enroll-capture-button")).to_be_visible()
            expect(english.locator("#quality-summary")).to_have_class(
                "quality-summary is-ready", timeout=TIMEOUT_MS
            )
            written.append(screenshot(english, "enroll-english", out_dir))

            officer = browser.new_context(viewport=DESKTOP, locale="id-ID").new_page()
            sign_in(officer, service, "officer")
            officer.locator("#verify-subject-id").fill("PMH-2026-000123")
            expect(officer.locator("#verify-capture-button")).to_be_enabled(timeout=TIMEOUT_MS)
            officer.locator("#verify-capture-button").click()
            expect(officer.locator("#verify-result .decision")).to_be_visible(timeout=TIMEOUT_MS)
            _images_loaded(officer, "#verify-result")
            written.append(screenshot(officer, "verify", out_dir))
            officer.locator('input[name="verify-mode"][value="identify"]').check()
            officer.locator("#verify-capture-button").click()
            expect(officer.locator("#verify-result li.candidate")).not_to_have_count(
                0, timeout=TIMEOUT_MS
            )
            _images_loaded(officer, "#verify-result")
            written.append(screenshot(officer, "search", out_dir))

            # The same face under a second application: a case for the supervisor.
            mirrored = cv2.flip(frame, 1)
            ok, jpeg = cv2.imencode(".jpg", mirrored, [cv2.IMWRITE_JPEG_QUALITY, 92])
            assert ok
            enroll_jpeg(service, "PMH-2026-000456", "E. M. Collins", jpeg.tobytes())
            supervisor = browser.new_context(viewport=DESKTOP, locale="id-ID").new_page()
            sign_in(supervisor, service, "supervisor")
            expect(supervisor.locator("section.case")).to_have_count(1, timeout=TIMEOUT_MS)
            _images_loaded(supervisor, "section.case")
            written.append(screenshot(supervisor, "review", out_dir))

            ops = browser.new_context(viewport=DESKTOP, locale="id-ID").new_page()
            sign_in(ops, service, "ops")
            expect(ops.locator('.tile[data-figure="gallery_size"]')).to_be_visible(
                timeout=TIMEOUT_MS
            )
            written.append(screenshot(ops, "ops", out_dir))
        finally:
            browser.close()
    return written


PHONE = {"width": 390, "height": 844}
APPLICANT_BIRTH = "1953-05-06"


def make_applications(out_dir: Path, faces_dir: Path) -> list[Path]:
    """A day at the counter through the API (an application, a quality refusal, a photo
    with no face, an enrollment, a counter match, a look-alike held for review, a decision),
    then the ops report plots and the applicant's status page on a phone, in both languages."""
    from playwright.sync_api import expect, sync_playwright

    def lfw(number: int) -> bytes:
        return (
            faces_dir / "lfw_deepfunneled" / "Tony_Blair" / f"Tony_Blair_{number:04d}.jpg"
        ).read_bytes()

    def image(data: bytes) -> dict[str, tuple[str, bytes, str]]:
        return {"image": ("photo.jpg", data, "image/jpeg")}

    written: list[Path] = []
    ok, blank = cv2.imencode(".jpg", np.full((500, 400, 3), 200, np.uint8))
    assert ok
    with (
        tempfile.TemporaryDirectory(prefix="wajah-screens-") as scratch,
        live_service(Path(scratch) / "data") as service,
        sync_playwright() as runtime,
    ):
        with service.client("clerk") as clerk, service.client("officer") as officer:
            for ref, birth in (
                ("PMH-2026-000123", APPLICANT_BIRTH),
                ("PMH-2026-000456", "1960-01-01"),
            ):
                created = clerk.post(
                    "/v1/subjects",
                    json={"subject_id": ref, "full_name": "A", "date_of_birth": birth},
                )
                assert created.status_code == 201, created.text
            opened = clerk.post(
                "/v1/applications",
                json={"subject_id": "PMH-2026-000123", "application_type": "passport_new"},
            )
            assert opened.status_code == 201, opened.text
            number = opened.json()["number"]
            faces = "/v1/subjects/PMH-2026-000123/faces"
            assert clerk.post(faces, files=image(lfw(1))).status_code == 422  # camera profile
            assert clerk.post(faces, files=image(blank.tobytes())).status_code == 422
            enrolled = clerk.post(faces, files=image(lfw(1)), data={"source": "scan"})
            assert enrolled.status_code == 201, enrolled.text
            verified = officer.post(
                "/v1/verify", files=image(lfw(2)), data={"subject_id": "PMH-2026-000123"}
            )
            assert verified.json()["decision"] == "match", verified.text
            decided = officer.post(
                f"/v1/applications/{number}/decision",
                json={"decision": "approved", "reason": "documents in order"},
            )
            assert decided.status_code == 200, decided.text
            assert (
                clerk.post(
                    "/v1/applications",
                    json={"subject_id": "PMH-2026-000456", "application_type": "visa"},
                ).status_code
                == 201
            )
            held = clerk.post(
                "/v1/subjects/PMH-2026-000456/faces", files=image(lfw(3)), data={"source": "scan"}
            )
            assert held.json()["status"] == "pending_review", held.text
        browser = launch(runtime)
        try:
            ops = browser.new_context(
                viewport={"width": 1366, "height": 1400}, locale="id-ID"
            ).new_page()
            sign_in(ops, service, "ops")
            expect(ops.locator("#ops-report figure.plot svg rect")).not_to_have_count(
                0, timeout=TIMEOUT_MS
            )
            ops.evaluate("document.getElementById('ops-report').scrollIntoView()")
            written.append(screenshot(ops, "ops-report", out_dir))

            phone = browser.new_context(viewport=PHONE, is_mobile=True, locale="id-ID").new_page()
            phone.goto(f"{service.base_url}/status")
            phone.locator("#status-number").fill(number)
            phone.locator("#status-birth").fill(APPLICANT_BIRTH)
            phone.locator("#status-submit").click()
            expect(phone.locator("#status-result .timeline li")).to_have_count(4)
            written.append(screenshot(phone, "status", out_dir))
            phone.locator("#language").select_option("en")
            expect(phone.locator("#status-title")).to_have_text("Check an application's status")
            written.append(screenshot(phone, "status-english", out_dir))
        finally:
            browser.close()
    return written


def _images_loaded(page: Any, scope: str) -> None:
    page.wait_for_function(
        f"() => [...document.querySelectorAll('{scope} img')].length > 0 && "
        f"[...document.querySelectorAll('{scope} img')]"
        ".every(img => img.complete && img.naturalWidth > 0)",
        timeout=TIMEOUT_MS,
    )


def main() -> None:
    reason = browser_missing()
    if reason is not None:
        sys.exit(f"make_screenshots: {reason}")
    arguments = sys.argv[1:]
    only_applications = "--applications" in arguments
    arguments = [a for a in arguments if a != "--applications"]
    out_dir = Path(arguments[0]) if arguments else PROJECT_ROOT / "docs" / "screenshots"
    if only_applications:
        faces = Path(os.environ.get("WAJAH_FACES_DIR") or PROJECT_ROOT.parent / "shared" / "faces")
        paths = make_applications(out_dir, faces)
    else:
        paths = make(out_dir)
    for path in paths:
        print(path.relative_to(PROJECT_ROOT) if path.is_relative_to(PROJECT_ROOT) else path)


if __name__ == "__main__":
    main()
