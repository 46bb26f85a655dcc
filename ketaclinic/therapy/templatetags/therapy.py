"""The therapy pieces other apps' templates include: the session pre-check summary (latest
integration note, the therapist's risk assessment and flags) and the chart section. Neither ever
shows a psychotherapy note."""

from __future__ import annotations

from typing import Any
from zoneinfo import ZoneInfo

from django import template

from ketaclinic.therapy import selectors

register = template.Library()


@register.filter
def get_key(mapping: Any, key: str) -> Any:
    return mapping.get(key, "") if hasattr(mapping, "get") else ""


@register.inclusion_tag("therapy/precheck_summary.html", takes_context=True)
def therapy_precheck_summary(context: Any, session: Any) -> dict[str, Any]:
    caps = context.get("caps", set())
    allowed = "therapy.view" in caps
    return {
        "allowed": allowed,
        "summary": selectors.precheck_summary(session) if allowed else None,
        "zone": ZoneInfo(session.clinic.time_zone),
    }


@register.inclusion_tag("therapy/chart_section.html", takes_context=True)
def therapy_section(context: Any, patient: Any) -> dict[str, Any]:
    caps = context.get("caps", set())
    allowed = "therapy.view" in caps
    actor = context.get("actor")
    zone = "UTC"
    if actor is not None and actor.membership.home_clinic is not None:
        zone = actor.membership.home_clinic.time_zone
    return {
        "allowed": allowed,
        "patient": patient,
        "visits": selectors.visits_for_patient(patient) if allowed else [],
        "zone": ZoneInfo(zone),
    }


@register.inclusion_tag("therapy/inbox_panel.html", takes_context=True)
def therapy_inbox_panel(context: Any) -> dict[str, Any]:
    """Unread handoff messages on the staff dashboard (one query)."""
    caps = context.get("caps", set())
    actor = context.get("actor")
    allowed = "therapy.message" in caps and actor is not None
    unread = [m for m in selectors.inbox(actor, limit=20) if m.read_at is None] if allowed else []
    return {"allowed": allowed, "unread": unread}
