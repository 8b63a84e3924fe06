"""The applicants' public status page in a real browser, on a phone-sized screen, in Bahasa
Indonesia (the default) and English: no key, the status and its steps, nothing private, and
the same message for a wrong date of birth as for an unknown number."""

from __future__ import annotations

from typing import Any

import pytest

from tests.console.support import LiveService, launch, screenshot

pytestmark = pytest.mark.browser

PHONE = {"width": 390, "height": 844}
BIRTH = "1984-07-21"


def expect(target: Any) -> Any:
    from playwright.sync_api import expect as playwright_expect

    return playwright_expect(target)


def test_the_status_page_in_both_languages(playwright_runtime: Any, service: LiveService) -> None:
    with service.client("clerk") as clerk:
        created = clerk.post(
            "/v1/subjects",
            json={"subject_id": "STATUS-1", "full_name": "Rina Wulandari", "date_of_birth": BIRTH},
        )
        assert created.status_code == 201, created.text
        opened = clerk.post(
            "/v1/applications", json={"subject_id": "STATUS-1", "application_type": "visa"}
        )
        assert opened.status_code == 201, opened.text
        number = opened.json()["number"]
    browser = launch(playwright_runtime)
    try:
        page = browser.new_context(viewport=PHONE, is_mobile=True).new_page()
        page.goto(f"{service.base_url}/status")
        expect(page.locator("#status-title")).to_have_text("Cek status permohonan")
        page.locator("#status-number").fill(number)
        page.locator("#status-birth").fill("1984-07-22")
        page.locator("#status-submit").click()
        refused = page.locator("#status-message")
        expect(refused).to_contain_text("Tidak ada permohonan dengan nomor dan tanggal lahir ini")
        wrong_birth_message = refused.inner_text()
        page.locator("#status-number").fill("KANIM-2026-999999")
        page.locator("#status-birth").fill(BIRTH)
        page.locator("#status-submit").click()
        expect(refused).to_have_text(wrong_birth_message)

        page.locator("#status-number").fill(number)
        page.locator("#status-submit").click()
        card = page.locator("#status-result .status-card")
        expect(card.locator(".status-badge")).to_have_text("Permohonan diterima")
        expect(card.locator(".timeline li")).to_have_count(1)
        expect(refused).to_be_hidden()
        text = card.inner_text()
        assert "Rina" not in text and "STATUS-1" not in text and "test-clerk" not in text
        assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")
        screenshot(page, "status-id")

        page.locator("#language").select_option("en")
        expect(page.locator("#status-title")).to_have_text("Check an application's status")
        expect(card.locator(".status-badge")).to_have_text("Application received")
        expect(page.locator("#status-result .status-type")).to_have_text("Visa")
        screenshot(page, "status-en")
    finally:
        browser.close()
