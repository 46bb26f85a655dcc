"""Provenance:target (issue 14 item 4): `target=` finds the Provenances about a resource, whatever
its type or the form of the reference; `_revinclude=Provenance:target` brings them beside any
search's matches, and `_include=Provenance:target` brings what a Provenance search is about."""

from __future__ import annotations

from typing import Any

import pytest
from django.test import Client

from conftest import api_client
from ketaclinic.fhir.tests.helpers import patient_json, post, valid, weight_json
from ketaclinic.fhir.tests.round_trip_resources import provenance

pytestmark = pytest.mark.django_db
BASE = "/fhir/r4/"
STRICT = {"Prefer": "handling=strict"}


@pytest.fixture
def client(members: dict[str, Any]) -> Client:
    return api_client(members["prescriber"])


def _create(client: Client, resource_type: str, data: dict[str, Any]) -> str:
    response = post(client, BASE + resource_type, data)
    assert response.status_code == 201, response.content
    return str(response.json()["id"])


def _entries(client: Client, resource_type: str, **params: Any) -> list[tuple[str, str, str]]:
    response = client.get(BASE + resource_type, params, headers=STRICT)
    assert response.status_code == 200, response.content
    bundle = valid(response.json())
    return sorted(
        (e["search"]["mode"], e["resource"]["resourceType"], e["resource"]["id"])
        for e in bundle["entry"]
    )


def test_provenance_target_search_revinclude_and_include(client: Client) -> None:
    anna = _create(client, "Patient", patient_json(name=[{"family": "Target", "given": ["Anna"]}]))
    ben = _create(client, "Patient", patient_json(name=[{"family": "Other", "given": ["Ben"]}]))
    weight = _create(client, "Observation", weight_json(anna, 70))
    practitioner = _create(
        client, "Practitioner", {"resourceType": "Practitioner", "name": [{"family": "Lee"}]}
    )
    about_anna = _create(client, "Provenance", provenance(f"Patient/{anna}"))
    # Absolute and versioned references to the weight name the same target.
    about_weight = _create(
        client,
        "Provenance",
        provenance(f"http://testserver/fhir/r4/Observation/{weight}/_history/1"),
    )
    also_weight = _create(client, "Provenance", provenance(f"Observation/{weight}"))
    about_practitioner = _create(client, "Provenance", provenance(f"Practitioner/{practitioner}"))
    _create(client, "Provenance", provenance(f"Patient/{ben}"))

    def matches(**params: Any) -> set[str]:
        return {i for mode, _, i in _entries(client, "Provenance", **params) if mode == "match"}

    assert matches(target=f"Patient/{anna}") == {about_anna}
    assert matches(target=f"{BASE}Observation/{weight}") == {about_weight, also_weight}
    assert matches(target=f"Observation/{weight},Practitioner/{practitioner}") == {
        about_weight,
        also_weight,
        about_practitioner,
    }
    assert matches(target=weight) == {about_weight, also_weight}  # the id alone
    assert matches(target=f"Patient/{weight}") == set()  # the right id, the wrong type

    # _revinclude on a Patient search, an Observation search and a generic type's search.
    assert _entries(client, "Patient", _id=anna, _revinclude="Provenance:target") == sorted(
        [("match", "Patient", anna), ("include", "Provenance", about_anna)]
    )
    assert _entries(client, "Observation", patient=anna, _revinclude="Provenance:target") == sorted(
        [
            ("match", "Observation", weight),
            ("include", "Provenance", about_weight),
            ("include", "Provenance", also_weight),
        ]
    )
    assert _entries(
        client, "Practitioner", _id=practitioner, _revinclude="Provenance:target"
    ) == sorted(
        [("match", "Practitioner", practitioner), ("include", "Provenance", about_practitioner)]
    )

    # _include on a Provenance search: the patient, the observation and the practitioner.
    included = _entries(
        client,
        "Provenance",
        _id=f"{about_anna},{about_weight},{about_practitioner}",
        _include="Provenance:target",
    )
    assert [e for e in included if e[0] == "include"] == sorted(
        [
            ("include", "Patient", anna),
            ("include", "Observation", weight),
            ("include", "Practitioner", practitioner),
        ]
    )


def test_capability_statement_declares_provenance_target(client: Client) -> None:
    statement = client.get(BASE + "metadata").json()
    by_type = {r["type"]: r for r in statement["rest"][0]["resource"]}
    assert "Provenance:target" in by_type["Provenance"]["searchInclude"]
    for name in ("Patient", "Observation", "Practitioner", "Condition"):
        assert "Provenance:target" in by_type[name]["searchRevInclude"], name
    assert {"name": "target", "type": "reference"} in by_type["Provenance"]["searchParam"]
