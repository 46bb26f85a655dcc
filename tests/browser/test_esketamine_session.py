"""A full esketamine (SPRAVATO) session on the flowsheet, in Chromium, from the UI alone: the
nurse schedules it from the chart, checks the patient in, records the REMS enrollment and the
pre-checks; the prescriber signs the order (whole 28 mg devices); the nurse records the
administration with its device count (a count that does not match the dose is refused), the
vitals, dissociation (CADSS), sedation (MOAA/S), the side-effects checklist and an antiemetic
given; discharge is refused before 120 minutes and allowed after; the REMS Patient Monitoring
Form answers are entered, the note is signed, and the CSV and PDF exports carry every field of
the form. A signed note cannot be edited (no form, and a stale POST is refused); an amendment
can be added.

Time as in test_session_flow.py: time-machine, started at the real time, moved on at most 14
minutes at a time (the idle timeout is 15) with a vitals entry each step. Only the
controlled-substance draw is entered through the inventory services, as there.
"""

from __future__ import annotations

import csv
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
import time_machine
from django_scopes import scope, scopes_disabled
from playwright.sync_api import expect

from conftest import actor_for, make_member, make_patient
from ketaclinic.accounts.services import organization_create
from ketaclinic.sessions import rems
from ketaclinic.sessions.models import DoseAdministration, SessionNote, TreatmentSession
from ketaclinic.sessions.tests.builders import (
    certify_for_rems,
    draw_for,
    make_plan,
    make_treatable,
    weigh,
)
from tests.browser.test_chart_flow import log_in
from tests.browser.test_session_flow import (
    STEP,
    fill_prechecks,
    record_vitals,
    tick_discharge_criteria,
)
from tests.pdf import pdf_text

pytestmark = [pytest.mark.browser, pytest.mark.live, pytest.mark.django_db(transaction=True)]
ZONE = ZoneInfo("America/Chicago")


@pytest.fixture
def spravato(transactional_db: Any) -> dict[str, Any]:
    organization = organization_create(
        name="Spravato Clinic", clinic_name="Main", time_zone="America/Chicago", chairs=3
    )
    prescriber = make_member(organization, "prescriber", username="esk-prescriber")
    nurse = make_member(organization, "nurse", username="esk-nurse")
    actor = actor_for(prescriber)
    patient = make_patient(actor, given_name="Rosalind", family_name="Franklin")
    with scope(organization=organization):
        # A certified clinic; the nurse records the patient's REMS enrollment in the test.
        make_treatable(actor, patient, "esketamine-trd", rems=False)
        certify_for_rems(organization)
        weigh(actor, patient, "70")
        plan = make_plan(actor, patient, "esketamine-trd")
    return {"prescriber": prescriber, "nurse": nurse, "patient": patient, "plan": plan}


@pytest.fixture
def traveller() -> Any:
    with time_machine.travel(datetime.now(UTC), tick=True) as traveller:
        yield traveller


def observe(page: Any, *, cadss: int, moaas: int, effects: tuple[str, ...] = ()) -> None:
    rows = page.locator("#observations-table tbody tr[data-kind]")
    before = rows.count()
    page.locator("#cadss-form input[name=score]").fill(str(cadss))
    page.get_by_role("button", name="Record CADSS").click()
    expect(rows).to_have_count(before + 1)
    page.locator("#sedation-form select[name=score]").select_option(str(moaas))
    page.get_by_role("button", name="Record sedation").click()
    expect(rows).to_have_count(before + 2)
    form = page.locator("#side-effects-form")
    for code in effects:
        form.locator(f"input[name=effects][value={code}]").check()
    form.get_by_role("button", name="Record side effects").click()
    expect(rows).to_have_count(before + 3)


def pdf_text_flat(content: bytes) -> str:
    """The PDF's text in content-stream order (PDFium), so a wrapped label is not interleaved
    with its answer column."""
    return " ".join(pdf_text(content).split())


