"""Template filters for numbers and times people read (built in: no `{% load %}` needed).

    {{ order.dose_mg|mg }}            35 mg
    {{ plan.diluent_volume_ml|ml }}   0.7 mL
    {{ rate|qty:"mL/h" }}             120 mL/h
    {{ score|plain }}                 12.5
    {{ value|cell }}                  460 (a Decimal); text cells unchanged
    {{ vitals.taken_at|clock }}       09:00 CST
    {{ note.signed_at|stamp }}        2026-12-06 09:00 CST

Times are shown in the active time zone, which ClinicTimeZoneMiddleware sets to the clinic's;
`{% timezone session.clinic.time_zone %}` shows another clinic's session in its own zone.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from django import template

from ketaclinic.core import formatting, localtime

register = template.Library()


def _number(value: Any, unit: str) -> str:
    if value is None or value == "":
        return ""
    try:
        return formatting.quantity(value, unit)
    except formatting.NotANumber:  # a label or a list of values: shown as it is, with its unit
        return f"{value} {unit}".strip()


@register.filter
def mg(value: Any) -> str:
    return _number(value, "mg")


@register.filter
def ml(value: Any) -> str:
    return _number(value, "mL")


@register.filter
def qty(value: Any, unit: str) -> str:
    return _number(value, unit)


@register.filter
def plain(value: Any) -> str:
    """A number without unit, exponent or trailing zeros."""
    return _number(value, "")


@register.filter
def cell(value: Any) -> Any:
    """A report cell: decimal quantities as people read them, everything else (lot numbers,
    names, already formatted times) exactly as it is."""
    if isinstance(value, Decimal | float):
        return _number(value, "")
    return value


@register.filter
def clock(value: Any) -> str:
    """The time of day in the clinic's zone, with its abbreviation: "09:00 CST"."""
    return localtime.clock(value)


@register.filter
def stamp(value: Any) -> str:
    """Date and time in the clinic's zone, with its abbreviation: "2026-12-06 09:00 CST"."""
    return localtime.stamp(value)


@register.filter
def stamp_seconds(value: Any) -> str:
    """Date and time to the second in the clinic's zone (audit trail, signatures)."""
    return localtime.stamp_seconds(value)
