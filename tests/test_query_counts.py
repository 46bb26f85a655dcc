"""Query counts pinned for every JSON API read and every FHIR read interaction (issue 13 item 5).

Generated like tests/test_phi_audit_routes.py: the JSON API routes from the OpenAPI document, the
FHIR interactions from the registry; each GET is made with real ids (a patient and their session)
by the first role allowed to make it, once the token's identity is resolved (cached per process,
accounts.identity_cache). A route not in the table is held to DEFAULT_MAX.

A failing count means: add `select_related`/`prefetch_related`/an aggregate, not a larger number.
A route that got cheaper: lower its pin. Writes are pinned where they are tested (the vitals
batch, the weight write, the FHIR Observation create in tests of their own apps).
"""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext

from ketaclinic.fhir.registry import HANDLERS
from tests.test_phi_audit_routes import ROLE_ORDER, World, _api_operations, _fill

pytestmark = pytest.mark.django_db

DEFAULT_MAX = 12  # a route added later, until it is pinned here
# Every route's count when it was pinned (the comment: the status it answered in this world).
API_MAX: dict[str, int] = {
    "/api/v1/alerts": 2,  # 200
    "/api/v1/allergies/{entry_id}": 2,  # 404
    "/api/v1/audit-events": 3,  # 200
    "/api/v1/audit-events/{event_id}": 0,  # 422
    "/api/v1/conditions/{entry_id}": 2,  # 404
    "/api/v1/consent/templates": 2,  # 200
    "/api/v1/consent/templates/{template_id}": 1,  # 404
    "/api/v1/consent/templates/{template_id}/versions": 1,  # 404
    "/api/v1/consent/versions": 2,  # 200
    "/api/v1/consent/versions/{version_id}": 1,  # 404
    "/api/v1/consents/{signature_id}": 2,  # 404
    "/api/v1/inventory/administrations/{administration_id}/reconciliation": 2,  # 404
    "/api/v1/inventory/cases": 1,  # 200
    "/api/v1/inventory/containers": 1,  # 200
    "/api/v1/inventory/dea-forms": 1,  # 200
    "/api/v1/inventory/dea-forms/{form_id}": 1,  # 404
    "/api/v1/medications/{entry_id}": 2,  # 404
    "/api/v1/messaging/policy": 2,  # 200
    "/api/v1/outcomes/durability": 8,  # 200
    "/api/v1/patients": 3,  # 200
    "/api/v1/patients/{patient_id}": 2,  # 200
    "/api/v1/patients/{patient_id}/allergies": 4,  # 200
    "/api/v1/patients/{patient_id}/blood-pressures": 4,  # 200
    "/api/v1/patients/{patient_id}/conditions": 4,  # 200
    "/api/v1/patients/{patient_id}/consents": 3,  # 200
    "/api/v1/patients/{patient_id}/contact": 5,  # 200
    "/api/v1/patients/{patient_id}/disclosures": 5,  # 200
    "/api/v1/patients/{patient_id}/heights": 4,  # 200
    "/api/v1/patients/{patient_id}/medications": 4,  # 200
    "/api/v1/patients/{patient_id}/messages": 3,  # 200
    "/api/v1/patients/{patient_id}/outcomes/{instrument_id}": 0,  # 400
    "/api/v1/patients/{patient_id}/responses": 4,  # 200
    "/api/v1/patients/{patient_id}/screening": 4,  # 200
    "/api/v1/patients/{patient_id}/therapy/visits": 3,  # 200
    "/api/v1/patients/{patient_id}/weights": 4,  # 200
    "/api/v1/protocols": 2,  # 200
    "/api/v1/protocols/{protocol_id}": 2,  # 404
    "/api/v1/research/exports/{export_id}": 1,  # 404
    "/api/v1/research/exports/{export_id}/files/{name}": 1,  # 404
    "/api/v1/responses/{response_id}": 2,  # 404
    "/api/v1/safety-policy": 2,  # 200
    "/api/v1/scheduling/appointments": 0,  # 422
    "/api/v1/scheduling/appointments/{appointment_id}": 2,  # 404
    "/api/v1/scheduling/free-slots": 0,  # 422
    "/api/v1/scheduling/leads": 2,  # 200
    "/api/v1/scheduling/portal-policy": 4,  # 200
    "/api/v1/scheduling/types": 13,  # 200
    "/api/v1/scheduling/waitlist": 2,  # 200
    "/api/v1/screening/policy": 2,  # 200
    "/api/v1/sessions/{session_id}": 2,  # 200
    "/api/v1/sessions/{session_id}/note": 3,  # 404
    "/api/v1/sessions/{session_id}/pmf": 1,  # 400
    "/api/v1/sessions/{session_id}/vitals": 11,  # 200
    "/api/v1/setup/chairs": 1,  # 200
    "/api/v1/today/arrivals": 8,  # 200
    "/api/v1/today/therapy": 5,  # 200
    "/api/v1/today/compliance": 9,  # 200
    "/api/v1/today/research": 9,  # 200
    "/api/v1/setup/checklist": 13,  # 200 (one exists() per item; the admin's home)
    "/api/v1/setup/clinics": 1,  # 200
    "/api/v1/setup/escalation": 1,  # 200
    "/api/v1/setup/locations": 1,  # 200
    "/api/v1/setup/patient-portal": 1,  # 200
    "/api/v1/setup/products": 1,  # 200
    "/api/v1/setup/role-changes": 1,  # 200
    "/api/v1/setup/staff": 1,  # 200
    "/api/v1/therapy/break-glass-reads": 2,  # 200
    "/api/v1/therapy/messages": 2,  # 200
    "/api/v1/therapy/visits/{visit_id}": 2,  # 404
    "/api/v1/therapy/visits/{visit_id}/process-note": 2,  # 404
    "/api/v1/tokens": 1,  # 200
}
# A read of a missing resource of a type that can be deleted over FHIR costs one lookup more
# than it did when first pinned: a deleted resource answers 410 Gone, not 404 (issue 14 item 3).
FHIR_MAX: dict[str, int] = {
    "$everything": 30,  # 200
    "AdverseEvent read (missing)": 2,  # 404
    "AdverseEvent search": 3,  # 200
    "AdverseEvent search by patient": 3,  # 200
    "AllergyIntolerance read (missing)": 3,  # 404
    "AllergyIntolerance search": 3,  # 200
    "AllergyIntolerance search by patient": 3,  # 200
    "Appointment read (missing)": 2,  # 404
    "Appointment search": 3,  # 200
    "Appointment search by patient": 3,  # 200
    "AuditEvent read (missing)": 1,  # 404
    "AuditEvent search": 3,  # 200
    "AuditEvent search by patient": 3,  # 200
    "CarePlan read (missing)": 3,  # 404
    "CarePlan search": 2,  # 200
    "CarePlan search by patient": 2,  # 200
    "CareTeam read (missing)": 3,  # 404
    "CareTeam search": 2,  # 200
    "CareTeam search by patient": 2,  # 200
    "Claim read (missing)": 3,  # 404
    "Claim search": 2,  # 200
    "Claim search by patient": 2,  # 200
    "Condition read (missing)": 3,  # 404
    "Condition search": 3,  # 200
    "Condition search by patient": 3,  # 200
    "Consent read (missing)": 2,  # 404
    "Consent search": 3,  # 200
    "Consent search by patient": 3,  # 200
    "Device read (missing)": 3,  # 404
    "Device search": 2,  # 200
    "Device search by patient": 2,  # 200
    "DiagnosticReport read (missing)": 3,  # 404
    "DiagnosticReport search": 2,  # 200
    "DiagnosticReport search by patient": 2,  # 200
    "DocumentReference read (missing)": 3,  # 404
    "DocumentReference search": 4,  # 200
    "DocumentReference search by patient": 4,  # 200
    "Encounter read": 7,  # 200 (the received JSON kept beside the session: one query)
    "Encounter read (missing)": 4,  # 404
    "Encounter search": 9,  # 200 (+1: the received JSON kept beside, for the page)
    "Encounter search by patient": 9,  # 200 (+1, likewise)
    "ExplanationOfBenefit read (missing)": 3,  # 404
    "ExplanationOfBenefit search": 2,  # 200
    "ExplanationOfBenefit search by patient": 2,  # 200
    "Goal read (missing)": 3,  # 404
    "Goal search": 2,  # 200
    "Goal search by patient": 2,  # 200
    "ImagingStudy read (missing)": 3,  # 404
    "ImagingStudy search": 2,  # 200
    "ImagingStudy search by patient": 2,  # 200
    "Immunization read (missing)": 3,  # 404
    "Immunization search": 2,  # 200
    "Immunization search by patient": 2,  # 200
    "Location read (missing)": 3,  # 404
    "Location search": 4,  # 200
    "Medication read (missing)": 3,  # 404
    "Medication search": 2,  # 200
    "MedicationAdministration read (missing)": 3,  # 404
    "MedicationAdministration search": 4,  # 200
    "MedicationAdministration search by patient": 4,  # 200
    "MedicationRequest read (missing)": 3,  # 404
    "MedicationRequest search": 2,  # 200
    "MedicationRequest search by patient": 2,  # 200
    "MedicationStatement read (missing)": 3,  # 404
    "MedicationStatement search": 4,  # 200
    "MedicationStatement search by patient": 4,  # 200
    "Observation read (missing)": 6,  # 404
    "Observation search": 7,  # 200
    "Observation search by patient": 8,  # 200
    "Organization read (missing)": 3,  # 404
    "Organization search": 2,  # 200
    "Patient read": 3,  # 200
    "Patient read (missing)": 2,  # 404
    "Patient search": 4,  # 200
    "Practitioner read (missing)": 3,  # 404
    "Practitioner search": 2,  # 200
    "PractitionerRole read (missing)": 3,  # 404
    "PractitionerRole search": 2,  # 200
    "Procedure read (missing)": 3,  # 404
    "Procedure search": 2,  # 200
    "Procedure search by patient": 2,  # 200
    "Provenance read (missing)": 3,  # 404
    "Provenance search": 2,  # 200
    "Questionnaire read (missing)": 1,  # 404
    "Questionnaire search": 1,  # 200
    "QuestionnaireResponse read (missing)": 2,  # 404
    "QuestionnaireResponse search": 3,  # 200
    "QuestionnaireResponse search by patient": 3,  # 200
    "Schedule read (missing)": 2,  # 404
    "Schedule search": 3,  # 200
    "Slot search": 0,  # 400
    "SupplyDelivery read (missing)": 3,  # 404
    "SupplyDelivery search": 2,  # 200
    "SupplyDelivery search by patient": 2,  # 200
    "metadata": 0,  # 200
}


