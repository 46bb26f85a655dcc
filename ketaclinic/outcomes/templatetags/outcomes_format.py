"""Figures as a clinician reads them: "12.5", "40.0%", "-" for a value not reached."""

from __future__ import annotations

from django import template

from ketaclinic.outcomes.charts import number, pct

register = template.Library()


@register.filter
def figure(value: float | None, places: int = 1) -> str:
    return number(value, places)


@register.filter
def percent(value: float | None) -> str:
    return pct(value)
