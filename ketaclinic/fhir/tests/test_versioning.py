"""Version-aware writes: meta.versionId and ETag on every read and write, and If-Match on PUT and
DELETE refuses a change based on a stale read (412) instead of silently overwriting it."""

from __future__ import annotations

import json
import threading
from typing import Any

import pytest
from django.db import connection
from django.test import Client

from conftest import api_client, audit_count
from ketaclinic.fhir.tests.helpers import FHIR, patient_json, post, put, valid, weight_json

BASE = "/fhir/r4/"
CONDITION = {
    "resourceType": "Condition",
    "clinicalStatus": {
        "coding": [
            {
                "system": "http://terminology.hl7.org/CodeSystem/condition-clinical",
                "code": "active",
            }
        ]
    },
    "code": {"coding": [{"system": "http://hl7.org/fhir/sid/icd-10-cm", "code": "F33.1"}]},
    "onsetDateTime": "2019-04",
}


def _put_if(client: Client, url: str, data: Any, etag: str) -> Any:
    return client.put(url, data=json.dumps(data), content_type=FHIR, headers={"If-Match": etag})


def _created(client: Client, url: str, data: dict[str, Any]) -> tuple[dict[str, Any], str]:
    response = post(client, url, data)
    assert response.status_code == 201, response.content
    return valid(response.json()), response["ETag"]


@pytest.fixture
def client(members: dict[str, Any]) -> Client:
    return api_client(members["prescriber"])


@pytest.mark.django_db
def test_reads_and_writes_carry_the_version_as_etag(client: Client) -> None:
    created, etag = _created(client, BASE + "Patient", patient_json())
    assert etag == f'W/"{created["meta"]["versionId"]}"'
    read = client.get(BASE + f"Patient/{created['id']}")
    assert read["ETag"] == etag
    changed = {**read.json(), "name": [{"family": "Sklodowska", "given": ["Marie"]}]}
    updated = _put_if(client, BASE + f"Patient/{created['id']}", changed, etag)
    assert updated.status_code == 200, updated.content
    assert updated["ETag"] != etag
    assert updated["ETag"] == f'W/"{updated.json()["meta"]["versionId"]}"'


@pytest.mark.django_db
def test_an_update_based_on_a_stale_read_is_412_and_writes_nothing(client: Client) -> None:
    created, first = _created(client, BASE + "Patient", patient_json())
    url = BASE + f"Patient/{created['id']}"
    mine = {**created, "name": [{"family": "Mine", "given": ["Marie"]}]}
    assert _put_if(client, url, mine, first).status_code == 200
    updates = audit_count(action="patients.patient.updated")

    theirs = {**created, "name": [{"family": "Theirs", "given": ["Marie"]}]}
    stale = _put_if(client, url, theirs, first)

    assert stale.status_code == 412
    outcome = valid(stale.json())
    assert outcome["issue"][0]["code"] == "conflict"
    assert "has changed since version" in outcome["issue"][0]["diagnostics"]
    assert client.get(url).json()["name"][0]["family"] == "Mine"
    assert audit_count(action="patients.patient.updated") == updates


@pytest.mark.django_db
def test_without_if_match_an_update_is_not_version_checked(client: Client) -> None:
    created, _ = _created(client, BASE + "Patient", patient_json())
    changed = {**created, "name": [{"family": "Plain", "given": ["Marie"]}]}
    assert put(client, BASE + f"Patient/{created['id']}", changed).status_code == 200


@pytest.mark.django_db
@pytest.mark.parametrize("header", ["123", 'W/"', "*,*"])
def test_a_malformed_if_match_is_400(client: Client, header: str) -> None:
    created, _ = _created(client, BASE + "Patient", patient_json())
    response = _put_if(client, BASE + f"Patient/{created['id']}", created, header)
    assert response.status_code == 400
    assert "If-Match" in valid(response.json())["issue"][0]["diagnostics"]


