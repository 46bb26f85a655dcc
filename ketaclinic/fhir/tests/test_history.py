"""Versions and sync (issue 14 item 3): vread and _history from stored versions, Location and
Content-Location with the version, Last-Modified, 410 after a delete (the chart keeps the
entered-in-error row), idempotent deletes, conditional create and update, Prefer: return, and
keyset paging that stays stable while another client inserts."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any
from urllib.parse import urlsplit

import pytest
from django.test import Client
from django_scopes import scopes_disabled

from conftest import api_client
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


@pytest.fixture
def client(members: dict[str, Any]) -> Client:
    return api_client(members["prescriber"])


def _create(client: Client, url: str, data: dict[str, Any]) -> dict[str, Any]:
    response = post(client, BASE + url, data)
    assert response.status_code == 201, response.content
    return valid(response.json())


def _path(url: str) -> str:
    parts = urlsplit(url)
    return parts.path + (f"?{parts.query}" if parts.query else "")


@pytest.mark.django_db
def test_two_updates_leave_three_versions_each_read_back_unchanged(client: Client) -> None:
    created = post(client, BASE + "Patient", patient_json())
    first = created.json()
    pid, v1 = first["id"], first["meta"]["versionId"]
    assert created["Location"] == f"http://testserver{BASE}Patient/{pid}/_history/{v1}"
    assert created["Content-Location"] == created["Location"]
    assert created["Last-Modified"].endswith(" GMT")
    second = put(client, BASE + f"Patient/{pid}", {**first, "birthDate": "1967-11-08"}).json()
    third_response = put(
        client,
        BASE + f"Patient/{pid}",
        {**second, "name": [{"family": "Sklodowska", "given": ["Marie"]}]},
    )
    third = third_response.json()
    assert third_response["Content-Location"].endswith(
        f"Patient/{pid}/_history/{third['meta']['versionId']}"
    )

    history = valid(client.get(BASE + f"Patient/{pid}/_history").json())
    assert history["type"] == "history"
    assert history["total"] == 3
    assert [e["resource"] for e in history["entry"]] == [third, second, first]  # newest first
    assert [e["request"]["method"] for e in history["entry"]] == ["PUT", "PUT", "POST"]
    for served in (first, second, third):
        vid = served["meta"]["versionId"]
        response = client.get(BASE + f"Patient/{pid}/_history/{vid}")
        assert response.status_code == 200
        assert response.json() == served
        assert response["ETag"] == f'W/"{vid}"'
    assert client.get(BASE + f"Patient/{pid}/_history/1").status_code == 404

    # Type and system level, and _since: only what changed from then on.
    assert client.get(BASE + "Patient/_history").json()["total"] == 3
    system = client.get(BASE + "_history", {"_count": 2}).json()
    assert len(system["entry"]) == 2
    rest = client.get(_path(next(x["url"] for x in system["link"] if x["relation"] == "next")))
    assert [e["resource"] for e in rest.json()["entry"]] == [first]
    since = client.get(BASE + f"Patient/{pid}/_history", {"_since": third["meta"]["lastUpdated"]})
    assert since.json()["entry"][0]["resource"] == third  # lastUpdated has whole seconds
    later = client.get(BASE + f"Patient/{pid}/_history", {"_since": "2999-01-01T00:00:00Z"})
    assert later.json()["total"] == 0


@pytest.mark.django_db
def test_a_deleted_resource_is_gone_from_reads_and_searches_but_stays_in_the_chart(
    client: Client,
) -> None:
    patient = _create(client, "Patient", patient_json())
    condition = _create(
        client, "Condition", {**CONDITION, "subject": {"reference": f"Patient/{patient['id']}"}}
    )
    url = BASE + f"Condition/{condition['id']}"
    assert client.delete(url).status_code == 204
    gone = client.get(url)
    assert gone.status_code == 410
    assert gone.json()["issue"][0]["code"] == "deleted"
    assert client.delete(url).status_code == 204  # idempotent
    assert put(client, url, {**condition}).status_code == 410
    search = client.get(BASE + "Condition", {"patient": patient["id"]}).json()
    assert search["total"] == 0
    history = client.get(url + "/_history").json()
    assert [e["request"]["method"] for e in history["entry"]] == ["DELETE", "POST"]
    assert "resource" not in history["entry"][0]
    # The version that was served stays readable; the chart keeps the corrected row.
    assert client.get(url + f"/_history/{condition['meta']['versionId']}").json() == condition
    from ketaclinic.patients.models import Condition

    with scopes_disabled():
        assert Condition.objects.get(public_id=condition["id"]).entered_in_error


@pytest.mark.django_db
def test_conditional_create_answers_the_match_and_creates_nothing(client: Client) -> None:
    data = patient_json(identifier=[{"system": "urn:ehr:mrn", "value": "A-17"}])
    first = client.post(
        BASE + "Patient",
        json.dumps(data),
        content_type=FHIR,
        headers={"If-None-Exist": "identifier=urn:ehr:mrn|A-17"},
    )
    assert first.status_code == 201
    again = client.post(
        BASE + "Patient",
        json.dumps(data),
        content_type=FHIR,
        headers={"If-None-Exist": "identifier=urn:ehr:mrn|A-17"},
    )
    assert again.status_code == 200
    assert again.json()["id"] == first.json()["id"]
    assert client.get(BASE + "Patient").json()["total"] == 1

    # Conditional update: the one match is changed in place.
    changed = client.put(
        BASE + "Patient?identifier=urn:ehr:mrn|A-17",
        json.dumps({**data, "birthDate": "1967-11-08"}),
        content_type=FHIR,
    )
    assert changed.status_code == 200, changed.content
    assert changed.json()["id"] == first.json()["id"]
    assert changed.json()["birthDate"] == "1967-11-08"


@pytest.mark.django_db
def test_transaction_conditional_create_and_conditional_reference(client: Client) -> None:
    def bundle() -> dict[str, Any]:
        return {
            "resourceType": "Bundle",
            "type": "transaction",
            "entry": [
                {
                    "fullUrl": "urn:uuid:0c1d3b3e-0000-4000-8000-000000000001",
                    "resource": patient_json(identifier=[{"system": "urn:ehr", "value": "9"}]),
                    "request": {
                        "method": "POST",
                        "url": "Patient",
                        "ifNoneExist": "identifier=urn:ehr|9",
                    },
                }
            ],
        }

    first = post(client, BASE, bundle()).json()
    assert first["entry"][0]["response"]["status"] == "201 Created"
    again = post(client, BASE, bundle()).json()
    assert again["entry"][0]["response"]["status"] == "200 OK"
    assert again["entry"][0]["resource"]["id"] == first["entry"][0]["resource"]["id"]
    with_ref = {
        "resourceType": "Bundle",
        "type": "transaction",
        "entry": [
            {
                "resource": {**CONDITION, "subject": {"reference": "Patient?identifier=urn:ehr|9"}},
                "request": {"method": "POST", "url": "Condition"},
            }
        ],
    }
    done = post(client, BASE, with_ref)
    assert done.status_code == 200, done.content
    subject = done.json()["entry"][0]["resource"]["subject"]["reference"]
    assert subject == f"Patient/{first['entry'][0]['resource']['id']}"


@pytest.mark.django_db
def test_prefer_return_minimal_and_representation(client: Client) -> None:
    minimal = client.post(
        BASE + "Patient",
        json.dumps(patient_json()),
        content_type=FHIR,
        headers={"Prefer": "return=minimal"},
    )
    assert minimal.status_code == 201
    assert minimal.content == b""
    assert "/_history/" in minimal["Location"]
    full = client.post(
        BASE + "Patient",
        json.dumps(patient_json()),
        content_type=FHIR,
        headers={"Prefer": "return=representation"},
    )
    assert full.json()["resourceType"] == "Patient"


@pytest.mark.django_db
def test_xml_is_refused_with_406_for_every_interaction(client: Client) -> None:
    patient = _create(client, "Patient", patient_json())
    xml = {"Accept": "application/fhir+xml"}
    pid = patient["id"]
    requests = [
        client.get(BASE + "metadata", headers=xml),
        client.get(BASE + f"Patient/{pid}", headers=xml),
        client.get(BASE + "Patient", headers=xml),
        client.get(BASE + f"Patient/{pid}/_history", headers=xml),
        client.get(BASE + f"Patient/{pid}/_history/1", headers=xml),
        client.get(BASE + "_history", headers=xml),
        client.post(BASE + "Patient", json.dumps(patient_json()), content_type=FHIR, headers=xml),
        client.put(BASE + f"Patient/{pid}", json.dumps(patient), content_type=FHIR, headers=xml),
        client.post(BASE, json.dumps({"resourceType": "Bundle"}), content_type=FHIR, headers=xml),
        client.get(BASE + "Patient", {"_format": "xml"}),
        client.get(BASE + f"Patient/{pid}", {"_format": "application/fhir+xml"}),
    ]
    assert [r.status_code for r in requests] == [406] * len(requests)
    assert all(r["Content-Type"].startswith(FHIR) for r in requests)
    assert client.get(BASE + "Patient").json()["total"] == 1  # nothing was written
    browser = "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"
    assert client.get(BASE + f"Patient/{pid}", headers={"Accept": browser}).status_code == 200
    assert client.get(BASE + f"Patient/{pid}", headers={"Accept": FHIR}).status_code == 200


@pytest.mark.django_db
def test_keyset_paging_has_no_duplicate_and_no_gap_while_another_client_inserts(
    client: Client, members: dict[str, Any]
) -> None:
    from ketaclinic.patients.models import BodyWeight, Patient

    patient = _create(client, "Patient", patient_json())
    start = datetime(2025, 1, 1, tzinfo=UTC)
    with scopes_disabled():
        row = Patient.objects.get(public_id=patient["id"])
        # Ten instants, a hundred weights each: ties are broken by the key, not by luck.
        BodyWeight.objects.bulk_create(
            BodyWeight(
                organization=row.organization,
                patient=row,
                weight_kg=Decimal("70.00"),
                entered_value=Decimal("70.00"),
                entered_unit="kg",
                measured_at=start + timedelta(days=i % 10),
            )
            for i in range(1000)
        )
        original = {str(k) for k in BodyWeight.objects.values_list("public_id", flat=True)}
    other = api_client(members["nurse"])
    seen: list[str] = []
    url = BASE + f"Observation?patient={patient['id']}&_count=50&_elements=id"
    pages = 0
    while url:
        page = client.get(url).json()
        seen += [e["resource"]["id"] for e in page["entry"]]
        pages += 1
        # Another client inserts: newer, older and in-between measurements.
        for day in ((-3, 4, 30)[pages % 3],):
            when = (start + timedelta(days=day, hours=pages)).isoformat()
            inserted = post(other, BASE + "Observation", weight_json(patient["id"], 150, when=when))
            assert inserted.status_code == 201, inserted.content
        url = next((_path(x["url"]) for x in page["link"] if x["relation"] == "next"), "")
    assert len(seen) == len(set(seen)), "a row was served twice"
    assert original <= set(seen), f"{len(original - set(seen))} rows were skipped"


@pytest.mark.django_db
def test_screen_edits_between_two_fhir_writes_are_versions_read_back_unchanged(
    client: Client,
) -> None:
    """FHIR create, two edits through the JSON API (what the chart screen's form does, through
    the same service), FHIR update: _history lists the four versions and each, including the
    two written off FHIR, reads back as it was served."""
    patient = _create(client, "Patient", patient_json())
    first = _create(
        client, "Condition", {**CONDITION, "subject": {"reference": f"Patient/{patient['id']}"}}
    )
    url = BASE + f"Condition/{first['id']}"
    served = [first]
    for note in ("seen by Dr Ruiz", "seen by Dr Ruiz; better"):
        edit = client.patch(
            f"/api/v1/conditions/{first['id']}", {"note": note}, content_type="application/json"
        )
        assert edit.status_code == 200, edit.content
        between = client.get(url)
        assert between.json()["note"][0]["text"] == note
        assert between["ETag"] != f'W/"{served[-1]["meta"]["versionId"]}"'
        served.append(between.json())
    update = put(client, url, {**first, "id": first["id"], "onsetDateTime": "2019-05"})
    assert update.status_code == 200, update.content
    served.append(update.json())

    history = valid(client.get(url + "/_history").json())
    assert history["total"] == 4
    assert [e["resource"] for e in history["entry"]] == served[::-1]
    assert [e["request"]["method"] for e in history["entry"]] == ["PUT", "PUT", "PUT", "POST"]
    for version in served:
        vid = version["meta"]["versionId"]
        response = client.get(url + f"/_history/{vid}")
        assert response.status_code == 200, vid
        assert response.json() == version
