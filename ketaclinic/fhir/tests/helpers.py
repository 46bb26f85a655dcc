"""Shared helpers for the FHIR tests: JSON requests and R4B validation of every response."""

from __future__ import annotations

import json
from typing import Any

from django.test import Client
from fhir.resources.R4B import get_fhir_model_class

from tests.testdata import TEST_DATA

DATA = TEST_DATA
FHIR = "application/fhir+json"


def valid(data: dict[str, Any]) -> dict[str, Any]:
    """Assert the JSON is a valid R4B resource (Bundles: every entry too) and return it."""
    get_fhir_model_class(data["resourceType"]).model_validate(data)
    return data


def post(client: Client, url: str, data: Any, content_type: str = FHIR) -> Any:
    return client.post(url, data=json.dumps(data), content_type=content_type)


def put(client: Client, url: str, data: Any) -> Any:
    return client.put(url, data=json.dumps(data), content_type=FHIR)


def load(*parts: str) -> dict[str, Any]:
    return json.loads((DATA.joinpath(*parts)).read_text())


def patient_json(**extra: Any) -> dict[str, Any]:
    data = {
        "resourceType": "Patient",
        "name": [{"use": "official", "family": "Curie", "given": ["Marie"]}],
        "gender": "female",
        "birthDate": "1967-11-07",
    }
    data.update(extra)
    return data


def bp_json(
    patient_id: str,
    systolic: float = 128,
    diastolic: float = 82,
    when: str = "2024-03-01T09:30:00+00:00",
) -> dict[str, Any]:
    loinc = "http://loinc.org"
    return {
        "resourceType": "Observation",
        "status": "final",
        "category": [
            {
                "coding": [
                    {
                        "system": "http://terminology.hl7.org/CodeSystem/observation-category",
                        "code": "vital-signs",
                    }
                ]
            }
        ],
        "code": {"coding": [{"system": loinc, "code": "85354-9"}]},
        "subject": {"reference": f"Patient/{patient_id}"},
        "effectiveDateTime": when,
        "component": [
            {
                "code": {"coding": [{"system": loinc, "code": "8480-6"}]},
                "valueQuantity": {
                    "value": systolic,
                    "unit": "mmHg",
                    "system": "http://unitsofmeasure.org",
                    "code": "mm[Hg]",
                },
            },
            {
                "code": {"coding": [{"system": loinc, "code": "8462-4"}]},
                "valueQuantity": {
                    "value": diastolic,
                    "unit": "mmHg",
                    "system": "http://unitsofmeasure.org",
                    "code": "mm[Hg]",
                },
            },
        ],
    }


def weight_json(
    patient_id: str, value: float, unit: str = "[lb_av]", when: str = "2024-03-01T09:00:00+00:00"
) -> dict[str, Any]:
    return {
        "resourceType": "Observation",
        "status": "final",
        "category": [
            {
                "coding": [
                    {
                        "system": "http://terminology.hl7.org/CodeSystem/observation-category",
                        "code": "vital-signs",
                    }
                ]
            }
        ],
        "code": {"coding": [{"system": "http://loinc.org", "code": "29463-7"}]},
        "subject": {"reference": f"Patient/{patient_id}"},
        "effectiveDateTime": when,
        "valueQuantity": {
            "value": value,
            "unit": unit,
            "system": "http://unitsofmeasure.org",
            "code": unit,
        },
    }
