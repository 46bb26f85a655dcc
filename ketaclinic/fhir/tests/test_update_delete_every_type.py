"""Every type that declares update and delete answers them (and each request stays within its
query pin, tests/query_pins.py): a PUT of the created resource moves its version, a DELETE
answers 204 and the read after it 410 Gone."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from conftest import api_client
from ketaclinic.fhir.registry import HANDLERS
from ketaclinic.fhir.tests import round_trip_resources as rich
from ketaclinic.fhir.tests.helpers import patient_json, post, put
from ketaclinic.fhir.tests.test_declared_search_params import generic_resource

pytestmark = pytest.mark.django_db
BASE = "/fhir/r4/"
BUILT: dict[str, Callable[[str], dict[str, Any]]] = {
    "Condition": rich.condition,
    "AllergyIntolerance": rich.allergy,
    "MedicationStatement": rich.medication_statement,
    "MedicationRequest": rich.medication_request,
    "Practitioner": lambda _: rich.practitioner(),
    "PractitionerRole": lambda _: rich.practitioner_role(),
    "Organization": lambda _: rich.organization(),
    "Medication": lambda _: rich.medication(),
    "Provenance": lambda patient: rich.provenance(f"Patient/{patient}"),
}
UPDATE_AND_DELETE = sorted(
    name
    for name, handler in HANDLERS.items()
    if {"update", "delete"} <= set(handler.interactions) and name != "Observation"
)


def _resource(resource_type: str, patient: str) -> dict[str, Any]:
    build = BUILT.get(resource_type)
    return build(patient) if build else generic_resource(resource_type, patient)


@pytest.mark.parametrize("resource_type", UPDATE_AND_DELETE)
def test_a_created_resource_is_updated_then_deleted(
    members: dict[str, Any], resource_type: str
) -> None:
    client = api_client(members["prescriber"])
    patient = post(client, BASE + "Patient", patient_json()).json()["id"]
    sent = _resource(resource_type, patient)
    created = post(client, BASE + resource_type, sent)
    assert created.status_code == 201, created.content
    resource_id = created.json()["id"]
    updated = put(client, BASE + f"{resource_type}/{resource_id}", {**sent, "id": resource_id,
                  "text": {"status": "generated", "div": "<div xmlns=\"http://www.w3.org/1999/xhtml\">Seen</div>"}})  # fmt: skip
    assert updated.status_code == 200, updated.content
    assert updated.json()["meta"]["versionId"] != created.json()["meta"]["versionId"]
    assert client.delete(BASE + f"{resource_type}/{resource_id}").status_code == 204
    assert client.get(BASE + f"{resource_type}/{resource_id}").status_code == 410
