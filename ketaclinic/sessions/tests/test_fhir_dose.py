"""FHIR MedicationAdministration is recorded through dose_administer: same gates, same caps."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
import time_machine
from django_scopes import scope

from conftest import api_client
from ketaclinic.sessions import services
from ketaclinic.sessions.tests.builders import session_prechecked

pytestmark = pytest.mark.django_db
T0 = datetime(2026, 3, 2, 15, 0, tzinfo=UTC)
FHIR = "application/fhir+json"


def administration(session: Any, mg: str) -> dict[str, Any]:
    return {
        "resourceType": "MedicationAdministration",
        "status": "in-progress",  # begun, not ended: what the clinic records
        "contained": [
            {
                "resourceType": "Medication",
                "id": "med",
                "code": {
                    "coding": [
                        {"system": "http://www.nlm.nih.gov/research/umls/rxnorm", "code": "6130"}
                    ]
                },
                "batch": {"lotNumber": "LOT-F1"},
            }
        ],
        "medicationReference": {"reference": "#med"},
        "subject": {"reference": f"Patient/{session.patient.public_id}"},
        "context": {"reference": f"Encounter/{session.public_id}"},
        "effectivePeriod": {"start": T0.isoformat()},
        "dosage": {
            "dose": {
                "value": float(mg),
                "unit": "mg",
                "system": "http://unitsofmeasure.org",
                "code": "mg",
            }
        },
    }


def test_a_dose_through_fhir_passes_the_same_gates(
    prescriber: Any, members: Any, patient_a: Any
) -> None:
    with time_machine.travel(T0, tick=False), scope(organization=prescriber.organization):
        session = session_prechecked(prescriber, patient_a)
    client = api_client(members["nurse"])
    with time_machine.travel(T0, tick=False):
        unsigned = client.post(
            "/fhir/r4/MedicationAdministration", administration(session, "40"), content_type=FHIR
        )
        assert unsigned.status_code == 422, unsigned.content
        assert unsigned.json()["resourceType"] == "OperationOutcome"
        with scope(organization=prescriber.organization):
            services.dose_order_sign(actor=prescriber, session=session)
        above = client.post(
            "/fhir/r4/MedicationAdministration", administration(session, "41"), content_type=FHIR
        )
        assert above.status_code == 422
        given = client.post(
            "/fhir/r4/MedicationAdministration", administration(session, "40"), content_type=FHIR
        )
        assert given.status_code == 201, given.content
        body = given.json()
        assert body["dosage"]["dose"]["code"] == "mg"
        assert body["contained"][0]["batch"]["lotNumber"] == "LOT-F1"
        assert body["contained"][0]["code"]["coding"][0]["code"] == "6130"
        found = client.get(
            f"/fhir/r4/MedicationAdministration?context=Encounter/{session.public_id}"
        )
        assert found.json()["total"] == 1
