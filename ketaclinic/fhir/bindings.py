"""Required value-set bindings (FHIR R4) of the elements this server stores.

fhir.resources checks a `code` only against its lexical pattern, so `gender: woman` would pass
and then be coerced by a mapper. These tables refuse it instead, naming the element. Each set is
copied from the R4 specification's value set for the element (binding strength `required`):
https://hl7.org/fhir/R4/valueset-<name>.html, named beside each entry.
"""

from __future__ import annotations

from typing import Any

from ketaclinic.fhir.outcome import FhirError

GENDER = {"male", "female", "other", "unknown"}  # administrative-gender
_REQUEST_STATUS = {"active", "on-hold", "cancelled", "completed", "entered-in-error", "stopped"}
_FM_STATUS = {"active", "cancelled", "draft", "entered-in-error"}  # fm-status

# resource type -> element path (dotted, list levels skipped) -> allowed codes.
CODES: dict[str, dict[str, set[str]]] = {
    "Patient": {
        "gender": GENDER,
        "contact.gender": GENDER,
        "link.type": {"replaced-by", "replaces", "refer", "seealso"},
    },
    "Practitioner": {"gender": GENDER},
    "RelatedPerson": {"gender": GENDER},
    "Observation": {  # observation-status
        "status": {
            "registered",
            "preliminary",
            "final",
            "amended",
            "corrected",
            "cancelled",
            "entered-in-error",
            "unknown",
        },
    },
    "AllergyIntolerance": {
        "type": {"allergy", "intolerance"},  # allergy-intolerance-type
        "category": {"food", "medication", "environment", "biologic"},
        "criticality": {"low", "high", "unable-to-assess"},
        "reaction.severity": {"mild", "moderate", "severe"},  # reaction-event-severity
    },
    "MedicationStatement": {
        "status": {
            "active",
            "completed",
            "entered-in-error",
            "intended",
            "stopped",
            "on-hold",
            "unknown",
            "not-taken",
        },
    },
    "MedicationRequest": {  # medicationrequest-status, -intent, request-priority
        "status": _REQUEST_STATUS | {"draft", "unknown"},
        "intent": {
            "proposal",
            "plan",
            "order",
            "original-order",
            "reflex-order",
            "filler-order",
            "instance-order",
            "option",
        },
        "priority": {"routine", "urgent", "asap", "stat"},
    },
    "Medication": {"status": {"active", "inactive", "entered-in-error"}},
    "Encounter": {  # encounter-status
        "status": {
            "planned",
            "arrived",
            "triaged",
            "in-progress",
            "onleave",
            "finished",
            "cancelled",
            "entered-in-error",
            "unknown",
        },
        "statusHistory.status": {
            "planned",
            "arrived",
            "triaged",
            "in-progress",
            "onleave",
            "finished",
            "cancelled",
            "entered-in-error",
            "unknown",
        },
    },
    "DocumentReference": {
        "status": {"current", "superseded", "entered-in-error"},  # document-reference-status
        "docStatus": {"preliminary", "final", "amended", "entered-in-error"},
        "relatesTo.code": {"replaces", "transforms", "signs", "appends"},
    },
    "Location": {"status": {"active", "suspended", "inactive"}, "mode": {"instance", "kind"}},
    "Procedure": {
        "status": {
            "preparation",
            "in-progress",
            "not-done",
            "on-hold",
            "stopped",
            "completed",
            "entered-in-error",
            "unknown",
        },
    },
    "Immunization": {"status": {"completed", "entered-in-error", "not-done"}},
    "DiagnosticReport": {
        "status": {
            "registered",
            "partial",
            "preliminary",
            "final",
            "amended",
            "corrected",
            "appended",
            "cancelled",
            "entered-in-error",
            "unknown",
        },
    },
    "QuestionnaireResponse": {
        "status": {"in-progress", "completed", "amended", "entered-in-error", "stopped"},
    },
    "CarePlan": {
        "status": {
            "draft",
            "active",
            "on-hold",
            "revoked",
            "completed",
            "entered-in-error",
            "unknown",
        },
        "intent": {"proposal", "plan", "order", "option"},
    },
    "CareTeam": {"status": {"proposed", "active", "suspended", "inactive", "entered-in-error"}},
    "Goal": {
        "lifecycleStatus": {
            "proposed",
            "planned",
            "accepted",
            "active",
            "on-hold",
            "completed",
            "cancelled",
            "entered-in-error",
            "rejected",
        },
    },
    "Claim": {"status": _FM_STATUS, "use": {"claim", "preauthorization", "predetermination"}},
    "ExplanationOfBenefit": {
        "status": _FM_STATUS,
        "use": {"claim", "preauthorization", "predetermination"},
        "outcome": {"queued", "complete", "error", "partial"},
    },
    "Device": {"status": {"active", "inactive", "entered-in-error", "unknown"}},
    "ImagingStudy": {
        "status": {"registered", "available", "cancelled", "entered-in-error", "unknown"}
    },
    "SupplyDelivery": {"status": {"in-progress", "completed", "abandoned", "entered-in-error"}},
}

