"""The CapabilityStatement, generated from the handler registry: it lists exactly what is served."""

from __future__ import annotations

from typing import Any

from ketaclinic.fhir.common import emit
from ketaclinic.fhir.registry import HANDLERS

SOFTWARE_VERSION = "0.1.0"
PUBLISHED = "2026-01-01"


def capability_statement(base_url: str) -> dict[str, Any]:
    resources = []
    for name, handler in HANDLERS.items():
        resource: dict[str, Any] = {
            "type": name,
            "interaction": [{"code": code} for code in handler.interactions],
            "versioning": handler.versioning,
            "readHistory": False,
            "updateCreate": False,
            "searchParam": [
                {
                    "name": param,
                    "type": kind,
                    **(
                        {"documentation": handler.documentation[param]}
                        if param in handler.documentation
                        else {}
                    ),
                }
                for param, kind in handler.search_params.items()
            ],
        }
        if "search-type" in handler.interactions:
            resource["searchParam"] += [
                {"name": "_count", "type": "number"},
                {
                    "name": "_sort",
                    "type": "string",
                    "documentation": "one of: " + ", ".join(handler.sorts),
                },
            ]
        if name == "Patient":
            resource["operation"] = [
                {
                    "name": "everything",
                    "definition": "http://hl7.org/fhir/OperationDefinition/Patient-everything",
                }
            ]
        resources.append(resource)
    return emit(
        {
            "resourceType": "CapabilityStatement",
            "status": "active",
            "date": PUBLISHED,
            "kind": "instance",
            "software": {"name": "ketaclinic", "version": SOFTWARE_VERSION},
            "implementation": {"description": "ketaclinic FHIR R4 API", "url": base_url},
            "fhirVersion": "4.0.1",
            "format": ["application/fhir+json", "application/json"],
            "rest": [
                {
                    "mode": "server",
                    "security": {
                        "service": [
                            {
                                "coding": [
                                    {
                                        "system": "http://terminology.hl7.org/CodeSystem/restful-security-service",
                                        "code": "OAuth",
                                    }
                                ],
                                "text": "Bearer token (ketaclinic create-token)",
                            }
                        ],
                        "description": "Authorization: Bearer <token>; every request is scoped to the token's organization.",
                    },
                    "resource": resources,
                    "interaction": [{"code": "transaction"}, {"code": "batch"}],
                }
            ],
        }
    )