@pytest.mark.long
def test_a_full_esketamine_session_in_the_browser(
    page: Any,
    live_server: Any,
    spravato: dict[str, Any],
    traveller: Any,
    failed_responses: list[str],
    tmp_path: Path,
) -> None:
    base = live_server.url
    state = page.locator("#session-state")
    refusal = page.locator("#refusal")

    # Scheduled from the chart, then checked in.
    log_in(page, base, spravato["nurse"])
    page.goto(f"{base}/patients/{spravato['patient'].public_id}/sessions/")
    form = page.locator("#schedule-form")
    local = datetime.now(UTC).astimezone(ZONE) + timedelta(minutes=5)
    form.locator("input[name=scheduled_at]").fill(local.strftime("%Y-%m-%dT%H:%M"))
    form.locator("input[name=chair]").fill("3")
    form.get_by_role("button", name="Schedule session").click()
    expect(state).to_have_text("Scheduled")
    with scopes_disabled():
        session = TreatmentSession.objects.get(plan=spravato["plan"])
    flowsheet = f"{base}/sessions/{session.public_id}/"
    page.get_by_role("button", name="Check in").click()
    expect(state).to_have_text("Checked in")

    # The REMS card: the patient's enrollment is recorded before the first treatment.
    pmf = page.locator("#pmf-panel")
    expect(pmf).to_contain_text("not recorded as enrolled")
    enroll = page.locator("#rems-enroll-form")
    enroll.locator("input[name=rems_patient_id]").fill("REMS-4417")
    enroll.get_by_role("button", name="Record REMS enrollment").click()
    expect(page.locator("#rems-enrollment")).to_contain_text("(ID REMS-4417)")

    # Pre-checks: the esketamine items (fasting, nasal medicines) are ticked with the rest.
    expect(page.locator("#precheck-form")).to_contain_text("No food for 2 h")
    fill_prechecks(page, 126, 80)
    expect(state).to_have_text("Prechecks passed")

    # The prescriber signs the order: 56 mg as two whole 28 mg devices, 5 minutes apart.
    doctor = page.context.browser.new_context(viewport={"width": 1280, "height": 900})
    doctor_page = doctor.new_page()
    doctor_page.set_default_timeout(15_000)
    log_in(doctor_page, base, spravato["prescriber"])
    doctor_page.goto(flowsheet)
    doctor_page.get_by_role("button", name="Sign dose order").click()
    expect(doctor_page.locator("#order-dose")).to_have_text("56 mg")
    calculation = doctor_page.locator("#dose-calculation")
    expect(calculation).to_contain_text("2 × 28 mg")
    expect(calculation).to_contain_text("5 min apart")
    doctor.close()

    # Administration: a device count that does not deliver the dose, and a dose that is not
    # whole devices, are refused; the ordered 2 devices are recorded.
    page.reload()
    administer = page.locator("#administer-form")
    expect(administer.locator("input[name=dose_mg]")).to_have_value("56.0")
    expect(administer.locator("input[name=device_count]")).to_have_value("2")
    administer.locator("input[name=lot_number]").fill("SPR-7")
    administer.locator("input[name=device_count]").fill("3")
    administer.get_by_role("button", name="Record administration").click()
    expect(refusal).to_contain_text("3 devices do not deliver 56")
    administer = page.locator("#administer-form")
    administer.locator("input[name=dose_mg]").fill("42")
    administer.locator("input[name=device_count]").fill("")
    administer.get_by_role("button", name="Record administration").click()
    expect(refusal).to_contain_text("whole 28 mg devices")
    expect(state).to_have_text("Prechecks passed")
    administer = page.locator("#administer-form")
    administer.locator("input[name=dose_mg]").fill("56")
    administer.locator("input[name=device_count]").fill("2")
    administer.get_by_role("button", name="Record administration").click()
    expect(state).to_have_text("Dosing")
    expect(page.locator("#administrations")).to_contain_text("56 mg intranasal (2 devices)")
    nurse_actor = actor_for(spravato["nurse"])
    with scope(organization=nurse_actor.organization):
        draw_for(nurse_actor, DoseAdministration.objects.get(session=session))  # 2 devices

    # The second device 5 minutes later; monitoring starts.
    traveller.shift(timedelta(minutes=5))
    page.get_by_role("button", name="Dosing finished").click()
    expect(state).to_have_text("Monitoring")
    record_vitals(page)
    for minutes in (14, 14, 7):  # on to the 40-minute blood-pressure recheck
        traveller.shift(timedelta(minutes=minutes))
        record_vitals(page)
    observe(page, cadss=10, moaas=4, effects=("nausea", "dizziness"))
    observations = page.locator("#observations-table")
    expect(observations).to_contain_text("Dissociation (CADSS)")
    expect(observations).to_contain_text("Dizziness, Nausea")
    medication = page.locator("#intervention-form")
    medication.locator("input[name=drug_name]").fill("Ondansetron")
    medication.locator("input[name=dose_text]").fill("4 mg")
    medication.locator("select[name=route]").select_option("oral")
    medication.locator("input[name=reason]").fill("Nausea after the second device")
    medication.get_by_role("button", name="Record medication given").click()
    expect(page.locator("#medications-table")).to_contain_text("Ondansetron")

    # At about 110 minutes everything is resolved but the 2 hours: discharge refused.
    for _ in range(5):
        traveller.shift(STEP)
        record_vitals(page)
    observe(page, cadss=0, moaas=5)
    tick_discharge_criteria(page)
    expect(page.locator('.unmet-criteria li[data-code="observation_time"]')).to_be_visible()
    page.get_by_role("button", name="Discharge patient").click()
    expect(refusal).to_contain_text("may not leave yet")
    expect(state).to_have_text("Monitoring")

    # About 124 minutes: discharged.
    traveller.shift(STEP)
    record_vitals(page)
    tick_discharge_criteria(page)
    expect(page.locator("#discharge-panel")).to_contain_text("Ready for discharge")
    page.get_by_role("button", name="Discharge patient").click()
    expect(state).to_have_text("Discharged")

    # Signing waits for the REMS form; staff answer what the session cannot.
    note = page.locator("#note-form")
    note.locator("textarea[name=text]").fill("Esketamine 56 mg (2 devices); nausea treated.")
    note.get_by_role("button", name="Sign note").click()
    expect(refusal).to_contain_text("REMS Patient Monitoring Form is incomplete")
    expect(page.locator("#pmf-status")).to_contain_text("incomplete")
    answers = page.locator("#pmf-form")
    for question in (
        "concomitant_benzodiazepines",
        "concomitant_non_benzodiazepine_sedative_hypnotics",
        "concomitant_psychostimulants",
        "concomitant_maois",
        "concomitant_opioids",
    ):
        answers.locator(f"input[name={question}][value=no]").check()
    answers.locator("input[name=minutes_until_ready_without_two_hour_rule]").fill("90")
    answers.locator("input[name=monitoring_hcp_phone]").fill("+1 312 555 0100")
    answers.locator("input[name=monitoring_hcp_email]").fill("monitor@spravato.example")
    answers.locator("textarea[name=setting_address]").fill("1 Main St, Chicago IL 60601")
    answers.get_by_role("button", name="Save REMS answers").click()
    expect(page.locator("#pmf-status")).to_contain_text("complete, not yet submitted")
    table = page.locator("#pmf-answers")
    expect(table.locator('tr[data-field="dose"]')).to_contain_text("56")
    expect(table.locator('tr[data-field="lot_number"]')).to_contain_text("SPR-7")
    expect(table.locator('tr[data-field="bp_40min_systolic"]')).to_contain_text("124")
    expect(table.locator('tr[data-field="patient_enrolled_in_rems"]')).to_contain_text("Yes")
    expect(table.locator('tr[data-field="experienced_dissociation"]')).to_contain_text("Yes")

    note = page.locator("#note-form")
    expect(note.locator("textarea[name=text]")).to_have_value(
        "Esketamine 56 mg (2 devices); nausea treated."
    )
    note.get_by_role("button", name="Sign note").click()
    expect(page.locator("#note-signed")).to_be_visible()

    # The signed note cannot be edited: no form offers it, and a stale tab's POST is refused.
    expect(page.locator("#note-form")).to_have_count(0)
    expect(page.locator("#note-text")).to_have_text("Esketamine 56 mg (2 devices); nausea treated.")
    stale = page.evaluate(
        """async (url) => {
            const token = JSON.parse(document.body.getAttribute("hx-headers"))["X-CSRFToken"];
            const response = await fetch(url, {
                method: "POST",
                headers: {"X-CSRFToken": token, "HX-Request": "true",
                          "Content-Type": "application/x-www-form-urlencoded"},
                body: "text=Rewritten+after+signing",
            });
            return [response.status, await response.text()];
        }""",
        f"{flowsheet}note/",
    )
    assert stale[0] == 409
    assert "add an amendment" in stale[1]
    amend = page.locator("#amend-form")
    amend.locator("textarea[name=text]").fill("Escort was the patient's sister.")
    amend.locator("input[name=reason]").fill("late entry")
    amend.get_by_role("button", name="Add amendment").click()
    expect(page.locator("#amendments")).to_contain_text("Escort was the patient's sister.")
    with scopes_disabled():
        signed = SessionNote.objects.get(session=session)
    assert signed.text == "Esketamine 56 mg (2 devices); nausea treated."

    # The exports carry every field of the form, with the session's answers.
    with page.expect_download() as csv_download:
        page.locator("#pmf-csv").click()
    with open(csv_download.value.path(), newline="", encoding="utf-8") as handle:
        exported = {row["field"]: row for row in csv.DictReader(handle)}
    assert list(exported) == [field.key for field in rems.PMF_FIELDS]
    for field in rems.PMF_FIELDS:
        if field.required:
            assert exported[field.key]["value"] != "", field.key
    assert exported["dose"]["value"] == "56"
    assert exported["lot_number"]["value"] == "SPR-7"
    assert exported["patient_last_name"]["value"] == "Franklin"
    assert exported["concomitant_maois"]["value"] == "False"
    assert int(exported["monitoring_duration_minutes"]["value"]) >= 120
    assert exported["minutes_until_ready_without_two_hour_rule"]["value"] == "90"
    with page.expect_download() as pdf_download:
        page.locator("#pmf-pdf").click()
    text = pdf_text_flat(Path(pdf_download.value.path()).read_bytes())
    for field in rems.PMF_FIELDS:
        assert " ".join(field.label.split()) in text, field.label
    for answer in ("Franklin", "SPR-7", "monitor@spravato.example", "1 Main St, Chicago IL"):
        assert answer in text, answer

    # The 4xx answers were the refusals the test provoked, each swapped in with its message.
    assert failed_responses == [
        f"422 {flowsheet}administration/",
        f"422 {flowsheet}administration/",
        f"422 {flowsheet}discharge/",
        f"422 {flowsheet}note/sign/",
        f"409 {flowsheet}note/",
    ], failed_responses
