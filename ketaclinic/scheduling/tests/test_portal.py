"""The patient moves and cancels their own visits in the portal, within the clinic's rules."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
import time_machine
from django.test import Client
from django_scopes import scope, scopes_disabled

from conftest import PASSWORD, actor_for, api_client, make_patient
from ketaclinic.consent import services as consent
from ketaclinic.core.errors import ValidationFailed
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


def test_the_patient_moves_a_visit_to_a_free_time_and_history_is_kept(
    portal_patient, django_assert_max_num_queries
):
    client, later = portal_patient["client"], portal_patient["later"]
    listing = client.get("/portal/appointments/").content.decode()
    assert "Change the time" in listing
    with django_assert_max_num_queries(20):  # one availability load for the whole window
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


def _open_prescriber(members, org_a):
    with time_machine.travel(NOW, tick=False), scope(organization=org_a):
        open_every_day(actor_for(members["clinic_admin"]), members["prescriber"])


def test_the_patient_books_a_follow_up_inside_the_clinics_rules(
    portal_patient, members, org_a, django_assert_max_num_queries
):
    _open_prescriber(members, org_a)
    client = portal_patient["client"]
    with time_machine.travel(NOW, tick=False):
        listing = client.get("/portal/appointments/").content.decode()
        assert "Book a follow-up" in listing
        assert "up to 24 hours before" in listing
        assert "up to 14 days ahead" in listing
        with django_assert_max_num_queries(20):
            page = client.get("/portal/appointments/book/").content.decode()
        assert "Follow-up" in page
        option = page.split('name="slot" value="', 1)[1].split('"', 1)[0]
        response = client.post("/portal/appointments/book/", {"type": "follow_up", "slot": option})
    assert response.status_code == 302
    with scopes_disabled():
        booked = Appointment.objects.get(appointment_type__kind="follow_up")
    assert booked.starts_at == datetime.fromisoformat(option.split("|")[0])
    assert (booked.source, booked.status) == ("portal", "booked")
    assert booked.clinician == members["prescriber"]
    assert booked.starts_at - NOW >= timedelta(hours=24)


def test_a_time_outside_the_clinics_rules_is_refused_and_nothing_is_written(
    portal_patient, members, org_a
):
    _open_prescriber(members, org_a)
    client = portal_patient["client"]
    doctor = members["prescriber"].user.public_id
    with time_machine.travel(NOW, tick=False):
        too_soon = client.post(
            "/portal/appointments/book/",
            {"type": "follow_up", "slot": f"{(NOW + timedelta(hours=3)).isoformat()}|{doctor}"},
        )
        too_far = client.post(
            "/portal/appointments/book/",
            {"type": "follow_up", "slot": f"{(NOW + timedelta(days=30)).isoformat()}|{doctor}"},
        )
        garbage = client.post("/portal/appointments/book/", {"slot": "next tuesday|"})
    assert too_soon.status_code == too_far.status_code == garbage.status_code == 400
    assert "at least 24 hours ahead" in too_soon.content.decode()
    assert "at most 14 days ahead" in too_far.content.decode()
    assert "Choose one of the times shown" in garbage.content.decode()
    with scopes_disabled():
        assert not Appointment.objects.filter(appointment_type__kind="follow_up").exists()
    # Dosing visits come from the treatment plan, never from the portal.
    with time_machine.travel(NOW, tick=False), scope(organization=org_a):
        with pytest.raises(ValidationFailed) as refused:
            services.portal_appointment_book(
                patient=portal_patient["later"].patient,
                appointment_type=types(org_a)["iv_infusion"],
                starts_at=NOW + timedelta(days=3),
                clinic=portal_patient["later"].clinic,
                clinician=None,
            )
    assert refused.value.errors[0].field == "appointment_type"


def test_the_clinic_publishes_a_new_cutoff_that_the_patient_sees_and_is_held_to(
    portal_patient, members
):
    admin = api_client(members["clinic_admin"])
    with time_machine.travel(NOW, tick=False):
        assert admin.get("/api/v1/scheduling/portal-policy").json()["change_cutoff_hours"] == 24
        denied = api_client(members["front_desk"]).put(
            "/api/v1/scheduling/portal-policy",
            {"change_cutoff_hours": 1, "horizon_days": 14},
            content_type="application/json",
        )
        assert denied.status_code == 403
        bad = admin.put(
            "/api/v1/scheduling/portal-policy",
            {"change_cutoff_hours": 0, "horizon_days": 14},
            content_type="application/json",
        )
        assert bad.status_code == 422
        published = admin.put(
            "/api/v1/scheduling/portal-policy",
            {"change_cutoff_hours": 200, "horizon_days": 30},
            content_type="application/json",
        )
        assert published.status_code == 200, published.content
        assert published.json()["version"] == 1
        assert published.json()["bookable_online"] == ["follow_up"]
        client = portal_patient["client"]
        assert "up to 200 hours before" in client.get("/portal/appointments/").content.decode()
        # The visit a week away (168 h) is now inside the cutoff: the patient is asked to call.
        later = portal_patient["later"]
        client.post(f"/portal/appointments/{later.public_id}/cancel/", {"reason": "travel"})
        page = client.get("/portal/appointments/").content.decode()
    with scopes_disabled():
        later.refresh_from_db()
    assert later.status == "booked"
    assert "up to 200 hours before; please call the clinic" in page
