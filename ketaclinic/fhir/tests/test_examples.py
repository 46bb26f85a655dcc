"""Published material: the FHIR validator's cases and the US Core vital-sign examples."""

from __future__ import annotations

import csv
import json
from typing import Any

import pytest

from conftest import api_client
from ketaclinic.fhir.tests.helpers import DATA, patient_json, post, valid

pytestmark = pytest.mark.django_db
BASE = "/fhir/r4/"
CASES = DATA / "fhir-validator-cases"
# Valid FHIR that the chart cannot hold: refused as a business rule (422), with the reason.
DOMAIN_REFUSALS = {"ai2": "family name and a given name"}  # Patient with only a family name
SUPPORTED = {"Patient", "Observation", "Condition", "MedicationStatement", "AllergyIntolerance"}


def _cases() -> list[Any]:
    with (CASES / "INDEX.csv").open() as index:
        rows = [r for r in csv.DictReader(index) if r["resourceType"] in SUPPORTED]
    return [pytest.param(r, id=r["test_name"]) for r in rows]


@pytest.fixture
def client(members: dict[str, Any]) -> Any:
    return api_client(members["prescriber"])


@pytest.fixture
def patient_id(client: Any) -> str:
    # The validator's temperature cases name their subject by a Swedish personal identity number.
    data = patient_json(
        identifier=[{"system": "urn:oid:1.2.752.129.2.1.3.1", "value": "19930514-2383"}]
    )
    return post(client, BASE + "Patient", data).json()["id"]


@pytest.mark.parametrize("case", _cases())
def test_validator_case(client: Any, patient_id: str, case: dict[str, str]) -> None:
    data = json.loads((CASES / case["file"]).read_text())
    data.pop("id", None) if int(case["expected_error_count"]) == 0 else None
    if "subject" in data and "reference" in data["subject"]:
        data["subject"] = {"reference": f"Patient/{patient_id}"}
    response = post(client, BASE + data["resourceType"], data)
    if case["test_name"] in DOMAIN_REFUSALS:
        assert response.status_code == 422
        assert DOMAIN_REFUSALS[case["test_name"]] in response.json()["issue"][0]["diagnostics"]
    elif int(case["expected_error_count"]) == 0:
        assert response.status_code == 201, response.content
        valid(response.json())
    else:
        assert response.status_code in (400, 422), response.content
        outcome = valid(response.json())
        assert outcome["resourceType"] == "OperationOutcome"
        assert all(issue["diagnostics"] for issue in outcome["issue"])


VITALS = [
    "blood-pressure",
    "bmi",
    "heart-rate",
    "height",
    "weight",
    "oxygen-saturation",
    "respiratory-rate",
    "temperature",
    "observation-satO2-fiO2",
    "Observation-average-blood-pressure",
]


def _codes(resource: dict[str, Any]) -> set[str]:
    return {c["code"] for c in resource["code"]["coding"]}


@pytest.mark.parametrize("name", VITALS)
def test_us_core_vital_sign_round_trips(client: Any, patient_id: str, name: str) -> None:
    original = json.loads((DATA / "fhir-r4-examples" / "us-core" / f"{name}.json").read_text())
    sent = {**original, "subject": {"reference": f"Patient/{patient_id}"}}
    sent.pop("id")
    response = post(client, BASE + "Observation", sent)
    if name == "Observation-average-blood-pressure":
        # An average of home readings (96607-7) is not a single clinic measurement: kept as
        # received (not charted), every element returned as sent.
        assert response.status_code == 201, response.content
        back = client.get(BASE + f"Observation/{response.json()['id']}").json()
        assert {k: back[k] for k in sent if k != "meta"} == {
            k: v for k, v in sent.items() if k != "meta"
        }
        return
    assert response.status_code == 201, response.content
    back = valid(client.get(BASE + f"Observation/{response.json()['id']}").json())
    assert _codes(back) & _codes(original)
    assert back["effectiveDateTime"][:10] == original["effectiveDateTime"][:10]
    if "component" in original and "valueQuantity" not in original:
        sent_values = {
            c["code"]["coding"][0]["code"]: c["valueQuantity"]["value"]
            for c in original["component"]
        }
        got = {
            c["code"]["coding"][0]["code"]: c["valueQuantity"]["value"] for c in back["component"]
        }
        assert got == sent_values
    else:
        # Returned as sent (the chart's row holds the value in its canonical unit).
        assert back["valueQuantity"] == original["valueQuantity"]
