"""Acceptance: sign in, open a patient, see the BP chart and the AGP drawn from seeded simulated
data, change the range; in real headless Chromium. Screenshots go to test-artifacts/browser/."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.integration.views.conftest import DOCTOR, PATIENT

pytestmark = pytest.mark.browser


def _page(browser: Any) -> tuple[Any, list[str]]:
    page = browser.new_page(viewport={"width": 1360, "height": 900})
    problems: list[str] = []
    page.on("pageerror", lambda e: problems.append(f"page error: {e}"))
    page.on(
        "console",
        lambda m: problems.append(f"console {m.type}: {m.text}") if m.type == "error" else None,
    )
    page.on(
        "request",
        lambda r: (
            problems.append(f"external request {r.url}")
            if not r.url.startswith("http://127.0.0.1") and not r.url.startswith("data:")
            else None
        ),
    )
    return page, problems


def _sign_in(page: Any, url: str, user: tuple[str, str]) -> None:
    page.goto(url + "/")
    page.fill("#username", user[0])
    page.fill("#password", user[1])
    page.click("button[type=submit]")


def test_doctor_flow(browser: Any, dashboard_url: str, artifacts: Path) -> None:
    page, problems = _page(browser)
    _sign_in(page, dashboard_url, DOCTOR)
    page.wait_for_selector("#patients")
    assert page.locator("#patients tbody tr").count() == 2
    page.screenshot(path=str(artifacts / "01-patient-list.png"), full_page=True)

    page.click("text=Ada Lovelace")
    page.wait_for_selector("#chart-bp[data-drawn='1']")
    page.wait_for_selector("#chart-agp[data-drawn='1']")
    # plotly drew real traces: the BP chart has its systolic/diastolic points, the AGP its bands
    bp_points = page.locator("#chart-bp .scatterlayer .trace .point").count()
    assert bp_points > 100
    assert page.locator("#chart-agp .scatterlayer .trace").count() == 5
    assert page.locator("#chart-tir .barlayer .trace").count() == 5
    assert page.locator("#patient-name").inner_text() == "Ada Lovelace"
    assert "BP crisis" in page.locator("#alerts").inner_text()
    page.screenshot(path=str(artifacts / "02-patient-14-days.png"), full_page=True)

    # change the range to the last 30 days with the date inputs
    page.fill("#from", "2026-10-22")
    page.fill("#to", "2026-11-20")
    page.click("#apply-range")
    page.wait_for_url("**from=2026-10-22**")
    page.wait_for_selector("#chart-agp[data-drawn='1']")
    assert "30 days" in page.locator(".phead").inner_text()
    assert page.locator("#chart-bp .scatterlayer .trace .point").count() > bp_points
    page.screenshot(path=str(artifacts / "03-patient-30-days.png"), full_page=True)

    # the quick link for 90 days
    page.click("a[data-days='90']")
    page.wait_for_selector("#chart-agp[data-drawn='1']")
    assert "90 days" in page.locator(".phead").inner_text()

    # acknowledge the alert
    page.click("#alerts button.ack")
    page.wait_for_selector("#alerts tr.acked")
    page.screenshot(path=str(artifacts / "04-alert-acknowledged.png"), full_page=False)
    assert problems == []
    page.close()


def test_patient_account_is_confined(browser: Any, dashboard_url: str, artifacts: Path) -> None:
    page, problems = _page(browser)
    _sign_in(page, dashboard_url, PATIENT)
    page.wait_for_selector("#chart-bp[data-drawn='1']")
    assert page.url.endswith("/patients/p-001")
    response = page.goto(dashboard_url + "/patients/p-002")
    assert response is not None and response.status == 403
    page.screenshot(path=str(artifacts / "05-patient-forbidden.png"))
    # the only console error is the 403 of that navigation
    assert [p for p in problems if "403" not in p] == []
    page.close()
