"""Key screens of a small demo clinic, screenshotted for review (test-results/screenshots/).

Used by the clinic walk test. The "before" shots of the issue-15 redesign were taken once with
this helper on the code before its first commit (7f139d6); they are review material, not a test.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from django.conf import settings
from django_scopes import scope, scopes_disabled

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


def key_screens(browser: Any, base_url: str, members: dict[str, Any], folder: Path) -> list[Path]:
    """Floor board, screening page, dose order (prescriber, desktop) and PHQ-9 on a phone."""
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
    if targets["session"] is not None:
        page.goto(f"{base_url}/sessions/{targets['session'].public_id}/")
        order = page.locator("#order-form")
        if order.count():
            order.scroll_into_view_if_needed()
        paths.append(shot(page, folder, "dose-order-1366"))
    page.context.close()

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
