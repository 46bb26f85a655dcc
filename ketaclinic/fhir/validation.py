"""Validation of every received resource with the fhir.resources R4B models, plus the few rules
the models do not check (id length, the vital-sign profiles' required LOINC codes)."""

from __future__ import annotations

import re
from typing import Any

from django.conf import settings
from fhir.resources.R4B import get_fhir_model_class
from fhir.resources.R4B.resource import Resource
from pydantic import ValidationError

from ketaclinic.core.input_limits import InputProblem, check_document
from ketaclinic.fhir import fast_validation
from ketaclinic.fhir.bindings import check_bindings
from ketaclinic.fhir.outcome import FhirError, from_validation_error

ID_PATTERN = re.compile(r"^[A-Za-z0-9\-.]{1,64}$")

# Base FHIR vital-sign profiles (and their US Core derivatives) require one LOINC code each.
PROFILE_CODES = {
    "bp": "85354-9",
    "bodytemp": "8310-5",
    "heartrate": "8867-4",
    "resprate": "9279-1",
    "oxygensat": "2708-6",
    "bodyweight": "29463-7",
    "bodyheight": "8302-2",
    "bmi": "39156-5",
    "us-core-blood-pressure": "85354-9",
    "us-core-body-temperature": "8310-5",
    "us-core-heart-rate": "8867-4",
    "us-core-respiratory-rate": "9279-1",
    "us-core-body-weight": "29463-7",
    "us-core-body-height": "8302-2",
    "us-core-bmi": "39156-5",
}
LOINC = "http://loinc.org"


def parse_resource(data: Any, *, expected: str | None = None) -> Resource:
    """Validate `data` as an R4B resource of type `expected` (any type when None)."""
    if not isinstance(data, dict):
        raise FhirError(400, "The body must be a JSON object holding one FHIR resource.")
    resource_type = data.get("resourceType")
    if not isinstance(resource_type, str) or not resource_type:
        raise FhirError(
            400,
            "The resource has no resourceType.",
            expressions=[("resourceType", "resourceType is required")],
        )
    if expected and resource_type != expected:
        raise FhirError(
            400,
            f"Expected a {expected} resource, received {resource_type}.",
            expressions=[("resourceType", f"must be {expected}")],
        )
    try:
        model = get_fhir_model_class(resource_type)
    except (KeyError, ValueError):
        raise FhirError(400, f"Unknown resource type {resource_type!r}.") from None
    _check_ids(data, resource_type)
    try:
        resource = model.model_validate(data)
    except ValidationError as exc:
        raise from_validation_error(resource_type, exc) from None
    except (TypeError, ValueError, LookupError, AttributeError) as exc:
        # fhir.resources raises KeyError for a contained or entry resource of an unknown type.
        raise FhirError(400, f"The {resource_type} is not valid: {exc}") from None
    if not isinstance(resource, Resource):  # a data type such as HumanName, not a resource
        raise FhirError(400, f"Unknown resource type {resource_type!r}.")
    _check_profiles(data, resource_type)
    check_bindings(data, resource_type)
    return resource


def check_limits(data: Any) -> None:
    """The input limits every received document keeps (core.input_limits), as a FhirError."""
    try:
        check_document(data, root=_resource_type_of(data))
    except InputProblem as problem:
        raise FhirError(
            problem.status, str(problem), expressions=[(problem.path, problem.message)]
        ) from None


def _resource_type_of(data: Any) -> str:
    kind = data.get("resourceType") if isinstance(data, dict) else None
    return kind if isinstance(kind, str) and kind.isidentifier() else ""


