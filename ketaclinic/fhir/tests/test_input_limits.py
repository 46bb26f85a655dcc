"""Input limits on /fhir/r4/ and the JSON API: every oversized, over-deep, out-of-range or
control-character input is a 4xx naming the element, never a 500 and never a silent truncation.
Each case was a 500 (or a truncation) before the limits existed (issue 12)."""

from __future__ import annotations

import json
from typing import Any

import pytest
from django.test import Client, override_settings

from conftest import api_client
from ketaclinic.core.input_limits import MAX_BUNDLE_BYTES, MAX_RESOURCE_BYTES
from ketaclinic.fhir.tests.helpers import FHIR, patient_json, post, weight_json

pytestmark = pytest.mark.django_db
BASE = "/fhir/r4/"


@pytest.fixture
def client(members: dict[str, Any]) -> Client:
    return api_client(members["prescriber"])


def _outcome(response: Any) -> dict[str, Any]:
    data = response.json()
    assert data["resourceType"] == "OperationOutcome", data
    return data


def _expressions(response: Any) -> list[str]:
    return [e for issue in _outcome(response)["issue"] for e in issue.get("expression", [])]


def _padded_bundle(size: int) -> str:
    note = "x" * 90_000
    entries: list[dict[str, Any]] = []
    while len(json.dumps(entries)) < size:
        resource = patient_json(id=f"p{len(entries)}", text={"status": "generated", "div": note})
        entries.append({"resource": resource, "request": {"method": "POST", "url": "Patient"}})
    return json.dumps({"resourceType": "Bundle", "type": "batch", "entry": entries})


def test_a_bundle_above_django_s_form_limit_is_processed_not_a_500(client: Client) -> None:
    body = _padded_bundle(3 * 1024 * 1024)  # above DATA_UPLOAD_MAX_MEMORY_SIZE (2.5 MB)
    response = client.post(BASE, data=body, content_type=FHIR)
    assert response.status_code == 200, response.content[:500]
    assert response.json()["type"] == "batch-response"


def test_a_bundle_above_the_limit_is_413_before_it_is_read(client: Client) -> None:
    response = client.post(BASE, data="{" + " " * MAX_BUNDLE_BYTES + "}", content_type=FHIR)
    assert response.status_code == 413
    assert "20 MB" in _outcome(response)["issue"][0]["diagnostics"]
    assert _outcome(response)["issue"][0]["code"] == "too-costly"


def test_a_single_resource_has_a_smaller_limit(client: Client) -> None:
    body = json.dumps(patient_json(text={"status": "generated", "div": "x" * MAX_RESOURCE_BYTES}))
    response = client.post(BASE + "Patient", data=body, content_type=FHIR)
    assert response.status_code == 413
    assert "5 MB" in _outcome(response)["issue"][0]["diagnostics"]


def test_deeply_nested_extensions_are_a_400_not_a_recursion_error(client: Client) -> None:
    extension: dict[str, Any] = {"url": "http://example.org/leaf", "valueString": "x"}
    for _ in range(200):
        extension = {"url": "http://example.org/nest", "extension": [extension]}
    response = post(client, BASE + "Patient", patient_json(extension=[extension]))
    assert response.status_code == 400
    assert "nested more than" in _outcome(response)["issue"][0]["diagnostics"]


def test_a_huge_quantity_is_a_422_naming_the_element(client: Client) -> None:
    patient_id = post(client, BASE + "Patient", patient_json()).json()["id"]
    response = client.post(
        BASE + "Observation",
        data=json.dumps(weight_json(patient_id, 1)).replace('"value": 1', '"value": 1e30'),
        content_type=FHIR,
    )
    assert response.status_code == 422, response.content
    assert _expressions(response) == ["Observation.valueQuantity.value"]


@pytest.mark.parametrize("char", ["\x00", "\x07", "\x1b"])
def test_control_characters_are_a_422_naming_the_element(client: Client, char: str) -> None:
    data = patient_json()
    data["name"][0]["family"] = f"Cu{char}rie"
    response = post(client, BASE + "Patient", data)
    assert response.status_code == 422
    assert _expressions(response) == ["Patient.name[0].family"]


def test_nul_in_a_search_parameter_is_a_400(client: Client) -> None:
    response = client.get(BASE + "Patient", {"family": "Cu\x00rie"})
    assert response.status_code == 400
    assert _outcome(response)["issue"][0]["expression"] == ["family"]


def test_a_long_family_name_is_refused_never_truncated(client: Client) -> None:
    data = patient_json()
    data["name"][0]["family"] = "C" * 1_000
    response = post(client, BASE + "Patient", data)
    assert response.status_code == 422
    assert _expressions(response) == ["Patient.name.family"]
    assert "at most 100" in _outcome(response)["issue"][0]["diagnostics"]
    assert client.get(BASE + "Patient").json().get("total", 0) == 0


def test_a_one_megabyte_family_name_is_refused_by_the_string_limit(client: Client) -> None:
    data = patient_json()
    data["name"][0]["family"] = "C" * 1_000_000
    response = post(client, BASE + "Patient", data)
    assert response.status_code == 422
    assert _expressions(response) == ["Patient.name[0].family"]


def test_a_duplicate_full_url_is_refused(client: Client) -> None:
    entry = {
        "fullUrl": "urn:uuid:8f1a0d6c-1b1e-4a33-9a49-5d1f1d8a0b01",
        "resource": patient_json(),
        "request": {"method": "POST", "url": "Patient"},
    }
    bundle = {"resourceType": "Bundle", "type": "transaction", "entry": [entry, entry]}
    response = post(client, BASE, bundle)
    assert response.status_code == 400
    assert _expressions(response) == ["Bundle.entry[1].fullUrl"]


def test_the_json_api_names_the_field_with_a_control_character(members: dict[str, Any]) -> None:
    client = api_client(members["prescriber"])
    body = {
        "given_name": "Ada",
        "family_name": "Love\x00lace",
        "birth_date": "1985-12-10",
        "sex_at_birth": "female",
    }
    response = client.post(
        "/api/v1/patients", data=json.dumps(body), content_type="application/json"
    )
    assert response.status_code == 422
    assert response.json()["errors"] == [
        {"field": "family_name", "message": "contains the control character U+0000, not allowed."}
    ]


@override_settings(DATA_UPLOAD_MAX_MEMORY_SIZE=1000)
def test_the_json_api_answers_413_above_its_body_limit(members: dict[str, Any]) -> None:
    client = api_client(members["prescriber"])
    body = json.dumps({"given_name": "A" * 2000})
    response = client.post("/api/v1/patients", data=body, content_type="application/json")
    assert response.status_code == 413
    assert response.json()["detail"] == "The request body is larger than 1,000 bytes."


def test_an_entry_of_an_unknown_resource_type_is_a_400(client: Client) -> None:
    """Found by the fuzz suite: fhir.resources raised KeyError for a nested unknown type."""
    entry = {
        "resource": {"resourceType": "2026-13-01T25:61:00Z", "status": "active"},
        "request": {"method": "POST", "url": "Patient"},
    }
    response = post(client, BASE, {"resourceType": "Bundle", "type": "batch", "entry": [entry]})
    assert response.status_code == 400


@pytest.mark.parametrize("param", ["start", "service-type"])
def test_an_empty_slot_search_parameter_is_not_a_500(client: Client, param: str) -> None:
    """Found by the fuzz suite: an empty value raised IndexError."""
    assert client.get(BASE + "Slot", {param: ""}).status_code < 500
