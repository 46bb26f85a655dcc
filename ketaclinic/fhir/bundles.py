"""POST /fhir/r4/ with a transaction Bundle (all or nothing, urn:uuid references resolved) or a
batch Bundle (each entry on its own, each with its own status)."""

from __future__ import annotations

from typing import Any
from urllib.parse import quote, urlsplit

from django.db import transaction
from django.http import QueryDict

from ketaclinic.accounts.actor import Actor
from ketaclinic.core.errors import DomainError
from ketaclinic.fhir import conditional, history
from ketaclinic.fhir.outcome import FhirError, from_domain_error, operation_outcome
from ketaclinic.fhir.received import overlay, resolve_late_references
from ketaclinic.fhir.registry import HANDLERS, run_search
from ketaclinic.fhir.validation import parse_received, parse_resource
from ketaclinic.fhir.versioning import check_version, parse_if_match

# Transaction processing order (FHIR R4 3.1.0.11.2): deletes, creates, updates, reads; creates of
# Patients first, so that the entries referring to them can be resolved.
METHOD_ORDER = {"DELETE": 0, "POST": 1, "PUT": 2, "GET": 3, "HEAD": 3}
TYPE_ORDER = {
    "Patient": 0,
    "Practitioner": 1,
    "Organization": 1,
    "Location": 1,
    "Medication": 1,
    "PractitionerRole": 2,
}


def replace_references(value: Any, refs: dict[str, str]) -> Any:
    """A copy of `value` with every `reference` string found in `refs` replaced. Called for every
    imported resource, so strings and numbers are copied without a call of their own."""
    if isinstance(value, dict):
        out = {}
        for k, v in value.items():
            if isinstance(v, dict | list):
                out[k] = replace_references(v, refs)
            elif k == "reference" and isinstance(v, str):
                out[k] = refs.get(v, v)
            else:
                out[k] = v
        return out
    if isinstance(value, list):
        return [replace_references(v, refs) if isinstance(v, dict | list) else v for v in value]
    return value


def process_bundle(actor: Actor, data: Any, base_url: str) -> dict[str, Any]:
    parse_resource(data, expected="Bundle")  # the whole Bundle, nested resources included
    kind = data.get("type")
    if kind not in ("transaction", "batch"):
        raise FhirError(
            400,
            f"POST to the base accepts transaction or batch Bundles, not {kind!r}.",
            expressions=[("Bundle.type", "transaction or batch")],
        )
    entries = data.get("entry") or []
    seen_full_urls: dict[str, int] = {}
    for index, entry in enumerate(entries):
        if not isinstance(entry.get("request"), dict):
            raise FhirError(
                400,
                f"Bundle.entry[{index}] has no request.",
                expressions=[(f"Bundle.entry[{index}].request", "required")],
            )
        full_url = entry.get("fullUrl")
        if full_url and not (
            full_url.startswith(("urn:uuid:", "urn:oid:")) or urlsplit(full_url).scheme
        ):
            raise FhirError(
                400,
                f"Bundle.entry[{index}].fullUrl must be an absolute URL (not {full_url!r}).",
                expressions=[(f"Bundle.entry[{index}].fullUrl", "not absolute")],
            )
        if full_url and full_url in seen_full_urls:
            # Two entries with one fullUrl make every reference to it ambiguous (FHIR R4 bdl-7).
            raise FhirError(
                400,
                f"Bundle.entry[{index}].fullUrl {full_url!r} repeats the fullUrl of "
                f"Bundle.entry[{seen_full_urls[full_url]}]; each entry needs its own.",
                expressions=[(f"Bundle.entry[{index}].fullUrl", "duplicate fullUrl")],
            )
        if full_url:
            seen_full_urls[full_url] = index
    if kind == "transaction":
        return _transaction(actor, entries, base_url)
    return _batch(actor, entries, base_url)


