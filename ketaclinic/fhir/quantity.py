"""Quantity search (`value-quantity=[prefix]number[|system|code]`) over the chart's vital signs.

The value is compared in the table's canonical unit (kg, cm; mm[Hg], /min, %, Cel, kg/m2 for the
other vital signs); a weight or height asked in another UCUM unit ([lb_av], g, [in_i], m) is
converted first. Without a prefix the number means the range its precision implies (FHIR: 70 is
[69.5, 70.5)); `ap` is within 10 %. A blood pressure is searched by its components, not here.
"""

from __future__ import annotations

from decimal import Decimal, InvalidOperation

from django.db.models import Q

from ketaclinic.fhir.outcome import FhirError
from ketaclinic.patients.units import HEIGHT_UNITS, WEIGHT_UNITS, _ureg

PREFIXES = ("eq", "ne", "gt", "lt", "ge", "le", "sa", "eb", "ap")
UCUM = "http://unitsofmeasure.org"
# src (ObservationHandler.SOURCES) -> (column, canonical unit, units converted to it)
COLUMNS = {
    "w": ("weight_kg", "kg", WEIGHT_UNITS, "kilogram"),
    "h": ("height_cm", "cm", HEIGHT_UNITS, "centimeter"),
}


def parse(raw: str) -> tuple[str, Decimal, str | None, str | None]:
    value = raw.replace(" ", "+")
    prefix = value[:2] if value[:2] in PREFIXES else "eq"
    number, system, code = (
        [*value[len(prefix) if value[:2] in PREFIXES else 0 :].split("|"), "", ""]
    )[:3]
    try:
        amount = Decimal(number)
    except InvalidOperation:
        raise FhirError(
            400,
            f"value-quantity {raw!r} is not [prefix]number[|system|code].",
            expressions=[("value-quantity", "not a quantity")],
        ) from None
    if system and system != UCUM:
        raise FhirError(400, f"value-quantity: units are UCUM ({UCUM}), not {system!r}.")
    return prefix, amount, system or None, code or None


def _half_width(amount: Decimal) -> Decimal:
    exponent = amount.as_tuple().exponent
    return Decimal(5).scaleb(int(exponent) - 1)  # 70 -> 0.5, 70.5 -> 0.05


def _compare(column: str, prefix: str, amount: Decimal, half: Decimal) -> Q:
    low, high = amount - half, amount + half
    match prefix:
        case "eq":
            return Q(**{f"{column}__gte": low, f"{column}__lt": high})
        case "ne":
            return ~Q(**{f"{column}__gte": low, f"{column}__lt": high})
        case "gt" | "sa":
            return Q(**{f"{column}__gt": amount})
        case "lt" | "eb":
            return Q(**{f"{column}__lt": amount})
        case "ge":
            return Q(**{f"{column}__gte": amount})
        case "le":
            return Q(**{f"{column}__lte": amount})
        case _:  # ap: within 10 %
            margin = abs(amount) / 10
            return Q(**{f"{column}__gte": amount - margin, f"{column}__lte": amount + margin})


def source_q(src: str, raw: str) -> Q:
    """The filter for one value on one chart table ('w', 'h' or 'v')."""
    prefix, amount, _, code = parse(raw)
    half = _half_width(amount)
    if src in COLUMNS:
        column, canonical, table, target = COLUMNS[src]
        if code and code != canonical:
            if code not in table:
                return Q(pk__in=[])
            factor = Decimal(str(_ureg.Quantity(1, table[code]).to(target).magnitude))
            amount, half = amount * factor, half * factor
        return _compare(column, prefix, amount, half)
    q = ~Q(kind="bp") & _compare("value", prefix, amount, half)
    return q & Q(unit=code) if code else q
