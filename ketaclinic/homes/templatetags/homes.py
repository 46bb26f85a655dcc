"""The role homes' panels on the Today page (core's dashboard knows no domain; it loads these).

Each panel shows to the capabilities its work needs and reads through ketaclinic.homes.selectors,
the same reads as the JSON API (/api/v1/today/...)."""

from __future__ import annotations

from typing import Any

from django import template

from ketaclinic.accounts.roles import Cap
from ketaclinic.homes import selectors

register = template.Library()


def _actor(context: Any, *caps: Cap) -> Any:
    actor = context.get("actor")
    if actor is None or not all(actor.can(cap) for cap in caps):
        return None
    return actor


@register.inclusion_tag("homes/front_desk.html", takes_context=True)
def homes_arrivals_panel(context: Any) -> dict[str, Any]:
    """Whoever books and takes consents at the desk: today's arrivals and their forms."""
    actor = _actor(context, Cap.SCHEDULE_BOOK, Cap.CONSENT_RECORD, Cap.PATIENT_VIEW)
    if actor is None:
        return {"home": None}
    return {
        "home": selectors.front_desk_day(actor),
        "caps": context.get("caps", ()),
        "csrf_token": context.get("csrf_token"),
    }


@register.inclusion_tag("homes/therapist.html", takes_context=True)
def homes_therapy_panel(context: Any) -> dict[str, Any]:
    actor = _actor(context, Cap.THERAPY_RECORD)
    return {"home": selectors.therapist_day(actor) if actor else None}


@register.inclusion_tag("homes/compliance.html", takes_context=True)
def homes_compliance_panel(context: Any) -> dict[str, Any]:
    actor = _actor(context, Cap.BREAK_GLASS_REVIEW)
    return {"home": selectors.compliance_day(actor) if actor else None}


@register.inclusion_tag("homes/research.html", takes_context=True)
def homes_research_panel(context: Any) -> dict[str, Any]:
    actor = _actor(context, Cap.RESEARCH_EXPORT, Cap.OUTCOMES_ANALYZE)
    return {"home": selectors.research_summary(actor) if actor else None}
