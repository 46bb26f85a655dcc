"""Issue 11's flow end to end, in one browser test: a new patient requests a consult on the
clinic's public page from a phone; the front desk registers them, then proposes the IV series from
the treatment plan and books it; the confirmation e-mail with its calendar file reaches a local
SMTP server; the patient moves one visit in the portal on the phone; the nurse checks the first
infusion in from the day calendar, which opens the monitored session.

What is not the point of the test (screening, consent, weight, the plan, the portal password) is
set up through the services, as staff would have recorded it."""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import UTC, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
import time_machine
from django.conf import settings
from django_scopes import scope, scopes_disabled
from playwright.sync_api import expect

from conftest import PASSWORD, actor_for, make_member, staff_client
from ketaclinic.accounts.services import organization_create
from ketaclinic.consent import services as consent
from ketaclinic.messaging import services as messaging
from ketaclinic.messaging.tests.servers import smtp_inbox  # noqa: F401 (fixture)
from ketaclinic.patients.models import Patient
from ketaclinic.scheduling.models import Appointment
from ketaclinic.scheduling.tests.helpers import clinic_of, open_every_day, types
from ketaclinic.sessions.tests.builders import make_plan, make_treatable, weigh

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

PHONE = {"width": 390, "height": 844}
ZONE = ZoneInfo("America/Chicago")


@pytest.fixture
def monday_morning() -> Iterator[datetime]:
    """The clinic's next Monday at 09:00, clock ticking: the first infusion is that morning (and
    in the future of the real clock, so the browser keeps the cookies the server sets)."""
    today = datetime.now(UTC).astimezone(ZONE).date()
    monday = today + timedelta(days=7 - today.weekday())
    start = datetime.combine(monday, time(9), ZONE)
    with time_machine.travel(start, tick=True):
        yield start


@pytest.fixture
def clinic(transactional_db: Any, monday_morning: datetime) -> dict[str, Any]:
    organization = organization_create(
        name="Door Clinic", clinic_name="Main", time_zone="America/Chicago", chairs=2
    )
    members = {
        role: make_member(organization, role, username=f"door-{role}")
        for role in ("prescriber", "nurse", "front_desk", "clinic_admin")
    }
    admin = actor_for(members["clinic_admin"])
    with scope(organization=organization):
        open_every_day(admin, members["prescriber"], members["nurse"], start=time(7), end=time(20))
        types(organization)
        messaging.contact_policy_set(
            actor=admin, email_allowed_by_default=True, sms_allowed_by_default=False
        )
        public_id = clinic_of(organization).public_id
    return {"organization": organization, "members": members, "clinic_id": public_id}


def _staff_page(page: Any, live_server: Any, membership: Any) -> Any:
    client = staff_client(membership)
    context = page.context.browser.new_context(viewport={"width": 1280, "height": 900})
    context.set_default_timeout(15_000)
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


def _calendar_uids(mail: Any) -> list[str]:
    return [
        line.split(":", 1)[1].split("@", 1)[0]
        for part in mail.iter_attachments()
        if part.get_content_type() == "text/calendar"
        for line in part.get_content().splitlines()
        if line.startswith("UID:")
    ]


