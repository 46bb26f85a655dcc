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
from django_scopes import scope
from joserfc.jwk import RSAKey

from conftest import actor_for, make_member
from ketaclinic.fhir.smart.services import smart_client_register
from ketaclinic.fhir.tests import round_trip_resources as rich
from ketaclinic.fhir.tests.test_smart import _assertion

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
    from fhirclient import client as smart_client
    from fhirclient.models.fhirelementfactory import FHIRElementFactory

    admin = make_member(org_a, "clinic_admin", username="ehr-admin")
    service = make_member(org_a, "prescriber", username="ehr-feed")
    key = RSAKey.generate_key(2048, parameters={"kid": "k1", "alg": "RS384"})
    with scope(organization=org_a):
        app = smart_client_register(
            actor=actor_for(admin),
            name="EHR feed",
            kind="backend",
            scope="system/*.cruds",
            jwks={"keys": [key.as_dict(private=False)]},
            membership=service,
        )
    token_url = f"{live_server.url}/oauth/token"
    smart = smart_client.FHIRClient(
        settings={
            "app_id": app.client_id,
            "api_base": f"{live_server.url}/fhir/r4/",
            "scope": "system/*.cruds",
            "jwt_token": _assertion(app.client_id, key, token_url),
        }
    )
    smart.wants_patient = False
    # Its kept-alive HTTP connection holds a live-server thread and that thread's database
    # connection until closed (PostgreSQL then cannot drop the test database).
    request.addfinalizer(smart.server.session.close)
    smart.prepare()
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
