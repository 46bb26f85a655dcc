"""A full IV ketamine session on the flowsheet, in Chromium: the nurse schedules it from the chart,
checks the patient in and records the pre-checks; the prescriber signs the dose order and sees
the calculation; the nurse records the administration and the monitoring vitals; discharge is
refused before the 2-hour minimum and allowed after it; the dose's draw and waste are entered in
the controlled-substance ledger (inventory services) and the note is signed. Plus the pre-dose
blood-pressure gate refusing in the UI.

The clock is time-machine's (the live server is a thread of this process, so it travels too),
started at the real time so the browser's cookies stay valid, and moved on 14 minutes at a time
with a vitals entry each step, as a nurse does within the 15-minute idle timeout.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
import time_machine
from django_scopes import scope, scopes_disabled
from playwright.sync_api import expect

from conftest import PASSWORD, actor_for, make_member, make_patient
from ketaclinic.accounts.services import organization_create
from ketaclinic.sessions import services
from ketaclinic.sessions.models import DoseAdministration, TreatmentSession
from ketaclinic.sessions.tests.builders import (
    draw_for,
    make_plan,
    make_treatable,
    waste_rest,
    weigh,
)
from tests.browser.test_chart_flow import log_in

pytestmark = [pytest.mark.browser, pytest.mark.live, pytest.mark.django_db(transaction=True)]
STEP = timedelta(minutes=14)


@pytest.fixture
def ward(transactional_db: Any) -> dict[str, Any]:
    organization = organization_create(
        name="Session Clinic", clinic_name="Main", time_zone="America/Chicago", chairs=3
    )
    prescriber = make_member(organization, "prescriber", username="flow-prescriber")
    nurse = make_member(organization, "nurse", username="flow-nurse")
    actor = actor_for(prescriber)
    patient = make_patient(actor, given_name="Grace", family_name="Hopper")
    with scope(organization=organization):
        make_treatable(actor, patient, "iv-ketamine-induction")
        weigh(actor, patient, "80")
        plan = make_plan(actor, patient)
    return {
        "prescriber": prescriber,
        "nurse": nurse,
        "actor": actor,
        "patient": patient,
        "plan": plan,
    }


@pytest.fixture
def traveller() -> Any:
    with time_machine.travel(datetime.now(UTC), tick=True) as traveller:
        yield traveller


def record_vitals(page: Any, systolic: int = 124, heart_rate: int = 74) -> None:
    form = page.locator("#vitals-panel form")
    rows = page.locator("#vitals-table tbody tr").count()
    form.locator("input[name=systolic]").fill(str(systolic))
    form.locator("input[name=diastolic]").fill("80")
    form.locator("input[name=heart_rate]").fill(str(heart_rate))
    form.locator("input[name=spo2]").fill("98")
    form.locator("input[name=respiratory_rate]").fill("14")
    form.get_by_role("button", name="Record vitals").click()
    expect(page.locator("#vitals-table tbody tr")).to_have_count(rows + 1)


def fill_prechecks(page: Any, systolic: int, diastolic: int) -> None:
    form = page.locator("#precheck-form")
    boxes = form.locator("input[type=checkbox]")
    for index in range(boxes.count()):
        boxes.nth(index).check()
    form.locator("input[name=systolic]").fill(str(systolic))
    form.locator("input[name=diastolic]").fill(str(diastolic))
    form.locator("input[name=heart_rate]").fill("72")
    form.locator("input[name=spo2]").fill("98")
    form.locator("input[name=respiratory_rate]").fill("14")
    form.get_by_role("button", name="Record pre-checks").click()


def tick_discharge_criteria(page: Any) -> None:
    form = page.locator("#discharge-panel form").first
    boxes = form.locator("input[type=checkbox]")
    for index in range(boxes.count()):
        boxes.nth(index).check()
    form.get_by_role("button", name="Check discharge criteria").click()


def test_a_full_iv_session_in_the_browser(
    page: Any,
    live_server: Any,
    ward: dict[str, Any],
    traveller: Any,
    failed_responses: list[str],
) -> None:
    base = live_server.url
    state = page.locator("#session-state")

    # The nurse schedules the session from the chart's Sessions section, then opens it.
    log_in(page, base, ward["nurse"])
    page.goto(f"{base}/patients/{ward['patient'].public_id}/sessions/")
    form = page.locator("#schedule-form")
    local = datetime.now(UTC).astimezone(ZoneInfo("America/Chicago")) + timedelta(minutes=5)
    form.locator("input[name=scheduled_at]").fill(local.strftime("%Y-%m-%dT%H:%M"))
    form.locator("input[name=chair]").fill("2")
    form.get_by_role("button", name="Schedule session").click()
    expect(state).to_have_text("Scheduled")
    with scopes_disabled():
        session = TreatmentSession.objects.get(plan=ward["plan"])
    flowsheet = f"{base}/sessions/{session.public_id}/"
    assert page.url == flowsheet

    page.get_by_role("button", name="Check in").click()
    expect(state).to_have_text("Checked in")
    fill_prechecks(page, 122, 78)
    expect(state).to_have_text("Prechecks passed")
    expect(page.locator("#checklist")).to_contain_text("Pre-dose check: Passed")

    # The prescriber, on another screen, signs the order and sees how the dose was computed.
    doctor = page.context.browser.new_context(viewport={"width": 1280, "height": 900})
    doctor_page = doctor.new_page()
    doctor_page.set_default_timeout(15_000)
    log_in(doctor_page, base, ward["prescriber"])
    doctor_page.goto(flowsheet)
    doctor_page.get_by_role("button", name="Sign dose order").click()
    calculation = doctor_page.locator("#dose-calculation")
    for fact in ("80 kg", "40 mg", "0.5 mg/kg", "4 mL", "156 mL/h", "max 70 mg"):
        expect(calculation).to_contain_text(fact)
    # The algorithm's versioned key is for audit: inside the panel's details disclosure.
    expect(doctor_page.locator("#dose-panel details.for-audit")).to_contain_text(
        "dose-weight-based@1"
    )
    doctor.close()

    # The nurse records the administration: the ordered dose is offered, the lot is typed.
    page.reload()
    administer = page.locator("#administer-form")
    expect(administer.locator("input[name=dose_mg]")).to_have_value("40.0")
    administer.locator("input[name=lot_number]").fill("LOT-7")
    administer.get_by_role("button", name="Record administration").click()
    expect(state).to_have_text("Dosing")
    expect(page.locator("#administrations")).to_contain_text("lot LOT-7")
    # The ledger side (inventory services): a vial received, 50 mg drawn for this administration.
    nurse_actor = actor_for(ward["nurse"])
    with scope(organization=nurse_actor.organization):
        given = DoseAdministration.objects.get(session=session)
        draw_for(nurse_actor, given, "50")
    for _ in range(3):  # the 40-minute infusion, vitals every 14 minutes
        traveller.shift(STEP)
        record_vitals(page)
    page.get_by_role("button", name="Dosing finished").click()
    expect(state).to_have_text("Monitoring")

    # At about 56 minutes: every bedside criterion met, but not the minimum observation time.
    traveller.shift(STEP)
    record_vitals(page)
    tick_discharge_criteria(page)
    expect(page.locator('.unmet-criteria li[data-code="observation_time"]')).to_be_visible()
    page.get_by_role("button", name="Discharge patient").click()
    expect(page.locator("#refusal")).to_contain_text("may not leave yet")
    expect(state).to_have_text("Monitoring")

    for _ in range(5):  # on to about 126 minutes after the dose started
        traveller.shift(STEP)
        record_vitals(page)
    tick_discharge_criteria(page)
    expect(page.locator("#discharge-panel")).to_contain_text("Ready for discharge")
    page.get_by_role("button", name="Discharge patient").click()
    expect(state).to_have_text("Discharged")

    # The 10 mg drawn but not given is wasted, witnessed, so the ledger balances for signing.
    with scope(organization=nurse_actor.organization):
        assert waste_rest(nurse_actor, given, ward["prescriber"], PASSWORD).balanced
    note = page.locator("#note-form")
    note.locator("textarea[name=text]").fill("Tolerated the infusion; mild dissociation resolved.")
    note.get_by_role("button", name="Sign note").click()
    expect(page.locator("#note-signed")).to_be_visible()
    expect(page.locator("#note-text")).to_contain_text("mild dissociation resolved")
    # The one 4xx is the refused early discharge (a 422 swapped in with its message).
    assert failed_responses == [f"422 {flowsheet}discharge/"], failed_responses


def test_blood_pressure_above_the_gate_is_refused_in_the_browser(
    page: Any, live_server: Any, ward: dict[str, Any], failed_responses: list[str]
) -> None:
    with scope(organization=ward["actor"].organization):
        session = services.session_schedule(
            actor=ward["actor"], plan=ward["plan"], scheduled_at=datetime.now(UTC), chair=1
        )
        services.session_check_in(actor=ward["actor"], session=session)
    log_in(page, live_server.url, ward["nurse"])
    page.goto(f"{live_server.url}/sessions/{session.public_id}/")
    expect(page.locator("#precheck-form textarea[name=override_reason]")).to_have_count(0)
    fill_prechecks(page, 150, 95)
    refusal = page.locator("#refusal")
    expect(refusal).to_contain_text("predose_vitals_gate")
    expect(refusal).to_contain_text("150")
    expect(page.locator("#session-state")).to_have_text("Checked in")
    expect(page.locator("#precheck-form")).to_be_visible()  # the nurse may correct and retry
    # The refusal came back as a 422 that htmx swapped in; nothing else failed.
    assert failed_responses == [f"422 {live_server.url}/sessions/{session.public_id}/prechecks/"], (
        failed_responses
    )
