"""A patient answers a self-report measure through a one-time link: no account, once, in time."""

from __future__ import annotations

from datetime import timedelta

import pytest
import time_machine
from django.test import Client
from django_scopes import scope

from conftest import audit_count, make_patient
from ketaclinic.core import clock
from ketaclinic.core.models import OneTimeLink
from ketaclinic.measures import services
from ketaclinic.measures.models import QuestionnaireResponse, SafetyAlert
from ketaclinic.measures.tests.builders import phq9

pytestmark = pytest.mark.django_db


def issue(actor, patient, language="en", instrument_id="phq9"):
    with scope(organization=actor.organization):
        issued = services.measure_link_create(
            actor=actor, patient=patient, instrument_id=instrument_id, language=language
        )
    return f"/portal/m/{issued.token}/"


def form_data(answers):
    return {f"item_{k}": str(v) for k, v in answers.items()}


def test_a_patient_completes_phq9_once_and_item_9_raises_an_alert(prescriber):
    patient = make_patient(prescriber)
    url = issue(prescriber, patient)
    client = Client()
    page = client.get(url)
    assert page.status_code == 200
    assert patient.family_name.encode() not in page.content  # no identifiers on a link page
    before = audit_count(action="measures.response.recorded", channel="portal")
    done = client.post(url, form_data(phq9(item9=1)))
    assert done.status_code == 200
    assert b"portal-thanks" in done.content
    with scope(organization=prescriber.organization):
        response = QuestionnaireResponse.objects.get()
        alert = SafetyAlert.objects.get()
    assert response.respondent == "patient_link"
    assert response.source == "patient"
    assert alert.responsible == prescriber.user
    assert audit_count(action="measures.response.recorded", channel="portal") == before + 1
    reused = client.get(url)
    assert reused.status_code == 410
    assert b"already been used" in reused.content
    assert client.post(url, form_data(phq9())).status_code == 410


def test_spanish_is_offered_where_the_definition_has_it(prescriber):
    patient = make_patient(prescriber)
    page = Client().get(issue(prescriber, patient, language="es")).content.decode()
    assert '<html lang="es">' in page
    assert "Ningún día" in page
    english = Client().get(issue(prescriber, patient, language="es") + "?lang=en").content.decode()
    assert "Not at all" in english


def test_an_expired_link_is_refused_and_writes_nothing(prescriber):
    patient = make_patient(prescriber)
    url = issue(prescriber, patient)
    with time_machine.travel(clock.now() + services.LINK_TTL + timedelta(minutes=1)):
        response = Client().post(url, form_data(phq9()))
    assert response.status_code == 410
    assert b"expired" in response.content
    with scope(organization=prescriber.organization):
        assert not QuestionnaireResponse.objects.exists()


def test_a_forged_or_garbled_token_is_404(prescriber):
    assert Client().get("/portal/m/not-a-token/").status_code == 404
    patient = make_patient(prescriber)
    url = issue(prescriber, patient)
    assert Client().get(url[:-3] + "x/").status_code == 404


def test_a_missing_answer_shows_the_item_and_keeps_the_link(prescriber):
    patient = make_patient(prescriber)
    url = issue(prescriber, patient)
    answers = phq9()
    del answers["5"]
    response = Client().post(url, form_data(answers))
    assert response.status_code == 400
    assert b'id="id_item_5-error"' in response.content
    with scope(organization=prescriber.organization):
        assert OneTimeLink.objects.get().used_at is None


def test_only_the_hash_of_the_token_is_stored(prescriber):
    patient = make_patient(prescriber)
    url = issue(prescriber, patient)
    secret = url.split("/")[3].split(":")[0]
    with scope(organization=prescriber.organization):
        link = OneTimeLink.objects.get()
    assert secret not in link.token_hash
    assert link.payload == {"instrument_id": "phq9", "language": "en"}


def test_a_schedule_creates_due_links_and_moves_on(prescriber):
    patient = make_patient(prescriber)
    with scope(organization=prescriber.organization):
        schedule = services.schedule_create(
            actor=prescriber, patient=patient, instrument_id="phq9", cadence="weekly"
        )
    now = clock.now()
    assert len(services.schedules_send_due(now=now + timedelta(minutes=1))) == 1
    assert services.schedules_send_due(now=now + timedelta(days=1)) == []
    with scope(organization=prescriber.organization):
        schedule.refresh_from_db()
        assert schedule.sent_count == 1
        assert schedule.next_due_at == schedule.starts_at + timedelta(days=7)
        assert OneTimeLink.objects.count() == 1
    from ketaclinic.measures.tasks import schedules_send_due_task

    with time_machine.travel(now + timedelta(days=7, minutes=1)):
        schedules_send_due_task.enqueue()
    with scope(organization=prescriber.organization):
        assert OneTimeLink.objects.count() == 2


def test_months_schedule_ends_after_six_months(prescriber):
    patient = make_patient(prescriber)
    with scope(organization=prescriber.organization):
        schedule = services.schedule_create(
            actor=prescriber, patient=patient, instrument_id="gad7", cadence="months_1_3_6"
        )
    start = schedule.starts_at
    assert schedule.next_due_at == start + timedelta(days=30)
    for days in (30, 91, 182):
        assert len(services.schedules_send_due(now=start + timedelta(days=days))) == 1
    with scope(organization=prescriber.organization):
        schedule.refresh_from_db()
    assert schedule.is_active is False
