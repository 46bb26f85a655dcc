"""The CapabilityStatement, generated from the handler registry: it lists exactly what is served."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

from ketaclinic.fhir.common import emit
from ketaclinic.fhir.registry import HANDLERS

SOFTWARE_VERSION = "0.1.0"
PUBLISHED = "2026-01-01"


# Reference parameters an _include follows (ketaclinic/fhir/include.py): to the patient, and
# Provenance.target to whatever the Provenance is about.
INCLUDABLE = ("patient", "subject", "target")


def _may_point_to(param: str, target: str) -> bool:
    """Whether a reference parameter of that name can point to a resource of `target` type."""
    if param in ("patient", "subject"):
        return target == "Patient"
    return param == "target"  # e.g. Provenance:target points to any type


def capability_statement(base_url: str) -> dict[str, Any]:
    parts = urlsplit(base_url)
    root = f"{parts.scheme}://{parts.netloc}"
    resources = []
    for name, handler in HANDLERS.items():
        readable = "read" in handler.interactions
        interactions = list(handler.interactions)
        if readable:  # served for every readable type by views.vread and views.*_history
            interactions += ["vread", "history-instance", "history-type"]
        resource: dict[str, Any] = {
            "type": name,
            "interaction": [{"code": code} for code in interactions],
            "versioning": handler.versioning,
            "readHistory": readable,
            "updateCreate": False,
            "conditionalCreate": "create" in handler.interactions,
            "conditionalUpdate": "update" in handler.interactions
            and "search-type" in handler.interactions,
            "conditionalDelete": "not-supported",
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
            includes = [f"{name}:{p}" for p in INCLUDABLE if p in handler.search_params]
            revincludes = [
                f"{other}:{param}"
                for other, h in HANDLERS.items()
                if "search-type" in h.interactions
                for param, kind in h.search_params.items()
                if kind == "reference" and _may_point_to(param, name)
            ]
            if includes:
                resource["searchInclude"] = includes
            if revincludes:
                resource["searchRevInclude"] = revincludes
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
                        "extension": [
                            {
                                "url": "http://fhir-registry.smarthealthit.org/StructureDefinition/oauth-uris",
                                "extension": [
                                    {"url": "authorize", "valueUri": f"{root}/oauth/authorize"},
                                    {"url": "token", "valueUri": f"{root}/oauth/token"},
                                ],
                            }
                        ],
                        "service": [
                            {
                                "coding": [
                                    {
                                        "system": "http://terminology.hl7.org/CodeSystem/restful-security-service",
                                        "code": "SMART-on-FHIR",
                                    }
                                ],
                                "text": "SMART on FHIR (see .well-known/smart-configuration) or a "
                                "bearer token (ketaclinic create-token)",
                            }
                        ],
                        "description": "Authorization: Bearer <token>; every request is scoped to the token's organization (and a SMART token to its scopes).",
                    },
                    "resource": resources,
                    "interaction": [
                        {"code": "transaction"},
                        {"code": "batch"},
                        {"code": "history-system"},
                    ],
                }
            ],
        }
    )
