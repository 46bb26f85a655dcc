"""Tenancy for every interaction, and transaction/batch Bundles."""

from __future__ import annotations

import uuid
from typing import Any

import pytest

from conftest import api_client, audit_count
from ketaclinic.fhir.tests.helpers import bp_json, patient_json, post, put, valid, weight_json

pytestmark = pytest.mark.django_db
BASE = "/fhir/r4/"


@pytest.fixture
def client(members: dict[str, Any]) -> Any:
    return api_client(members["prescriber"])


@pytest.fixture
def records(client: Any) -> dict[str, str]:
    patient = post(client, BASE + "Patient", patient_json()).json()["id"]
    obs = post(client, BASE + "Observation", weight_json(patient, 80, "kg")).json()["id"]
    condition = post(
        client,
        BASE + "Condition",
        {
            "resourceType": "Condition",
            "code": {"coding": [{"system": "http://hl7.org/fhir/sid/icd-10-cm", "code": "F33.1"}]},
            "subject": {"reference": f"Patient/{patient}"},
        },
    ).json()["id"]
    return {"Patient": patient, "Observation": obs, "Condition": condition}


def test_outsider_gets_404_for_every_interaction(records: dict[str, str], outsider: Any) -> None:
    other = api_client(outsider)
    for resource_type, resource_id in records.items():
        assert other.get(BASE + f"{resource_type}/{resource_id}").status_code == 404
    assert other.get(BASE + f"Patient/{records['Patient']}/$everything").status_code == 404
    assert (
        put(
            other,
            BASE + f"Patient/{records['Patient']}",
            {**patient_json(), "id": records["Patient"]},
        ).status_code
        == 404
    )
    assert other.delete(BASE + f"Condition/{records['Condition']}").status_code == 404
    assert (
        post(other, BASE + "Observation", weight_json(records["Patient"], 80, "kg")).status_code
        == 404
    )
    search = valid(other.get(BASE + f"Observation?patient={records['Patient']}").json())
    assert search["total"] == 0
    assert valid(other.get(BASE + "Patient").json())["total"] == 0


def test_roles_without_the_capability_are_refused_403(
    records: dict[str, str], members: dict[str, Any]
) -> None:
    front_desk = api_client(members["front_desk"])
    assert front_desk.get(BASE + f"Observation/{records['Observation']}").status_code == 403
    assert (
        post(
            front_desk, BASE + "Observation", weight_json(records["Patient"], 80, "kg")
        ).status_code
        == 403
    )
    assert front_desk.get(BASE + f"Patient/{records['Patient']}").status_code == 200


def _transaction(patient_urn: str, **bp: Any) -> dict[str, Any]:
    observation = bp_json("x", **bp)
    observation["subject"] = {"reference": patient_urn}
    return {
        "resourceType": "Bundle",
        "type": "transaction",
        "entry": [
            {
                "fullUrl": "urn:uuid:" + str(uuid.uuid4()),
                "resource": observation,
                "request": {"method": "POST", "url": "Observation"},
            },
            {
                "fullUrl": patient_urn,
                "resource": patient_json(),
                "request": {"method": "POST", "url": "Patient"},
            },
        ],
    }


def test_transaction_resolves_urn_uuid_references(client: Any) -> None:
    urn = "urn:uuid:" + str(uuid.uuid4())
    response = post(client, BASE, _transaction(urn))
    assert response.status_code == 200, response.content
    bundle = valid(response.json())
    assert bundle["type"] == "transaction-response"
    assert [e["response"]["status"] for e in bundle["entry"]] == ["201 Created", "201 Created"]
    patient_id = bundle["entry"][1]["resource"]["id"]
    assert bundle["entry"][0]["resource"]["subject"]["reference"] == f"Patient/{patient_id}"


def test_transaction_is_all_or_nothing(client: Any) -> None:
    before = valid(client.get(BASE + "Patient").json())["total"]
    events = audit_count()
    response = post(
        client, BASE, _transaction("urn:uuid:" + str(uuid.uuid4()), systolic=70, diastolic=90)
    )
    assert response.status_code == 400
    outcome = valid(response.json())
    assert "Bundle.entry[0]" in outcome["issue"][0]["diagnostics"]
    assert valid(client.get(BASE + "Patient").json())["total"] == before
    assert audit_count() == events + 1  # only the search above, nothing from the rolled-back writes


def test_batch_entries_succeed_or_fail_on_their_own(client: Any, records: dict[str, str]) -> None:
    bundle = {
        "resourceType": "Bundle",
        "type": "batch",
        "entry": [
            {
                "resource": weight_json(records["Patient"], 81, "kg"),
                "request": {"method": "POST", "url": "Observation"},
            },
            {
                "resource": weight_json(records["Patient"], 9000, "kg"),
                "request": {"method": "POST", "url": "Observation"},
            },
            {"request": {"method": "GET", "url": f"Patient/{records['Patient']}"}},
            {"request": {"method": "GET", "url": "Substance/1"}},
        ],
    }
    response = post(client, BASE, bundle)
    assert response.status_code == 200, response.content
    statuses = [e["response"]["status"] for e in valid(response.json())["entry"]]
    assert statuses == ["201 Created", "400", "200 OK", "422"]


def test_searchset_bundle_is_not_accepted_at_the_base(client: Any) -> None:
    response = post(client, BASE, {"resourceType": "Bundle", "type": "searchset"})
    assert response.status_code == 400


def test_a_given_name_that_is_only_a_null_is_refused_in_a_transaction(client: Any) -> None:
    """A null in `given` holds the place of an extension in `_given`: no name (a fuzzed Bundle
    answered 500 here once)."""
    before = audit_count()
    patient = patient_json(name=[{"use": "official", "family": "Curie", "given": [None]}])
    entry: dict[str, Any] = {"fullUrl": f"urn:uuid:{uuid.uuid4()}", "resource": patient,
                             "request": {"method": "POST", "url": "Patient"}}  # fmt: skip
    bundle = {"resourceType": "Bundle", "type": "transaction", "entry": [entry]}
    response = post(client, BASE, bundle)
    assert response.status_code == 422, response.content
    assert "given name" in response.content.decode()
    assert audit_count() == before
    named = patient_json(name=[{"use": "official", "family": "Curie", "given": [None, "Marie"]}])
    entry["resource"] = named
    response = post(client, BASE, bundle)
    assert response.status_code == 200, response.content
