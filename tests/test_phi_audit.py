"""Reads of patient data are audited exactly once per request, allowed or denied (issue 12).

Before: GET /api/v1/patients?limit=200, /sessions/{id}, /sessions/{id}/vitals and /alerts left
no audit event, and denied lookups of conditions, sessions, responses, alerts and FHIR
Condition/Encounter left none either (tests/test_route_ids.py covers every route's denial)."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from django_scopes import scope

from conftest import api_client, audit_count, make_patient, staff_client
from ketaclinic.sessions.tests.builders import session_checked_in

pytestmark = pytest.mark.django_db


def _one_event(client: Any, url: str, status: int = 200) -> None:
    before = audit_count()
    response = client.get(url)
    assert response.status_code == status, (url, response.status_code)
    assert audit_count() - before == 1, f"GET {url}: {audit_count() - before} audit events"


def test_reads_that_were_not_audited_now_leave_one_event(
    members: dict[str, Any], prescriber: Any, traveller: Any
) -> None:
    patient = make_patient(prescriber)
    with scope(organization=prescriber.organization):
        session = session_checked_in(prescriber, patient)
    client = api_client(members["prescriber"])
    _one_event(client, "/api/v1/patients?limit=200")
    _one_event(client, f"/api/v1/sessions/{session.public_id}")
    _one_event(client, f"/api/v1/sessions/{session.public_id}/vitals")
    _one_event(client, "/api/v1/alerts")
    ui = staff_client(members["prescriber"])
    _one_event(ui, "/patients/?q=Lovelace")  # a search of patients, on screen
    _one_event(ui, f"/patients/{patient.public_id}/")


def test_denied_lookups_leave_one_denied_event(members: dict[str, Any]) -> None:
    client = api_client(members["prescriber"])
    for url in (
        f"/api/v1/conditions/{uuid.uuid4()}",
        f"/api/v1/sessions/{uuid.uuid4()}",
        f"/api/v1/responses/{uuid.uuid4()}",
        f"/fhir/r4/Condition/{uuid.uuid4()}",
        f"/fhir/r4/Encounter/{uuid.uuid4()}",
    ):
        before = audit_count(outcome="denied")
        assert client.get(url).status_code == 404
        assert audit_count(outcome="denied") - before == 1, url
