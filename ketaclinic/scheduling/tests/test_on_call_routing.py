"""In a network of clinics an escalated safety alert goes to the on-call clinician of the clinic
that sees the patient (their latest session or visit), not to every clinic's."""

from __future__ import annotations

from typing import Any

import pytest
from django_scopes import scope

from conftest import make_member, make_patient
from ketaclinic.accounts.models import Clinic
from ketaclinic.accounts.site_setup import clinic_create, clinic_update
from ketaclinic.messaging.services import on_call_recipients, patient_clinic
from ketaclinic.scheduling.tests.test_booking import book, desk, now  # noqa: F401 (fixtures)

pytestmark = pytest.mark.django_db


def on_call(admin: Any, clinic: Clinic, username: str, email: str, phone: str) -> Any:
    doctor = make_member(admin.organization, "prescriber", username=username).user
    doctor.email = email
    doctor.save(update_fields=["email"])
    data = {"on_call_clinician": doctor.username, "escalation_phone": phone}
    return clinic_update(actor=admin, clinic=clinic, data=data)


def test_the_patients_clinic_is_called_and_every_clinic_when_it_is_unknown(
    desk: Any,  # noqa: F811 (fixtures imported above)
    prescriber: Any,
    now: Any,  # noqa: F811
    org_a: Any,
) -> None:
    admin = desk["admin"]
    with scope(organization=org_a):
        main = Clinic.objects.get(organization=org_a)
        north = clinic_create(actor=admin, data={"name": "A North", "time_zone": "America/Chicago"})
        on_call(admin, main, "dr-main", "main@clinic.example", "+13125550100")
        on_call(admin, north, "dr-north", "north@clinic.example", "+13125550199")
        seen = make_patient(prescriber, mrn="SEEN1")
        new = make_patient(prescriber, mrn="NEW1")
        book(desk, seen)  # clinic A's main site is the one with opening hours
        assert patient_clinic(seen) == main
        assert patient_clinic(new) is None

        only_main = on_call_recipients(org_a, "nurse", clinic=patient_clinic(seen))
        everyone = on_call_recipients(org_a, "nurse", clinic=patient_clinic(new))
    assert [address for _, address, _ in only_main] == ["main@clinic.example", "+13125550100"]
    assert {address for _, address, _ in everyone} == {
        "main@clinic.example",
        "+13125550100",
        "north@clinic.example",
        "+13125550199",
    }