def _transaction(actor: Actor, entries: list[dict[str, Any]], base_url: str) -> dict[str, Any]:
    order = sorted(
        range(len(entries)),
        key=lambda i: (
            METHOD_ORDER.get(entries[i]["request"].get("method", ""), 9),
            TYPE_ORDER.get(_type_of(entries[i]), 3),
            i,
        ),
    )
    refs: dict[str, str] = {}
    responses: dict[int, dict[str, Any]] = {}
    with transaction.atomic():
        for index in order:
            try:
                responses[index] = process_entry(actor, entries[index], refs, base_url)
            except DomainError as exc:
                raise _located(from_domain_error(exc), index) from None
            except FhirError as exc:
                raise _located(exc, index) from None
        late = {k: v for k, v in refs.items() if k.startswith(("urn:uuid:", "urn:oid:"))}
        with_resource = [i for i in responses if "resource" in responses[i]]
        fixed = resolve_late_references([responses[i]["resource"] for i in with_resource], late)
        for i, resource in zip(with_resource, fixed, strict=True):
            responses[i]["resource"] = resource
    return {
        "resourceType": "Bundle",
        "type": "transaction-response",
        "entry": [responses[i] for i in range(len(entries))],
    }


def _located(exc: FhirError, index: int) -> FhirError:
    prefix = f"Bundle.entry[{index}]"
    return FhirError(
        exc.status,
        f"{prefix}: {exc.diagnostics} (the whole transaction was rolled back)",
        expressions=[(f"{prefix}.{e}" if e else prefix, m) for e, m in exc.expressions],
    )


def _batch(actor: Actor, entries: list[dict[str, Any]], base_url: str) -> dict[str, Any]:
    out = []
    for index, entry in enumerate(entries):
        try:
            with transaction.atomic():
                out.append(process_entry(actor, entry, {}, base_url))
        except (DomainError, FhirError) as exc:
            error = (
                _located(from_domain_error(exc), index)
                if isinstance(exc, DomainError)
                else _located(exc, index)
            )
            error.diagnostics = error.diagnostics.replace(
                " (the whole transaction was rolled back)", ""
            )
            out.append({"response": {"status": str(error.status), "outcome": error.outcome()}})
    return {"resourceType": "Bundle", "type": "batch-response", "entry": out}


def _type_of(entry: dict[str, Any]) -> str:
    resource = entry.get("resource")
    if isinstance(resource, dict):
        return str(resource.get("resourceType", ""))
    return entry["request"].get("url", "").split("/")[0].split("?")[0]


def _with_references(condition: str | None, refs: dict[str, str]) -> str | None:
    """An ifNoneExist naming an earlier entry by its fullUrl (`patient=urn:uuid:...`), pointed at
    what that entry created or matched, so a repeated transaction finds its own resources."""
    if not condition:
        return condition
    for full_url, location in refs.items():
        if full_url.startswith(("urn:uuid:", "urn:oid:")):
            condition = condition.replace(full_url, location).replace(quote(full_url), location)
    return condition


