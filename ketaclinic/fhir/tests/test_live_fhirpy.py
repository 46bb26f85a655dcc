"""A real FHIR client (fhirpy) against a live server: create, post vitals, search, page, read."""

from __future__ import annotations

from typing import Any

import pytest
from fhir.resources.R4B.bundle import Bundle
from fhir.resources.R4B.observation import Observation
from fhir.resources.R4B.patient import Patient
from fhirpy import SyncFHIRClient

from conftest import make_member
from ketaclinic.accounts.services import token_create
from ketaclinic.fhir.tests.helpers import bp_json, patient_json, weight_json

pytestmark = [pytest.mark.live, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def fhir_client(live_server: Any, org_a: Any) -> SyncFHIRClient:
    membership = make_member(org_a, "prescriber", username="live-prescriber")
    _, secret = token_create(username=membership.user.username)
    return SyncFHIRClient(f"{live_server.url}/fhir/r4", authorization=f"Bearer {secret}")


def test_fhirpy_creates_records_searches_pages_and_reads_back(fhir_client: SyncFHIRClient) -> None:
    patient = fhir_client.resource("Patient", **patient_json())
    patient.save()
    Patient.model_validate(patient.serialize())
    for day in range(1, 6):
        bp = bp_json(patient.id, 118 + day, 76, when=f"2024-05-0{day}T08:00:00+00:00")
        fhir_client.resource("Observation", **bp).save()
    weight = fhir_client.resource(
        "Observation", **weight_json(patient.id, 176.4, "[lb_av]", when="2024-05-03T07:00:00+00:00")
    )
    weight.save()
    Observation.model_validate(weight.serialize())
    # Returned as sent (the chart keeps it in kg: 80.01 kg, found by value-quantity below).
    assert weight["valueQuantity"]["code"] == "[lb_av]"
    assert weight["valueQuantity"]["value"] == pytest.approx(176.4)

    observations = fhir_client.resources("Observation").search(patient=patient.id)
    bps = (
        observations.search(code="http://loinc.org|85354-9")
        .search(date__ge="2024-05-02")
        .sort("date")
    )
    found = bps.limit(2).fetch_all()  # follows the Bundle's next links, two at a time
    assert [o["component"][0]["valueQuantity"]["value"] for o in found] == [120, 121, 122, 123]
    for observation in found:
        Observation.model_validate(observation.serialize())
    assert observations.search(code="29463-7").count() == 1
    first_page = fhir_client.execute(
        "Observation", method="get", params={"patient": patient.id, "_count": 2}
    )
    Bundle.model_validate(first_page)
    assert "total" not in first_page  # counted only when asked for
    counted = fhir_client.execute(
        "Observation",
        method="get",
        params={"patient": patient.id, "_count": 2, "_total": "accurate"},
    )
    assert counted["total"] == 6
    assert any(link["relation"] == "next" for link in first_page["link"])

    again = fhir_client.reference("Observation", weight.id).to_resource()
    assert again["valueQuantity"]["value"] == pytest.approx(176.4)
    in_kg = observations.search(**{"value-quantity": "80.01|http://unitsofmeasure.org|kg"})
    assert in_kg.count() == 1
    read_patient = fhir_client.reference("Patient", patient.id).to_resource()
    Patient.model_validate(read_patient.serialize())
    assert read_patient["name"][0]["family"] == "Curie"
