"""Registry entries for resources kept as received (fhir.received): the types an EHR sends that
the clinic keeps without reasoning about them, and the same kept beside the types the clinic
does reason about (Observation, Encounter, Location, DocumentReference), where the clinic's own
handler answers for its rows and the received ones are added:

- Observation: a clinic vital sign (or a session flowsheet reading) goes to the chart as before;
  any other code (a lab, a separate systolic or diastolic, a score the clinic does not compute)
  is kept as received.
- Encounter: a new treatment session (status planned) is scheduled as before; a finished or
  cancelled Encounter from another system is history and is kept as received.
- Location: the clinic's chairs are read-only; a Location an EHR sends (a site, a ward) is kept.
- DocumentReference: signed therapy notes are read-only; a letter an EHR sends is kept.

A search pages through the clinic's rows first, then the received ones (each ordered by date).
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from ketaclinic.accounts.actor import Actor
from ketaclinic.accounts.roles import Cap
from ketaclinic.core.errors import NotFound
from ketaclinic.fhir import keyset, received
from ketaclinic.fhir.observations import CODES, LOINC, canonical_code
from ketaclinic.fhir.outcome import FhirError
from ketaclinic.fhir.registry import HANDLERS, Handler, Page, _page
from ketaclinic.fhir.search import SearchRequest, encode_cursor


def _patients(rows: list[Any]) -> list[str]:
    return sorted({str(r.patient.public_id) for r in rows if r.patient_id})


class GenericHandler(Handler):
    """A type kept only as received."""

    def to_fhir(self, obj: Any) -> dict[str, Any]:
        return received.generic_to_fhir(obj)

    def read(self, actor: Actor, resource_id: str) -> dict[str, Any]:
        actor.require(Cap.CLINICAL_VIEW)
        row = received.generic_get(actor, self.type, resource_id)
        self.audit_read(actor, row, row.patient) if row.patient_id else None
        return self.to_fhir(row)

    def audit_read(self, actor: Actor, obj: Any, patient: Any) -> None:
        from ketaclinic.accounts.audit import audit_record

        audit_record(
            actor=actor,
            action=f"fhir.{self.type.lower()}.read",
            patient_id=patient.public_id,
            detail={"resource": f"{self.type}/{obj.resource_id}"},
        )

    def search(self, actor: Actor, search: SearchRequest) -> Page:
        queryset = received.generic_queryset(actor, self.type, search)
        if queryset is None:
            return Page(0, [], [])
        total, rows = _page(queryset, search)
        return Page(total, [self.to_fhir(r) for r in rows], _patients(rows))

    def create_from(self, actor: Actor, resource: Any, raw: dict[str, Any], **kw: Any) -> Any:
        return received.generic_create(actor, self.type, resource, raw, **kw)

    def create(self, actor: Actor, resource: Any, **kw: Any) -> Any:
        raise FhirError(500, "Generic resources are created from the received JSON.")

    def update_from(
        self, actor: Actor, resource_id: str, resource: Any, raw: dict[str, Any]
    ) -> Any:
        return received.generic_update(actor, self.type, resource_id, resource, raw)

    def delete(self, actor: Actor, resource_id: str) -> None:
        received.generic_delete(actor, self.type, resource_id)

    def keep_received(
        self, actor: Actor, obj: Any, data: dict[str, Any], raw: Any, *, fresh: bool = False
    ) -> dict[str, Any]:
        return data  # the row is the received resource

    def fresh(self, obj: Any) -> bool:
        return isinstance(obj, received.StoredResource)  # generic_create: a new id each time

    def current_version(self, actor: Actor, resource_id: str) -> str | None:
        return received.generic_get(actor, self.type, resource_id).version_id

    def owns(self, actor: Actor, resource_id: str) -> bool:
        return received.StoredResource.objects.filter(
            resource_type=self.type, resource_id=resource_id, generic=True
        ).exists()


@dataclass
class MixedHandler(GenericHandler):
    """The clinic's handler for its rows, and received resources beside them."""

    base: Handler | None = None
    # True: this received resource is the clinic's to record (the base handler creates it).
    clinic_owns: Any = None

    def _base(self) -> Handler:
        assert self.base is not None
        return self.base

    def to_fhir(self, obj: Any) -> dict[str, Any]:
        if isinstance(obj, received.StoredResource):
            return received.generic_to_fhir(obj)
        return self._base().to_fhir(obj)

    def read(self, actor: Actor, resource_id: str) -> dict[str, Any]:
        if self.owns(actor, resource_id):
            return super().read(actor, resource_id)
        return self._base().read(actor, resource_id)

    def search(self, actor: Actor, search: SearchRequest) -> Page:
        base = self._base()
        names = {name for name, _ in search.items()}
        base_fits = "search-type" in base.interactions and names <= set(base.search_params)
        generic_fits = names <= set(received.GENERIC_PARAMS)
        # Keyset paging walks the clinic's rows by key, then the received ones by theirs: a
        # cursor ["received", *key] continues after that received resource.
        phase = search.cursor[0] if search.cursor else None
        if phase == "received":
            first = Page(base.search(actor, _counting(search)).total if base_fits else 0, [], [])
        else:
            first = base.search(actor, search) if base_fits else Page(0, [], [])
        if not generic_fits:
            return first
        if first.next_cursor or search.more:
            # The clinic's rows fill this page: received ones come later (counted when asked).
            if first.total is not None and search.counts:
                total, _ = received.generic_search(actor, self.type, search, offset=0, count=0)
                first.total += total
            else:
                first.total = None
            return first
        if first.total is None:  # paging on past the clinic's rows needs their exact total
            first.total = base.search(actor, _counting(search)).total if base_fits else 0
        assert first.total is not None
        offset = 0 if search.cursor is not None else max(0, search.offset - first.total)
        count = max(0, search.count - len(first.resources))
        queryset = received.generic_queryset(actor, self.type, search)
        if queryset is None:
            return first
        total = queryset.count()
        key = keyset.sort_key(queryset)
        assert key is not None
        queryset = keyset.ordered(queryset, key)
        if phase == "received" and search.cursor and len(search.cursor) > 1:
            queryset = queryset.filter(keyset.after(key, search.cursor[1:]))
        stop = offset + count + (1 if count < sys.maxsize else 0)  # unpaged: $everything
        rows = list(queryset[offset:stop]) if count and total > offset else []
        more = len(rows) > count
        rows = rows[:count]
        next_cursor = None
        if more and rows:
            next_cursor = encode_cursor(["received", *keyset.cursor_of(rows[-1], key)])
        elif not count and total and search.count and phase != "received":
            next_cursor = encode_cursor(["received"])  # this page is full: they start next
        return Page(
            first.total + total,
            first.resources + [self.to_fhir(r) for r in rows],
            sorted(set(first.patient_ids) | set(_patients(rows))),
            next_cursor=next_cursor,
        )

    def create_from(self, actor: Actor, resource: Any, raw: dict[str, Any], **kw: Any) -> Any:
        if self.clinic_owns is not None and self.clinic_owns(resource):
            return self._base().create(actor, resource, **kw)
        return received.generic_create(actor, self.type, resource, raw, **kw)

    def stages(self, resource: Any) -> bool:
        # The base's answer first: it decides without a query, clinic_owns may need one.
        return (
            self._base().stages(resource)
            and self.clinic_owns is not None
            and self.clinic_owns(resource)
        )

    def stage_create(self, actor: Actor, resource: Any, raw: dict[str, Any]) -> Callable[[], Any]:
        return self._base().stage_create(actor, resource, raw)

    def keep_received(
        self, actor: Actor, obj: Any, data: dict[str, Any], raw: Any, *, fresh: bool = False
    ) -> dict[str, Any]:
        if isinstance(obj, received.StoredResource):
            return data
        return Handler.keep_received(self, actor, obj, data, raw, fresh=fresh)

    def fresh(self, obj: Any) -> bool:
        return super().fresh(obj) or self._base().fresh(obj)

    def update_from(
        self, actor: Actor, resource_id: str, resource: Any, raw: dict[str, Any]
    ) -> Any:
        if self.owns(actor, resource_id):
            return super().update_from(actor, resource_id, resource, raw)
        if "update" not in self._base().interactions:
            raise FhirError(405, f"The clinic's own {self.type} resources are read-only here.")
        return self._base().update(actor, resource_id, resource)

    def delete(self, actor: Actor, resource_id: str) -> None:
        if self.owns(actor, resource_id):
            return super().delete(actor, resource_id)
        if "delete" not in self._base().interactions:
            raise FhirError(405, f"The clinic's own {self.type} resources cannot be deleted.")
        return self._base().delete(actor, resource_id)

    def current_version(self, actor: Actor, resource_id: str) -> str | None:
        if self.owns(actor, resource_id):
            try:
                return received.generic_get(actor, self.type, resource_id).version_id
            except NotFound:
                return None
        return self._base().current_version(actor, resource_id)

    @property
    def versioning(self) -> str:
        """What the clinic's own rows promise (received ones are always version-checked)."""
        return self._base().versioning


