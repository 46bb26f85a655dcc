"""Template tags: the chart's Sessions section, the dashboard's REMS tracker, a dict lookup."""

from __future__ import annotations

from typing import Any

from django import template

from ketaclinic.core import clock
from ketaclinic.sessions import selectors

register = template.Library()


@register.filter
def get_item(mapping: Any, key: str) -> Any:
    return mapping.get(key) if hasattr(mapping, "get") else None


@register.inclusion_tag("sessions/chart_section.html", takes_context=True)
def sessions_section(context: Any, patient: Any) -> dict[str, Any]:
    from ketaclinic.sessions.forms import ScheduleForm

    caps = context.get("caps", ())
    allowed = "sessions.view" in caps
    can_run = "sessions.run" in caps
    return {
        "allowed": allowed,
        "can_run": can_run,
        "patient": patient,
        "sessions": selectors.sessions_for_patient(patient) if allowed else [],
        "schedule_form": ScheduleForm(plans=selectors.schedulable_plans(patient))
        if can_run
        else None,
        "csrf_token": context.get("csrf_token"),
    }


@register.inclusion_tag("sessions/rems_panel.html", takes_context=True)
def sessions_rems_panel(context: Any) -> dict[str, Any]:
    caps = context.get("caps", ())
    if "sessions.view" not in caps:
        return {"allowed": False}
    today = clock.now().date()
    return {"allowed": True, "forms": selectors.pmf_tracker(today=today), "today": today}


@register.inclusion_tag("sessions/day_panel.html", takes_context=True)
def sessions_day_panel(context: Any) -> dict[str, Any]:
    """Role homes: today's treatment sessions as a picture of the day; the front desk sees who
    arrives, nurses who is on the floor, prescribers the dose orders waiting for them."""
    caps = context.get("caps", ())
    actor = context.get("actor")
    if "sessions.view" not in caps or actor is None:
        return {"allowed": False}
    day = selectors.day_picture(clinic=actor.membership.home_clinic)
    return {"allowed": True, "day": day, "caps": caps}
