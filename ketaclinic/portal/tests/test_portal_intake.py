"""The patient completes their intake history in the portal, through the screening service."""

from __future__ import annotations

import re
from typing import Any

import pytest
from django.test import Client
from django_scopes import scope, scopes_disabled

from conftest import make_patient, staff_client
from ketaclinic.accounts.models import AuditEvent
from ketaclinic.consent import services as consent
from ketaclinic.core import clock
from ketaclinic.core.errors import ValidationFailed
from ketaclinic.patients import services as chart
from ketaclinic.portal.forms import QUESTION_FIELDS
from ketaclinic.screening import selectors, services
from ketaclinic.screening.gates import treatment_gate_check
from ketaclinic.screening.models import IntakeHistory
from ketaclinic.screening.tests.helpers import chart_ready_for_screening, screen_and_decide

pytestmark = pytest.mark.django_db
PATIENT_PASSWORD = "plum-Harbor-7-quiet"
URL = "/portal/intake/"


def portal_login(actor: Any, patient: Any) -> tuple[Any, Client]:
    with scope(organization=actor.organization):
        account, token = consent.portal_invite(actor=actor, patient=patient)
    consent.portal_activate(token=token, password=PATIENT_PASSWORD)
    client = Client()
    response = client.post(
        "/portal/login/", {"username": account.user.username, "password": PATIENT_PASSWORD}
    )
    assert response.status_code == 302
    return account, client


def answers(**changes: str) -> dict[str, str]:
    """Every question answered 'no' (the choice questions: their 'none'/'absent')."""
    data = {name: "false" for name in QUESTION_FIELDS}
    data.update(
        suicidal_ideation="none",
        hypertension="absent",
        cardiovascular_disease="absent",
        cerebrovascular_disease="absent",
        hepatic_impairment="none",
        medication_changes="",
    )
    data.update(changes)
    return data


def intakes() -> list[IntakeHistory]:
    with scopes_disabled():
        return list(IntakeHistory.objects.order_by("created_at", "pk"))


def test_patient_completes_the_intake_and_staff_see_it_on_the_screening_page(prescriber, members):
    patient = make_patient(prescriber)
    with scope(organization=prescriber.organization):
        chart.medication_add(
            actor=prescriber,
            patient=patient,
            data={"drug_name": "Sertraline", "dose_text": "50 mg"},
        )
    account, client = portal_login(prescriber, patient)
    home = client.get("/portal/")
    assert URL.encode() in home.content
    page = client.get(URL)
    assert page.status_code == 200
    assert b"Sertraline (50 mg)" in page.content  # the medicines on file, to check
    assert b"988" in page.content  # the crisis line next to the suicidal-ideation question
    response = client.post(
        URL,
        answers(hypertension="controlled", pregnant="unsure", raised_intraocular_pressure="true"),
        REMOTE_ADDR="10.1.2.3",
    )
    assert response.status_code == 302
    [intake] = intakes()
    assert (intake.source, intake.recorded_by) == ("patient", account.user)
    assert intake.hypertension == "controlled"
    assert intake.pregnant is None  # "not sure" is not documented, never "no"
    assert intake.raised_intraocular_pressure is True
    assert intake.psychosis_history is False
    assert intake.medications_reconciled is False  # only staff reconcile
    with scopes_disabled():
        event = AuditEvent.objects.get(action="screening.intake.recorded")
    assert (event.channel, event.actor_username) == ("portal", account.user.username)
    assert event.patient_id == patient.public_id
    # The care team sees it on the screening page and in the staff intake form.
    staff = staff_client(members["nurse"])
    screening = staff.get(f"/screening/patients/{patient.public_id}/")
    assert b"Reported by patient" in screening.content
    assert b"hypertension: controlled" in screening.content
    form = staff.get(f"/screening/patients/{patient.public_id}/intake/")
    assert b'<option value="controlled" selected>' in form.content