def _counting(search: SearchRequest) -> SearchRequest:
    """The same search asking for the total only."""
    return SearchRequest(params=search.params, count=0, offset=0, sort=search.sort)


def _is_chart_observation(resource: Any) -> bool:
    """A clinic vital sign or a reading on a session's flowsheet (the clinic's own handlers)."""
    from ketaclinic.fhir.session_vitals import session_reference

    session_id = session_reference(resource)
    if session_id is not None:
        return not _is_generic("Encounter", session_id)
    codings = resource.code.coding or [] if resource.code else []
    return any(c.system == LOINC and c.code and canonical_code(c.code) in CODES for c in codings)


def _is_generic(resource_type: str, resource_id: str) -> bool:
    return received.StoredResource.objects.filter(
        resource_type=resource_type, resource_id=resource_id, generic=True
    ).exists()


def _is_session_dose(resource: Any) -> bool:
    """A dose given in one of the clinic's treatment sessions (context Encounter/<session>)."""
    from ketaclinic.fhir.common import reference_id
    from ketaclinic.fhir.search import as_uuid

    reference = resource.context.reference if resource.context else None
    session_id = reference_id(reference, "Encounter")
    return bool(session_id and as_uuid(session_id) and not _is_generic("Encounter", session_id))


def _is_new_session(resource: Any) -> bool:
    return resource.status not in ("finished", "cancelled", "entered-in-error")