def process_entry(
    actor: Actor, entry: dict[str, Any], refs: dict[str, str], base_url: str
) -> dict[str, Any]:
    request = entry["request"]
    method = str(request.get("method", "")).upper()
    url = str(request.get("url", "")).removeprefix(base_url).strip("/")
    path, _, query = url.partition("?")
    parts = path.split("/")
    handler = HANDLERS.get(parts[0])
    if handler is None:
        raise FhirError(
            422,
            f"Resource type {parts[0]!r} is not supported by this server.",
            expressions=[("request.url", "unsupported type")],
        )
    if method == "POST" and len(parts) == 1:
        _require(handler, "create")
        raw = conditional.resolve_references(
            actor, replace_references(entry.get("resource"), refs), base_url
        )
        resource = parse_received(raw, expected=handler.type)
        condition = _with_references(request.get("ifNoneExist"), refs)
        existing = conditional.match_one(actor, handler, condition, base_url) if condition else None
        if existing is not None:  # conditional create: the match, nothing created
            location = f"{handler.type}/{existing['id']}"
            if entry.get("fullUrl"):
                refs[entry["fullUrl"]] = location
            return {
                "fullUrl": base_url + location,
                "resource": existing,
                "response": _response("200 OK", location, existing),
            }
        obj = handler.create_from(actor, resource, raw)
        data = history.written(actor, handler, obj, raw, history.Method.CREATE)
        location = f"{handler.type}/{obj.public_id}"
        if entry.get("fullUrl"):
            refs[entry["fullUrl"]] = location
        response: dict[str, Any] = _response("201 Created", location, data)
        if getattr(obj, "fhir_issues", None):
            response["outcome"] = operation_outcome(obj.fhir_issues)
        return {"fullUrl": base_url + location, "resource": data, "response": response}
    if method == "PUT" and len(parts) == 1 and query:
        _require(handler, "update")
        raw = conditional.resolve_references(
            actor, replace_references(entry.get("resource"), refs), base_url
        )
        resource = parse_received(raw, expected=handler.type)
        target = conditional.match_for_update(actor, handler, QueryDict(query), base_url)
        if target is None:
            _require(handler, "create")
            obj = handler.create_from(actor, resource, raw)
            data = history.written(actor, handler, obj, raw, history.Method.CREATE)
            location = f"{handler.type}/{obj.public_id}"
            if entry.get("fullUrl"):
                refs[entry["fullUrl"]] = location
            return {
                "fullUrl": base_url + location,
                "resource": data,
                "response": _response("201 Created", location, data),
            }
        resource.id = target
        raw = {**raw, "id": target}
        obj = handler.update_from(actor, target, resource, raw)
        data = history.written(actor, handler, obj, raw, history.Method.UPDATE)
        location = f"{handler.type}/{target}"
        if entry.get("fullUrl"):
            refs[entry["fullUrl"]] = location
        return {
            "fullUrl": base_url + location,
            "resource": data,
            "response": _response("200 OK", location, data),
        }
    if method == "PUT" and len(parts) == 2:
        _require(handler, "update")
        raw = conditional.resolve_references(
            actor, replace_references(entry.get("resource"), refs), base_url
        )
        resource = parse_received(raw, expected=handler.type)
        _check_id(resource, parts[1])
        if "delete" in handler.interactions and history.is_deleted(handler.type, parts[1]):
            raise history.gone(handler.type, parts[1])
        check_version(handler, actor, parts[1], parse_if_match(request.get("ifMatch")))
        obj = handler.update_from(actor, parts[1], resource, raw)
        data = history.written(actor, handler, obj, raw, history.Method.UPDATE)
        return {
            "resource": data,
            "response": _response("200 OK", f"{handler.type}/{parts[1]}", data),
        }
    if method == "DELETE" and len(parts) == 2:
        _require(handler, "delete")
        if not history.is_deleted(handler.type, parts[1]):
            check_version(handler, actor, parts[1], parse_if_match(request.get("ifMatch")))
            handler.delete(actor, parts[1])
            history.record_delete(actor, handler.type, parts[1])
        return {"response": {"status": "204 No Content"}}
    if method == "GET" and len(parts) == 4 and parts[2] == "_history":
        data, _ = history.vread(actor, handler, parts[1], parts[3])
        return {"resource": data, "response": {"status": "200 OK"}}
    if method == "GET" and len(parts) == 2:
        if "delete" in handler.interactions and history.is_deleted(handler.type, parts[1]):
            raise history.gone(handler.type, parts[1])
        data = overlay([handler.read(actor, parts[1])])[0]
        return {"resource": data, "response": {"status": "200 OK"}}
    if method == "GET" and len(parts) == 1:
        bundle = run_search(actor, handler, QueryDict(query), base_url)
        return {"resource": bundle, "response": {"status": "200 OK"}}
    raise FhirError(400, f"Unsupported request {method} {url!r} in the Bundle.")


def _response(status: str, location: str, data: dict[str, Any]) -> dict[str, Any]:
    meta = data.get("meta") or {}
    out: dict[str, Any] = {"status": status, "location": location}
    if meta.get("versionId"):
        out["location"] = f"{location}/_history/{meta['versionId']}"
        out["etag"] = f'W/"{meta["versionId"]}"'
    if meta.get("lastUpdated"):
        out["lastModified"] = meta["lastUpdated"]
    return out


def _require(handler: Any, interaction: str) -> None:
    if interaction not in handler.interactions:
        raise FhirError(405, f"{handler.type} does not support {interaction}.")


def _check_id(resource: Any, resource_id: str) -> None:
    if resource.id != resource_id:
        raise FhirError(
            400,
            f"The resource id ({resource.id!r}) must match the URL id ({resource_id!r}).",
            expressions=[("id", "must match the URL")],
        )
