"""A KAP course in Chromium, as the therapist documents it: a preparation visit with a signed
note, presence at a dosing session (time in and out), two integration visits, and a risk flag
that raises a safety alert the prescriber acknowledges; the prescriber then sees the therapy
summary on the session pre-check and the trajectory marks preparation, dosing and integration.

Data before the therapist's work is built through the services (screening, consent, a KAP IM
plan, a dosing session three days ago, two PHQ-9s); everything the issue asks of the therapist
and the prescriber happens in the browser.
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
from ketaclinic.measures import services as measures
from ketaclinic.measures.models import SafetyAlert
from ketaclinic.sessions import services as sessions
from ketaclinic.sessions.tests.builders import (
    NORMAL,
    make_eligible,
    make_plan,
    sign_consent,
    ticked,
    weigh,
)
from ketaclinic.therapy.models import TherapyVisit
from tests.browser.test_chart_flow import log_in

pytestmark = [pytest.mark.browser, pytest.mark.live, pytest.mark.django_db(transaction=True)]
CHICAGO = ZoneInfo("America/Chicago")
PHQ9 = {str(i): 2 for i in range(1, 9)} | {"9": 0}


def local(moment: datetime) -> str:
    return moment.astimezone(CHICAGO).strftime("%Y-%m-%dT%H:%M")


@pytest.fixture
def course(transactional_db: Any) -> dict[str, Any]:
    now = datetime.now(UTC)
    dosed_at = now - timedelta(days=3)
    organization = organization_create(
        name="KAP Clinic", clinic_name="Main", time_zone="America/Chicago", chairs=2
    )
    prescriber = make_member(organization, "prescriber", username="kap-prescriber")
    nurse = make_member(organization, "nurse", username="kap-nurse")
    therapist = make_member(organization, "therapist", username="kap-therapist")
    actor = actor_for(prescriber)
    patient = make_patient(actor, given_name="Maya", family_name="Angelou")
    with scope(organization=organization), time_machine.travel(dosed_at, tick=False):
        make_eligible(actor, patient, "intramuscular")
        sign_consent(actor, patient, "intramuscular")
        weigh(actor, patient, "70")
        plan = make_plan(actor, patient, "kap-intramuscular")
        session = sessions.session_schedule(actor=actor, plan=plan, scheduled_at=dosed_at, chair=1)
        sessions.session_check_in(actor=actor, session=session)
        sessions.precheck_record(
            actor=actor, session=session, checklist=ticked(session), vitals=NORMAL
        )
        order = sessions.dose_order_sign(actor=actor, session=session)
        sessions.dose_administer(
            actor=actor_for(nurse), session=session, dose_mg=order.dose_mg, lot_number="KET-7"
        )
    with scope(organization=organization):
        for completed_at in (now - timedelta(days=6), now - timedelta(hours=1)):
            measures.response_record(
                actor=actor,
                patient=patient,
                instrument_id="phq9",
                answers=PHQ9,
                completed_at=completed_at,
            )
    return {
        "now": now,
        "dosed_at": dosed_at,
        "prescriber": prescriber,
        "therapist": therapist,
        "patient": patient,
        "session": session,
    }


def fill_note(page: Any, fields: dict[str, str], *, risk: str = "none") -> None:
    form = page.locator("#note-form")
    for name, value in fields.items():
        form.locator(f'[name="{name}"]').fill(value)
    for name in (
        "appearance",
        "mood",
        "affect",
        "thought_process",
        "thought_content",
        "orientation",
        "insight_judgement",
    ):
        form.locator(f'[name="mental_status.{name}"]').fill("Within normal limits")
    form.locator('[name="risk_level"]').select_option(risk)
    form.locator('[name="narrative"]').fill("Engaged, reflective, used the hour well.")


def open_visit(page: Any, base: str, patient: Any, kind: str, start: datetime, **kw: str) -> None:
    page.goto(f"{base}/therapy/patients/{patient.public_id}/")
    form = page.locator("#visit-form")
    form.locator('[name="kind"]').select_option(kind)
    form.locator('[name="started_at"]').fill(local(start))
    if "session" in kw:
        form.locator('[name="session"]').select_option(kw["session"])
    form.get_by_role("button", name="Open visit").click()
    expect(page.locator("#note-form")).to_be_visible()


def sign(page: Any) -> None:
    page.locator("#note-form").get_by_role("button", name="Sign note").click()
    expect(page.locator("#progress-note")).to_contain_text("Signed by")


def test_a_therapist_completes_a_kap_course(
    page: Any, live_server: Any, course: dict[str, Any], failed_responses: list[str]
) -> None:
    base, patient, now = live_server.url, course["patient"], course["now"]
    log_in(page, base, course["therapist"])
    page.get_by_role("navigation", name="Main").get_by_role("link", name="Therapy").click()
    expect(page.locator("h1")).to_have_text("Therapy")

    # Preparation, four days ago: a signed note.
    open_visit(page, base, patient, "preparation", now - timedelta(days=4, hours=1))
    fill_note(
        page,
        {
            "intentions": "Loosen the grip of the old grief.",
            "set_and_setting": "Dim room, eye mask, her own playlist.",
            "expectations": "Fears losing control.",
            "safety_plan": "Partner drives her home; crisis line card given.",
        },
    )
    page.locator('#note-form [name="ended_at"]').fill(local(now - timedelta(days=4)))
    sign(page)
    expect(page.locator("#billing")).to_contain_text("90837")  # 60 minutes alone

    # Present at the dosing session: time in before the dose, time out two hours later.
    time_in = course["dosed_at"] - timedelta(minutes=10)
    time_out = course["dosed_at"] + timedelta(hours=2)
    open_visit(
        page, base, patient, "dosing_support", time_in, session=str(course["session"].public_id)
    )
    fill_note(
        page,
        {
            "interventions": "Grounding and breath cues at the peak.",
            "reported_experience": "Memories of the childhood kitchen, then calm.",
        },
    )
    page.locator('#note-form input[value="felt_safe"]').check()
    page.locator('#note-form [name="ended_at"]').fill(local(time_out))
    sign(page)
    expect(page.locator("#time-in")).to_contain_text(
        time_in.astimezone(CHICAGO).strftime("%Y-%m-%d %H:%M")
    )
    expect(page.locator("#time-out")).to_contain_text(
        time_out.astimezone(CHICAGO).strftime("%Y-%m-%d %H:%M")
    )
    expect(page.locator("#progress-note")).to_contain_text("Felt safe during the session")

    # Two integration visits, two days and one day ago.
    for days, homework in ((2, "Journal three evenings."), (1, "Call her sister.")):
        open_visit(page, base, patient, "integration", now - timedelta(days=days, hours=1))
        fill_note(
            page,
            {
                "themes": "Loss and self-compassion.",
                "insights": "Grief is not a failure.",
                "behaviour_changes": "Walked daily.",
                "homework": homework,
            },
        )
        page.locator('#note-form [name="ended_at"]').fill(local(now - timedelta(days=days)))
        sign(page)
    # A signed note offers no edit, only an amendment.
    expect(page.locator("#note-form")).to_have_count(0)
    expect(page.locator("#amend-form")).to_be_visible()

    # The risk flag.
    page.goto(f"{base}/therapy/patients/{patient.public_id}/")
    risk = page.locator("#risk-form")
    risk.locator('[name="level"]').select_option("high")
    risk.locator('[name="reason"]').fill("Said she has been saving her pills.")
    risk.get_by_role("button", name="Flag risk").click()
    expect(page.locator(".messages")).to_contain_text("a safety alert went to the prescriber")
    expect(page.locator("#therapy-visits tbody tr")).to_have_count(4)
    page.get_by_role("button", name="Log out").click()

    # The prescriber acknowledges the alert, as any safety alert.
    log_in(page, base, course["prescriber"])
    page.goto(f"{base}/measures/alerts/")
    item = page.locator("article.alert-item").filter(has_text="saving her pills")
    expect(item).to_contain_text("Therapist's risk flag (high risk)")
    expect(item).to_contain_text("From the therapist's risk assessment")
    item.locator('input[name="note"]').fill("Called her; pills handed to partner; plan reviewed.")
    item.get_by_role("button", name="Acknowledge").click()
    expect(page.locator("article.alert-item").filter(has_text="saving her pills")).to_contain_text(
        "Acknowledged by"
    )
    with scopes_disabled():
        alert = SafetyAlert.objects.get(source_kind="therapy")
        assert alert.acknowledged_by == course["prescriber"].user
        assert TherapyVisit.objects.filter(signed_at__isnull=False).count() == 4

    # On the session's pre-check: the latest integration note and the risk assessment.
    page.goto(f"{base}/sessions/{course['session'].public_id}/")
    summary = page.locator("#therapy-precheck")
    expect(summary).to_contain_text("Call her sister.")
    expect(summary).to_contain_text("saving her pills")

    # The trajectory marks preparation, dosing and integration.
    page.goto(f"{base}/patients/{patient.public_id}/measures/")
    chart = page.locator("svg.trajectory").first
    expect(chart.locator("line.session")).to_have_count(1)
    expect(chart.locator("line.visit-preparation")).to_have_count(1)
    expect(chart.locator("line.visit-integration")).to_have_count(2)
    assert "Preparation visit" in chart.locator("line.visit-preparation title").text_content()
    assert failed_responses == []