ALL = ("read", "create", "update", "delete", "search-type")
RECEIVED_HANDLERS: dict[str, Handler] = {}
for _type, _spec in received.GENERIC.items():
    _params = {
        k: v
        for k, v in received.GENERIC_PARAMS.items()
        if (k not in ("patient", "subject") or _spec.patient)
        and (k != "code" or _spec.code)
        and (k != "category" or _spec.category)
        and (k != "date" or _spec.dates)
        and (k != "target" or _spec.targets)
        and (k != "status" or _spec.status)
        and (k != "identifier" or _spec.identifier)
    }
    _base = HANDLERS.get(_type)
    if _base is None:
        RECEIVED_HANDLERS[_type] = GenericHandler(
            type=_type,
            interactions=ALL,
            search_params=_params,
            sorts=("date",) if _spec.dates else (),
            patient_record=_spec.patient is not None,
            documentation={"_id": "kept as received (every element returned unchanged)"},
        )
        continue
    RECEIVED_HANDLERS[_type] = MixedHandler(
        type=_type,
        interactions=tuple(dict.fromkeys((*_base.interactions, "read", "create", "search-type"))),
        search_params={**_base.search_params, **_params},
        sorts=tuple(dict.fromkeys((*_base.sorts, *(("date",) if _spec.dates else ())))),
        patient_record=_base.patient_record,
        documentation={
            # What only resources received from other systems carry (the clinic's own rows of
            # this type are not searched by it): said, so the statement claims no more.
            **{
                k: "resources received from other systems only"
                for k in _params
                if k not in _base.search_params
            },
            **_base.documentation,
            "_id": (
                _base.documentation.get("_id", "") + "; " if "_id" in _base.documentation else ""
            )
            + "resources from other systems are kept as received",
        },
        base=_base,
        clinic_owns={
            "Observation": _is_chart_observation,
            "Encounter": _is_new_session,
            "MedicationAdministration": _is_session_dose,
        }.get(_type, lambda resource: False),
    )
