"""Conditional interactions: create only if nothing matches (If-None-Exist), update what one
search matches, and references written as searches (`Patient?identifier=...`) in transactions."""

from __future__ import annotations

from typing import Any

from django.http import QueryDict

from ketaclinic.accounts.actor import Actor
from ketaclinic.fhir.outcome import FhirError
from ketaclinic.fhir.registry import HANDLERS, Handler, run_search


def _matches(
    actor: Actor, handler: Handler, query: QueryDict, base_url: str
) -> list[dict[str, Any]]:
    if not any(not name.startswith("_") or name == "_id" for name in query):
        raise FhirError(
            400, f"A conditional {handler.type} needs search criteria (e.g. identifier=...)."
        )
    criteria = query.copy()
    criteria["_count"] = "2"
    for name in ("_offset", "_cursor", "_sort"):
        criteria.pop(name, None)
    bundle = run_search(actor, handler, criteria, base_url, strict=True)
    matches = [
        e["resource"]
        for e in bundle.get("entry", [])
        if e.get("search", {}).get("mode", "match") == "match"
    ]
    # Two on the page is enough to refuse (Bundle.total is left out when more pages follow).
    if len(matches) > 1:
        raise FhirError(
            412,
            f"The criteria {query.urlencode()!r} match more than one {handler.type} resource; "
            "make them select one.",
        )
    return matches


def match_one(
    actor: Actor, handler: Handler, condition: str, base_url: str
) -> dict[str, Any] | None:
    """If-None-Exist: the existing resource the criteria select, None when there is none."""
    matches = _matches(actor, handler, QueryDict(condition.lstrip("?")), base_url)
    return matches[0] if matches else None


def match_for_update(actor: Actor, handler: Handler, query: QueryDict, base_url: str) -> str | None:
    matches = _matches(actor, handler, query, base_url)
    return str(matches[0]["id"]) if matches else None


def resolve_reference(actor: Actor, reference: str, base_url: str) -> str:
    """'Patient?identifier=urn:x|42' -> 'Patient/<id>' (a transaction's conditional reference)."""
    resource_type, _, query = reference.partition("?")
    handler = HANDLERS.get(resource_type)
    if handler is None or "search-type" not in handler.interactions:
        raise FhirError(
            422, f"The conditional reference {reference!r} names a type this server cannot search."
        )
    matches = _matches(actor, handler, QueryDict(query), base_url)
    if not matches:
        raise FhirError(
            422,
            f"The conditional reference {reference!r} matches nothing.",
            expressions=[("reference", "unresolved conditional reference")],
        )
    return f"{resource_type}/{matches[0]['id']}"


def resolve_references(actor: Actor, value: Any, base_url: str) -> Any:
    """Every `reference` in a resource that is a search, replaced by the one resource it finds."""
    if isinstance(value, dict):
        out = {}
        for key, item in value.items():
            if (
                key == "reference"
                and isinstance(item, str)
                and "?" in item
                and "/" not in item.split("?", 1)[0]
            ):
                out[key] = resolve_reference(actor, item, base_url)
            else:
                out[key] = resolve_references(actor, item, base_url)
        return out
    if isinstance(value, list):
        return [resolve_references(actor, v, base_url) for v in value]
    return value
