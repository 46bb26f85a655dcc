"""FHIR Location/Schedule/Slot/Appointment on the calendar's services: a conflicting booking is a
409 OperationOutcome; cancel is a PUT with status cancelled."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
import time_machine
from django_scopes import scope

from conftest import actor_for, api_client, make_patient
from ketaclinic.scheduling.tests.helpers import chair, open_every_day, types

FHIR = "application/fhir+json"
NOW = datetime(2026, 3, 2, 15, 0, tzinfo=UTC)


@pytest.fixture
def calendar(members, org_a):
    with time_machine.travel(NOW, tick=False):
        with scope(organization=org_a):
            open_every_day(actor_for(members["clinic_admin"]), members["nurse"])
            types(org_a)
        yield


def test_book_a_free_slot_then_a_second_booking_conflicts(members, prescriber, calendar, org_a):
    client = api_client(members["front_desk"])
    seat = chair(org_a, 1)
    schedules = client.get(f"/fhir/r4/Schedule?actor=Location/{seat.public_id}").json()
    [entry] = schedules["entry"]
    assert entry["resource"]["actor"][0]["reference"] == f"Location/{seat.public_id}"
    assert client.get(f"/fhir/r4/Location/{seat.public_id}").json()["name"].endswith("Chair 1")

    slots = client.get(
        f"/fhir/r4/Slot?schedule=Schedule/{seat.public_id}&start=2026-03-03&status=free"
    ).json()
    first = slots["entry"][0]["resource"]
    assert first["status"] == "free"
    assert first["start"] == "2026-03-03T13:00:00Z"  # 7:00 in Chicago, the nurse's first hour

    def book(patient):
        return client.post(
            "/fhir/r4/Appointment",
            {
                "resourceType": "Appointment",
                "status": "booked",
                "slot": [{"reference": f"Slot/{first['id']}"}],
                "participant": [
                    {"actor": {"reference": f"Patient/{patient.public_id}"}, "status": "accepted"},
                    {"actor": {"reference": f"Location/{seat.public_id}"}, "status": "accepted"},
                ],
            },
            content_type=FHIR,
        )

    created = book(make_patient(prescriber))
    assert created.status_code == 201, created.content
    appointment = created.json()
    assert (appointment["status"], appointment["start"]) == ("booked", first["start"])

    clash = book(make_patient(prescriber, mrn="B2"))
    assert clash.status_code == 409
    outcome = clash.json()
    assert outcome["resourceType"] == "OperationOutcome"
    assert "booked at that time" in outcome["issue"][0]["diagnostics"]

    after = client.get(
        f"/fhir/r4/Slot?schedule=Schedule/{seat.public_id}&start=2026-03-03&status=free"
    ).json()
    assert first["id"] not in {e["resource"]["id"] for e in after.get("entry", [])}

    found = client.get(
        f"/fhir/r4/Appointment?patient={appointment['participant'][0]['actor']['reference']}&status=booked"
    ).json()
    assert found["total"] == 1
    cancelled = client.put(
        f"/fhir/r4/Appointment/{appointment['id']}",
        {**appointment, "status": "cancelled", "cancelationReason": {"text": "patient ill"}},
        content_type=FHIR,
    )
    assert cancelled.status_code == 200, cancelled.content
    assert cancelled.json()["cancelationReason"]["text"] == "patient ill"
