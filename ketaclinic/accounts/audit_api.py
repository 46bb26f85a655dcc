"""JSON API: the audit trail for compliance (mounted at /api/v1/), filtered and paged like the
staff audit screen. Capability audit.view; every read of the trail is itself recorded."""

from __future__ import annotations

import uuid
from datetime import date, datetime
from typing import Any, Literal

from ninja import Field, Query, Router, Schema

from ketaclinic.accounts.actor import ActorRequest
from ketaclinic.accounts.audit import audit_record
from ketaclinic.accounts.audit_query import AuditFilter, audit_event_get, audit_events_filtered
from ketaclinic.accounts.roles import Cap
from ketaclinic.core.api import ERROR_RESPONSES
from ketaclinic.core.errors import NotFound, ValidationFailed

router = Router(tags=["audit"])
MAX_PAGE = 500


class AuditEventOut(Schema):
    id: int = Field(..., description="The event's id, given when it is written")
    seq: int | None = Field(
        ..., description="Place in the organization's audit chain; null until the worker seals it"
    )
    occurred_at: datetime
    user: str = Field(..., alias="actor_username")
    role: str
    action: str
    outcome: str
    patient: uuid.UUID | None = Field(..., alias="patient_id")
    object_type: str
    object_id: str
    client_address: str
    channel: str
    detail: dict[str, Any]
    hash: str
    prev_hash: str


class AuditPage(Schema):
    count: int
    limit: int
    offset: int
    items: list[AuditEventOut]


class AuditQuery(Schema):
    patient: uuid.UUID | None = None
    user: str = Field("", max_length=150, description="User name, exactly")
    action: str = Field("", max_length=80, description="Prefix, e.g. consent. or patients.chart")
    outcome: Literal["", "success", "denied", "failed"] = ""
    start: date | None = Field(None, description="From this day (inclusive)")
    end: date | None = Field(None, description="To this day (inclusive)")
    limit: int = Field(50, ge=1, le=MAX_PAGE)
    offset: int = Field(0, ge=0, le=10_000_000)


@router.get("/audit-events", response={200: AuditPage, **ERROR_RESPONSES})
def audit_event_list(request: ActorRequest, query: Query[AuditQuery]) -> Any:
    """Newest first. The same filters as the staff audit screen and its CSV export."""
    actor = request.auth
    actor.require(Cap.AUDIT_VIEW)
    if query.start and query.end and query.end < query.start:
        raise ValidationFailed.for_field("end", "The end date is before the start date.")
    filters = AuditFilter(
        start=query.start,
        end=query.end,
        username=query.user,
        action=query.action,
        patient=query.patient,
        outcome=query.outcome,
    )
    events = audit_events_filtered(actor.organization, filters)
    count = events.count()
    items = list(events[query.offset : query.offset + query.limit])
    # Recorded after the page is read, so the reviewer's own read is not in the page it returns.
    audit_record(
        actor=actor,
        action="audit.read",
        patient_id=query.patient,
        detail={
            "filters": query.model_dump(
                mode="json", exclude={"limit", "offset"}, exclude_defaults=True
            ),
            "offset": query.offset,
            "returned": len(items),
            "count": count,
        },
    )
    return {"count": count, "limit": query.limit, "offset": query.offset, "items": items}


@router.get("/audit-events/{event_id}", response={200: AuditEventOut, **ERROR_RESPONSES})
def audit_event_read(request: ActorRequest, event_id: int) -> Any:
    actor = request.auth
    actor.require(Cap.AUDIT_VIEW)
    event = audit_event_get(actor.organization, event_id)
    if event is None:
        raise NotFound("No such audit event.")
    audit_record(
        actor=actor, action="audit.read", patient_id=event.patient_id, detail={"event": event.pk}
    )
    return event