@pytest.mark.django_db
def test_a_stale_delete_of_a_condition_is_412_and_a_current_one_marks_it(client: Client) -> None:
    patient, _ = _created(client, BASE + "Patient", patient_json())
    subject = {"subject": {"reference": f"Patient/{patient['id']}"}}
    condition, etag = _created(client, BASE + "Condition", {**CONDITION, **subject})
    url = BASE + f"Condition/{condition['id']}"
    note = {**condition, "note": [{"text": "Reviewed."}]}
    assert _put_if(client, url, note, etag).status_code == 200

    stale = client.delete(url, headers={"If-Match": etag})
    assert stale.status_code == 412
    assert client.get(url).json()["verificationStatus"]["coding"][0]["code"] != "entered-in-error"

    current = client.get(url)["ETag"]
    assert client.delete(url, headers={"If-Match": current}).status_code == 204
    assert client.get(url).status_code == 410


@pytest.mark.django_db
def test_a_weight_is_marked_entered_in_error_only_at_the_version_read(client: Client) -> None:
    patient, _ = _created(client, BASE + "Patient", patient_json())
    weight, etag = _created(client, BASE + "Observation", weight_json(patient["id"], 185))
    url = BASE + f"Observation/{weight['id']}"
    assert client.delete(url, headers={"If-Match": 'W/"1"'}).status_code == 412
    assert client.get(url).json()["status"] == "final"
    assert client.delete(url, headers={"If-Match": etag}).status_code == 204
    assert client.get(url).status_code == 410


def test_the_capability_statement_says_which_types_check_versions() -> None:
    statement = Client().get(BASE + "metadata").json()
    versioning = {r["type"]: r["versioning"] for r in statement["rest"][0]["resource"]}
    for checked in ("Patient", "Condition", "MedicationStatement", "AllergyIntolerance"):
        assert versioning[checked] == "versioned-update"
    assert versioning["Observation"] == "versioned-update"
    assert versioning["Encounter"] == "versioned"
    assert versioning["Questionnaire"] == "no-version"


@pytest.mark.django_db(transaction=True)
def test_two_clients_updating_from_the_same_read_one_wins_one_gets_412(
    members: dict[str, Any],
) -> None:
    """Each PUT runs in its own transaction on its own connection, at the same moment."""
    first = api_client(members["prescriber"])
    created, etag = _created(first, BASE + "Patient", patient_json())
    url = BASE + f"Patient/{created['id']}"
    clients = [first, api_client(members["nurse"])]
    barrier = threading.Barrier(2)
    outcomes: dict[str, int] = {}

    def update(client: Client, family: str) -> None:
        try:
            barrier.wait(timeout=10)
            changed = {**created, "name": [{"family": family, "given": ["Marie"]}]}
            outcomes[family] = _put_if(client, url, changed, etag).status_code
        finally:
            connection.close()

    threads = [
        threading.Thread(target=update, args=(c, f))
        for c, f in zip(clients, ("A", "B"), strict=True)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)

    assert sorted(outcomes.values()) == [200, 412], outcomes
    [winner] = [family for family, status in outcomes.items() if status == 200]
    assert first.get(url).json()["name"][0]["family"] == winner


@pytest.mark.django_db
def test_a_transaction_with_a_stale_if_match_entry_is_refused_whole(client: Client) -> None:
    created, first = _created(client, BASE + "Patient", patient_json())
    url = f"Patient/{created['id']}"
    renamed = {**created, "name": [{"family": "Fresh", "given": ["Marie"]}]}
    assert _put_if(client, BASE + url, renamed, first).status_code == 200
    conditions = audit_count(action="patients.condition.added")
    bundle = {
        "resourceType": "Bundle",
        "type": "transaction",
        "entry": [
            {
                "resource": {**CONDITION, "subject": {"reference": url}},
                "request": {"method": "POST", "url": "Condition"},
            },
            {
                "resource": {**created, "name": [{"family": "Stale", "given": ["Marie"]}]},
                "request": {"method": "PUT", "url": url, "ifMatch": first},
            },
        ],
    }
    response = post(client, BASE, bundle)
    assert response.status_code == 412, response.content
    assert "has changed since version" in json.dumps(response.json())
    assert audit_count(action="patients.condition.added") == conditions
    assert client.get(BASE + url).json()["name"][0]["family"] == "Fresh"
