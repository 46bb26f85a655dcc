"""The first-run checklist, on the set-up overview and the clinic admin's Today page."""

from __future__ import annotations

from typing import Any

from django import template

from ketaclinic.setup.selectors import first_run_checklist

register = template.Library()


@register.inclusion_tag("setup/_checklist.html", takes_context=True)
def setup_checklist_panel(context: Any) -> dict[str, Any]:
    actor = context.get("actor")
    if actor is None or not actor.can("setup.manage"):
        return {"checklist": [], "missing": [], "hidden": True}
    checklist = first_run_checklist(actor)
    return {
        "checklist": checklist,
        "missing": [item for item in checklist if not item.done and item.required],
        "advised": [item for item in checklist if not item.done and not item.required],
        "done_count": sum(item.done for item in checklist),
    }
