"""The measures pieces other apps' templates include: the chart section, the chart's alert
banner and the dashboard's alert panel. Each loads its own data in a fixed number of queries."""

from __future__ import annotations

from typing import Any

from django import template

from ketaclinic.measures import selectors

register = template.Library()


@register.inclusion_tag("measures/chart_section.html", takes_context=True)
def measures_section(context: Any, patient: Any) -> dict[str, Any]:
    caps = context.get("caps", set())
    allowed = "measures.view" in caps
    return {
        "patient": patient,
        "caps": caps,
        "allowed": allowed,
        "trajectories": selectors.patient_trajectories(patient) if allowed else [],
        "responses": list(selectors.responses_for_patient(patient)[:30]) if allowed else [],
        "request": context.get("request"),
        "csrf_token": context.get("csrf_token"),
    }


@register.inclusion_tag("measures/alert_banner.html", takes_context=True)
def measures_alert_banner(context: Any, patient: Any) -> dict[str, Any]:
    caps = context.get("caps", set())
    alerts = selectors.alerts_open_for_patient(patient) if "measures.view" in caps else []
    return {"alerts": alerts, "patient": patient}


@register.inclusion_tag("measures/alerts_panel.html", takes_context=True)
def measures_alert_panel(context: Any) -> dict[str, Any]:
    caps = context.get("caps", set())
    allowed = "measures.view" in caps
    return {
        "allowed": allowed,
        "alerts": selectors.alerts_open() if allowed else [],
        "caps": caps,
        "actor": context.get("actor"),
        "request": context.get("request"),
        "csrf_token": context.get("csrf_token"),
    }
