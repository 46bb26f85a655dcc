"""The patient moves and cancels their own visits in the portal, within the clinic's rules."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
import time_machine
from django.test import Client
from django_scopes import scope, scopes_disabled

from conftest import PASSWORD, actor_for, make_patient
from ketaclinic.consent import services as consent
from ketaclinic.scheduling import services
from ketaclinic.scheduling.models import Appointment
from ketaclinic.scheduling.tests.helpers import open_every_day, types

NOW = datetime(2026, 3, 2, 15, 0, tzinfo=UTC)


@pytest.fixture
def portal_patient(members, prescriber, org_a):
    with time_machine.travel(NOW, tick=False) as traveller:
        with scope(organization=org_a):
            open_every_day(actor_for(members["clinic_admin"]), members["nurse"])
            kinds = types(org_a)
            patient = make_patient(prescriber)
            account, token = consent.portal_invite(actor=prescriber, patient=patient)
        consent.portal_activate(token=token, password=PASSWORD)
        client = Client()
        client.post("/portal/login/", {"username": account.user.username, "password": PASSWORD})
        with scope(organization=org_a):
            tomorrow = services.appointment_book(
                actor=prescriber, patient=patient, appointment_type=kinds["iv_infusion"],
                starts_at=NOW + timedelta(hours=23),
            )  # fmt: skip
            next_week = services.appointment_book(
                actor=prescriber, patient=patient, appointment_type=kinds["iv_infusion"],
                starts_at=NOW + timedelta(days=7),
            )  # fmt: skip
        yield {"client": client, "soon": tomorrow, "later": next_week, "t": traveller}


def test_the_patient_moves_a_visit_to_a_free_time_and_history_is_kept(portal_patient):
    client, later = portal_patient["client"], portal_patient["later"]
    listing = client.get("/portal/appointments/").content.decode()
    assert "Change the time" in listing
    page = client.get(f"/portal/appointments/{later.public_id}/move/").content.decode()
    option = page.split('name="starts_at" value="', 1)[1].split('"', 1)[0]
    response = client.post(f"/portal/appointments/{later.public_id}/move/", {"starts_at": option})
    assert response.status_code == 302
    with scopes_disabled():
        later.refresh_from_db()
        moved = Appointment.objects.get(rescheduled_from=later)
    assert later.status == "rescheduled"
    assert moved.starts_at == datetime.fromisoformat(option)
    assert moved.source == "portal"


def test_within_24_hours_the_patient_is_asked_to_call(portal_patient):
    client, soon = portal_patient["client"], portal_patient["soon"]
    client.post(f"/portal/appointments/{soon.public_id}/cancel/", {"reason": "ill"})
    with scopes_disabled():
        soon.refresh_from_db()
    assert soon.status == "booked"
    page = client.get("/portal/appointments/", follow=True).content.decode()
    assert "please call the clinic" in page


def test_the_patient_cancels_a_later_visit(portal_patient):
    client, later = portal_patient["client"], portal_patient["later"]
    client.post(f"/portal/appointments/{later.public_id}/cancel/", {"reason": "travel"})
    with scopes_disabled():
        later.refresh_from_db()
    assert (later.status, later.status_reason) == ("cancelled", "travel")


def test_another_patients_visit_is_not_found(portal_patient, prescriber, org_a):
    with scope(organization=org_a):
        other = make_patient(prescriber, mrn="OTHER")
        theirs = services.appointment_book(
            actor=prescriber, patient=other, appointment_type=types(org_a)["iv_infusion"],
            starts_at=NOW + timedelta(days=9),
        )  # fmt: skip
    response = portal_patient["client"].get(f"/portal/appointments/{theirs.public_id}/move/")
    assert response.status_code == 404
