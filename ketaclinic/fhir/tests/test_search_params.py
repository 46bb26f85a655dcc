"""Searches clients use (issue 14 item 4): each parameter filters, not just parses. Patient's US
Core parameters with case- and accent-insensitive names and :exact/:contains, quantity search with
prefixes and units, code=system|, chained subject:Patient.identifier, _include/_revinclude,
_summary=count, _elements, POST _search, lenient and strict handling, and every parameter the
CapabilityStatement declares answered (never a 400 or 500)."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

import pytest
from django.test import Client

from conftest import api_client
from ketaclinic.fhir.tests.helpers import patient_json, post, valid, weight_json

pytestmark = pytest.mark.django_db
BASE = "/fhir/r4/"
STRICT = {"Prefer": "handling=strict"}


@pytest.fixture
def client(members: dict[str, Any]) -> Client:
    return api_client(members["prescriber"])


def _ids(client: Client, resource_type: str, **params: Any) -> set[str]:
    response = client.get(BASE + resource_type, params, headers=STRICT)
    assert response.status_code == 200, response.content
    bundle = valid(response.json())
    return {e["resource"]["id"] for e in bundle["entry"] if e["search"]["mode"] == "match"}


@pytest.fixture
def people(client: Client) -> dict[str, str]:
    def make(**data: Any) -> str:
        response = post(client, BASE + "Patient", patient_json(**data))
        assert response.status_code == 201, response.content
        return response.json()["id"]

    return {
        "jose": make(
            name=[{"family": "Núñez", "given": ["José"]}],
            gender="male",
            birthDate="1980-02-03",
            identifier=[{"system": "urn:ketaclinic:mrn", "value": "MRN-1"}],
        ),
        "marie": make(
            name=[{"family": "Curie", "given": ["Marie"]}],
            gender="female",
            identifier=[{"system": "urn:ketaclinic:mrn", "value": "MRN-2"}],
        ),
        "ann": make(name=[{"family": "Nunn", "given": ["Ann"]}], gender="female"),
    }


def test_patient_us_core_parameters_filter(client: Client, people: dict[str, str]) -> None:
    jose, marie, ann = people["jose"], people["marie"], people["ann"]
    assert _ids(client, "Patient", gender="female") == {marie, ann}
    assert _ids(client, "Patient", gender="male") == {jose}
    assert _ids(client, "Patient", name="nunez") == {jose}  # accents and case ignored
    assert _ids(client, "Patient", name="NÚÑE") == {jose}
    assert _ids(client, "Patient", family="nun") == {jose, ann}
    assert _ids(client, "Patient", given="jos") == {jose}
    assert _ids(client, "Patient", **{"family:exact": "Núñez"}) == {jose}
    assert _ids(client, "Patient", **{"family:exact": "nunez"}) == set()
    assert _ids(client, "Patient", **{"name:contains": "uri"}) == {marie}
    assert _ids(client, "Patient", birthdate="1980-02-03") == {jose}
    assert _ids(client, "Patient", name="curie", gender="female") == {marie}
    assert _ids(client, "Patient", identifier="MRN-2") == {marie}  # without a system
    assert _ids(client, "Patient", identifier="urn:ketaclinic:mrn|MRN-1") == {jose}
    assert _ids(client, "Patient", _id=ann) == {ann}
    assert _ids(client, "Patient", _lastUpdated="ge2000-01-01") == {jose, marie, ann}
    assert _ids(client, "Patient", _lastUpdated="lt2000-01-01") == set()


def test_observation_quantity_code_chain_include_and_summary(
    client: Client, people: dict[str, str]
) -> None:
    jose, marie = people["jose"], people["marie"]

    def weigh(patient: str, value: float, unit: str = "kg") -> str:
        response = post(client, BASE + "Observation", weight_json(patient, value, unit))
        assert response.status_code == 201, response.content
        return response.json()["id"]

    light, heavy = weigh(jose, 60), weigh(marie, 100)
    pounds = weigh(marie, 176.4, "[lb_av]")  # 80.01 kg
    assert _ids(client, "Observation", **{"value-quantity": "gt90"}) == {heavy}
    assert _ids(client, "Observation", **{"value-quantity": "le80.01"}) == {light, pounds}
    assert _ids(client, "Observation", **{"value-quantity": "80"}) == {pounds}  # [79.5, 80.5)
    assert _ids(
        client, "Observation", **{"value-quantity": "ge200|http://unitsofmeasure.org|[lb_av]"}
    ) == {heavy}  # 200 lb = 90.7 kg
    assert _ids(
        client, "Observation", **{"value-quantity": "ap60|http://unitsofmeasure.org|kg"}
    ) == {light}
    assert (
        _ids(client, "Observation", **{"value-quantity": "lt70|http://unitsofmeasure.org|cm"})
        == set()
    )
    assert _ids(client, "Observation", code="http://loinc.org|") == {light, heavy, pounds}
    assert _ids(client, "Observation", code="http://snomed.info/sct|") == set()
    assert _ids(
        client, "Observation", **{"subject:Patient.identifier": "urn:ketaclinic:mrn|MRN-2"}
    ) == {heavy, pounds}
    assert _ids(client, "Observation", **{"patient.identifier": "MRN-1"}) == {light}
    assert _ids(client, "Observation", **{"subject:Patient.identifier": "nobody"}) == set()

    count = client.get(BASE + "Observation", {"_summary": "count"}).json()
    assert count["total"] == 3
    assert count.get("entry", []) == []

    subset = client.get(BASE + "Observation", {"_elements": "status", "patient": jose}).json()
    resource = subset["entry"][0]["resource"]
    assert set(resource) == {"resourceType", "id", "meta", "status"}
    assert resource["meta"]["tag"][0]["code"] == "SUBSETTED"

    included = valid(
        client.get(
            BASE + "Observation", {"patient": marie, "_include": "Observation:patient"}
        ).json()
    )
    modes = sorted((e["search"]["mode"], e["resource"]["resourceType"]) for e in included["entry"])
    assert modes == [("include", "Patient"), ("match", "Observation"), ("match", "Observation")]
    assert included["total"] == 2  # the total counts matches only

    rev = valid(
        client.get(BASE + "Patient", {"_id": marie, "_revinclude": "Observation:patient"}).json()
    )
    assert {e["resource"]["id"] for e in rev["entry"] if e["search"]["mode"] == "include"} == {
        heavy,
        pounds,
    }


def test_post_search_and_lenient_or_strict_handling(client: Client, people: dict[str, str]) -> None:
    posted = client.post(
        BASE + "Patient/_search",
        urlencode({"gender": "male"}),
        content_type="application/x-www-form-urlencoded",
    )
    assert posted.status_code == 200
    assert {e["resource"]["id"] for e in posted.json()["entry"]} == {people["jose"]}

    lenient = valid(client.get(BASE + "Patient", {"gender": "male", "shoe-size": "44"}).json())
    assert lenient["total"] == 1
    outcome = [e for e in lenient["entry"] if e["search"]["mode"] == "outcome"]
    assert "shoe-size" in outcome[0]["resource"]["issue"][0]["diagnostics"]
    strict = client.get(BASE + "Patient", {"shoe-size": "44"}, headers=STRICT)
    assert strict.status_code == 400


def _no_match_value(kind: str) -> str:
    return {
        "date": "ge2999-01-01",
        "string": "zzzz-nobody",
        "quantity": "gt999999",
        "number": "999999",
        "uri": "urn:nothing",
    }.get(kind, "00000000-0000-0000-0000-000000000000")


def test_every_declared_search_parameter_is_answered(
    client: Client, people: dict[str, str]
) -> None:
    """The CapabilityStatement never claims a parameter the server refuses (strict) or fails on;
    and a value matching nothing leaves nothing (the parameter is applied, not ignored)."""
    statement = client.get(BASE + "metadata").json()
    for resource in statement["rest"][0]["resource"]:
        if not any(i["code"] == "search-type" for i in resource["interaction"]):
            continue
        for param in resource["searchParam"]:
            name, kind = param["name"], param["type"]
            if name in ("_count", "_sort"):
                continue
            if resource["type"] == "Slot" and name != "schedule":
                continue  # slots are searched within one schedule (Slot?schedule=...&start=...)
            response = client.get(
                BASE + resource["type"], {name: _no_match_value(kind)}, headers=STRICT
            )
            # Slot?schedule=<unknown> answers 404 naming the schedule (scheduling_resources.py).
            allowed = (200, 403, 404) if kind == "reference" else (200, 403)
            assert response.status_code in allowed, (resource["type"], name, response.content)
            if response.status_code == 200 and name not in ("category",):
                assert response.json()["total"] == 0, (resource["type"], name)
        if resource["type"] == "Slot":
            continue  # as above: a Slot search names its schedule
        for include in resource.get("searchInclude", []) + resource.get("searchRevInclude", []):
            key = "_include" if include in resource.get("searchInclude", []) else "_revinclude"
            response = client.get(BASE + resource["type"], {key: include}, headers=STRICT)
            assert response.status_code in (200, 403), (resource["type"], include, response.content)


def test_revinclude_past_its_cap_includes_the_first_and_says_so(
    client: Client, people: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """More matches than a _revinclude carries: the first are included and an OperationOutcome
    says the rest were left out (was a 500: Bundle.total is left out when more pages follow)."""
    from ketaclinic.fhir import include

    monkeypatch.setattr(include, "MAX_COUNT", 2)
    marie = people["marie"]
    for value in (60, 61, 62):
        assert post(client, BASE + "Observation", weight_json(marie, value)).status_code == 201
    response = client.get(BASE + "Patient", {"_id": marie, "_revinclude": "Observation:patient"})
    assert response.status_code == 200, response.content
    entries = valid(response.json())["entry"]
    assert [e["resource"]["resourceType"] for e in entries if e["search"]["mode"] == "include"] == [
        "Observation",
        "Observation",
    ]
    outcome = [e["resource"] for e in entries if e["search"]["mode"] == "outcome"]
    assert "more than 2" in outcome[0]["issue"][0]["diagnostics"]
