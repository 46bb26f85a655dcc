"""Registry entries for therapy: Encounter extended with therapy visits, and DocumentReference
(signed progress notes). Psychotherapy notes have no resource here and never will."""

from __future__ import annotations

import sys
from datetime import datetime
from typing import Any

from django.db.models import Q

from ketaclinic.accounts.actor import Actor
from ketaclinic.fhir import therapy_resources as tr
from ketaclinic.fhir.outcome import FhirError
from ketaclinic.fhir.registry import HANDLERS, Handler, Page, _page
from ketaclinic.fhir.search import SearchRequest, encode_cursor
from ketaclinic.fhir.session_handlers import EncounterHandler


def _patients(rows: list[Any]) -> list[str]:
    return sorted({str(r.patient.public_id) for r in rows})


class TreatmentEncounterHandler(EncounterHandler):
    """Treatment sessions and therapy visits, both Encounters of the patient. A search pages
    through the two merged by start time (each side reads at most offset + count rows)."""

    def to_fhir(self, obj: Any) -> dict[str, Any]:
        if isinstance(obj, tr.TherapyVisit):
            return tr.encounter_to_fhir(obj)
        return super().to_fhir(obj)

    def read(self, actor: Actor, resource_id: str) -> dict[str, Any]:
        visit = tr.encounter_read(actor, resource_id)
        if visit is not None:
            self.audit_read(actor, visit, visit.patient)
            return tr.encounter_to_fhir(visit)
        return super().read(actor, resource_id)

    def search(self, actor: Actor, search: SearchRequest) -> Page:
        from ketaclinic.fhir import encounter as enc

        sessions = enc.search(actor, search.items(), search.sort)
        visits = tr.encounter_search(actor, search.items())
        if visits is None:
            return super().search(actor, search)
        descending = (search.sort or "-date").startswith("-")
        visits = visits.order_by(*(("-started_at", "-pk") if descending else ("started_at", "pk")))
        total = sessions.count() + visits.count()
        if not search.count:
            return Page(total, [], [])
        offset = search.offset
        if search.cursor is not None:
            # Keyset paging over the merged order (time, source, key): the rows after the
            # previous page's last, whatever was inserted meanwhile.
            sessions = sessions.filter(_after(search.cursor, "start_at", 0, descending))
            visits = visits.filter(_after(search.cursor, "started_at", 1, descending))
            offset = 0
        window = offset + search.count + (1 if search.count < sys.maxsize else 0)
        session_rows = list(sessions[:window])
        visit_rows = list(visits[:window])
        merged = sorted(
            [(s.start_at, 0, s) for s in session_rows] + [(v.started_at, 1, v) for v in visit_rows],
            key=lambda row: (row[0], row[1], row[2].pk),
            reverse=descending,
        )[offset:window]
        more = len(merged) > search.count
        merged = merged[: search.count]
        next_cursor = None
        if more:
            when, source, last = merged[-1]
            next_cursor = encode_cursor([when.isoformat(), source, last.pk])
        rows = [row[2] for row in merged]
        picked_sessions = [r for r in rows if not isinstance(r, tr.TherapyVisit)]
        reasons = enc.reasons_for(picked_sessions)
        resources = [
            tr.encounter_to_fhir(r)
            if isinstance(r, tr.TherapyVisit)
            else enc.to_fhir(r, reasons.get(r.patient_id))
            for r in rows
        ]
        return Page(total, resources, _patients(rows), next_cursor)


def _after(cursor: list[Any], column: str, source: int, descending: bool) -> Q:
    """Rows of one source (0 sessions, 1 therapy visits) after the key (time, source, pk)."""
    try:
        when, after_source, pk = (
            datetime.fromisoformat(str(cursor[0])),
            int(cursor[1]),
            int(cursor[2]),
        )
    except (IndexError, ValueError, TypeError):
        raise FhirError(400, "_cursor is not one this server sent.") from None
    op = "lt" if descending else "gt"
    beyond = Q(**{f"{column}__{op}": when})
    if source == after_source:
        return beyond | Q(**{column: when, f"pk__{op}": pk})
    if (source > after_source) != descending:  # this source comes after the other at a tie
        return beyond | Q(**{column: when})
    return beyond


class DocumentReferenceHandler(Handler):
    def to_fhir(self, obj: Any) -> dict[str, Any]:
        return tr.document_to_fhir(obj)

    def read(self, actor: Actor, resource_id: str) -> dict[str, Any]:
        visit = tr.document_read(actor, resource_id)
        self.audit_read(actor, visit, visit.patient)
        return self.to_fhir(visit)

    def search(self, actor: Actor, search: SearchRequest) -> Page:
        queryset = tr.document_search(actor, search.items(), search.sort)
        total, rows = _page(queryset, search)
        return Page(total, [self.to_fhir(r) for r in rows], _patients(rows))


_sessions = HANDLERS["Encounter"]
THERAPY_HANDLERS: dict[str, Handler] = {
    "Encounter": TreatmentEncounterHandler(
        type="Encounter",
        interactions=_sessions.interactions,
        search_params=_sessions.search_params,
        sorts=_sessions.sorts,
        documentation={
            **_sessions.documentation,
            "patient": "treatment sessions and therapy visits (preparation, dosing-session "
            f"support, integration; type in {tr.TYPE_SYSTEM}); therapy visits are read-only",
        },
    ),
    "DocumentReference": DocumentReferenceHandler(
        type="DocumentReference",
        interactions=("read", "search-type"),
        search_params={
            "_id": "token",
            "patient": "reference",
            "subject": "reference",
            "encounter": "reference",
            "date": "date",
        },
        sorts=("date",),
        documentation={
            "patient": "signed therapy progress notes (LOINC 11506-3); psychotherapy notes "
            "are kept apart from the record and never exposed (45 CFR 164.501)",
        },
    ),
}
