"""Generated from the JSON API's router and the FHIR registry: every route with an id in its path
answers 404 for a random id and for another organization's patient, and every lookup of patient
data that is denied leaves exactly one audit event (issue 12).

A new route is covered automatically. If it fails here:
- a 200/201/204 or a 500 for a random id: look the object up through a selector that raises
  NotFound for ids the organization does not have;
- no (or more than one) audit event on a PHI route: record the denied lookup once
  (`audit_record(..., outcome="denied")`, as `patient_get_for_actor` does);
- a route that is not patient data: add its path prefix to NOT_PHI, with the reason.
"""

from __future__ import annotations

import functools
import json
import re
import uuid
from typing import Any

import pytest
from django.test import Client

from conftest import api_client, audit_count
from ketaclinic.fhir.registry import HANDLERS

pytestmark = pytest.mark.django_db

# Path prefixes (after /api/v1) whose objects are not patient data, so a denied lookup needs no
# audit event (it still must be 404).
NOT_PHI = {
    "/inventory/": "controlled-substance stock: audited as the ledger, not a patient record",
    "/consent/templates": "the clinic's consent documents, no patient in them",
    "/consent/versions": "the clinic's consent documents, no patient in them",
    "/setup/": "staff, clinics, chairs and products of the clinic",
    "/audit-events": "the audit trail itself (reads of it are audited by its own route)",
    "/tokens": "API tokens: no patient data; issuing and revoking are audited by the service",
    "/research/": "de-identified exports, accounted as disclosures",
    "/outcomes/recomputes": "rewriting the dashboard's summaries: a job's progress, no patient",
    "/therapy/assignments": "a therapist's assignment, no patient data returned",
    "/therapy/messages": "staff handoff messages",
    "/plans/": "plan changes are writes refused before any patient data is shown",
    "/screening-decisions/": "a decision is reached through its patient, audited there",
}


@functools.cache
def _openapi() -> dict[str, Any]:
    """The JSON API's OpenAPI document, built once: ninja builds it anew on every call (about
    2.5 s of CPU), and each route's body example reads its components."""
    from config.urls import api

    return api.get_openapi_schema()


def _operations() -> list[tuple[str, str, dict[str, Any]]]:
    schema = _openapi()
    found = []
    for path, operations in schema["paths"].items():
        if "{" not in path:
            continue
        for method, operation in operations.items():
            found.append((method.upper(), path, operation))
    return sorted(found, key=lambda item: (item[1], item[0]))


def _example(schema: dict[str, Any], components: dict[str, Any], depth: int = 0) -> Any:
    """A value of the schema's shape (required fields only), so that a body passes validation
    and the request reaches the lookup of the id."""
    if depth > 8:
        return None
    if "$ref" in schema:
        return _example(components[schema["$ref"].rsplit("/", 1)[1]], components, depth + 1)
    for key in ("anyOf", "oneOf", "allOf"):
        if key in schema:
            rest = {k: v for k, v in schema.items() if k != key}
            return _example({**rest, **schema[key][0]}, components, depth + 1)
    if "enum" in schema:
        return schema["enum"][0]
    if "default" in schema:
        return schema["default"]
    kind = schema.get("type")
    if kind == "object":
        props = schema.get("properties", {})
        return {
            name: _example(props.get(name, {}), components, depth + 1)
            for name in schema.get("required", [])
        }
    if kind == "array":
        item = _example(schema.get("items", {}), components, depth + 1)
        return [item] * int(schema.get("minItems", 0))
    if kind == "integer":
        return max(1, int(schema.get("minimum", 1)))
    if kind == "number":
        return max(1, schema.get("minimum", 1))
    if kind == "boolean":
        return True
    fmt = schema.get("format")
    return {
        "date": "2026-03-02",
        "date-time": "2026-03-02T15:00:00Z",
        "uuid": str(uuid.uuid4()),
    }.get(
        str(fmt),
        "x" * min(int(schema.get("maxLength", 12)), max(12, int(schema.get("minLength", 1)))),
    )


def _body(operation: dict[str, Any]) -> str | None:
    content = operation.get("requestBody", {}).get("content", {})
    if "application/json" not in content:
        return None
    components = _openapi()["components"]["schemas"]
    return json.dumps(_example(content["application/json"]["schema"], components))


