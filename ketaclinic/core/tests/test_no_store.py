"""Every response with patient data is `Cache-Control: no-store`, on every interface (issue 12:
the JSON API and FHIR answered PHI with no cache directive at all)."""

from __future__ import annotations

from typing import Any

import pytest

from conftest import api_client, staff_client

pytestmark = pytest.mark.django_db


def test_ui_api_and_fhir_responses_are_no_store(members: dict[str, Any], patient_a: Any) -> None:
    ui = staff_client(members["prescriber"])
    api = api_client(members["prescriber"])
    responses = {
        "ui chart": ui.get(f"/patients/{patient_a.public_id}/"),
        "api patient": api.get(f"/api/v1/patients/{patient_a.public_id}"),
        "api list": api.get("/api/v1/patients"),
        "fhir read": api.get(f"/fhir/r4/Patient/{patient_a.public_id}"),
        "fhir search": api.get("/fhir/r4/Patient"),
        "fhir error": api.get("/fhir/r4/Patient/00000000-0000-0000-0000-000000000000"),
    }
    for name, response in responses.items():
        assert response.status_code in (200, 404), (name, response.status_code)
        assert "no-store" in response["Cache-Control"], name
