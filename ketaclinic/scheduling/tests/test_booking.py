"""Every conflict rule is a hard stop in the booking service (SQLite and PostgreSQL)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
import time_machine
from django_scopes import scope

from conftest import actor_for, make_patient
from ketaclinic.core.errors import Conflict, ValidationFailed
from ketaclinic.scheduling import services
from ketaclinic.scheduling.models import Appointment
from ketaclinic.scheduling.tests.helpers import chair, open_every_day, types

NOW = datetime(2026, 3, 2, 15, 0, tzinfo=UTC)  # Monday 9:00 in Chicago
TUESDAY_9 = datetime(2026, 3, 3, 15, 0, tzinfo=UTC)  # 9:00 America/Chicago


@pytest.fixture
def desk(members, org_a):
    """Two nurses and the prescriber working 7:00-20:00 every day; the front desk books."""
    from conftest import make_member

    admin = actor_for(members["clinic_admin"])
    second_nurse = make_member(org_a, "nurse", username="nurse-two")
    with time_machine.travel(NOW, tick=False), scope(organization=org_a):
        open_every_day(admin, members["nurse"], second_nurse, members["prescriber"])
        kinds = types(org_a)
    return {
        "admin": admin,
        "desk": actor_for(members["front_desk"]),
        "types": kinds,
        "prescriber": members["prescriber"],
    }


@pytest.fixture
def now():
    with time_machine.travel(NOW, tick=False) as traveller:
        yield traveller


def book(ctx, patient, kind="iv_infusion", at=TUESDAY_9, **kw):
    with scope(organization=patient.organization):
        return services.appointment_book(
            actor=ctx["desk"],
            patient=patient,
            appointment_type=ctx["types"][kind],
            starts_at=at,
            **kw,
        )


def refused(ctx, patient, **kw) -> Conflict:
    with pytest.raises(Conflict) as caught:
        book(ctx, patient, **kw)
    return caught.value


def test_a_booked_chair_is_refused_for_an_overlapping_visit(desk, prescriber, now, org_a):
    ada, bob = make_patient(prescriber), make_patient(prescriber, mrn="B1")
    first = book(desk, ada, chair=chair(org_a, 1))
    assert first.ends_at - first.starts_at == timedelta(minutes=180)
    error = refused(desk, bob, chair=chair(org_a, 1), at=TUESDAY_9 + timedelta(hours=2))
    assert error.status == 409
    assert [e.field for e in error.errors] == ["chair"]
    assert "booked at that time" in error.detail
    # Right after the first visit ends, the chair is free again.
    book(desk, bob, chair=chair(org_a, 1), at=first.ends_at)


def test_a_chair_without_the_equipment_is_refused(desk, prescriber, now, org_a):
    seat = chair(org_a, 2)
    seat.capabilities = ["oral"]
    seat.save()
    error = refused(desk, make_patient(prescriber), kind="esketamine", chair=seat)
    assert "not set up" in error.detail


def test_without_a_chair_the_first_free_fitting_one_is_chosen_until_none_is_left(
    desk, prescriber, now, org_a
):
    booked = [book(desk, make_patient(prescriber, mrn=f"P{i}")).chair.number for i in range(2)]
    assert booked == [1, 2]
    # Two nurses at one patient each: the third overlapping monitored visit breaks the ratio.
    error = refused(desk, make_patient(prescriber, mrn="P3"))
    assert [e.field for e in error.errors] == ["starts_at"]
    assert "2 nurse(s) on duty" in error.detail
    assert "At 09:00 CST 3 patient(s)" in error.detail  # clinic A is in Chicago


def test_the_monitoring_ratio_is_the_clinics_published_policy(desk, prescriber, now, org_a):
    with scope(organization=org_a):
        services.capacity_policy_publish(
            actor=desk["admin"], clinic=chair(org_a, 1).clinic, patients_per_nurse=2
        )
    numbers = [book(desk, make_patient(prescriber, mrn=f"P{i}")).chair.number for i in range(4)]
    assert numbers == [1, 2, 3, 4]
    error = refused(desk, make_patient(prescriber, mrn="P5"))
    assert "No chair" in error.detail  # four chairs, all taken


def test_no_nurse_on_duty_means_no_monitored_visit(desk, prescriber, now):
    late = datetime(2026, 3, 4, 3, 0, tzinfo=UTC)  # 21:00 in Chicago, after every shift
    error = refused(desk, make_patient(prescriber), at=late)
    assert "0 nurse(s) on duty" in error.detail


def test_a_clinician_off_duty_or_on_leave_or_busy_is_refused(desk, prescriber, now, org_a):
    ada = make_patient(prescriber)
    clinician = desk["prescriber"]
    early = datetime(2026, 3, 3, 12, 0, tzinfo=UTC)  # 6:00 in Chicago
    error = refused(desk, ada, kind="consult", at=early, clinician=clinician)
    assert "not working" in error.detail
    with scope(organization=org_a):
        services.time_off_add(
            actor=desk["admin"],
            membership=clinician,
            starts_at=TUESDAY_9 - timedelta(hours=1),
            ends_at=TUESDAY_9 + timedelta(hours=4),
            reason="conference",
        )
    assert "not working" in refused(desk, ada, kind="consult", clinician=clinician).detail
    wednesday = TUESDAY_9 + timedelta(days=1)
    book(desk, ada, kind="consult", at=wednesday, clinician=clinician)
    error = refused(
        desk,
        make_patient(prescriber, mrn="B2"),
        kind="follow_up",
        at=wednesday + timedelta(minutes=30),
        clinician=clinician,
    )
    assert "another appointment" in error.detail


def test_a_visit_that_needs_a_clinician_names_one(desk, prescriber, now):
    with pytest.raises(ValidationFailed) as caught:
        book(desk, make_patient(prescriber), kind="consult")
    assert caught.value.errors[0].field == "clinician"


@pytest.mark.parametrize(
    ("at", "field"),
    [
        (datetime(2026, 3, 3, 9, 0), "starts_at"),  # no time zone
        (NOW - timedelta(days=1), "starts_at"),  # the past
        (NOW + timedelta(days=5000), "starts_at"),  # absurd
    ],
)
def test_bad_times_are_refused_and_nothing_is_written(desk, prescriber, now, at, field):
    patient = make_patient(prescriber)
    with pytest.raises(ValidationFailed) as caught:
        book(desk, patient, at=at)
    assert caught.value.errors[0].field == field
    with scope(organization=patient.organization):
        assert not Appointment.objects.exists()


def test_esketamine_never_holds_its_chair_under_two_hours(desk, org_a):
    with scope(organization=org_a), pytest.raises(ValidationFailed, match="120 minutes"):
        services.appointment_type_update(
            actor=desk["admin"],
            appointment_type=desk["types"]["esketamine"],
            duration_minutes=90,
            bookable_online=False,
        )


def test_rescheduling_keeps_the_old_visit_as_history(desk, prescriber, now, org_a):
    ada, bob = make_patient(prescriber), make_patient(prescriber, mrn="B1")
    first = book(desk, ada, chair=chair(org_a, 1))
    book(desk, bob, chair=chair(org_a, 2), at=TUESDAY_9 + timedelta(days=1))
    with scope(organization=org_a):
        # Into an occupied chair: refused, and the original booking stands.
        with pytest.raises(Conflict):
            services.appointment_reschedule(
                actor=desk["desk"],
                appointment=first,
                starts_at=TUESDAY_9 + timedelta(days=1),
                chair=chair(org_a, 2),
            )
        first.refresh_from_db()
        assert first.status == "booked"
        moved = services.appointment_reschedule(
            actor=desk["desk"],
            appointment=first,
            starts_at=TUESDAY_9 + timedelta(hours=1),
            chair=chair(org_a, 1),  # overlaps only itself
            reason="patient asked",
        )
        first.refresh_from_db()
    assert (first.status, first.status_reason) == ("rescheduled", "patient asked")
    assert moved.rescheduled_from_id == first.pk
    assert moved.status == "booked"


def test_cancel_needs_a_reason_and_frees_the_chair(desk, prescriber, now, org_a):
    ada = make_patient(prescriber)
    visit = book(desk, ada, chair=chair(org_a, 1))
    with scope(organization=org_a):
        with pytest.raises(ValidationFailed):
            services.appointment_cancel(actor=desk["desk"], appointment=visit, reason=" ")
        services.appointment_cancel(actor=desk["desk"], appointment=visit, reason="ill")
    book(desk, make_patient(prescriber, mrn="B1"), chair=chair(org_a, 1))


def test_a_no_show_is_recorded_only_once_the_visit_began(desk, prescriber, now, org_a):
    visit = book(desk, make_patient(prescriber), chair=chair(org_a, 1))
    with scope(organization=org_a):
        with pytest.raises(Conflict, match="not started"):
            services.appointment_no_show(actor=desk["desk"], appointment=visit, reason="absent")
        now.move_to(TUESDAY_9 + timedelta(minutes=20))
        done = services.appointment_no_show(actor=desk["desk"], appointment=visit, reason="absent")
    assert (done.status, done.status_reason) == ("no_show", "absent")


def test_a_researcher_cannot_book(members, desk, prescriber, now):
    from ketaclinic.core.errors import Forbidden

    with scope(organization=prescriber.organization), pytest.raises(Forbidden):
        services.appointment_book(
            actor=actor_for(members["researcher"]),
            patient=make_patient(prescriber),
            appointment_type=desk["types"]["iv_infusion"],
            starts_at=TUESDAY_9,
        )


def test_the_confirmation_email_carries_a_calendar_file(
    desk, prescriber, now, org_a, smtp_inbox, django_capture_on_commit_callbacks
):
    from ketaclinic.messaging import services as messaging

    with scope(organization=org_a):
        messaging.contact_policy_set(
            actor=desk["admin"], email_allowed_by_default=True, sms_allowed_by_default=False
        )
    ada = make_patient(prescriber, email="ada@example.org")
    with django_capture_on_commit_callbacks(execute=True):
        visit = book(desk, ada, chair=chair(org_a, 1))
    [mail] = smtp_inbox.to("ada@example.org")
    assert "Tuesday 3 March 2026 at 9:00 AM CST" in mail.get_body(("plain",)).get_content()
    [ics] = [p for p in mail.iter_attachments() if p.get_content_type() == "text/calendar"]
    text = ics.get_content()
    assert f"UID:{visit.public_id}@ketaclinic" in text
    assert "DTSTART:20260303T150000Z" in text
    assert "ketamine" not in text.lower()  # minimum necessary

    # The reminder goes out once, a day ahead, with the same calendar event.
    with django_capture_on_commit_callbacks(execute=True):
        assert services.reminders_send_due(now=NOW + timedelta(hours=1)) == 1
        assert services.reminders_send_due(now=NOW + timedelta(hours=2)) == 0
    reminders = [m for m in smtp_inbox.to("ada@example.org") if m["Subject"].startswith("Reminder")]
    assert len(reminders) == 1
