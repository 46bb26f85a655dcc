"""Therapy visits booked through the calendar: the therapist opens the visit from the booked KAP
preparation or integration appointment; one visit per appointment, of the booked kind."""

from __future__ import annotations

from datetime import time, timedelta
from typing import Any

import pytest
from django_scopes import scope

from conftest import actor_for, staff_client
from ketaclinic.accounts.models import Clinic
from ketaclinic.core import clock
from ketaclinic.core.errors import Conflict, ValidationFailed
from ketaclinic.scheduling import services as scheduling
from ketaclinic.scheduling.models import AppointmentType
from ketaclinic.therapy import selectors, services
from ketaclinic.therapy.models import TherapyVisit

pytestmark = pytest.mark.django_db


@pytest.fixture
def booked(prescriber: Any, members: Any, kap: Any, org_a: Any) -> Any:
    with scope(organization=org_a):
        scheduling.appointment_types_seed(organization=org_a)
        scheduling.staff_hours_set(
            actor=actor_for(members["clinic_admin"]),
            membership=members["therapist"],
            clinic=Clinic.objects.get(),
            hours=[(day, time(7, 0), time(19, 0)) for day in range(7)],
        )
        kind = AppointmentType.objects.get(kind="kap_integration")
        return scheduling.appointment_book(
            actor=prescriber,
            patient=kap["patient"],
            appointment_type=kind,
            starts_at=clock.now() + timedelta(hours=1),
            clinician=members["therapist"],
            notify=False,
        )


def test_a_booked_integration_appointment_opens_its_visit(
    members: Any, therapist: Any, booked: Any, kap: Any, org_a: Any, traveller: Any
) -> None:
    traveller.shift(2 * 3600)  # the appointment's hour has come
    with scope(organization=org_a):
        assert selectors.booked_therapy_appointments(kap["patient"]) == [booked]
        with pytest.raises(ValidationFailed):
            services.visit_create(
                actor=therapist, patient=kap["patient"], kind="preparation", appointment=booked
            )
    page = staff_client(members["therapist"]).get(f"/therapy/patients/{kap['patient'].public_id}/")
    assert "Booked therapy appointments" in page.content.decode()
    opened = staff_client(members["therapist"]).post(
        f"/therapy/patients/{kap['patient'].public_id}/visits/",
        {
            "appointment": str(booked.public_id),
            "kind": "integration",
            "format": "individual",
            "modality": "in_person",
        },
    )
    assert opened.status_code == 302
    with scope(organization=org_a):
        visit = TherapyVisit.objects.get()
        assert visit.appointment_public_id == booked.public_id
        assert selectors.booked_therapy_appointments(kap["patient"]) == []
        with pytest.raises(Conflict):
            services.visit_create(
                actor=therapist, patient=kap["patient"], kind="integration", appointment=booked
            )
