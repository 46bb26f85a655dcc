"""Trajectories and baselines use the real treatment sessions (no stand-ins)."""

from datetime import timedelta

import pytest
import time_machine
from django.utils import timezone
from django_scopes import scope

from conftest import make_patient, staff_client
from ketaclinic.measures import selectors, services
from ketaclinic.sessions import services as session_services
from ketaclinic.sessions.tests.builders import session_prechecked

pytestmark = pytest.mark.django_db

PHQ9 = {str(i): 2 for i in range(1, 9)} | {"9": 0}  # total 16


def _record(actor, patient, answers):
    return services.response_record(
        actor=actor, patient=patient, instrument_id="phq9", answers=answers
    )


def test_a_dosed_session_defines_the_baseline_and_marks_the_chart(prescriber, members):
    patient = make_patient(prescriber)
    start = timezone.now() - timedelta(days=10)
    with scope(organization=prescriber.organization):
        with time_machine.travel(start, tick=False):
            _record(prescriber, patient, PHQ9)
        with time_machine.travel(start + timedelta(days=1), tick=False):
            session = session_prechecked(prescriber, patient)
            assert selectors.booked_session_times(patient) == [session.scheduled_at]
            assert selectors.treatment_session_dates(patient) == []  # booked, not yet dosed
            order = session_services.dose_order_sign(actor=prescriber, session=session)
            session_services.dose_administer(
                actor=prescriber, session=session, dose_mg=order.dose_mg, lot_number="L1"
            )
        session.refresh_from_db()
        assert selectors.treatment_session_dates(patient) == [session.dose_started_at]
        with time_machine.travel(start + timedelta(days=8), tick=False):
            _record(prescriber, patient, {str(i): 0 for i in range(1, 10)})
    page = staff_client(members["prescriber"]).get(f"/patients/{patient.public_id}/measures/")
    html = page.content.decode()
    assert page.status_code == 200
    assert html.count('<line class="session"') == 1  # one dosed session, one marker
    assert '<dd class="baseline">16 (' in html  # the score before the first dose
