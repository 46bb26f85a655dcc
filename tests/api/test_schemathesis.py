"""Property-based contract test of the JSON API: schemathesis generates requests from
/api/v1/openapi.json for every operation and checks each response against that schema.

The requests go over HTTP to pytest-django's live_server as a prescriber with a bearer token, so
the authentication, tenancy middleware and error handlers are all in the path.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
import requests
import schemathesis
from django.core.serializers.json import DjangoJSONEncoder
from django_scopes import scope
from hypothesis import HealthCheck, settings
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from conftest import actor_for, api_client, make_member, make_patient
from ketaclinic.accounts.models import Organization
from ketaclinic.accounts.services import organization_create, token_create
from ketaclinic.patients import services

# No 5xx, and every response (status, content type, body) is one the schema declares.
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
]
MAX_EXAMPLES = 25


def _served_schema() -> dict[str, Any]:
    """The document the server publishes at /api/v1/openapi.json, built from the same NinjaAPI.

    Loading it at collection time (instead of `schemathesis.pytest.from_fixture` with the live
    server) because from_fixture does not run on pytest 9.2: it writes `Item._nodeid`, which
    pytest removed. `test_served_schema_is_the_tested_schema` proves the two documents are equal.
    """
    from config.urls import api

    return json.loads(json.dumps(api.get_openapi_schema(), cls=DjangoJSONEncoder))


SERVED_SCHEMA = _served_schema()
schema = schemathesis.openapi.from_dict(SERVED_SCHEMA)
# Hypothesis fuzzing (bounded by MAX_EXAMPLES) plus the schema's own examples. The coverage phase
# is off: it enumerates boundary values of every field without a bound and took minutes.
schema.config.phases.update(phases=["examples", "fuzzing"])


@pytest.fixture
def api_org(transactional_db: Any) -> Organization:
    return organization_create(name="Schema Clinic", clinic_name="Main", time_zone="UTC")


@pytest.fixture
def api_prescriber(api_org: Organization) -> Any:
    return make_member(api_org, "prescriber", username="schema-prescriber")


@pytest.fixture
def bearer(api_prescriber: Any) -> dict[str, str]:
    _, secret = token_create(username=api_prescriber.user.username)
    return {"Authorization": f"Bearer {secret}"}


@pytest.fixture
def real_ids(api_prescriber: Any) -> dict[str, str]:
    """A patient with one entry of each kind, so valid cases reach the services, not just 404."""
    actor = actor_for(api_prescriber, channel="api")
    patient = make_patient(actor)
    with scope(organization=actor.organization):
        condition = services.condition_add(actor=actor, patient=patient, data={"code": "F33.2"})
        medication = services.medication_add(
            actor=actor, patient=patient, data={"drug_name": "sertraline"}
        )
        allergy = services.allergy_add(actor=actor, patient=patient, data={"substance": "latex"})
        weight = services.weight_record(actor=actor, patient=patient, value="70")
        height = services.height_record(actor=actor, patient=patient, value="170")
        vital = services.vital_sign_record(
            actor=actor,
            patient=patient,
            kind="bp",
            value=128,
            value_diastolic=82,
            unit="mm[Hg]",
            code="85354-9",
        )
    return {
        "patient_id": str(patient.public_id),
        "/conditions/": str(condition.public_id),
        "/medications/": str(medication.public_id),
        "/allergies/": str(allergy.public_id),
        "/weights/": str(weight.public_id),
        "/heights/": str(height.public_id),
        "/vitals/": str(vital.public_id),
    }


def _use_real_ids(case: Any, ids: dict[str, str]) -> None:
    # Only valid (positive) cases: invalid ones keep their generated garbage identifiers.
    meta = case.meta
    if meta is None or meta.generation.mode != GenerationMode.POSITIVE:
        return
    if "patient_id" in case.path_parameters:
        case.path_parameters["patient_id"] = ids["patient_id"]
    if "entry_id" in case.path_parameters:
        # Chart entries get a real id; other entries (e.g. the waitlist's) keep the generated one.
        kind = next((k for k in ids if k.startswith("/") and k in case.path), None)
        if kind is not None:
            case.path_parameters["entry_id"] = ids[kind]


@pytest.mark.live
@pytest.mark.django_db(transaction=True)
def test_served_schema_is_the_tested_schema(live_server: Any) -> None:
    response = requests.get(f"{live_server.url}/api/v1/openapi.json", timeout=30)
    assert response.status_code == 200
    assert response.json() == SERVED_SCHEMA
    assert len(SERVED_SCHEMA["paths"]) >= 5


@pytest.mark.live
@pytest.mark.django_db(transaction=True)
@schema.parametrize()
@settings(
    max_examples=MAX_EXAMPLES,
    deadline=None,
    suppress_health_check=list(HealthCheck),
    derandomize=True,
    database=None,
)
def test_api_conforms_to_its_openapi_schema(
    case: Any, live_server: Any, bearer: dict[str, str], real_ids: dict[str, str]
) -> None:
    _use_real_ids(case, real_ids)
    # The schema's paths are absolute (/api/v1/...), so the base is the server's root.
    case.call_and_validate(base_url=live_server.url, headers=bearer, checks=CHECKS, timeout=30)


@pytest.mark.parametrize(
    ("plural", "field"),
    [("conditions", "note"), ("medications", "note"), ("allergies", "reaction")],
)
def test_patch_with_null_for_a_text_field_is_a_400_not_a_500(
    members: dict[str, Any], patient_a: Any, plural: str, field: str
) -> None:
    """Found by schemathesis: `{"note": null}` reached the database (NOT NULL) and answered 500."""
    client = api_client(members["prescriber"])
    body = {"conditions": {"code": "F33.2"}, "medications": {"drug_name": "sertraline"}}.get(
        plural, {"substance": "latex"}
    )
    created = client.post(
        f"/api/v1/patients/{patient_a.public_id}/{plural}", body, content_type="application/json"
    )
    assert created.status_code == 201, created.content
    response = client.patch(
        f"/api/v1/{plural}/{created.json()['id']}", {field: None}, content_type="application/json"
    )
    assert response.status_code == 400
    assert response.json()["errors"][0]["field"] == field


def test_nul_characters_are_refused_before_they_reach_the_database(
    members: dict[str, Any], patient_a: Any
) -> None:
    """Found by schemathesis on PostgreSQL, which cannot store U+0000 in text: it answered 500."""
    client = api_client(members["prescriber"])
    body = {"given_name": "A\x00", "family_name": "B", "birth_date": "1980-01-01"}
    created = client.post(
        "/api/v1/patients", {**body, "sex_at_birth": "female"}, content_type="application/json"
    )
    # The body guard refuses control characters once for every route, naming the element.
    assert created.status_code == 422
    assert created.json()["errors"][0]["field"] == "given_name"
    searched = client.get("/api/v1/patients", {"q": "Ada\x00"})
    assert searched.status_code == 422
    assert searched.json()["errors"][0]["field"] == "q"
    assert client.get("/api/v1/patients/%00").status_code == 404
    assert client.get(f"/api/v1/patients/{patient_a.public_id}").status_code == 200
