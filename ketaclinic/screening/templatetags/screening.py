"""The screening status strip on the patient chart: each route's current decision and TRD."""

from __future__ import annotations

from typing import Any

from django import template

from ketaclinic.screening import selectors

register = template.Library()


@register.inclusion_tag("screening/chart_status.html", takes_context=True)
def screening_status(context: Any, patient: Any) -> dict[str, Any]:
    caps = context.get("caps", set())
    allowed = "clinical.view" in caps
    evaluation = selectors.evaluation_latest(patient) if allowed else None
    return {
        "patient": patient,
        "caps": caps,
        "allowed": allowed,
        "evaluation": evaluation,
        "decisions": selectors.decisions_of_evaluation(evaluation) if evaluation else [],
        "csrf_token": context.get("csrf_token"),
    }
