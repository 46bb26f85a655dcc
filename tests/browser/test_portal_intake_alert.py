"""A patient answers the portal intake with active suicidal ideation and a plan; they are shown
the crisis line, and the alert reaches the prescriber's dashboard, acknowledged there (htmx)."""

from __future__ import annotations

from typing import Any

import pytest
from django.conf import settings
from django_scopes import scope
from playwright.sync_api import expect

from conftest import actor_for, make_member, make_patient, staff_client
from ketaclinic.accounts.services import organization_create
from ketaclinic.consent import services as consent
from ketaclinic.measures.models import SafetyAlert
from ketaclinic.portal.forms import QUESTION_FIELDS

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

PASSWORD = "plum-Harbor-7-quiet"
WITH_PLAN = "I have thought about killing myself and have a plan or intend to act"


@pytest.fixture
def clinic(transactional_db: Any) -> dict[str, Any]:
    organization = organization_create(
        name="Intake Clinic", clinic_name="Main", time_zone="America/Chicago"
    )
    membership = make_member(organization, "prescriber", username="intake-prescriber")
    actor = actor_for(membership)
    patient = make_patient(actor, given_name="Iris", family_name="Murdoch")
    with scope(organization=organization):
        account, token = consent.portal_invite(actor=actor, patient=patient)
    consent.portal_activate(token=token, password=PASSWORD)
    return {
        "membership": membership,
        "organization": organization,
        "username": account.user.username,
    }


def test_portal_intake_with_a_plan_alerts_the_dashboard_and_is_acknowledged(
    page: Any, live_server: Any, clinic: dict[str, Any]
) -> None:
    page.goto(f"{live_server.url}/portal/login/")
    page.get_by_label("Username").fill(clinic["username"])
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Log in", exact=True).click()
    page.goto(f"{live_server.url}/portal/intake/")
    for name in QUESTION_FIELDS:
        page.locator(f"#q-{name}").get_by_label("No", exact=True).check()
    page.locator("#q-suicidal_ideation").get_by_label(WITH_PLAN).check()
    page.get_by_role("button", name="Send my answers").click()
    messages = page.locator(".messages")
    expect(messages).to_contain_text("Your care team has been alerted")
    expect(messages).to_contain_text("988")

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
    expect(panel).to_contain_text("Iris Murdoch")
    expect(panel).to_contain_text("active suicidal ideation with intent or a plan")
    panel.get_by_label("Action taken").fill("Called Iris; same-day safety assessment")
    panel.get_by_role("button", name="Acknowledge").click()
    expect(panel).to_contain_text("Acknowledged by")
    with scope(organization=clinic["organization"]):
        alert = SafetyAlert.objects.get()
    assert (alert.source_kind, alert.action_note) == (
        "intake",
        "Called Iris; same-day safety assessment",
    )
    staff.close()