def test_public_request_to_iv_series_to_portal_move_to_check_in(
    page: Any,
    live_server: Any,
    clinic: dict[str, Any],
    monday_morning: datetime,
    smtp_inbox: Any,  # noqa: F811
) -> None:
    members = clinic["members"]
    # 1. A new patient asks for a consultation on the public page, on a phone.
    page.set_viewport_size(PHONE)
    page.goto(f"{live_server.url}/c/{clinic['clinic_id']}/")
    expect(page.get_by_role("heading", level=1)).to_have_text("Main")
    page.get_by_role("button", name="Send the request").click()  # empty: errors, nothing kept
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

    # 2. The front desk registers the request as a patient (the requested consult is booked).
    desk = _staff_page(page, live_server, members["front_desk"])
    desk.goto(f"{live_server.url}/calendar/leads/")
    expect(desk.locator("#lead-list")).to_contain_text("Rosa Parks")
    desk.get_by_role("button", name="Register and book").click()
    expect(desk.get_by_role("heading", level=1)).to_contain_text("Rosa Parks")

    # Not the point here: the consultation's outcome (eligible, consented, weighed, a plan) and
    # the portal password, recorded through the services.
    prescriber = actor_for(members["prescriber"])
    with scope(organization=clinic["organization"]):
        patient = Patient.objects.get(given_name="Rosa")
        make_treatable(prescriber, patient, "iv-ketamine-induction")
        weigh(prescriber, patient)
        make_plan(prescriber, patient)
        account, token = consent.portal_invite(actor=prescriber, patient=patient)
    consent.portal_activate(token=token, password=PASSWORD)

    # 3. The desk proposes the IV series from the plan and books it.
    desk.reload()
    desk.get_by_role("link", name="Plan", exact=True).click()
    desk.get_by_role("link", name="Propose the series in the calendar").click()
    desk.get_by_label("Visit *", exact=True).select_option("iv_infusion")
    desk.get_by_label("First visit *", exact=True).fill(monday_morning.date().isoformat())
    desk.get_by_label("Time *", exact=True).fill("09:30")
    desk.get_by_role("button", name="Propose").click()
    # Induction (six infusions, three a week), then the first maintenance visits, all proposed.
    expect(desk.locator("tbody tr")).to_have_count(10)
    desk.get_by_role("button", name="Confirm the proposed visits").click()
    expect(desk.get_by_text("10 visit(s) booked.")).to_be_visible()
    with scopes_disabled():
        series = list(
            Appointment.objects.filter(patient=patient, appointment_type__kind="iv_infusion")
            .select_related("chair")
            .order_by("starts_at")
        )
    assert [a.status for a in series] == ["booked"] * 10
    local_days = [a.starts_at.astimezone(ZONE).date() for a in series]
    assert local_days[0] == monday_morning.date()
    assert [(d - local_days[0]).days for d in local_days[:6]] == [0, 2, 4, 7, 9, 11]

    # 4. The confirmation e-mail, with the calendar file of the first infusion, has arrived.
    confirmations = [
        m for m in smtp_inbox.to("rosa@example.org") if m["Subject"].startswith("Appointment")
    ]
    assert any(str(series[0].public_id) in _calendar_uids(m) for m in confirmations)

    # 5. On the phone, the patient moves Wednesday's infusion in the portal.
    wednesday = series[1]
    page.goto(f"{live_server.url}/portal/login/")
    page.get_by_label("Username").fill(account.user.username)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Log in", exact=True).click()
    page.get_by_role("link", name="Your appointments").click()
    expect(page.locator("#portal-rules")).to_contain_text("up to 24 hours before")
    visit = page.locator(f"#appt-{wednesday.public_id}")
    visit.get_by_role("link", name="Change the time").click()
    page.get_by_role("button", name="Move my visit").click()
    expect(page.get_by_text("Your visit is moved")).to_be_visible()
    assert page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]
    with scopes_disabled():
        wednesday.refresh_from_db()
        moved = Appointment.objects.get(rescheduled_from=wednesday)
    assert (wednesday.status, moved.status, moved.series_id) == (
        "rescheduled",
        "booked",
        wednesday.series_id,
    )

    # 6. The nurse checks the first infusion in from the day calendar: its session opens.
    nurse = _staff_page(page, live_server, members["nurse"])
    nurse.goto(f"{live_server.url}/calendar/?date={monday_morning.date().isoformat()}")
    card = nurse.locator(f"#appt-{series[0].public_id}")
    expect(card).to_contain_text("Rosa Parks")
    card.get_by_role("button", name="Check in").click()
    expect(nurse).to_have_url(re.compile(r"/sessions/[0-9a-f-]+/$"))
    with scopes_disabled():
        series[0].refresh_from_db()
    assert series[0].status == "checked_in"
    assert series[0].session_public_id is not None
