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
from ketaclinic.core.errors import Forbidden
from ketaclinic.fhir.outcome import FhirError
from ketaclinic.fhir.search import MAX_COUNT, SearchRequest

# Reference search parameters an _include may follow, and the element that holds the reference.
PATIENT_REFERENCES = {"patient": ("patient", "subject"), "subject": ("subject", "patient")}
# Reference parameters to any type, by the type that holds them (the element has the same name).
TARGET_REFERENCES = {"Provenance": ("target",)}
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
    """Type:patient / Type:subject on a search of that type: the patients the matches point to;
    Provenance:target: the resources the matching Provenances are about."""
    source, param = _parse(value, "_include")
    if source == handler.type and param in TARGET_REFERENCES.get(handler.type, ()):
        return _include_targets(actor, param, bundle, base_url)
    if source != handler.type or param not in PATIENT_REFERENCES:
        supported = [
            f"{handler.type}:{p}" for p in PATIENT_REFERENCES if p in handler.search_params
        ]
        supported += [f"{handler.type}:{p}" for p in TARGET_REFERENCES.get(handler.type, ())]
        raise FhirError(
            400,
            f"_include={value} is not supported; supported: {', '.join(supported) or 'none'}.",
        )
    ids: list[uuid.UUID] = []
    for entry in _matches(bundle):
        ref = _patient_reference(entry["resource"], PATIENT_REFERENCES[param])
        if ref and (key := _uuid(ref.split("/", 1)[1])):
            ids.append(key)
    return _patients(actor, ids, base_url)


def _patient_reference(resource: dict[str, Any], keys: tuple[str, ...]) -> str:
    """The Patient a resource is about: its `patient`/`subject`, else (AuditEvent) the entity
    it is about or (Appointment) the patient among its participants."""
    for key in keys:
        ref = (resource.get(key) or {}).get("reference", "")
        if ref.startswith("Patient/"):
            return str(ref)
    for holder, element in (("entity", "what"), ("participant", "actor")):
        for item in resource.get(holder) or []:
            ref = ((item or {}).get(element) or {}).get("reference", "")
            if ref.startswith("Patient/"):
                return str(ref)
    return ""


def _matches(bundle: dict[str, Any]) -> list[dict[str, Any]]:
    return [e for e in bundle["entry"] if e.get("search", {}).get("mode") == "match"]


def _patients(actor: Actor, ids: list[uuid.UUID], base_url: str) -> list[dict[str, Any]]:
    """The patients with these ids, each read audited (one query for the lot)."""
    if not ids:
        return []
    from ketaclinic.fhir import mappers
    from ketaclinic.fhir.common import emit
    from ketaclinic.fhir.received import overlay
    from ketaclinic.patients.models import Patient

    actor.require(Cap.PATIENT_VIEW)
    patients = list(Patient.objects.filter(public_id__in=set(ids)).order_by("pk"))
    for patient in patients:
        audit_record(
            actor=actor, action="fhir.patient.read", patient_id=patient.public_id, obj=patient
        )
    resources = overlay([emit(mappers.patient_to_fhir(p)) for p in patients])
    return [
        {
            "fullUrl": f"{base_url}Patient/{r['id']}",
            "resource": r,
            "search": {"mode": "include"},
        }
        for r in resources
    ]


def _include_targets(
    actor: Actor, param: str, bundle: dict[str, Any], base_url: str
) -> list[dict[str, Any]]:
    """The resources the matches reference in `param` (any type): one search by `_id` per type,
    so each is read with that type's permission and audit; a reference this server cannot
    resolve (another server's, a type without `_id` search, a deleted resource) is left out."""
    from ketaclinic.fhir.received import reference_key
    from ketaclinic.fhir.registry import HANDLERS, run_search

    wanted: dict[str, list[str]] = {}
    for entry in _matches(bundle):
        value = entry["resource"].get(param)
        for ref in value if isinstance(value, list) else [value]:
            key = reference_key(ref.get("reference") if isinstance(ref, dict) else None)
            if key:
                kind, _, rid = key.partition("/")
                if rid not in wanted.setdefault(kind, []):
                    wanted[kind].append(rid)
    found: list[dict[str, Any]] = []
    for kind, ids in wanted.items():
        if kind == "Patient":
            found += _patients(actor, [k for i in ids if (k := _uuid(i))], base_url)
            continue
        target = HANDLERS.get(kind)
        if target is None or "_id" not in target.search_params:
            continue
        for start in range(0, len(ids), MAX_COUNT):
            query = QueryDict(mutable=True)
            query["_id"] = ",".join(ids[start : start + MAX_COUNT])
            query["_count"] = str(MAX_COUNT)
            try:
                result = run_search(actor, target, query, base_url, strict=True)
            except Forbidden:  # a type this role may not read (the refusal is audited) is left out
                break
            found += [{**e, "search": {"mode": "include"}} for e in _matches(result)]
    return found


def _uuid(raw: str) -> uuid.UUID | None:
    try:
        return uuid.UUID(raw)
    except ValueError:
        return None


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
    refs = [f"{e['resource']['resourceType']}/{e['resource']['id']}" for e in _matches(bundle)]
    if not refs:
        return [], ""
    query = QueryDict(mutable=True)
    query.setlist(param, [",".join(refs)])
    query["_count"] = str(MAX_COUNT)
    found = run_search(actor, target, query, base_url, strict=True)
    warning = ""
    # Bundle.total is left out when more pages follow (search.py): the next link says so.
    if any(link["relation"] == "next" for link in found["link"]):
        warning = (
            f"_revinclude={value} found more than {MAX_COUNT} resources; the first {MAX_COUNT} "
            "are included (search them directly for the rest)."
        )
    return [{**e, "search": {"mode": "include"}} for e in _matches(found)], warning
