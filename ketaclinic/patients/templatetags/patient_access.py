"""The compliance alert on the Today page: break-glass accesses waiting for review."""

from __future__ import annotations

from typing import Any

from django import template

from ketaclinic.patients import access

register = template.Library()


@register.inclusion_tag("patients/break_glass_panel.html", takes_context=True)
def patients_break_glass_panel(context: Any) -> dict[str, Any]:
    caps = context.get("caps", set())
    actor = context.get("actor")
    allowed = "patients.break_glass.review" in caps and actor is not None
    waiting = access.break_glass_list(actor, unreviewed_only=True) if allowed else []
    return {"allowed": allowed, "waiting": waiting}
