"""The Observation search's page query, built and compiled once per shape (core.shapes).

A search's shape is what decides the SQL text: which parameters it has and how many values each,
the date prefixes, the codes and categories (they choose the tables of the union), how many keys
the patient reference resolved to (and their sessions, for the flowsheet's readings), the sort, whether it continues after a cursor, and whether the
actor may read survey scores. The values bound into that SQL per request are the organization
(the tenant: always a parameter, never in the text), the patient and session keys, the date
bounds, the cursor, and the page's LIMIT and OFFSET.

Searches with other parameters (_id, identifier, value-quantity, modifiers), unpaged ones
($everything, bulk export) and any run outside one organization's scope take the ORM path.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from django.db import connections

from ketaclinic.accounts.actor import Actor
from ketaclinic.accounts.roles import Cap
from ketaclinic.core.shapes import Slots, scoped_organization
from ketaclinic.fhir.outcome import FhirError
from ketaclinic.fhir.search import (
    DATE_PREFIXES,
    MAX_COUNT,
    SearchRequest,
    date_range,
    patient_keys,
    session_keys,
)
from ketaclinic.measures.definitions import current_instruments

SHAPED_PARAMS = frozenset({"patient", "subject", "date", "_lastUpdated", "code", "category"})
PAGE = " LIMIT %s OFFSET %s"


@dataclass
class Bound:
    """One request's search as a shape key, its values, and the stand-in search to build the
    shape from the first time."""

    key: tuple[Any, ...]
    slots: Slots
    stand_search: SearchRequest
    stand_organization: int
    patient_keys: dict[Any, list[int]] = field(default_factory=dict)


def cursor_key(cursor: list[Any]) -> tuple[datetime, str, int]:
    """(measured_at, src, pk) of a `_cursor` (400 when it is not one this server sent)."""
    try:
        moment = datetime.fromisoformat(str(cursor[0]))
        return moment, str(cursor[1]), int(cursor[2])
    except (IndexError, ValueError, TypeError):
        raise FhirError(400, "_cursor is not one this server sent.") from None


def bind(actor: Actor, search: SearchRequest, descending: bool) -> Bound | None:
    """The shape and values of this search's page query (None: the ORM builds it)."""
    organization = scoped_organization()
    if (
        organization is None
        or not search.count
        or search.count > MAX_COUNT
        or any(name not in SHAPED_PARAMS for name in search.params)
    ):
        return None
    sessions_shown = actor.can(Cap.SESSION_VIEW)  # session_vitals.union_parts
    slots = Slots()
    stand_organization = slots.int(getattr(organization, "pk", organization))
    stand_params: dict[str, list[list[str]]] = {}
    stand_resolved: dict[Any, list[int]] = {}
    signature: list[Any] = []
    for name, ands in search.params.items():
        for ors in ands:
            stand_ors = ors
            if name in ("patient", "subject"):
                # The patient's keys (and, for the session flowsheet's readings, the keys of
                # its sessions), each resolved once per request, and bound once.
                resolved = ("patient", *ors)
                keys = patient_keys(search, ors)
                if resolved not in stand_resolved:
                    stand_resolved[resolved] = [slots.int(k) for k in keys]
                sessions = ("session", *ors)
                if sessions_shown and sessions not in stand_resolved:
                    stand_resolved[sessions] = [slots.int(k) for k in session_keys(search, ors)]
                signature.append(
                    (
                        name,
                        len(stand_resolved[resolved]),
                        len(stand_resolved.get(sessions, ())),
                        list(stand_resolved).index(resolved),
                    )
                )
            elif name in ("date", "_lastUpdated"):
                stand_ors, prefixes = [], []
                for value in ors:
                    prefix = value[:2] if value[:2] in DATE_PREFIXES else "eq"
                    start, end = date_range(value[2:] if value[:2] in DATE_PREFIXES else value)
                    stand = slots.moment(start)
                    slots.add(end, stand + timedelta(seconds=1))
                    stand_ors.append(f"{prefix}{stand.isoformat()}")
                    prefixes.append(prefix)
                signature.append((name, tuple(prefixes)))
            else:  # code, category: they choose the union's tables, so they are the shape
                signature.append((name, tuple(ors)))
            stand_params.setdefault(name, []).append(stand_ors)
    stand_cursor = None
    if search.cursor is not None:
        moment, src, pk = cursor_key(search.cursor)
        if moment.tzinfo is None:
            return None
        stand_cursor = [slots.moment(moment).isoformat(), slots.text(src), slots.int(pk)]
    slots.int(search.count + 1)  # LIMIT: one row more tells whether a next page follows
    slots.int(0 if search.cursor is not None else search.offset)  # OFFSET
    key = (
        "Observation",
        connections["default"].vendor,
        tuple(signature),
        descending,
        search.cursor is not None,
        actor.can(Cap.MEASURE_VIEW),
        sessions_shown,
        tuple((i.id, i.version) for i in current_instruments()),
    )
    stand_search = SearchRequest(
        params=stand_params,
        count=search.count,
        sort=search.sort,
        cursor=stand_cursor,
        resolved=stand_resolved,
    )
    return Bound(key, slots, stand_search, stand_organization)