# CodeableConcepts with a required binding: path -> (code system, allowed codes).
CONCEPTS: dict[str, dict[str, tuple[str, set[str]]]] = {
    "Condition": {
        "clinicalStatus": (
            "http://terminology.hl7.org/CodeSystem/condition-clinical",
            {"active", "recurrence", "relapse", "inactive", "remission", "resolved"},
        ),
        "verificationStatus": (
            "http://terminology.hl7.org/CodeSystem/condition-ver-status",
            {
                "unconfirmed",
                "provisional",
                "differential",
                "confirmed",
                "refuted",
                "entered-in-error",
            },
        ),
    },
    "AllergyIntolerance": {
        "clinicalStatus": (
            "http://terminology.hl7.org/CodeSystem/allergyintolerance-clinical",
            {"active", "inactive", "resolved"},
        ),
        "verificationStatus": (
            "http://terminology.hl7.org/CodeSystem/allergyintolerance-verification",
            {"unconfirmed", "confirmed", "refuted", "entered-in-error"},
        ),
    },
}

# Data types, recognised by the element that holds them (wherever it sits).
_DATATYPE_CODES: dict[str, dict[str, set[str]]] = {
    "telecom": {  # ContactPoint: contact-point-system, contact-point-use
        "system": {"phone", "fax", "email", "pager", "url", "sms", "other"},
        "use": {"home", "work", "temp", "old", "mobile"},
    },
    "address": {
        "use": {"home", "work", "temp", "old", "billing"},
        "type": {"postal", "physical", "both"},
    },
    "identifier": {"use": {"usual", "official", "temp", "secondary", "old"}},
}
_NAME_USE = {"usual", "official", "temp", "nickname", "anonymous", "old", "maiden"}
_TABLES: dict[str, dict[str, set[str]]] = {**_DATATYPE_CODES, "name": {"use": _NAME_USE}}
_COMPARATOR = {"<", "<=", ">=", ">"}
_NARRATIVE_STATUS = {"generated", "extensions", "additional", "empty"}


def check_bindings(data: dict[str, Any], resource_type: str) -> None:
    """Raise a 422 naming every element whose code is outside its required value set."""
    problems: list[tuple[str, str]] = []
    codes = CODES.get(resource_type, {})
    for path, allowed in codes.items():
        for where, value in _values(data, path.split("."), resource_type):
            if isinstance(value, str) and value not in allowed:
                problems.append((where, _message(value, allowed)))
    for path, (system, allowed) in CONCEPTS.get(resource_type, {}).items():
        for where, concept in _values(data, path.split("."), resource_type):
            for i, coding in enumerate((concept or {}).get("coding") or []):
                if isinstance(coding, dict) and coding.get("system") == system:
                    code = coding.get("code")
                    if code not in allowed:
                        problems.append((f"{where}.coding[{i}].code", _message(code, allowed)))
    _walk(data, resource_type, problems, depth=0)
    if problems:
        raise FhirError(
            422,
            f"The {resource_type} has codes outside their required value sets: "
            + "; ".join(f"{where}: {message}" for where, message in problems),
            expressions=problems,
        )


def _message(value: Any, allowed: set[str]) -> str:
    return f"{value!r} is not one of {', '.join(sorted(allowed))} (required binding)"


def _values(node: Any, parts: list[str], where: str) -> list[tuple[str, Any]]:
    if not parts:
        return [(where, node)]
    if isinstance(node, list):
        out = []
        for i, item in enumerate(node):
            out += _values(item, parts, f"{where}[{i}]")
        return out
    if not isinstance(node, dict) or parts[0] not in node:
        return []
    return _values(node[parts[0]], parts[1:], f"{where}.{parts[0]}")


def _walk(node: Any, where: str, problems: list[tuple[str, str]], depth: int) -> None:
    """Data-type codes (ContactPoint, Address, Identifier, HumanName, Quantity, Narrative).

    Runs over every received resource (the importer's too), so it descends only into objects
    and arrays: a call per string or number was a third of its time."""
    if depth > 40:
        return
    if isinstance(node, list):
        for i, item in enumerate(node):
            if isinstance(item, dict | list):
                _walk(item, f"{where}[{i}]", problems, depth + 1)
        return
    if not isinstance(node, dict):
        return
    if "div" in node and "status" in node and not _is_in(node["status"], _NARRATIVE_STATUS):
        problems.append((f"{where}.status", _message(node["status"], _NARRATIVE_STATUS)))
    if "comparator" in node and not _is_in(node["comparator"], _COMPARATOR):
        problems.append((f"{where}.comparator", _message(node["comparator"], _COMPARATOR)))
    for key, value in node.items():
        if key in ("contained", "resource"):  # nested resources are checked on their own
            continue
        is_list = isinstance(value, list)
        if not is_list and not isinstance(value, dict):
            continue
        table = _TABLES.get(key)
        if table:
            for i, item in enumerate(value if is_list else [value]):
                if not isinstance(item, dict):
                    continue
                at = f"{where}.{key}[{i}]" if is_list else f"{where}.{key}"
                for element, allowed in table.items():
                    code = item.get(element)
                    if isinstance(code, str) and code not in allowed:
                        problems.append((f"{at}.{element}", _message(code, allowed)))
        _walk(value, f"{where}.{key}", problems, depth + 1)


def _is_in(value: Any, allowed: set[str]) -> bool:
    """False for a value of the wrong type too (an object where a code belongs is refused, not
    a TypeError: the importer checks JSON that fhir.resources has not parsed)."""
    return isinstance(value, str) and value in allowed
