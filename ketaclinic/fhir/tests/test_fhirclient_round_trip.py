"""The round trip as an integrator's own client sees it: the independent SMART client
`fhirclient` discovers the server, gets a backend-services token (client credentials with a
signed assertion, `system/*.cruds`), then creates, reads and searches a rich resource of every
accepted type through its own models. What it reads back must be what it sent, element by
element: only `id`, the server's `meta` fields and added keys may differ (dates byte-identical,
with their precision and offset)."""

from __future__ import annotations

import json
from typing import Any

import pytest

from conftest import make_member
from ketaclinic.fhir.tests import round_trip_resources as rich
from ketaclinic.fhir.tests.test_smart import _backend, backend_client

WITH_PATIENT = (
    rich.condition,
    rich.allergy,
    rich.blood_pressure,
    rich.lab,
    rich.systolic_alone,
    rich.medication_statement,
    rich.medication_request,
    rich.encounter,
    rich.letter,
)
DIRECTORY = (
    rich.practitioner,
    rich.practitioner_role,
    rich.organization,
    rich.location,
    rich.medication,
)


def _same(sent: dict[str, Any], got: dict[str, Any]) -> list[str]:
    """What differs, outside id, the server's meta fields and keys the server added."""
    differences = []
    for key, value in sent.items():
        if key == "id":
            continue
        if key == "meta":
            differences += [
                f"meta.{k}" for k, v in value.items() if got.get("meta", {}).get(k) != v
            ]
            continue
        if json.dumps(got.get(key), sort_keys=True) != json.dumps(value, sort_keys=True):
            differences.append(
                f"{sent['resourceType']}.{key}: sent {value!r}, got {got.get(key)!r}"
            )
    return differences


@pytest.mark.live
@pytest.mark.django_db(transaction=True)
def test_every_accepted_type_round_trips_through_fhirclient(
    live_server: Any, org_a: Any, request: Any
) -> None:
    from fhirclient.models.fhirelementfactory import FHIRElementFactory

    admin = make_member(org_a, "clinic_admin", username="ehr-admin")
    service = make_member(org_a, "prescriber", username="ehr-feed")
    app, key = _backend(admin, service, "system/*.cruds")
    smart = backend_client(live_server, app, key, "system/*.cruds", request)
    smart.authorize()
    assert smart.ready
    server = smart.server

    def round_trip(sent_json: dict[str, Any]) -> str:
        model = FHIRElementFactory.instantiate(sent_json["resourceType"], sent_json)
        sent = model.as_json()  # what this client sends, in its own serialisation
        created = model.create(server)
        assert created is not None, f"{sent['resourceType']} was not created"
        assert not _same(sent, created), _same(sent, created)
        kind = type(model)
        read = kind.read(created["id"], server).as_json()
        assert not _same(sent, read), _same(sent, read)
        found = list(kind.where(struct={"_id": created["id"]}).perform_resources_iter(server))
        assert [r.id for r in found] == [created["id"]]
        assert not _same(sent, found[0].as_json()), _same(sent, found[0].as_json())
        return str(created["id"])

    patient_id = round_trip(rich.patient())
    for build in WITH_PATIENT:
        round_trip(build(patient_id))
    for make in DIRECTORY:  # not `build`: mypy would type it as the loop above's
        round_trip(make())
    round_trip(rich.provenance(f"Patient/{patient_id}"))