def test_a_portal_change_invalidates_the_decision_as_the_staff_path_does(prescriber):
    patient = make_patient(prescriber)
    with scope(organization=prescriber.organization):
        chart_ready_for_screening(prescriber, patient)
        screen_and_decide(prescriber, patient)
        # Nothing changed: answering as the chart already says keeps the decision.
        account, client = portal_login(prescriber, patient)
    assert client.post(URL, answers()).status_code == 302
    with scope(organization=prescriber.organization):
        status = treatment_gate_check(
            patient=patient, route="intravenous", setting="clinic", at=clock.now()
        )
    assert not any("screening" in m.lower() for m in status.missing), status.missing
    # A new pregnancy reported in the portal: the prescriber must review again.
    assert client.post(URL, answers(pregnant="true")).status_code == 302
    with scope(organization=prescriber.organization):
        status = treatment_gate_check(
            patient=patient, route="intravenous", setting="clinic", at=clock.now()
        )
    assert "pregnancy status changed" in status.missing[0]


def test_reported_medication_changes_reach_the_note_and_undo_the_reconciliation(prescriber):
    patient = make_patient(prescriber)
    with scope(organization=prescriber.organization):
        chart_ready_for_screening(prescriber, patient)
        screen_and_decide(prescriber, patient)
    _, client = portal_login(prescriber, patient)
    response = client.post(URL, answers(medication_changes="Lorazepam 1 mg at night"))
    assert response.status_code == 302
    latest = intakes()[-1]
    assert latest.medications_reconciled is False
    assert "Lorazepam 1 mg at night" in latest.note
    with scope(organization=prescriber.organization):
        status = treatment_gate_check(
            patient=patient, route="intravenous", setting="clinic", at=clock.now()
        )
    assert "the medication history changed" in status.missing[0]


def test_unanswered_or_unknown_answers_show_errors_and_write_nothing(prescriber):
    patient = make_patient(prescriber)
    _, client = portal_login(prescriber, patient)
    data = answers(hypertension="sort of")
    del data["pregnant"]
    response = client.post(URL, data)
    assert response.status_code == 400
    assert b"Please choose an answer." in response.content
    assert b'id="id_pregnant-error"' in response.content
    assert b'id="id_hypertension-error"' in response.content
    assert intakes() == []
    with scopes_disabled():
        assert not AuditEvent.objects.filter(action="screening.intake.recorded").exists()


def test_the_service_keeps_staff_answers_with_the_care_team(prescriber):
    patient = make_patient(prescriber)
    account, _ = portal_login(prescriber, patient)
    with scope(organization=prescriber.organization):
        with pytest.raises(ValidationFailed) as refused:
            services.intake_record_portal(
                account=account, data={"medications_reconciled": True, "pregnant": False}
            )
        assert selectors.intake_current(patient) is None
    assert [e.field for e in refused.value.errors] == ["medications_reconciled"]


def test_a_recorded_liver_class_survives_a_plain_yes(prescriber):
    patient = make_patient(prescriber)
    with scope(organization=prescriber.organization):
        services.intake_record(
            actor=prescriber, patient=patient, data={"hepatic_impairment": "child_pugh_b"}
        )
    _, client = portal_login(prescriber, patient)
    page = client.get(URL).content.decode()
    assert re.search(r'name="hepatic_impairment" value="yes"[^>]*checked', page)
    assert client.post(URL, answers(hepatic_impairment="yes")).status_code == 302
    assert intakes()[-1].hepatic_impairment == "child_pugh_b"


def test_the_portal_intake_page_query_count_and_staff_have_no_portal(
    prescriber, members, django_assert_max_num_queries
):
    patient = make_patient(prescriber)
    with scope(organization=prescriber.organization):
        for drug in ("Sertraline", "Bupropion", "Lamotrigine"):
            chart.medication_add(actor=prescriber, patient=patient, data={"drug_name": drug})
    _, client = portal_login(prescriber, patient)
    # 11: one query finds the zone of the clinic treating the patient (portal times are local),
    # one reads the clinic's crisis numbers (Set-up > Patient portal).
    with django_assert_max_num_queries(11):
        assert client.get(URL).status_code == 200
    # A staff login opens no portal page.
    assert staff_client(members["prescriber"]).get(URL).status_code == 302
