"""Body-measurement units and plausibility limits. Pure: standard library and pint only."""

from __future__ import annotations

from datetime import date, datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

import pint

_ureg: pint.UnitRegistry[Any] = pint.UnitRegistry()

WEIGHT_UNITS = {"kg": "kilogram", "lb": "pound", "[lb_av]": "pound", "g": "gram"}
HEIGHT_UNITS = {"cm": "centimeter", "in": "inch", "[in_i]": "inch", "m": "meter"}

# Plausibility limits reject typing errors and unit mix-ups, not unusual patients. They bracket the
# extremes ever recorded in humans (heaviest ~635 kg, tallest ~272 cm: Guinness World Records;
# oldest verified age 122: Jeanne Calment, Robine & Allard 1998) with margin.
MIN_WEIGHT_KG = Decimal("2")
MAX_WEIGHT_KG = Decimal("650")
MIN_HEIGHT_CM = Decimal("40")
MAX_HEIGHT_CM = Decimal("275")
MAX_AGE_YEARS = 125


class UnitError(ValueError):
    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field
        self.message = message


def _convert(value: Decimal, unit: str, table: dict[str, str], target: str, field: str) -> Decimal:
    if unit not in table:
        raise UnitError(f"{field}_unit", f"Unknown unit {unit!r}; use one of {', '.join(table)}.")
    if table[unit] == target:  # already in the stored unit: pint would return it unchanged
        magnitude = Decimal(value)
    else:
        magnitude = Decimal(_ureg.Quantity(Decimal(value), table[unit]).to(target).magnitude)
    return magnitude.quantize(Decimal("0.01"), rounding=ROUND_HALF_UP)


def weight_to_kg(value: Decimal, unit: str) -> Decimal:
    """Convert and check plausibility; raises UnitError naming the field."""
    kg = _convert(value, unit, WEIGHT_UNITS, "kilogram", "weight")
    if not MIN_WEIGHT_KG <= kg <= MAX_WEIGHT_KG:
        raise UnitError(
            "weight",
            f"{value} {unit} ({kg} kg) is not a possible body weight "
            f"({MIN_WEIGHT_KG}-{MAX_WEIGHT_KG} kg). Check the number and the unit.",
        )
    return kg


def height_to_cm(value: Decimal, unit: str) -> Decimal:
    cm = _convert(value, unit, HEIGHT_UNITS, "centimeter", "height")
    if not MIN_HEIGHT_CM <= cm <= MAX_HEIGHT_CM:
        raise UnitError(
            "height",
            f"{value} {unit} ({cm} cm) is not a possible body height "
            f"({MIN_HEIGHT_CM}-{MAX_HEIGHT_CM} cm). Check the number and the unit.",
        )
    return cm


def body_mass_index(weight_kg: Decimal, height_cm: Decimal) -> Decimal:
    """BMI = kg / m², to one decimal place."""
    metres = Decimal(height_cm) / Decimal(100)
    return (Decimal(weight_kg) / (metres * metres)).quantize(Decimal("0.1"), ROUND_HALF_UP)


def check_birth_date(birth_date: date, today: date) -> None:
    if birth_date > today:
        raise UnitError("birth_date", "The date of birth cannot be in the future.")
    if today.year - birth_date.year > MAX_AGE_YEARS:
        raise UnitError("birth_date", f"The date of birth is more than {MAX_AGE_YEARS} years ago.")


def before_birth(moment: datetime, birth_date: date) -> str | None:
    """Why a clinical time cannot be right when it lies before the patient was born (a typed
    year, a default date, a unit mix-up in a feed), else None. A day of slack covers time zones
    (birth dates are local, stored times UTC)."""
    if moment.date() < birth_date - timedelta(days=1):
        return f"This time is before the patient's date of birth ({birth_date.isoformat()})."
    return None
