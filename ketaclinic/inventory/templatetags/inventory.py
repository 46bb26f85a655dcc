"""The dashboard's controlled-substance panel: open discrepancy cases and DEA Form 106 reports
not yet filed, in a fixed number of queries."""

from __future__ import annotations

from typing import Any

from django import template

from ketaclinic.core import clock
from ketaclinic.inventory import selectors

register = template.Library()


@register.inclusion_tag("inventory/cases_panel.html", takes_context=True)
def inventory_cases_panel(context: Any) -> dict[str, Any]:
    caps = context.get("caps", set())
    allowed = "inventory.view" in caps
    return {
        "caps": caps,
        "cases": list(selectors.cases_open()) if allowed else [],
        "forms_106": list(selectors.form_106_pending()) if allowed else [],
        "biennial": selectors.biennial_inventories_due() if allowed else [],
        "now": clock.now(),
    }
