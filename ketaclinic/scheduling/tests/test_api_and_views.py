"""The calendar through the JSON API and the staff screens (same services, same refusals)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
import time_machine
from django_scopes import scope

from conftest import actor_for, api_client, make_member, make_patient, staff_client
from ketaclinic.scheduling import services
from ketaclinic.scheduling.models import Appointment
from ketaclinic.scheduling.tests.helpers import chair, open_every_day, types

NOW = datetime(2026, 3, 2, 15, 0, tzinfo=UTC)
TUESDAY_9 = datetime(2026, 3, 3, 15, 0, tzinfo=UTC)


@pytest.fixture
def clinic_day(members, org_a):
    admin = actor_for(members["clinic_admin"])
    with time_machine.travel(NOW, tick=False) as traveller, scope(organization=org_a):
        open_every_day(admin, members["nurse"], members["prescriber"])
        types(org_a)
        yield traveller


def test_book_move_and_cancel_through_the_api(members, prescriber, clinic_day, outsider):
    patient = make_patient(prescriber)
    client = api_client(members["front_desk"])
    booked = client.post(
        "/api/v1/scheduling/appointments",
        {"patient": str(patient.public_id), "appointment_type": "iv_infusion",
         "starts_at": TUESDAY_9.isoformat(), "chair": 1},
        content_type="application/json",
    )  # fmt: skip
    assert booked.status_code == 201, booked.content
    body = booked.json()
    assert (body["chair"], body["status"]) == (1, "booked")

    clash = client.post(
        "/api/v1/scheduling/appointments",
        {"patient": str(make_patient(prescriber, mrn="B2").public_id),
         "appointment_type": "iv_infusion", "starts_at": TUESDAY_9.isoformat(), "chair": 1},
        content_type="application/json",
    )  # fmt: skip
    assert clash.status_code == 409
    assert {e["field"] for e in clash.json()["errors"]} == {"chair", "starts_at"}

    moved = client.post(
        f"/api/v1/scheduling/appointments/{body['id']}/reschedule",
        {"starts_at": (TUESDAY_9 + timedelta(days=1)).isoformat(), "reason": "asked"},
        content_type="application/json",
    )
    assert moved.status_code == 201
    assert moved.json()["rescheduled_from"] == body["id"]
    old = client.get(f"/api/v1/scheduling/appointments/{body['id']}").json()
    assert (old["status"], old["status_reason"]) == ("rescheduled", "asked")

    cancelled = client.post(
        f"/api/v1/scheduling/appointments/{moved.json()['id']}/cancel",
        {"reason": "feeling better"},
        content_type="application/json",
    )
    assert cancelled.json()["status"] == "cancelled"
    assert (
        api_client(outsider).get(f"/api/v1/scheduling/appointments/{body['id']}").status_code == 404
    )
    assert api_client(members["researcher"]).get("/api/v1/scheduling/types").status_code == 403


def test_free_slots_skip_booked_chairs_and_the_nurse_ratio(members, prescriber, clinic_day, org_a):
    client = api_client(members["front_desk"])
    day = "2026-03-03"
    before = client.get(f"/api/v1/scheduling/free-slots?appointment_type=iv_infusion&day={day}")
    assert before.status_code == 200
    starts = [s["starts_at"] for s in before.json()]
    assert starts[0] == "2026-03-03T07:00:00-06:00"  # the nurse's shift opens at 7:00
    assert starts[-1] == "2026-03-03T17:00:00-06:00"  # a 3-hour visit must end by 20:00
    with scope(organization=org_a):
        services.appointment_book(
            actor=actor_for(members["front_desk"]), patient=make_patient(prescriber),
            appointment_type=types(org_a)["iv_infusion"], starts_at=TUESDAY_9,
        )  # fmt: skip
    after = client.get(f"/api/v1/scheduling/free-slots?appointment_type=iv_infusion&day={day}")
    taken = {s["starts_at"] for s in before.json()} - {s["starts_at"] for s in after.json()}
    # One nurse at one patient: nothing overlapping 9:00-12:00 is free any more.
    assert min(taken) == "2026-03-03T07:00:00-06:00"
    assert max(taken) == "2026-03-03T11:45:00-06:00"
    assert "2026-03-03T12:00:00-06:00" not in taken


def test_the_day_view_shows_a_column_per_chair_with_bounded_queries(
    members, prescriber, clinic_day, org_a, django_assert_max_num_queries
):
    with scope(organization=org_a):
        services.capacity_policy_publish(
            actor=actor_for(members["clinic_admin"]), clinic=chair(org_a, 1).clinic,
            patients_per_nurse=10,
        )  # fmt: skip
        nurses = [make_member(org_a, "nurse", f"n{i}") for i in range(3)]
        open_every_day(actor_for(members["clinic_admin"]), *nurses)
        for i in range(12):
            services.appointment_book(
                actor=prescriber, patient=make_patient(prescriber, mrn=f"D{i}"),
                appointment_type=types(org_a)["follow_up"],
                starts_at=TUESDAY_9 + timedelta(minutes=30 * i),
                clinician=members["prescriber"],
            )  # fmt: skip
    client = staff_client(members["front_desk"])
    with django_assert_max_num_queries(20):
        page = client.get("/calendar/?date=2026-03-03")
    html = page.content.decode()
    assert page.status_code == 200
    assert html.count('class="card calendar-column"') == 5  # four chairs and the rooms
    assert html.count("Follow-up") >= 12
    assert "09:00–09:30" in html


def test_bad_input_on_the_booking_form_is_shown_next_to_the_field(members, clinic_day):
    client = staff_client(members["front_desk"])
    response = client.post(
        "/calendar/book/",
        {"mrn": "NOPE", "appointment_type": "iv_infusion", "day": "2026-03-03", "time": "09:00"},
    )
    assert response.status_code == 400
    assert "No patient has this MRN" in response.content.decode()
    response = client.post("/calendar/book/", {"mrn": "", "appointment_type": "iv_infusion"})
    assert response.status_code == 400
    with scope(organization=members["front_desk"].organization):
        assert not Appointment.objects.exists()


def test_booking_from_the_calendar_form(members, prescriber, clinic_day):
    patient = make_patient(prescriber, mrn="MRN-77")
    client = staff_client(members["front_desk"])
    response = client.post(
        "/calendar/book/",
        {"mrn": "MRN-77", "appointment_type": "iv_infusion", "day": "2026-03-03", "time": "09:00"},
    )
    assert response.status_code == 302
    page = client.get(response["Location"])
    assert patient.full_name in page.content.decode()


def test_the_calendar_settings_and_the_waitlist_through_the_api(
    members, prescriber, clinic_day, org_a
):
    """The JSON routes behind the settings screens: a nurse's week, time off, the nurse ratio,
    a waitlist entry and a plan's series proposal, each answered and visible afterwards."""
    from ketaclinic.sessions.tests.builders import make_plan, make_treatable

    admin = api_client(members["clinic_admin"])
    nurse = str(members["nurse"].user.public_id)
    week = admin.put(
        "/api/v1/scheduling/hours",
        {"staff": nurse, "hours": [{"weekday": 0, "start": "08:00", "end": "16:00"}]},
        content_type="application/json",
    )
    assert week.status_code == 200, week.content
    assert week.json() == [{"weekday": 0, "start": "08:00:00", "end": "16:00:00"}]
    off = admin.post(
        "/api/v1/scheduling/time-off",
        {"staff": nurse, "starts_at": "2026-03-09T14:00:00Z", "ends_at": "2026-03-09T22:00:00Z",
         "reason": "training"},
        content_type="application/json",
    )  # fmt: skip
    assert off.status_code == 201, off.content
    ratio = admin.post(
        "/api/v1/scheduling/capacity", {"patients_per_nurse": 3}, content_type="application/json"
    )
    assert ratio.status_code == 201, ratio.content
    assert ratio.json()["patients_per_nurse"] == 3
    patient = make_patient(prescriber)
    desk = api_client(members["front_desk"])
    waiting = desk.post(
        "/api/v1/scheduling/waitlist",
        {"patient": str(patient.public_id), "appointment_type": "iv_infusion",
         "earliest": "2026-03-04", "latest": "2026-03-20"},
        content_type="application/json",
    )  # fmt: skip
    assert waiting.status_code == 201, waiting.content
    assert [e["id"] for e in desk.get("/api/v1/scheduling/waitlist").json()] == [
        waiting.json()["id"]
    ]
    with scope(organization=org_a):
        make_treatable(prescriber, patient, "iv-ketamine-induction")
        plan = make_plan(prescriber, patient)
    series = api_client(members["prescriber"]).post(
        "/api/v1/scheduling/series",
        {"plan": str(plan.public_id), "appointment_type": "iv_infusion",
         "first_day": "2026-03-04", "wall_time": "09:00"},
        content_type="application/json",
    )  # fmt: skip
    assert series.status_code == 201, series.content
