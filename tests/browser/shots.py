"""Key screens of a small demo clinic, screenshotted for review (test-results/screenshots/).

Used by the clinic walk test. The "before" shots of the issue-15 redesign were taken once with
this helper on the code before its first commit (7f139d6); they are review material, not a test.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from django.conf import settings
from django_scopes import scope, scopes_disabled
from playwright.sync_api import expect

from conftest import staff_client
from tests.browser.conftest import RESULTS_DIR

SHOTS_DIR = RESULTS_DIR / "screenshots"
PHONE = {"width": 390, "height": 844}
DESKTOP = {"width": 1366, "height": 900}


def staff_page(browser: Any, base_url: str, membership: Any, viewport: dict[str, int]) -> Any:
    """A page logged in as `membership` (password and TOTP passed), in a context of its own."""
    client = staff_client(membership)
    context = browser.new_context(viewport=viewport)
    context.set_default_timeout(15_000)
    context.add_cookies(
        [
            {
                "name": settings.SESSION_COOKIE_NAME,
                "value": client.cookies[settings.SESSION_COOKIE_NAME].value,
                "url": base_url,
            }
        ]
    )
    return context.new_page()


def shot(page: Any, folder: Path, name: str) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    return path


def demo_targets(organization: Any) -> dict[str, Any]:
    """A patient with a screening page, a session still waiting for its dose order, and the
    patient to answer a PHQ-9 on a phone."""
    from ketaclinic.patients.models import Patient
    from ketaclinic.sessions.models import TreatmentSession

    with scopes_disabled():
        waiting = (
            TreatmentSession.objects.filter(
                organization=organization,
                state__in=("scheduled", "checked_in", "prechecks_passed"),
            )
            .order_by("scheduled_at")
            .first()
        )
        patient = Patient.objects.filter(organization=organization).order_by("mrn").first()
    return {"session": waiting, "patient": patient}


def ready_for_dose_order(browser: Any, base_url: str, nurse: Any, session: Any) -> None:
    """As the nurse on the flowsheet: check the patient in and record passing pre-checks (the
    pre-dose vitals), so the prescriber's dose order form is open."""
    from tests.browser.test_session_flow import fill_prechecks

    page = staff_page(browser, base_url, nurse, DESKTOP)
    page.goto(f"{base_url}/sessions/{session.public_id}/")
    state = page.locator("#session-state")
    if page.locator("#checkin-form").count():
        page.locator("#checkin-form").get_by_role("button", name="Check in").click()
        expect(state).to_have_text("Checked in")
    if page.locator("#precheck-form").count():
        fill_prechecks(page, 122, 78)
    expect(state).to_have_text("Prechecks passed")
    page.context.close()


def dose_order_shots(
    browser: Any, base_url: str, members: dict[str, Any], session: Any, folder: Path
) -> list[Path]:
    """The prescriber's dose order form with its preview filled (what the order gives, before
    signing), at 1366 px and 390 px: the dose panel of the flowsheet."""
    ready_for_dose_order(browser, base_url, members["nurse"], session)
    page = staff_page(browser, base_url, members["prescriber"], DESKTOP)
    paths = []
    for viewport, name in ((DESKTOP, "dose-order-1366"), (PHONE, "dose-order-390")):
        page.set_viewport_size(viewport)
        page.goto(f"{base_url}/sessions/{session.public_id}/")
        expect(page.locator("#order-form")).to_be_visible()
        expect(page.locator("#dose-preview-facts")).to_be_visible()
        panel = page.locator("#dose-panel")
        panel.scroll_into_view_if_needed()
        folder.mkdir(parents=True, exist_ok=True)
        panel.screenshot(path=str(folder / f"{name}.png"))
        paths.append(folder / f"{name}.png")
    page.context.close()
    return paths


def key_screens(browser: Any, base_url: str, members: dict[str, Any], folder: Path) -> list[Path]:
    """Floor board, screening page, dose order form with its preview (after check-in and the
    pre-dose vitals; desktop and phone) and PHQ-9 on a phone."""
    from ketaclinic.measures import services as measures

    organization = members["prescriber"].organization
    targets = demo_targets(organization)
    paths = []
    page = staff_page(browser, base_url, members["nurse"], DESKTOP)
    page.goto(f"{base_url}/floor/")
    paths.append(shot(page, folder, "floor-board-1366"))
    page.set_viewport_size(PHONE)
    page.goto(f"{base_url}/floor/")
    paths.append(shot(page, folder, "floor-board-390"))
    page.context.close()

    page = staff_page(browser, base_url, members["prescriber"], DESKTOP)
    page.goto(f"{base_url}/screening/patients/{targets['patient'].public_id}/")
    paths.append(shot(page, folder, "screening-1366"))
    page.context.close()
    if targets["session"] is not None:
        paths += dose_order_shots(browser, base_url, members, targets["session"], folder)

    from conftest import actor_for

    with scope(organization=organization):
        issued = measures.measure_link_create(
            actor=actor_for(members["prescriber"]),
            patient=targets["patient"],
            instrument_id="phq9",
        )
    context = browser.new_context(viewport=PHONE, is_mobile=True, has_touch=True)
    phone = context.new_page()
    phone.goto(f"{base_url}/portal/m/{issued.token}/")
    paths.append(shot(phone, folder, "phq9-phone-390"))
    context.close()
    return paths
