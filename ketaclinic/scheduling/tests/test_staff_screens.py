"""Staff screens for the rules, the visit types, the waitlist and click to move on the day view:
the same services as the JSON API, refusals shown beside the form, nothing written on bad input."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
import time_machine
from django_scopes import scope, scopes_disabled

from conftest import actor_for, make_patient, staff_client
from ketaclinic.scheduling import services
from ketaclinic.scheduling.models import (
    Appointment,
    AppointmentType,
    CapacityPolicy,
    PortalPolicy,
    WaitlistEntry,
)
from ketaclinic.scheduling.tests.helpers import open_every_day, types

NOW = datetime(2026, 3, 2, 15, 0, tzinfo=UTC)
TUESDAY_9 = datetime(2026, 3, 3, 15, 0, tzinfo=UTC)  # 09:00 in Chicago


@pytest.fixture
def clinic_day(members, org_a):
    admin = actor_for(members["clinic_admin"])
    with time_machine.travel(NOW, tick=False) as traveller, scope(organization=org_a):
        open_every_day(admin, members["nurse"], members["prescriber"])
        types(org_a)
        yield traveller


def test_the_admin_sets_the_ratio_the_portal_rules_and_a_price_on_screen(members, clinic_day):
    client = staff_client(members["clinic_admin"])
    page = client.get("/calendar/settings/").content.decode()
    assert "1 patient per nurse" in page
    assert "§2.4 [S] #46" in page
    assert "up to <strong>24 hours</strong>" in page

    assert (
        client.post("/calendar/settings/capacity/", {"patients_per_nurse": "2"}).status_code == 302
    )
    assert (
        client.post(
            "/calendar/settings/portal/", {"change_cutoff_hours": "48", "horizon_days": "21"}
        ).status_code
        == 302
    )
    bad = client.post(
        "/calendar/settings/portal/", {"change_cutoff_hours": "0", "horizon_days": "21"}
    )
    assert bad.status_code == 400
    assert "greater than or equal to 1" in bad.content.decode()

    row = client.post(
        "/calendar/settings/types/consult/",
        {"consult-duration_minutes": "45", "consult-bookable_online": "on",
         "consult-is_active": "on", "consult-public_price": "300"},
        HTTP_HX_REQUEST="true",
    )  # fmt: skip
    fragment = row.content.decode()
    assert row.status_code == 200
    assert "<html" not in fragment
    assert "Saved." in fragment
    short = client.post(
        "/calendar/settings/types/esketamine/",
        {"esketamine-duration_minutes": "60", "esketamine-is_active": "on"},
    )
    assert short.status_code == 400
    assert "at least 120 minutes" in short.content.decode()
    with scopes_disabled():
        assert [p.patients_per_nurse for p in CapacityPolicy.objects.all()] == [2]
        assert [(p.version, p.change_cutoff_hours) for p in PortalPolicy.objects.all()] == [(1, 48)]
        consult = AppointmentType.objects.get(kind="consult")
        assert (consult.duration_minutes, str(consult.public_price)) == (45, "300.00")
        assert AppointmentType.objects.get(kind="esketamine").duration_minutes == 140
    page = client.get("/calendar/settings/").content.decode()
    assert "2 patients per nurse" in page
    assert "version 1" in page
    # The front desk reads the rules but cannot change them.
    desk = staff_client(members["front_desk"])
    assert desk.get("/calendar/settings/").status_code == 200
    assert desk.post("/calendar/settings/capacity/", {"patients_per_nurse": "5"}).status_code == 403


def test_the_desk_puts_a_patient_on_the_waitlist_and_books_them_on_screen(
    members, prescriber, clinic_day, org_a
):
    patient = make_patient(prescriber, mrn="W-1", given_name="Wanda")
    client = staff_client(members["front_desk"])
    missing = client.post("/calendar/waitlist/", {"mrn": "NOPE", "appointment_type": "iv_infusion",
                                                  "earliest": "2026-03-03", "latest": "2026-03-10"})  # fmt: skip
    assert missing.status_code == 400
    assert "No patient has this MRN" in missing.content.decode()
    backwards = client.post("/calendar/waitlist/", {"mrn": "W-1", "appointment_type": "iv_infusion",
                                                    "earliest": "2026-03-10", "latest": "2026-03-03"})  # fmt: skip
    assert backwards.status_code == 400
    added = client.post("/calendar/waitlist/", {"mrn": "W-1", "appointment_type": "iv_infusion",
                                                "earliest": "2026-03-03", "latest": "2026-03-10"})  # fmt: skip
    assert added.status_code == 302
    assert "Wanda" in client.get("/calendar/waitlist/").content.decode()
    with scopes_disabled():
        entry = WaitlistEntry.objects.get()
    with scope(organization=org_a):
        services.appointment_book(
            actor=prescriber, patient=make_patient(prescriber, mrn="X"),
            appointment_type=types(org_a)["iv_infusion"], starts_at=TUESDAY_9,
        )  # fmt: skip
    prefix = f"w{entry.pk}"
    url = f"/calendar/waitlist/{entry.public_id}/book/"
    clash = client.post(url, {f"{prefix}-day": "2026-03-03", f"{prefix}-time": "10:00"})
    assert clash.status_code == 400
    assert "nurse" in clash.content.decode().lower()
    booked = client.post(url, {f"{prefix}-day": "2026-03-04", f"{prefix}-time": "10:00"})
    assert booked.status_code == 302
    with scopes_disabled():
        entry.refresh_from_db()
        assert entry.status == "booked"
        assert entry.appointment.patient == patient
    assert "Nobody is waiting" in client.get("/calendar/waitlist/").content.decode()


def test_a_patient_leaves_the_waitlist_with_a_reason_on_screen_and_through_the_api(
    members, prescriber, clinic_day, org_a
):
    from conftest import api_client, audit_count

    with scope(organization=org_a):
        kinds = types(org_a)
        entries = [
            services.waitlist_add(
                actor=actor_for(members["front_desk"]),
                patient=make_patient(prescriber, mrn=mrn, given_name=name),
                appointment_type=kinds["iv_infusion"],
                earliest=NOW.date(),
                latest=NOW.date() + timedelta(days=7),
            )
            for mrn, name in (("W-2", "Walter"), ("W-3", "Wilma"))
        ]
    client = staff_client(members["front_desk"])
    url = f"/calendar/waitlist/{entries[0].public_id}/remove/"
    page = client.post(url, {"reason": ""}, follow=True).content.decode()
    assert "Say why the patient leaves the waitlist" in page
    page = client.post(url, {"reason": "Booked at another clinic"}, follow=True).content.decode()
    assert "Walter" in page
    assert "is off the waitlist" in page
    assert f"wait-{entries[0].public_id}" not in page

    api = api_client(members["front_desk"])
    api_url = f"/api/v1/scheduling/waitlist/{entries[1].public_id}/remove"
    removed = api.post(api_url, {"reason": "No longer wants it"}, content_type="application/json")
    assert removed.status_code == 200, removed.content
    again = api.post(api_url, {"reason": "twice"}, content_type="application/json")
    assert again.status_code == 409
    with scopes_disabled():
        assert [e.status for e in WaitlistEntry.objects.order_by("pk")] == ["removed", "removed"]
    assert audit_count(action="scheduling.waitlist.removed") == 2


def test_click_to_move_on_the_day_view_refuses_a_conflict_and_moves_to_a_free_time(
    members, prescriber, clinic_day, org_a, django_assert_max_num_queries
):
    with scope(organization=org_a):
        iv = types(org_a)["iv_infusion"]
        first = services.appointment_book(
            actor=prescriber, patient=make_patient(prescriber, mrn="A", given_name="Alma"),
            appointment_type=iv, starts_at=TUESDAY_9,
        )  # fmt: skip
        services.appointment_book(
            actor=prescriber, patient=make_patient(prescriber, mrn="B"),
            appointment_type=iv, starts_at=TUESDAY_9 + timedelta(hours=4),
        )  # fmt: skip
    client = staff_client(members["front_desk"])
    day = client.get("/calendar/?date=2026-03-03").content.decode()
    assert f"move={first.public_id}" in day
    with django_assert_max_num_queries(25):
        page = client.get(f"/calendar/?date=2026-03-03&move={first.public_id}")
    html = page.content.decode()
    assert 'id="move-panel"' in html
    assert "Moving Alma" in html
    assert ">07:00 · Chair 1<" in html  # free before the other infusion
    assert ">14:00" not in html.split('id="move-slots"')[1].split("</div>")[0]

    refused = client.post(
        f"/calendar/appointments/{first.public_id}/move/",
        {"back": "day", "day": "2026-03-03", "time": "14:00", "chair": "1"},
    )
    assert refused.status_code == 409
    text = refused.content.decode()
    assert 'id="move-error"' in text
    assert "chair" in text.lower()
    with scopes_disabled():
        first.refresh_from_db()
        assert first.status == "booked"

    moved = client.post(
        f"/calendar/appointments/{first.public_id}/move/",
        {"back": "day", "day": "2026-03-03", "time": "07:00", "chair": "1"},
    )
    assert moved.status_code == 302
    assert moved["Location"].endswith("?date=2026-03-03")
    with scopes_disabled():
        first.refresh_from_db()
        new = Appointment.objects.get(rescheduled_from=first)
    assert (first.status, new.status) == ("rescheduled", "booked")
    assert new.starts_at == TUESDAY_9 - timedelta(hours=2)


def test_the_visit_page_shows_the_clinics_cancellation_policy(
    members, prescriber, clinic_day, org_a
):
    with scope(organization=org_a):
        soon = services.appointment_book(
            actor=prescriber, patient=make_patient(prescriber),
            appointment_type=types(org_a)["iv_infusion"], starts_at=NOW + timedelta(hours=3),
        )  # fmt: skip
    page = staff_client(members["front_desk"]).get(f"/calendar/appointments/{soon.public_id}/")
    policy = page.content.decode().split('id="cancellation-policy"')[1].split("</section>")[0]
    assert "cancel up to 24 hours before a visit" in policy
    assert "less than 24 hours away" in policy


def test_the_day_and_week_show_one_clinicians_visits(
    members, prescriber, clinic_day, org_a, django_assert_max_num_queries
):
    from conftest import make_member

    other = make_member(org_a, "prescriber", "dr-other")
    with scope(organization=org_a):
        open_every_day(actor_for(members["clinic_admin"]), other)
        for mrn, name, clinician in (("C1", "Cleo", members["prescriber"]), ("C2", "Otto", other)):
            services.appointment_book(
                actor=prescriber, patient=make_patient(prescriber, mrn=mrn, given_name=name),
                appointment_type=types(org_a)["follow_up"], starts_at=TUESDAY_9,
                clinician=clinician,
            )  # fmt: skip
    client = staff_client(members["front_desk"])
    everyone = client.get("/calendar/?date=2026-03-03").content.decode()
    assert "Cleo" in everyone
    assert "Otto" in everyone
    mine = f"clinician={members['prescriber'].user.public_id}"
    with django_assert_max_num_queries(20):
        day = client.get(f"/calendar/?date=2026-03-03&{mine}").content.decode()
    assert "Cleo" in day
    assert "Otto" not in day
    assert f"&amp;{mine}" in day  # the day and week links keep the choice
    week = client.get(f"/calendar/week/?date=2026-03-03&{mine}").content.decode()
    assert "Cleo" in week
    assert "Otto" not in week
    unknown = client.get("/calendar/?date=2026-03-03&clinician=not-a-person")
    assert unknown.status_code == 400
    assert "No such clinician" in unknown.content.decode()