def parse_received(data: Any, *, expected: str) -> Any:
    """`check_limits` and `parse_resource` for a resource a client writes; a vital-sign
    Observation in one of the shapes fast_validation vouches for is read without the model
    (about 0.5 ms less per create), as elements the create path reads as it reads the model,
    and keeps the input limits by those shapes. Anything else, bad input included, is the
    limits' and the model's to validate and explain."""
    fast = fast_validation.observation(data) if expected == "Observation" else None
    if fast is None:
        check_limits(data)
        return parse_resource(data, expected=expected)
    _check_profiles(data, expected)
    if settings.FHIR_CHECK_FAST_INPUT:
        # The test suite holds every accepted resource to the limits and the model's reading.
        try:
            check_limits(data)
            model = parse_resource(data, expected=expected)
        except FhirError as refused:
            message = f"fast_validation accepted what fhir.resources refuses: {refused}"
            raise AssertionError(message) from refused
        where = fast_validation.difference(fast, model)
        if where is not None:
            raise AssertionError(f"fast_validation reads {where} otherwise than fhir.resources")
    return fast


def _check_ids(data: dict[str, Any], resource_type: str) -> None:
    problems = []
    if "id" in data and (not isinstance(data["id"], str) or not ID_PATTERN.match(data["id"])):
        problems.append(("id", _id_problem(data["id"])))
    contained = data.get("contained") or []
    if isinstance(contained, list):
        for index, inner in enumerate(contained):
            inner_id = inner.get("id") if isinstance(inner, dict) else None
            if inner_id is not None and (
                not isinstance(inner_id, str) or not ID_PATTERN.match(inner_id)
            ):
                problems.append((f"contained[{index}].id", _id_problem(inner_id)))
    if problems:
        raise FhirError(
            400,
            f"The {resource_type} has an invalid resource id.",
            expressions=[(f"{resource_type}.{path}", message) for path, message in problems],
        )


def _id_problem(value: Any) -> str:
    if isinstance(value, str) and len(value) > 64:
        return f"Invalid resource id: too long ({len(value)} chars; at most 64)."
    return f"Invalid resource id: invalid characters ({value!r}); use A-Z, a-z, 0-9, '-' and '.'."


def _check_profiles(data: dict[str, Any], resource_type: str) -> None:
    if resource_type != "Observation":
        return
    profiles = (data.get("meta") or {}).get("profile") or []
    codes = {
        c.get("code")
        for c in ((data.get("code") or {}).get("coding") or [])
        if isinstance(c, dict) and c.get("system") == LOINC
    }
    for profile in profiles:
        name = str(profile).rstrip("/").rsplit("/", 1)[-1].split("|")[0]
        required = PROFILE_CODES.get(name)
        if required and required not in codes:
            raise FhirError(
                400,
                f"The profile {profile} requires the LOINC code {required}, which is missing.",
                expressions=[("Observation.code", f"LOINC code {required} required by {name}")],
            )


_ELEMENTS: dict[str, frozenset[str]] = {}


def _elements(resource_type: str) -> frozenset[str]:
    if resource_type not in _ELEMENTS:
        model = get_fhir_model_class(resource_type)
        names = {f.alias or name for name, f in model.model_fields.items()}
        names |= {n.removesuffix("__ext") for n in names}
        _ELEMENTS[resource_type] = frozenset(names | {f"_{n}" for n in names} | {"resourceType"})
    return _ELEMENTS[resource_type]


def light_check(data: Any, resource_type: str) -> None:
    """The structural check of a resource the importer keeps as received: a JSON object of a
    known type, no element the type does not define (top level), valid ids, required bindings.
    Element-by-element validation is the API's (parse_resource)."""
    if not isinstance(data, dict) or data.get("resourceType") != resource_type:
        raise FhirError(400, f"Expected a {resource_type} resource.")
    try:
        known = _elements(resource_type)
    except (KeyError, ValueError):
        raise FhirError(400, f"Unknown resource type {resource_type!r}.") from None
    unknown = sorted(k for k in data if k not in known)
    if unknown:
        raise FhirError(
            400,
            f"The {resource_type} has elements R4 does not define: {', '.join(unknown)}.",
            expressions=[(f"{resource_type}.{k}", "unknown element") for k in unknown],
        )
    _check_ids(data, resource_type)
    check_bindings(data, resource_type)
