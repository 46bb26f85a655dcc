"""A patient completes a PHQ-9 on a phone through a one-time link, item 9 positive; the safety
alert then appears on the clinician's dashboard and is acknowledged there (htmx)."""

from __future__ import annotations

from typing import Any

import pytest
from django.conf import settings
from django_scopes import scope
from playwright.sync_api import expect

from conftest import actor_for, make_member, make_patient, staff_client
from ketaclinic.accounts.services import organization_create
from ketaclinic.measures import services
from ketaclinic.measures.models import SafetyAlert

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

PHONE = {"width": 390, "height": 844}


@pytest.fixture
def clinic(transactional_db: Any) -> dict[str, Any]:
    organization = organization_create(
        name="Link Clinic", clinic_name="Main", time_zone="America/Chicago"
    )
    membership = make_member(organization, "prescriber", username="link-prescriber")
    actor = actor_for(membership)
    patient = make_patient(actor, given_name="Rosa", family_name="Parks")
    with scope(organization=organization):
        issued = services.measure_link_create(
            actor=actor, patient=patient, instrument_id="phq9", language="en"
        )
    return {"membership": membership, "organization": organization, "token": issued.token}


def test_patient_answers_phq9_by_link_on_a_phone_and_the_alert_reaches_the_dashboard(
    page: Any, live_server: Any, clinic: dict[str, Any]
) -> None:
    page.set_viewport_size(PHONE)
    page.goto(f"{live_server.url}/portal/m/{clinic['token']}/")
    expect(page.get_by_role("heading", level=1)).to_have_text("PHQ-9")
    # Spanish is offered; answer in Spanish to exercise the translation.
    page.get_by_role("link", name="Español").click()
    expect(page.locator("html")).to_have_attribute("lang", "es")
    for number in range(1, 9):
        page.locator(f"#q-{number}").get_by_label("Varios días").check()
    page.locator("#q-9").get_by_label("Más de la mitad de los días").check()
    page.locator("#q-10").get_by_role("radio").first.check()
    # Nothing overflows sideways on a phone.
    assert page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]
    page.get_by_role("button", name="Enviar mis respuestas").click()
    expect(page.locator("#portal-thanks")).to_be_visible()

    # The same link cannot be used again.
    page.goto(f"{live_server.url}/portal/m/{clinic['token']}/")
    expect(page.locator("#link-refused")).to_have_attribute("data-reason", "used")

    # The clinician's dashboard shows the alert at once and acknowledges it in place.
    client = staff_client(clinic["membership"])
    staff = page.context.browser.new_context(viewport={"width": 1280, "height": 900})
    staff.add_cookies(
        [
            {
                "name": settings.SESSION_COOKIE_NAME,
                "value": client.cookies[settings.SESSION_COOKIE_NAME].value,
                "url": live_server.url,
            }
        ]
    )
    dashboard = staff.new_page()
    dashboard.goto(f"{live_server.url}/")
    panel = dashboard.locator("#alerts-panel")
    expect(panel).to_contain_text("Rosa Parks")
    expect(panel).to_contain_text("item 9")
    panel.get_by_label("Action taken").fill("Called Rosa; safety plan reviewed")
    panel.get_by_role("button", name="Acknowledge").click()
    expect(panel).to_contain_text("Acknowledged by")
    with scope(organization=clinic["organization"]):
        alert = SafetyAlert.objects.get()
    assert alert.action_note == "Called Rosa; safety plan reviewed"
    staff.close()
