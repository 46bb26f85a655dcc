"""Registry entry for AuditEvent (the audit trail, read and search for compliance reviewers)."""

from __future__ import annotations

from typing import Any

from ketaclinic.accounts.actor import Actor
from ketaclinic.accounts.audit import audit_record
from ketaclinic.fhir import audit_event as ae
from ketaclinic.fhir.registry import Handler, Page, _page
from ketaclinic.fhir.search import SearchRequest


class AuditEventHandler(Handler):
    def to_fhir(self, obj: Any) -> dict[str, Any]:
        return ae.to_fhir(obj)

    def read(self, actor: Actor, resource_id: str) -> dict[str, Any]:
        event = ae.read(actor, resource_id)
        # Reading the trail is itself recorded (who looked at which event).
        audit_record(
            actor=actor,
            action="fhir.auditevent.read",
            patient_id=event.patient_id,
            detail={"event": event.pk},
        )
        return self.to_fhir(event)

    def search(self, actor: Actor, search: SearchRequest) -> Page:
        queryset = ae.search(actor, search.items(), search.sort)
        total, rows = _page(queryset, search)
        # The searched events' patients are listed so a reviewer's query shows up on each.
        return Page(
            total,
            [self.to_fhir(r) for r in rows],
            sorted({str(r.patient_id) for r in rows if r.patient_id}),
        )


AUDIT_HANDLERS: dict[str, Handler] = {
    "AuditEvent": AuditEventHandler(
        type="AuditEvent",
        interactions=("read", "search-type"),
        patient_record=False,
        search_params={
            "_id": "token",
            "date": "date",
            "patient": "reference",
            "entity": "reference",
            "agent-name": "string",
            "type": "token",
            "outcome": "token",
        },
        sorts=("date",),
        documentation={
            "_id": "the event's id (its place in the chain is the seq detail, once sealed)",
            "agent-name": "the user name, exactly",
            "type": ae.ACTION_SYSTEM + "|<action>, e.g. consent.revoked (exact)",
            "outcome": "0 success, 4 denied, 8 failed",
            "entity": "Patient/<id>: events about that patient (as patient)",
        },
    )
}
