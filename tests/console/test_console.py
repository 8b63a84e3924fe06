"""The console in a real browser (Debian's Chromium) against a live `wajah` service: a clerk
enrolls through the fake camera, an officer verifies (match and no match) and searches, a
duplicate goes to the supervisor's queue and is resolved, ops sees the summary, the
language switches, and a refused camera falls back to upload. Screenshots of every screen go
to test-artifacts/console/."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

from tests.console.support import (
    APPLICANT,
    APPLICANT_AGAIN,
    APPLICANT_AT_COUNTER,
    DESKTOP,
    OTHER_PERSON,
    SCAN_PERSON,
    TABLET,
    LiveService,
    enroll_via_api,
    launch,
    screenshot,
    sign_in,
)

pytestmark = pytest.mark.browser

QUALITY_TIMEOUT_MS = 45_000  # first frames wait for the face workers; then ~3 checks a second
ANSWER_TIMEOUT_MS = 30_000

REFUSE_CAMERA = """
Object.defineProperty(navigator, "mediaDevices", {
  configurable: true,
  value: { getUserMedia: () => Promise.reject(new DOMException("denied", "NotAllowedError")) },
});
"""


def expect(target: Any) -> Any:
    from playwright.sync_api import expect as playwright_expect

    return playwright_expect(target)


def chip_loaded(image: Any) -> bool:
    return bool(image.evaluate("img => img.complete && img.naturalWidth > 0"))


def test_counter_day_enroll_verify_search_review(
    playwright_runtime: Any, service: LiveService, camera_video: Any, photo: Any
) -> None:
    # -- the clerk enrolls an applicant through the camera --------------------------------
    clerk_browser = launch(playwright_runtime, camera_video(APPLICANT))
    try:
        page = clerk_browser.new_context(viewport=DESKTOP).new_page()
        sign_in(page, service, "clerk")
        expect(page.locator("#screen-enroll")).to_be_visible()
        expect(page.locator("#nav a")).to_have_count(1)
        expect(page.locator("#enroll-title")).to_have_text("Perekaman pemohon")

        # Validation happens before anything is sent.
        page.locator("#applicant-submit").click()
        expect(page.locator("#subject-id-error")).to_be_visible()
        expect(page.locator("#subject-id")).to_be_focused()
        page.locator("#subject-id").fill("APL-2026-0001")
        page.locator("#full-name").fill("Pemohon Satu")
        page.locator("#date-of-birth").fill("1985-04-12")
        page.locator("#nationality").fill("id")
        page.locator("#applicant-submit").click()
        expect(page.locator("#nationality-error")).to_be_visible()
        page.locator("#nationality").fill("idn")
        expect(page.locator("#nationality")).to_have_value("IDN")
        page.locator("#document-number").fill("X1234567")
        page.locator("#applicant-submit").click()
        expect(page.locator("#applicant-status .alert-ok")).to_contain_text("APL-2026-0001")

        # The live checks pass on the fake camera, and only then can the photo be taken.
        capture = page.locator("#enroll-capture-button")
        expect(capture).to_be_enabled(timeout=QUALITY_TIMEOUT_MS)
        checks = page.locator("#quality-checklist li")
        assert checks.count() >= 8
        assert page.locator('#quality-checklist li[data-state="fail"]').count() == 0
        expect(page.locator('#quality-checklist li[data-check="pose"]')).to_contain_text(
            "Menatap lurus ke kamera"
        )
        screenshot(page, "enroll-ready")
        capture.click()
        outcome = page.locator("#enroll-result .outcome")
        expect(outcome).to_have_attribute("data-outcome", "accepted", timeout=ANSWER_TIMEOUT_MS)
        expect(outcome).to_contain_text("Terekam")
        screenshot(page, "enroll-accepted")

        # The same screen on a tablet: one column, nothing cut off horizontally.
        tablet = clerk_browser.new_context(viewport=TABLET).new_page()
        sign_in(tablet, service, "clerk")
        expect(tablet.locator("#enroll-capture-button")).to_be_visible()
        assert tablet.evaluate("document.documentElement.scrollWidth <= window.innerWidth")
        screenshot(tablet, "enroll-tablet")
    finally:
        clerk_browser.close()

    with service.client("clerk") as clerk:
        enrolled = clerk.get("/v1/subjects/APL-2026-0001").json()
    assert enrolled["sample_count"] == 1
    assert enrolled["nationality"] == "IDN"

    # A second applicant, a different person, enrolled through the API.
    other = enroll_via_api(service, "APL-2026-0002", "Pemohon Dua", photo(OTHER_PERSON))
    assert other["status"] == "accepted"

    # -- the officer verifies at the counter ------------------------------------------------
    officer_browser = launch(playwright_runtime, camera_video(APPLICANT_AT_COUNTER))
    try:
        page = officer_browser.new_context(viewport=DESKTOP).new_page()
        sign_in(page, service, "officer")
        expect(page.locator("#screen-verify")).to_be_visible()
        button = page.locator("#verify-capture-button")
        expect(button).to_be_enabled(timeout=ANSWER_TIMEOUT_MS)

        page.locator("#verify-subject-id").fill("APL-2026-0001")
        button.click()
        decision = page.locator("#verify-result .decision")
        expect(decision).to_have_attribute("data-decision", "match", timeout=ANSWER_TIMEOUT_MS)
        expect(decision).to_contain_text("COCOK")
        expect(decision).to_have_css("background-color", "rgb(27, 110, 42)")
        enrolled_chip = page.locator("#verify-result .photos img").first
        expect(enrolled_chip).to_have_attribute("src", re.compile(r"^blob:"))
        page.wait_for_function(
            "() => [...document.querySelectorAll('#verify-result .photos img')]"
            ".every(img => img.complete && img.naturalWidth > 0)"
        )
        assert chip_loaded(enrolled_chip)
        score = float(page.locator("#verify-result dd.score").inner_text().replace(",", "."))
        threshold = float(
            page.locator("#verify-result dd.threshold").inner_text().replace(",", ".")
        )
        assert score >= threshold
        screenshot(page, "verify-match")

        page.locator("#verify-subject-id").fill("APL-2026-0002")
        button.click()
        expect(decision).to_have_attribute("data-decision", "no_match", timeout=ANSWER_TIMEOUT_MS)
        expect(decision).to_contain_text("TIDAK COCOK")
        expect(decision).to_have_css("background-color", "rgb(179, 38, 30)")
        screenshot(page, "verify-no-match")

        # An unknown id: the problem's slug is translated.
        page.locator("#verify-subject-id").fill("APL-TIDAK-ADA")
        button.click()
        problem = page.locator('#verify-result [data-problem="subject-not-found"]')
        expect(problem).to_contain_text(
            "Tidak ada pemohon dengan nomor permohonan ini", timeout=ANSWER_TIMEOUT_MS
        )

        # 1:N search finds the applicant first.
        page.locator('input[name="verify-mode"][value="identify"]').check()
        expect(page.locator("#verify-subject-field")).to_be_hidden()
        button.click()
        first = page.locator("#verify-result li.candidate").first
        expect(first).to_have_attribute("data-subject", "APL-2026-0001", timeout=ANSWER_TIMEOUT_MS)
        expect(first.locator("img")).to_have_attribute("src", re.compile(r"^blob:"))
        # Investigation mode: ranked, each candidate says whether it clears the threshold, and
        # the headline agrees with the list.
        expect(first.locator(".candidate-name")).to_contain_text("1.")
        clears = first.get_attribute("data-clears")
        assert clears in ("true", "false")
        headline = page.locator("#verify-result [data-decision]")
        expect(headline).to_have_attribute(
            "data-decision", "identified" if clears == "true" else "not_identified"
        )
        screenshot(page, "search")
    finally:
        officer_browser.close()

    # -- the same face under a new application goes to the supervisor --------------------------
    duplicate = enroll_via_api(service, "APL-2026-0003", "Pemohon Tiga", photo(APPLICANT_AGAIN))
    assert duplicate["status"] == "pending_review"
    assert "APL-2026-0001" in [c["subject_id"] for c in duplicate["candidates"]]

    supervisor_browser = launch(playwright_runtime)
    try:
        page = supervisor_browser.new_context(viewport=DESKTOP).new_page()
        sign_in(page, service, "supervisor")
        expect(page.locator("#screen-reviews")).to_be_visible()
        case = page.locator(f'section.case[data-review="{duplicate["review_id"]}"]')
        expect(case).to_be_visible(timeout=ANSWER_TIMEOUT_MS)
        expect(case.locator('.record[data-subject="APL-2026-0003"]')).to_contain_text(
            "Pemohon Tiga"
        )
        expect(case.locator('.record[data-subject="APL-2026-0001"]')).to_contain_text(
            "Pemohon Satu"
        )
        page.wait_for_function(
            "() => [...document.querySelectorAll('section.case img')].length >= 2 && "
            "[...document.querySelectorAll('section.case img')]"
            ".every(img => img.complete && img.naturalWidth > 0)"
        )
        screenshot(page, "review-queue")

        # A decision without a comment is not sent.
        case.locator('input[value="merge"]').check()
        case.locator('button[type="submit"]').click()
        expect(case.locator("textarea")).to_have_attribute("aria-invalid", "true")
        expect(case.locator("textarea")).to_be_focused()
        case.locator("textarea").fill("Orang yang sama: foto cocok dan data paspor sama.")
        case.locator('button[type="submit"]').click()
        expect(case).to_have_attribute("data-resolution", "merge", timeout=ANSWER_TIMEOUT_MS)
        screenshot(page, "review-resolved")
    finally:
        supervisor_browser.close()

    with service.client("supervisor") as supervisor:
        # A merge erases the new record, and its review case with it (the audit trail keeps
        # the decision): the case is gone from the queue and the face joined the first record.
        still_open = supervisor.get("/v1/reviews", params={"status": "open"}).json()["items"]
        assert duplicate["review_id"] not in [item["review_id"] for item in still_open]
        assert supervisor.get("/v1/subjects/APL-2026-0003").status_code == 404
        assert supervisor.get("/v1/subjects/APL-2026-0001").json()["sample_count"] == 2


def test_ops_summary_and_role_screens(playwright_runtime: Any, service: LiveService) -> None:
    browser = launch(playwright_runtime)
    try:
        page = browser.new_context(viewport=DESKTOP).new_page()
        sign_in(page, service, "ops")
        expect(page.locator("#screen-ops")).to_be_visible()
        # Screens follow the role: ops sees only operations.
        expect(page.locator("#nav a")).to_have_text(["Operasional"])
        expect(page.locator("#screen-enroll")).to_be_hidden()
        tile = page.locator('.tile[data-figure="gallery_size"] .tile-value')
        expect(tile).to_have_text(re.compile(r"^\d+$"), timeout=ANSWER_TIMEOUT_MS)
        # The report's plots (GET /v1/reports/operations) under the summary.
        expect(page.locator("#ops-report figure.plot svg")).to_have_count(3)
        first_update = page.locator("#ops-updated").inner_text()
        # It refreshes by itself every few seconds.
        expect(page.locator("#ops-updated")).not_to_have_text(first_update, timeout=12_000)
        screenshot(page, "ops")

        # Asking for another role's screen by address shows the role's own screen.
        page.goto(f"{service.console_url}#enroll")
        expect(page.locator("#screen-ops")).to_be_visible()

        page.locator("#sign-out").click()
        expect(page.locator("#screen-signin")).to_be_visible()
        assert page.evaluate("sessionStorage.getItem('wajah.apiKey')") is None

        # A wrong key is refused with a message, in the active language.
        page.locator("#api-key").fill("not-a-real-key")
        page.locator("#signin-form button[type=submit]").click()
        expect(page.locator("#api-key-error")).to_contain_text("Layanan tidak menerima kunci ini")
        screenshot(page, "signin-refused")
    finally:
        browser.close()


def test_language_switch(playwright_runtime: Any, service: LiveService) -> None:
    browser = launch(playwright_runtime)
    try:
        page = browser.new_context(viewport=DESKTOP).new_page()
        page.goto(service.console_url)
        expect(page.locator("html")).to_have_attribute("lang", "id")
        expect(page.locator("#signin-title")).to_have_text("Masuk dengan kunci stasiun")
        screenshot(page, "signin")

        page.locator("#language").select_option("en")
        expect(page.locator("html")).to_have_attribute("lang", "en")
        expect(page.locator("#signin-title")).to_have_text("Sign in with the station key")
        expect(page.locator('label[for="api-key"]')).to_have_text("API key")

        sign_in(page, service, "supervisor")
        expect(page.locator("#reviews-title")).to_have_text("Duplicate-identity review queue")
        expect(page.locator("#station .station-role")).to_have_text("supervisor")
        # The choice survives a reload; the key does too, but only in this tab's session.
        page.reload()
        expect(page.locator("#reviews-title")).to_have_text("Duplicate-identity review queue")
        expect(page.locator("#language")).to_have_value("en")
        screenshot(page, "reviews-english")

        page.locator("#language").select_option("id")
        expect(page.locator("#reviews-title")).to_have_text("Antrean pemeriksaan identitas ganda")
        fresh_tab = browser.new_context().new_page()
        fresh_tab.goto(service.console_url)
        expect(fresh_tab.locator("#screen-signin")).to_be_visible()
    finally:
        browser.close()


@pytest.mark.parametrize("how", ["refused", "absent"])
def test_camera_unavailable_falls_back_to_upload(
    playwright_runtime: Any, service: LiveService, photo: Any, how: str
) -> None:
    # "refused": getUserMedia rejects with NotAllowedError, as after the clerk clicks Block.
    # "absent": a browser with no fake devices and no permission at all.
    browser = launch(playwright_runtime)
    try:
        context = browser.new_context(viewport=DESKTOP)
        if how == "refused":
            context.add_init_script(REFUSE_CAMERA)
        page = context.new_page()
        sign_in(page, service, "clerk")
        camera = page.locator('[data-camera="enroll"]')
        expect(camera).to_have_class(re.compile(r"camera-unavailable"), timeout=ANSWER_TIMEOUT_MS)
        message = camera.locator(".camera-message")
        if how == "refused":
            expect(message).to_contain_text("Akses kamera ditolak")
        else:
            expect(message).to_contain_text(re.compile(r"Kamera|kamera"))
        expect(message).to_contain_text("unggah foto")
        expect(page.locator("#enroll-capture-button")).to_be_disabled()
        expect(page.locator("#enroll-upload")).to_have_attribute("open", "")

        subject_id = f"APL-SCAN-{how.upper()}"
        page.locator("#subject-id").fill(subject_id)
        page.locator("#full-name").fill("Pemohon Pindaian")
        page.locator("#applicant-submit").click()
        expect(page.locator("#applicant-status .alert-ok")).to_contain_text(subject_id)
        scan: Path = photo(SCAN_PERSON)
        page.locator("#enroll-file").set_input_files(str(scan))
        page.locator("#enroll-upload-button").click()
        outcome = page.locator("#enroll-result .outcome")
        expect(outcome).to_have_attribute(
            "data-outcome", re.compile(r"^(accepted|pending_review)$"), timeout=ANSWER_TIMEOUT_MS
        )
        screenshot(page, f"enroll-camera-{how}")
    finally:
        browser.close()

    with service.client("clerk") as clerk:
        faces = clerk.get(f"/v1/subjects/{subject_id}/faces").json()["items"]
    assert [face["capture_source"] for face in faces] == ["scan"]
