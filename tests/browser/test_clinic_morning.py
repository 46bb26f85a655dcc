"""A clinic morning in Chromium, three patients and two nurses (issue 10's acceptance).

Dana had her IV infusion and is monitored in chair 1; she is also booked for esketamine later
today. Cleo is checked in for esketamine in chair 2 but her REMS enrollment was never recorded.
Eli is booked for an IV infusion later in chair 1. On the floor:

- nurse Ana tries to check Dana in to her second session: refused, Dana is still monitored;
- nurse Ben tries to book Eli into chair 1 now, then to check him in there: refused, chair 1 is
  Dana's; he checks Eli in to chair 3 instead;
- Ben types a pre-dose BP of 400/20: refused, "check this reading", nothing stored;
- the prescriber tries to sign Cleo's esketamine order: refused, naming the REMS; Ana records the
  enrollment on the flowsheet and the order is signed.

Data is built through the services (demo-like, but not the demo command, which other work is
changing). The clock is time-machine's, started at the real time so cookies stay valid.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
import time_machine
from django_scopes import scope, scopes_disabled
from playwright.sync_api import expect

from conftest import actor_for, make_member, make_patient
from ketaclinic.accounts.services import organization_create
from ketaclinic.core import clock
from ketaclinic.sessions import services
from ketaclinic.sessions.models import DoseOrder, TreatmentSession, VitalsEntry
from ketaclinic.sessions.tests.builders import (
    NORMAL,
    certify_for_rems,
    make_plan,
    make_treatable,
    ticked,
    weigh,
)
from tests.browser.test_chart_flow import log_in

pytestmark = [pytest.mark.browser, pytest.mark.live, pytest.mark.django_db(transaction=True)]
CHICAGO = ZoneInfo("America/Chicago")


@pytest.fixture
def traveller() -> Any:
    with time_machine.travel(datetime.now(UTC), tick=True) as traveller:
        yield traveller


@pytest.fixture
def morning(transactional_db: Any, traveller: Any) -> dict[str, Any]:
    organization = organization_create(
        name="Lakeside Ketamine", clinic_name="Lakeside", time_zone="America/Chicago", chairs=3
    )
    prescriber = make_member(organization, "prescriber", username="dr-ruiz")
    ana = make_member(organization, "nurse", username="nurse-ana")
    ben = make_member(organization, "nurse", username="nurse-ben")
    doctor, nurse = actor_for(prescriber), actor_for(ana)
    dana = make_patient(doctor, given_name="Dana", family_name="Whitfield")
    cleo = make_patient(doctor, given_name="Cleo", family_name="Marsh")
    eli = make_patient(doctor, given_name="Eli", family_name="Brandt", sex_at_birth="male")
    now = clock.now()
    with scope(organization=organization):
        # Dana: IV infusion given, monitored in chair 1; esketamine booked for the afternoon.
        make_treatable(doctor, dana, "iv-ketamine-induction")
        weigh(doctor, dana, "68")
        iv = services.session_schedule(
            actor=nurse, plan=make_plan(doctor, dana), scheduled_at=now, chair=1
        )
        services.session_check_in(actor=nurse, session=iv)
        services.precheck_record(actor=nurse, session=iv, checklist=ticked(iv), vitals=NORMAL)
        order = services.dose_order_sign(actor=doctor, session=iv)
        services.dose_administer(actor=nurse, session=iv, dose_mg=order.dose_mg, lot_number="KET-7")
        services.dose_complete(actor=nurse, session=iv)
        make_treatable(doctor, dana, "esketamine-trd")  # enrolled; the clinic certified
        dana_later = services.session_schedule(
            actor=nurse,
            plan=make_plan(doctor, dana, "esketamine-trd"),
            scheduled_at=now + timedelta(hours=4),
            chair=2,
        )
        # Cleo: esketamine, checked in to chair 2, pre-checks passed, never enrolled in the REMS.
        make_treatable(doctor, cleo, "esketamine-trd", rems=False)
        certify_for_rems(organization)
        weigh(doctor, cleo, "61")
        cleo_session = services.session_schedule(
            actor=nurse,
            plan=make_plan(doctor, cleo, "esketamine-trd"),
            scheduled_at=now,
            chair=2,
        )
        services.session_check_in(actor=nurse, session=cleo_session)
        services.precheck_record(
            actor=nurse, session=cleo_session, checklist=ticked(cleo_session), vitals=NORMAL
        )
        # Eli: IV infusion booked in chair 1 for later this morning.
        make_treatable(doctor, eli, "iv-ketamine-induction")
        weigh(doctor, eli, "82")
        eli_later = services.session_schedule(
            actor=nurse,
            plan=make_plan(doctor, eli),
            scheduled_at=now + timedelta(hours=4),
            chair=1,
        )
    return {
        "prescriber": prescriber,
        "ana": ana,
        "ben": ben,
        "dana_later": dana_later,
        "cleo": cleo_session,
        "eli": eli,
        "eli_later": eli_later,
    }


def second_page(page: Any) -> Any:
    """Another staff member at another workstation: a browser context of their own."""
    context = page.context.browser.new_context(viewport={"width": 1280, "height": 900})
    context.set_default_timeout(15_000)
    return context.new_page()


def test_a_clinic_morning_refuses_what_would_hurt_a_patient(
    page: Any, live_server: Any, morning: dict[str, Any], failed_responses: list[str]
) -> None:
    base = live_server.url
    refusal = page.locator("#refusal")
    state = page.locator("#session-state")

    # Ana: Dana is still monitored after her IV dose; her esketamine session cannot start.
    log_in(page, base, morning["ana"])
    page.goto(f"{base}/sessions/{morning['dana_later'].public_id}/")
    page.locator("#checkin-form").get_by_role("button", name="Check in").click()
    expect(refusal).to_contain_text("This patient is already in another session")
    expect(refusal).to_contain_text("chair 1, being monitored since")
    expect(refusal).to_contain_text("discharge or abort that session first")
    expect(state).to_have_text("Scheduled")

    # Ben: chair 1 is Dana's, for a booking now and for a check-in now.
    ben = second_page(page)
    log_in(ben, base, morning["ben"])
    ben.goto(f"{base}/patients/{morning['eli'].public_id}/sessions/")
    form = ben.locator("#schedule-form")
    soon = datetime.now(UTC).astimezone(CHICAGO) + timedelta(minutes=5)
    form.locator("input[name=scheduled_at]").fill(soon.strftime("%Y-%m-%dT%H:%M"))
    form.locator("input[name=chair]").fill("1")
    form.get_by_role("button", name="Schedule session").click()
    expect(ben.locator("#sessions-section")).to_contain_text("Chair 1 is already booked at")
    expect(ben.locator("#sessions-section")).to_contain_text("Choose another chair or time")

    ben.goto(f"{base}/sessions/{morning['eli_later'].public_id}/")
    checkin = ben.locator("#checkin-form")
    expect(checkin.locator("input[name=chair]")).to_have_value("1")
    checkin.get_by_role("button", name="Check in").click()
    expect(ben.locator("#refusal")).to_contain_text(
        "Chair 1 is taken: Dana Whitfield is being monitored there"
    )
    expect(ben.locator("#session-state")).to_have_text("Scheduled")
    ben.locator("#checkin-form input[name=chair]").fill("3")
    ben.locator("#checkin-form").get_by_role("button", name="Check in").click()
    expect(ben.locator("#session-state")).to_have_text("Checked in")

    # Ben types BP 400/20 in the pre-checks: not a reading; nothing is stored.
    prechecks = ben.locator("#precheck-form")
    boxes = prechecks.locator("input[type=checkbox]")
    for index in range(boxes.count()):
        boxes.nth(index).check()
    for name, value in (("systolic", 400), ("diastolic", 20), ("heart_rate", 72)):
        prechecks.locator(f"input[name={name}]").fill(str(value))
    prechecks.locator("input[name=spo2]").fill("98")
    prechecks.locator("input[name=respiratory_rate]").fill("14")
    prechecks.get_by_role("button", name="Record pre-checks").click()
    expect(ben.locator("#refusal")).to_contain_text(
        "Systolic pressure 400 mmHg is not a possible reading (expected 50-300 mmHg): "
        "check this reading."
    )
    expect(ben.locator("#session-state")).to_have_text("Checked in")
    with scopes_disabled():
        assert not VitalsEntry.objects.filter(session=morning["eli_later"]).exists()

    # The prescriber: Cleo's esketamine order is refused until her REMS enrollment is recorded.
    doctor = second_page(page)
    log_in(doctor, base, morning["prescriber"])
    cleo = f"{base}/sessions/{morning['cleo'].public_id}/"
    doctor.goto(cleo)
    doctor.locator("#order-form").get_by_role("button", name="Sign dose order").click()
    expect(doctor.locator("#refusal")).to_contain_text(
        "The patient is not enrolled in the Spravato REMS: record the REMS enrollment before "
        "esketamine is ordered or given."
    )
    with scopes_disabled():
        assert not DoseOrder.objects.filter(session=morning["cleo"]).exists()

    page.goto(cleo)  # Ana records the enrollment on Cleo's REMS card
    page.locator("#rems-enroll-form input[name=rems_patient_id]").fill("R-20417")
    page.locator("#rems-enroll-form").get_by_role("button").click()
    expect(page.locator("#pmf-panel")).to_contain_text("(ID R-20417)")
    doctor.reload()
    doctor.locator("#order-form").get_by_role("button", name="Sign dose order").click()
    expect(doctor.locator("#order-form")).to_contain_text("Sign a new dose order")
    expect(doctor.locator("#refusal")).to_have_count(0)
    with scopes_disabled():
        assert DoseOrder.objects.get(session=morning["cleo"]).dose_mg == 56
        assert TreatmentSession.objects.get(pk=morning["dana_later"].pk).state == "scheduled"
    # Ana's one refusal came back as a 409 that htmx swapped in; nothing else failed for her.
    assert [status.split()[0] for status in failed_responses] == ["409"], failed_responses
