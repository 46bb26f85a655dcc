"""Registry entry for Consent (signed consents, created through the consent service)."""

from __future__ import annotations

from typing import Any

from ketaclinic.accounts.actor import Actor
from ketaclinic.fhir import consent_resource as cr
from ketaclinic.fhir.registry import Handler, Page, _page
from ketaclinic.fhir.search import SearchRequest


class ConsentHandler(Handler):
    def to_fhir(self, obj: Any) -> dict[str, Any]:
        return cr.to_fhir(obj)

    def read(self, actor: Actor, resource_id: str) -> dict[str, Any]:
        row = cr.read(actor, resource_id)
        self.audit_read(actor, row, row.patient)
        return self.to_fhir(row)

    def search(self, actor: Actor, search: SearchRequest) -> Page:
        queryset = cr.search(actor, search.items(), search.sort)
        total, rows = _page(queryset, search)
        return Page(
            total, [self.to_fhir(r) for r in rows], sorted({str(r.patient.public_id) for r in rows})
        )

    def create(self, actor: Actor, resource: Any, **kw: Any) -> Any:
        return cr.create(actor, resource)


CONSENT_HANDLERS: dict[str, Handler] = {
    "Consent": ConsentHandler(
        type="Consent",
        interactions=("read", "create", "search-type"),
        search_params={"_id": "token", "patient": "reference", "status": "token", "date": "date"},
        sorts=("date",),
        documentation={
            "status": "active (signed, not revoked) or inactive (revoked)",
            "date": "when the patient signed (Consent.dateTime)",
            "_id": (
                "create: policy[0].uri = "
                + cr.VERSION_URN
                + "<version id> (the current version of the consent form); the patient as "
                "performer with the typed full name as display; one provision.provision per "
                "acknowledgement (code system "
                + cr.ACK_SYSTEM
                + "); the token's user is the witness; the server sets dateTime"
            ),
        },
    )
}
