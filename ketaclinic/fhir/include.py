"""What a searchset carries besides the matches: `_include`d and `_revinclude`d resources,
`_elements` subsets, the keyset `next` link, and an OperationOutcome entry naming the parameters a
lenient search ignored."""

from __future__ import annotations

import uuid
from typing import Any
from urllib.parse import urlencode

from django.http import QueryDict

from ketaclinic.accounts.actor import Actor
from ketaclinic.accounts.audit import audit_record
from ketaclinic.accounts.roles import Cap
from ketaclinic.fhir.outcome import FhirError
from ketaclinic.fhir.search import MAX_COUNT, SearchRequest

# Reference search parameters an _include may follow, and the element that holds the reference.
PATIENT_REFERENCES = {"patient": ("patient", "subject"), "subject": ("subject", "patient")}
SUBSETTED = {
    "system": "http://terminology.hl7.org/CodeSystem/v3-ObservationValue",
    "code": "SUBSETTED",
}


def complete(
    actor: Actor,
    handler: Any,
    query: QueryDict,
    search: SearchRequest,
    page: Any,
    bundle: dict[str, Any],
    base_url: str,
) -> dict[str, Any]:
    if page.next_cursor or search.cursor is not None:
        _keyset_links(bundle, handler.type, query, search, page.next_cursor, base_url)
    elements = [e for v in query.getlist("_elements") for e in v.split(",") if e]
    if elements:
        for entry in bundle["entry"]:
            entry["resource"] = subset(entry["resource"], elements)
    extra: list[dict[str, Any]] = []
    warnings: list[str] = []
    for value in query.getlist("_include"):
        extra += _include(actor, handler, value, bundle, base_url)
    for value in query.getlist("_revinclude"):
        found, warning = _revinclude(actor, handler, value, bundle, base_url)
        extra += found
        if warning:
            warnings.append(warning)
    seen = {e["fullUrl"] for e in bundle["entry"]}
    for entry in extra:
        if entry["fullUrl"] not in seen:
            seen.add(entry["fullUrl"])
            bundle["entry"].append(entry)
    if search.ignored:
        warnings.append(
            "Ignored unknown or unsupported search parameters: "
            + ", ".join(sorted(search.ignored))
            + " (send Prefer: handling=strict to have them refused)."
        )
    if warnings:
        bundle["entry"].append(
            {
                "fullUrl": f"urn:uuid:{uuid.uuid4()}",
                "resource": {
                    "resourceType": "OperationOutcome",
                    "issue": [
                        {"severity": "warning", "code": "not-supported", "diagnostics": text}
                        for text in warnings
                    ],
                },
                "search": {"mode": "outcome"},
            }
        )
    return bundle


def subset(resource: dict[str, Any], elements: list[str]) -> dict[str, Any]:
    keep = {"resourceType", "id", "meta", *elements}
    out = {k: v for k, v in resource.items() if k in keep}
    meta = dict(out.get("meta") or {})
    meta["tag"] = [*meta.get("tag", []), SUBSETTED]
    out["meta"] = meta
    return out


def _keyset_links(
    bundle: dict[str, Any],
    resource_type: str,
    query: QueryDict,
    search: SearchRequest,
    next_cursor: str | None,
    base_url: str,
) -> None:
    params = [
        (k, v) for k in query for v in query.getlist(k) if k not in ("_offset", "_count", "_cursor")
    ]
    params.append(("_count", str(search.count)))
    kept = ("self", "first") if search.cursor is not None else ("self", "first", "previous")
    links = [link for link in bundle["link"] if link["relation"] in kept]
    if next_cursor:
        url = f"{base_url}{resource_type}?{urlencode([*params, ('_cursor', next_cursor)])}"
        links.append({"relation": "next", "url": url})
    bundle["link"] = links


def _parse(value: str, what: str) -> tuple[str, str]:
    source, _, param = value.partition(":")
    param = param.split(":", 1)[0]
    if not source or not param:
        raise FhirError(400, f"{what} must be Type:parameter (e.g. Observation:patient).")
    return source, param


def _include(
    actor: Actor, handler: Any, value: str, bundle: dict[str, Any], base_url: str
) -> list[dict[str, Any]]:
    """Type:patient / Type:subject on a search of that type: the patients the matches point to."""
    source, param = _parse(value, "_include")
    if source != handler.type or param not in PATIENT_REFERENCES:
        raise FhirError(
            400,
            f"_include={value} is not supported; supported: {handler.type}:patient and "
            f"{handler.type}:subject.",
        )
    ids: list[uuid.UUID] = []
    for entry in bundle["entry"]:
        resource = entry["resource"]
        for key in PATIENT_REFERENCES[param]:
            ref = (resource.get(key) or {}).get("reference", "")
            if ref.startswith("Patient/"):
                try:
                    ids.append(uuid.UUID(ref.split("/", 1)[1]))
                except ValueError:
                    pass
                break
    if not ids:
        return []
    from ketaclinic.fhir import mappers
    from ketaclinic.fhir.common import emit
    from ketaclinic.patients.models import Patient

    actor.require(Cap.PATIENT_VIEW)
    patients = list(Patient.objects.filter(public_id__in=set(ids)).order_by("pk"))
    for patient in patients:
        audit_record(
            actor=actor, action="fhir.patient.read", patient_id=patient.public_id, obj=patient
        )
    return [
        {
            "fullUrl": f"{base_url}Patient/{p.public_id}",
            "resource": emit(mappers.patient_to_fhir(p)),
            "search": {"mode": "include"},
        }
        for p in patients
    ]


def _revinclude(
    actor: Actor, handler: Any, value: str, bundle: dict[str, Any], base_url: str
) -> tuple[list[dict[str, Any]], str]:
    """Type:param: the resources of Type whose `param` points to a match (Observation:patient on
    a Patient search, Provenance:target on any search)."""
    from ketaclinic.fhir.registry import HANDLERS, run_search

    source, param = _parse(value, "_revinclude")
    target = HANDLERS.get(source)
    if (
        target is None
        or "search-type" not in target.interactions
        or target.search_params.get(param) != "reference"
    ):
        raise FhirError(400, f"_revinclude={value} is not supported by this server.")
    refs = [
        f"{e['resource']['resourceType']}/{e['resource']['id']}"
        for e in bundle["entry"]
        if e.get("search", {}).get("mode") == "match"
    ]
    if not refs:
        return [], ""
    query = QueryDict(mutable=True)
    query.setlist(param, [",".join(refs)])
    query["_count"] = str(MAX_COUNT)
    found = run_search(actor, target, query, base_url, strict=True)
    warning = ""
    if found["total"] > MAX_COUNT:
        warning = (
            f"_revinclude={value} found {found['total']} resources; the first {MAX_COUNT} are "
            "included (search them directly for the rest)."
        )
    return [
        {**e, "search": {"mode": "include"}}
        for e in found["entry"]
        if e.get("search", {}).get("mode") == "match"
    ], warning
