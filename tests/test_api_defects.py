"""JSON API defects of issue 12: the intake read its answers from a query parameter; the
reconciliation of a random or another organization's administration answered 200, balanced."""

from __future__ import annotations

import json
import uuid
from typing import Any

import pytest
from django_scopes import scopes_disabled

from conftest import api_client
from ketaclinic.screening.models import IntakeHistory

pytestmark = pytest.mark.django_db


def test_intake_takes_a_json_body(members: dict[str, Any], patient_a: Any) -> None:
    client = api_client(members["prescriber"])
    response = client.post(
        f"/api/v1/patients/{patient_a.public_id}/intake",
        data=json.dumps({"note": "first visit", "medications_reconciled": True}),
        content_type="application/json",
    )
    assert response.status_code == 201, response.content
    with scopes_disabled():
        intake = IntakeHistory.objects.get(public_id=response.json()["id"])
    assert intake.note == "first visit"
    assert intake.medications_reconciled is True


def test_reconciliation_of_an_unknown_administration_is_404(
    members: dict[str, Any], outsider: Any
) -> None:
    client = api_client(members["compliance"])
    random_id = uuid.uuid4()
    response = client.get(f"/api/v1/inventory/administrations/{random_id}/reconciliation")
    assert response.status_code == 404
    assert response.json()["detail"] == "No such administration."
