"""A new patient requests a consult on the clinic's public page from a phone; the front desk
registers them and books the requested consult (the confirmation e-mail with its calendar file
reaches a local SMTP server); the nurse checks the visit in from the day calendar."""

from __future__ import annotations

import re
from datetime import time
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from django.conf import settings
from django_scopes import scope, scopes_disabled
from playwright.sync_api import expect

from conftest import actor_for, make_member, staff_client
from ketaclinic.accounts.services import organization_create
from ketaclinic.messaging import services as messaging
from ketaclinic.messaging.tests.servers import smtp_inbox  # noqa: F401 (fixture)
from ketaclinic.scheduling.models import Appointment
from ketaclinic.scheduling.tests.helpers import clinic_of, open_every_day, types

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

PHONE = {"width": 390, "height": 844}


@pytest.fixture
def clinic(transactional_db: Any) -> dict[str, Any]:
    organization = organization_create(
        name="Door Clinic", clinic_name="Main", time_zone="America/Chicago", chairs=2
    )
    members = {
        role: make_member(organization, role, username=f"door-{role}")
        for role in ("prescriber", "nurse", "front_desk", "clinic_admin")
    }
    admin = actor_for(members["clinic_admin"])
    with scope(organization=organization):
        open_every_day(
            admin, members["prescriber"], members["nurse"], start=time(0), end=time(23, 59)
        )
        types(organization)
        messaging.contact_policy_set(
            actor=admin, email_allowed_by_default=True, sms_allowed_by_default=False
        )
        public_id = clinic_of(organization).public_id
    return {"organization": organization, "members": members, "clinic_id": public_id}


def _staff_page(page: Any, live_server: Any, membership: Any) -> Any:
    client = staff_client(membership)
    context = page.context.browser.new_context(viewport={"width": 1280, "height": 900})
    context.add_cookies(
        [
            {
                "name": settings.SESSION_COOKIE_NAME,
                "value": client.cookies[settings.SESSION_COOKIE_NAME].value,
                "url": live_server.url,
            }
        ]
    )
    return context.new_page()


def test_public_request_to_booked_consult_to_check_in(
    page: Any,
    live_server: Any,
    clinic: dict[str, Any],
    smtp_inbox: Any,  # noqa: F811
) -> None:
    page.set_viewport_size(PHONE)
    page.goto(f"{live_server.url}/c/{clinic['clinic_id']}/")
    expect(page.get_by_role("heading", level=1)).to_have_text("Main")
    # Submitting empty shows the errors beside the fields and keeps nothing.
    page.get_by_role("button", name="Send the request").click()
    expect(page.locator("#form-error")).to_be_visible()
    expect(page.get_by_text("Enter your first name.")).to_be_visible()
    page.get_by_label("First name").fill("Rosa")
    page.get_by_label("Last name").fill("Parks")
    page.get_by_label("Date of birth").fill("1980-02-04")
    page.get_by_label("Sex assigned at birth").select_option("female")
    page.get_by_label("E-mail").fill("rosa@example.org")
    page.get_by_label("What would you like help with?").fill("Depression that has not lifted")
    page.locator('input[name="slot"]').first.check()
    assert page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]
    page.get_by_role("button", name="Send the request").click()
    expect(page.locator("#next-step")).to_contain_text("We will confirm your consultation")

    desk = _staff_page(page, live_server, clinic["members"]["front_desk"])
    desk.goto(f"{live_server.url}/calendar/leads/")
    expect(desk.locator("#lead-list")).to_contain_text("Rosa Parks")
    desk.get_by_role("button", name="Register and book").click()
    expect(desk.get_by_role("heading", level=1)).to_contain_text("Rosa Parks")

    with scopes_disabled():
        visit = Appointment.objects.get(patient__given_name="Rosa")
    assert (visit.status, visit.source) == ("booked", "front_door")
    [mail] = smtp_inbox.to("rosa@example.org")
    assert mail["Subject"].startswith("Appointment confirmed")
    assert any(p.get_content_type() == "text/calendar" for p in mail.iter_attachments())

    nurse = _staff_page(page, live_server, clinic["members"]["nurse"])
    local_day = visit.starts_at.astimezone(ZoneInfo("America/Chicago"))
    nurse.goto(f"{live_server.url}/calendar/?date={local_day.date().isoformat()}")
    card = nurse.locator(f"#appt-{visit.public_id}")
    expect(card).to_contain_text("Rosa Parks")
    card.get_by_role("button", name="Check in").click()
    expect(nurse.locator("#appointment-status")).to_contain_text("Checked in")


def test_the_patient_moves_a_visit_in_the_portal_and_the_nurse_checks_in_an_infusion(
    page: Any,
    live_server: Any,
    clinic: dict[str, Any],
    smtp_inbox: Any,  # noqa: F811
) -> None:
    from datetime import timedelta

    from conftest import PASSWORD, make_patient
    from ketaclinic.consent import services as consent
    from ketaclinic.core import clock
    from ketaclinic.scheduling import services
    from ketaclinic.sessions.tests.builders import make_plan, make_treatable, weigh

    members = clinic["members"]
    prescriber = actor_for(members["prescriber"])
    organization = clinic["organization"]
    with scope(organization=organization):
        patient = make_patient(prescriber, given_name="Ada", email="ada@example.org")
        make_treatable(prescriber, patient, "iv-ketamine-induction")
        weigh(prescriber, patient)
        plan = make_plan(prescriber, patient)
        kinds = types(organization)
        now = clock.now()
        later = services.appointment_book(
            actor=prescriber, patient=patient, appointment_type=kinds["iv_infusion"],
            starts_at=(now + timedelta(days=5)).replace(minute=0, second=0, microsecond=0),
        )  # fmt: skip
        today = services.appointment_book(
            actor=prescriber, patient=patient, appointment_type=kinds["iv_infusion"],
            starts_at=now, plan=plan,
        )  # fmt: skip
        account, token = consent.portal_invite(actor=prescriber, patient=patient)
    consent.portal_activate(token=token, password=PASSWORD)

    page.set_viewport_size(PHONE)
    page.goto(f"{live_server.url}/portal/login/")
    page.get_by_label("Username").fill(account.user.username)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()
    page.get_by_role("link", name="Your appointments").click()
    page.locator(f"#appt-{later.public_id}").get_by_role("link", name="Change the time").click()
    page.get_by_role("button", name="Move my visit").click()
    expect(page.get_by_text("Your visit is moved")).to_be_visible()
    with scopes_disabled():
        later.refresh_from_db()
        assert later.status == "rescheduled"
        assert Appointment.objects.filter(rescheduled_from=later, status="booked").exists()

    nurse = _staff_page(page, live_server, members["nurse"])
    local = today.starts_at.astimezone(ZoneInfo("America/Chicago"))
    nurse.goto(f"{live_server.url}/calendar/?date={local.date().isoformat()}")
    nurse.locator(f"#appt-{today.public_id}").get_by_role("button", name="Check in").click()
    expect(nurse).to_have_url(re.compile(r"/sessions/[0-9a-f-]+/$"))
    with scopes_disabled():
        today.refresh_from_db()
    assert today.status == "checked_in"
    assert today.session_public_id is not None
