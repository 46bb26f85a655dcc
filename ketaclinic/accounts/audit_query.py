"""Reading the audit trail for compliance: one set of filters behind the screen, the CSV export,
the JSON API and FHIR AuditEvent, so each shows exactly the same events for the same question."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import date, datetime, time

from django.db.models import QuerySet
from django.utils import timezone

from ketaclinic.accounts.models import AuditEvent, Organization


@dataclass(frozen=True, kw_only=True)
class AuditFilter:
    """Every field narrows; empty means any. `action` is a prefix (e.g. "patients.chart")."""

    start: date | None = None
    end: date | None = None
    username: str = ""
    action: str = ""
    patient: uuid.UUID | None = None
    outcome: str = ""


def audit_events_of(organization: Organization) -> QuerySet[AuditEvent]:
    """The organization's own events: audit rows carry no tenant scope, so filter explicitly
    (on the organization, which the time index leads with)."""
    return AuditEvent.objects.filter(organization=organization)


def audit_events_filtered(organization: Organization, filters: AuditFilter) -> QuerySet[AuditEvent]:
    events = audit_events_of(organization)
    if filters.start:
        events = events.filter(
            occurred_at__gte=timezone.make_aware(datetime.combine(filters.start, time.min))
        )
    if filters.end:
        events = events.filter(
            occurred_at__lte=timezone.make_aware(datetime.combine(filters.end, time.max))
        )
    if filters.username:
        events = events.filter(actor_username=filters.username)
    if filters.action:
        events = events.filter(action__startswith=filters.action)
    if filters.patient:
        events = events.filter(patient_id=filters.patient)
    if filters.outcome:
        events = events.filter(outcome=filters.outcome)
    return events.order_by("-occurred_at", "-id")


def audit_event_get(organization: Organization, event_id: int) -> AuditEvent | None:
    """One event by its id (the id the API and FHIR show: given when the event is written;
    its place in the chain, `seq`, only once the worker has sealed it)."""
    return AuditEvent.objects.filter(organization=organization, pk=event_id).first()