def _count(clients: dict[str, Client], url: str) -> tuple[int, int]:
    """(status, queries) of a GET by the first role that is not refused."""
    status, queries = 0, 0
    for role in ROLE_ORDER:
        with CaptureQueriesContext(connection) as captured:
            status = clients[role].get(url).status_code
        queries = len(captured)
        if status not in (401, 403):
            break
    return status, queries


def _warm(world: World) -> None:
    for client in world.tokens.values():
        client.get("/api/v1/patients?limit=1")


def _check(found: dict[str, tuple[int, int]], pins: dict[str, int]) -> None:
    over = {
        key: (status, queries)
        for key, (status, queries) in found.items()
        if queries > pins.get(key, DEFAULT_MAX)
    }
    assert len(found) > 20, "the enumeration found almost nothing"
    assert not over, "over their query pin (status, queries): " + ", ".join(
        f"{key} {value}" for key, value in sorted(over.items())
    )


def test_every_json_api_read_stays_within_its_query_pin(
    members: dict[str, Any], traveller: Any
) -> None:
    world = World(members)
    _warm(world)
    found = {
        path: _count(world.tokens, _fill(path, world.ids, True))
        for method, path in _api_operations()
        if method == "get"
    }
    _check(found, API_MAX)


def test_every_fhir_read_interaction_stays_within_its_query_pin(
    members: dict[str, Any], traveller: Any
) -> None:
    world = World(members)
    _warm(world)
    patient = world.ids["patient_id"]
    urls = {
        "metadata": "/fhir/r4/metadata",
        "$everything": f"/fhir/r4/Patient/{patient}/$everything",
    }
    for resource_type, handler in sorted(HANDLERS.items()):
        if "search-type" in handler.interactions:
            urls[f"{resource_type} search"] = f"/fhir/r4/{resource_type}?_count=20"
            if "patient" in handler.search_params:
                urls[f"{resource_type} search by patient"] = (
                    f"/fhir/r4/{resource_type}?patient={patient}&_count=20"
                )
        if "read" in handler.interactions:
            urls[f"{resource_type} read (missing)"] = f"/fhir/r4/{resource_type}/{uuid.uuid4()}"
    urls["Patient read"] = f"/fhir/r4/Patient/{patient}"
    urls["Encounter read"] = f"/fhir/r4/Encounter/{world.ids['session_id']}"
    found = {key: _count(world.tokens, url) for key, url in urls.items()}
    _check(found, FHIR_MAX)
