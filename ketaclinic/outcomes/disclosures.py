"""Accounting of disclosures for one patient (issue 12 item 3): who saw or received what, when.

Read, never written: it gathers three records the system already keeps, newest first:
- the audit trail: every read, change and refused lookup of the patient's record by staff or a
  token (the hash-chained `AuditEvent`, on every interface), including break-glass access;
- identified bulk exports (`DataExport` of kind FHIR bulk, finished after the patient's record
  existed): the whole organization's records left in them. De-identified research exports are
  not PHI (HIPAA Safe Harbor, docs/sources/outcomes.md) and are not listed;
- messages sent to the patient (the outbox: what kind, by which channel, to which address, when).

Compliance (`audit.view`) reads it on screen, as CSV, and through the JSON API; each reading of
the accounting is itself one audit event.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from ketaclinic.accounts.actor import Actor
from ketaclinic.accounts.audit import audit_record
from ketaclinic.accounts.models import AuditEvent
from ketaclinic.accounts.roles import Cap
from ketaclinic.messaging.models import Message
from ketaclinic.outcomes.models import DataExport
from ketaclinic.patients.models import Patient
from ketaclinic.patients.selectors import patient_get_for_actor

MAX_ROWS = 5000


@dataclass(frozen=True)
class Disclosure:
    at: datetime
    kind: str  # access, change, refused, break-glass, export, message
    who: str
    role: str
    channel: str
    what: str
    outcome: str


@dataclass(frozen=True)
class Accounting:
    patient: Patient
    rows: list[Disclosure]
    truncated: bool


def _words(code: str) -> str:
    return code.replace(".", " ").replace("_", " ").strip()


def _kind(event: AuditEvent) -> str:
    if event.outcome != "success":
        return "refused"
    if "break_glass" in event.action:
        return "break-glass"
    if any(verb in event.action for verb in _ACCESS_VERBS):
        return "access"
    return "change"


_ACCESS_VERBS = ("read", "view", "search", "export", "print", "pdf", "everything", "report")


def disclosures_for_patient(actor: Actor, patient_id: str | uuid.UUID) -> Accounting:
    """The accounting of one patient's disclosures; 404 for a patient the organization lacks."""
    patient = patient_get_for_actor(actor, patient_id, capability=Cap.AUDIT_VIEW)
    events = list(
        AuditEvent.objects.filter(organization=actor.organization, patient_id=patient.public_id)
        .only("occurred_at", "actor_username", "role", "channel", "action", "outcome", "detail")
        .order_by("-occurred_at", "-seq")[: MAX_ROWS + 1]
    )
    rows = [
        Disclosure(
            at=event.occurred_at,
            kind=_kind(event),
            who=event.actor_username or "system",
            role=event.role.replace("_", " "),
            channel=event.channel,
            what=_words(event.action)
            + (f" (reason: {event.detail['reason']})" if event.detail.get("reason") else ""),
            outcome=event.outcome,
        )
        for event in events[:MAX_ROWS]
    ]
    exports = DataExport.objects.select_related("requested_by").filter(
        kind=DataExport.Kind.FHIR_BULK,
        status=DataExport.Status.DONE,
        finished_at__gte=patient.created_at,
    )
    rows += [
        Disclosure(
            at=export.finished_at or export.created_at,
            kind="export",
            who=export.requested_by.username,
            role=export.requester_role.replace("_", " "),
            channel=export.channel,
            what="identified bulk export of the organization's records (FHIR)"
            + (f": {export.cohort_described}" if export.cohort_described else ""),
            outcome="success",
        )
        for export in exports
    ]
    messages = Message.objects.filter(patient=patient, status=Message.Status.SENT).only(
        "sent_at", "created_at", "kind", "channel", "to_address"
    )
    rows += [
        Disclosure(
            at=message.sent_at or message.created_at,
            kind="message",
            who="the clinic",
            role="",
            channel=message.channel,
            what=f"{_words(message.kind)} sent to {message.to_address or 'the patient'}",
            outcome="success",
        )
        for message in messages
    ]
    rows.sort(key=lambda row: row.at, reverse=True)
    return Accounting(patient=patient, rows=rows, truncated=len(events) > MAX_ROWS)


def disclosures_read(actor: Actor, patient_id: str | uuid.UUID, *, form: str) -> Accounting:
    """The accounting, with the one audit event of reading it (screen, csv or api)."""
    accounting = disclosures_for_patient(actor, patient_id)
    audit_record(
        actor=actor,
        action="audit.disclosures.read",
        patient_id=accounting.patient.public_id,
        obj=accounting.patient,
        detail={"format": form, "rows": len(accounting.rows)},
    )
    return accounting


def as_dict(row: Disclosure) -> dict[str, Any]:
    return {
        "at": row.at,
        "kind": row.kind,
        "who": row.who,
        "role": row.role,
        "channel": row.channel,
        "what": row.what,
        "outcome": row.outcome,
    }
