"""From the plan to the chair: the series proposed from the treatment plan, confirmed by a
scheduler, and check-in from the calendar opening the monitored session."""

from __future__ import annotations

from datetime import date, time, timedelta

from django_scopes import scope

from conftest import SESSION_DAY, actor_for, make_patient
from ketaclinic.scheduling import services
from ketaclinic.scheduling.models import Appointment
from ketaclinic.scheduling.tests.helpers import chair, open_every_day, types
from ketaclinic.sessions.models import TreatmentSession
from ketaclinic.sessions.tests.builders import make_plan, make_treatable, weigh


def test_the_iv_series_is_proposed_from_the_plan_and_confirmed(
    prescriber, members, traveller, org_a
):
    admin = actor_for(members["clinic_admin"])
    with scope(organization=org_a):
        open_every_day(admin, members["nurse"])
        iv = types(org_a)["iv_infusion"]
        patient = make_patient(prescriber)
        make_treatable(prescriber, patient, "iv-ketamine-induction")
        plan = make_plan(prescriber, patient)
        proposal = services.series_propose(
            actor=prescriber,
            plan=plan,
            appointment_type=iv,
            first_day=date(2026, 3, 4),
            wall_time=time(9),
            phases=["induction"],
        )
        visits = list(Appointment.objects.filter(series=proposal).order_by("starts_at"))
        assert [v.status for v in visits] == ["proposed"] * 6
        # Someone else takes the only nurse's attention at the 4th visit.
        other = make_patient(prescriber, mrn="X1")
        services.appointment_book(
            actor=prescriber,
            patient=other,
            appointment_type=iv,
            starts_at=visits[3].starts_at,
            chair=chair(org_a, 4),
        )
        result = services.series_confirm(actor=prescriber, proposal=proposal)
    assert len(result.booked) == 5
    [(left, reasons)] = result.refused
    assert left.pk == visits[3].pk
    assert reasons[0].code == "ratio"
    assert proposal.rules == [{"phase": "induction", "rrule": "FREQ=WEEKLY;BYDAY=MO,WE,FR;COUNT=6"}]


def test_check_in_from_the_calendar_opens_the_monitored_session(
    prescriber, members, traveller, org_a
):
    admin = actor_for(members["clinic_admin"])
    nurse = actor_for(members["nurse"])
    with scope(organization=org_a):
        open_every_day(admin, members["nurse"], start=time(0), end=time(23, 59))
        patient = make_patient(prescriber)
        make_treatable(prescriber, patient, "iv-ketamine-induction")
        weigh(prescriber, patient)
        make_plan(prescriber, patient)
        visit = services.appointment_book(
            actor=nurse,
            patient=patient,
            appointment_type=types(org_a)["iv_infusion"],
            starts_at=SESSION_DAY,
            chair=chair(org_a, 2),
        )
        checked = services.appointment_check_in(actor=nurse, appointment=visit)
        session = TreatmentSession.objects.get(public_id=checked.session_public_id)
    assert checked.status == "checked_in"
    assert session.chair == 2
    assert session.checked_in_at is not None
    assert session.patient_id == patient.pk
    assert visit.ends_at - visit.starts_at == timedelta(minutes=180)


def test_the_series_is_proposed_and_confirmed_from_the_screens(
    prescriber, members, traveller, org_a
):
    from conftest import staff_client

    with scope(organization=org_a):
        open_every_day(actor_for(members["clinic_admin"]), members["nurse"])
        types(org_a)
        patient = make_patient(prescriber)
        make_treatable(prescriber, patient, "iv-ketamine-induction")
        plan = make_plan(prescriber, patient)
    client = staff_client(members["prescriber"])
    chart = client.get(f"/patients/{patient.public_id}/plan/").content.decode()
    assert "Propose the series in the calendar" in chart
    response = client.post(
        f"/calendar/plans/{plan.public_id}/series/",
        {"appointment_type": "iv_infusion", "first_day": "2026-03-04", "wall_time": "09:00"},
    )
    assert response.status_code == 302
    page = client.get(response["Location"]).content.decode()
    assert page.count("Proposed") >= 6
    confirmed = client.post(response["Location"]).content.decode()
    assert "Booked" in confirmed
