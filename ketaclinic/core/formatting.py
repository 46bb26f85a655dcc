"""Numbers and times as a person reads them: doses, volumes, rates and clinic-local times.

Pure (no Django): templates, API messages, PDFs and the pure dosing code all call these, so a
dose reads the same everywhere.

Numbers follow ISMP's list of error-prone abbreviations, symbols and dose designations
(docs/sources/display.md): never a trailing zero after a decimal point ("35 mg", not "35.0 mg",
which is read as 350 mg when the point is missed), always a leading zero ("0.5 mg", not ".5 mg",
read as 5 mg), and never exponent notation ("1E+2 mg"), which `Decimal.normalize()` produces
for round numbers and no clinician reads as 100.

Each unit has the precision the clinic works to: mg as the protocols round doses (0.1 mg,
ketaclinic/protocols/dosing.py), mL to 0.01 mL, pump rates to 0.1 mL/h. A value with more
digits than its unit's precision is rounded half-up for display only; what is stored keeps its
exact value.
"""

from __future__ import annotations

from datetime import datetime
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from zoneinfo import ZoneInfo

# Decimal places shown per unit. mg follows the protocols' dose rounding (0.1 mg); mL the volume
# rounding (0.01 mL); mL/h the pump rate rounding (0.1 mL/h); mg/kg as reported by the dosing
# rules (0.001 mg/kg, so 0.5 mg/kg is never shown as a rounded 1 mg/kg).
UNIT_PLACES: dict[str, int] = {
    "mg": 1,
    "mL": 2,
    "mL/h": 1,
    "mg/mL": 2,
    "mg/kg": 3,
    "mg/kg/h": 3,
    "kg": 2,
    "cm": 1,
    "lb": 2,
    "device": 0,
    "devices": 0,
}

NumberLike = Decimal | int | float | str


class NotANumber(ValueError):
    """The value cannot be read as a finite number."""


def to_decimal(value: NumberLike) -> Decimal:
    """The value as a finite Decimal; a float goes through its shortest repr (0.1 -> 0.1)."""
    if isinstance(value, bool) or not isinstance(value, Decimal | int | float | str):
        raise NotANumber(f"{value!r} is not a number")
    try:
        number = Decimal(repr(value)) if isinstance(value, float) else Decimal(value)
    except (InvalidOperation, ValueError, TypeError) as exc:
        raise NotANumber(f"{value!r} is not a number") from exc
    if not number.is_finite():
        raise NotANumber(f"{value!r} is not a finite number")
    return number


def plain_number(value: NumberLike, places: int | None = None) -> str:
    """Fixed-point text without exponent, trailing zeros or a bare leading point.

    `places` (when given) is the most decimals shown; the value is rounded half-up to it.
    Examples: 100 -> "100", Decimal("1E+2") -> "100", Decimal("35.0") -> "35",
    Decimal(".5") -> "0.5", Decimal("0.70") -> "0.7", -0.0 -> "0".
    """
    number = to_decimal(value)
    if places is not None:
        if places < 0:
            raise ValueError("places cannot be negative")
        number = number.quantize(Decimal(1).scaleb(-places), rounding=ROUND_HALF_UP)
    text = format(number, "f")
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    if text in ("-0", ""):
        text = "0"
    return text


def quantity(value: NumberLike, unit: str, places: int | None = None) -> str:
    """A number and its unit for people: quantity(Decimal("35.0"), "mg") -> "35 mg".

    The unit's own precision (UNIT_PLACES) applies unless `places` says otherwise; an unknown
    unit shows the value as it is, without exponent or trailing zeros.
    """
    shown = UNIT_PLACES.get(unit) if places is None else places
    return f"{plain_number(value, shown)} {unit}".strip()


def mg(value: NumberLike, places: int | None = None) -> str:
    return quantity(value, "mg", places)


def ml(value: NumberLike) -> str:
    return quantity(value, "mL")


def ml_per_hour(value: NumberLike) -> str:
    return quantity(value, "mL/h")


def zone_abbreviation(moment: datetime, zone_name: str) -> str:
    """The clinic zone's abbreviation at that moment ("CST", "CDT"); the UTC offset where the
    zone has no letters ("+0530" rather than a guessed name)."""
    local = moment.astimezone(ZoneInfo(zone_name))
    name = local.tzname() or ""
    if name and name[0] in "+-":
        return local.strftime("%z")
    return name


def local_time(
    moment: datetime, zone_name: str, *, with_date: bool = False, seconds: bool = False
) -> str:
    """An aware UTC moment as the clinic reads it: "09:00 CST" or "2026-12-06 09:00 CST"
    (with `seconds`, "2026-12-06 09:00:05 CST", for audit trails and signatures)."""
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise ValueError("a stored time must be aware (UTC); got a naive datetime")
    local = moment.astimezone(ZoneInfo(zone_name))
    clock_format = "%H:%M:%S" if seconds else "%H:%M"
    shown = local.strftime(f"%Y-%m-%d {clock_format}" if with_date else clock_format)
    return f"{shown} {zone_abbreviation(moment, zone_name)}"
