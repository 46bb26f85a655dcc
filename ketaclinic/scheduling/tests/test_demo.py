"""`ketaclinic demo` leaves a calendar the front desk can book: free slots for 14 days."""

from __future__ import annotations

from datetime import timedelta
from zoneinfo import ZoneInfo

from django_scopes import scope

from ketaclinic.core import clock
from ketaclinic.demo.generator import build_demo
from ketaclinic.messaging.selectors import contact_policy
from ketaclinic.scheduling import selectors
from ketaclinic.scheduling.models import Appointment, AppointmentType


def test_the_demo_has_bookable_chairs_for_the_next_14_days(db):
    result = build_demo(patients=8)
    organization = result.organization
    with scope(organization=organization):
        clinic = organization.clinics.get()
        iv = AppointmentType.objects.get(kind="iv_infusion")
        today = clock.now().astimezone(ZoneInfo(clinic.time_zone)).date()
        weekdays = [
            today + timedelta(days=d)
            for d in range(1, 15)
            if (today + timedelta(days=d)).weekday() < 5
        ]
        for day in weekdays:
            assert selectors.free_slots(clinic, iv, day), day
        assert Appointment.objects.filter(status="booked").exists()
        assert contact_policy(organization).email_allowed_by_default is True