def _call(client: Client, method: str, url: str, body: str | None) -> Any:
    kwargs = {"data": body, "content_type": "application/json"} if body is not None else {}
    return getattr(client, method.lower())(url, **kwargs)


def _is_phi(path: str) -> bool:
    return not any(path.removeprefix("/api/v1").startswith(prefix) for prefix in NOT_PHI)


OPERATIONS = _operations()
# Routes whose path names a code from a fixed list, not a record id: an unknown code is invalid
# input (400, naming the field it fills), not a missing record.
CODE_ROUTES = {("PUT", "/api/v1/scheduling/types/{kind}"): "appointment_type"}


@pytest.mark.parametrize(
    ("method", "path", "operation"), OPERATIONS, ids=[f"{m} {p}" for m, p, _ in OPERATIONS]
)
def test_a_random_id_is_404_and_a_denied_phi_lookup_is_audited_once(
    members: dict[str, Any], method: str, path: str, operation: dict[str, Any]
) -> None:
    url = re.sub(r"\{(\w+)\}", lambda m: _random_value(m.group(1), operation), path)
    body = _body(operation)
    # The first role that may use the route at all (403 is the capability check, before ids).
    for membership in members.values():
        client = api_client(membership)
        before = audit_count(outcome="denied")
        response = _call(client, method, url, body)
        if response.status_code != 403:
            break
    else:
        raise AssertionError(f"{method} {path}: no role of the clinic may use this route")
    if (method, path) in CODE_ROUTES:
        assert response.status_code == 400, response.content
        fields = [error["field"] for error in response.json()["errors"]]
        assert CODE_ROUTES[(method, path)] in fields, fields
        return
    assert response.status_code == 404, (
        f"{method} {path} with a random id answered {response.status_code}: "
        f"{response.content[:300]!r} (see the module docstring for what to do)"
    )
    if _is_phi(path):
        denied = audit_count(outcome="denied") - before
        assert denied == 1, (
            f"{method} {path}: {denied} denied-lookup audit events for one request; a denied "
            "lookup of patient data is audited exactly once (see the module docstring)"
        )


def _random_value(name: str, operation: dict[str, Any]) -> str:
    kinds = {p["name"]: p.get("schema", {}).get("type") for p in operation.get("parameters", [])}
    if kinds.get(name) == "integer":
        return "987654321"
    return {"name": "export.csv", "channel": "sms", "instrument_id": "phq9"}.get(
        name, str(uuid.uuid4())
    )


@pytest.mark.parametrize(
    ("method", "path", "operation"),
    [op for op in OPERATIONS if op[1].startswith("/api/v1/patients/{patient_id}")],
    ids=[f"{m} {p}" for m, p, _ in OPERATIONS if p.startswith("/api/v1/patients/{patient_id}")],
)
def test_another_organizations_patient_is_404(
    members: dict[str, Any], outsider: Any, method: str, path: str, operation: dict[str, Any]
) -> None:
    from conftest import actor_for, make_patient

    foreign = make_patient(actor_for(outsider))
    url = path.replace("{patient_id}", str(foreign.public_id))
    url = re.sub(r"\{(\w+)\}", lambda m: _random_value(m.group(1), operation), url)
    response = _call(api_client(members["prescriber"]), method, url, _body(operation))
    assert response.status_code in (403, 404), (method, path, response.status_code)


FHIR_TYPES = sorted(t for t, h in HANDLERS.items() if "read" in h.interactions)


@pytest.mark.parametrize("resource_type", FHIR_TYPES)
def test_fhir_read_of_a_random_or_foreign_id_is_404_and_audited(
    members: dict[str, Any], outsider: Any, resource_type: str
) -> None:
    from conftest import actor_for, make_patient

    foreign = str(make_patient(actor_for(outsider)).public_id)
    for resource_id in (str(uuid.uuid4()), foreign):
        for membership in members.values():  # the first role that may read the type at all
            client = api_client(membership)
            before = audit_count(outcome="denied")
            response = client.get(f"/fhir/r4/{resource_type}/{resource_id}")
            if response.status_code != 403:
                break
        assert response.status_code == 404, (resource_type, response.status_code)
        assert audit_count(outcome="denied") - before == 1, (
            f"FHIR {resource_type} read of an unknown id: the denied lookup is audited once"
        )
