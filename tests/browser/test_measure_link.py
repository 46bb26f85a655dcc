"""A patient completes a PHQ-9 on a phone through a one-time link, only by tapping answer labels,
reviews the answers (item 9 highlighted) before sending; item 9 answered 1 shows the crisis
numbers to the patient, and the safety alert appears on the clinician's dashboard and is
acknowledged there (htmx), the open count following (issue 15)."""

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
    phone_context = page.context.browser.new_context(
        viewport=PHONE, is_mobile=True, has_touch=True, device_scale_factor=2
    )
    phone = phone_context.new_page()
    phone.goto(f"{live_server.url}/portal/m/{clinic['token']}/")
    expect(phone.get_by_role("heading", level=1)).to_have_text("PHQ-9")
    # Spanish is offered; answer in Spanish to exercise the translation.
    phone.get_by_role("link", name="Español").tap()
    expect(phone.locator("html")).to_have_attribute("lang", "es")
    # Every answer is a full-width target at least 44 px tall, in the same order everywhere.
    for number in range(1, 10):
        options = phone.locator(f"#q-{number} label.option")
        assert options.all_inner_texts() == [
            "Ningún día",
            "Varios días",
            "Más de la mitad de los días",
            "Casi todos los días",
        ]
        box = options.nth(1).bounding_box()
        assert box["height"] >= 44
        assert box["width"] >= PHONE["width"] - 80
        # A tap on the words of the answer (not the radio) chooses it: item 9 answered 1.
        options.nth(1).locator("span").tap()
    phone.locator("#q-10 label.option").first.tap()
    expect(phone.locator("#progress-text")).to_have_text("10 of 10 answered")
    assert phone.locator("#q-9 input:checked").count() == 1
    # Nothing overflows sideways on a phone.
    assert phone.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]
    phone.get_by_role("button", name="Revisar mis respuestas").tap()
    # Review before sending: item 9 highlighted, the crisis numbers already shown.
    item9 = phone.locator("#review-9")
    expect(item9).to_have_class("safety-item")
    expect(item9).to_contain_text("Varios días")
    expect(phone.locator("#crisis")).to_contain_text("988")
    with scope(organization=clinic["organization"]):
        assert not SafetyAlert.objects.exists()  # nothing sent before the patient confirms
    phone.get_by_role("button", name="Enviar mis respuestas").tap()
    expect(phone.locator("#portal-thanks")).to_be_visible()
    expect(phone.locator("#crisis")).to_contain_text("988")
    phone_context.close()

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
    expect(panel.locator("#alerts-count")).to_have_text("0 open")  # no reload needed
    with scope(organization=clinic["organization"]):
        alert = SafetyAlert.objects.get()
    assert alert.action_note == "Called Rosa; safety plan reviewed"
    staff.close()
