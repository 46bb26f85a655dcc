"""Is a vital-sign number a possible reading at all? Pure: standard library only.

Separate from alerting: an alert says a real reading needs attention; an implausible number was
mistyped, misread or measured wrongly, and is refused with "check this reading" so nothing is
stored. The ranges have no source in the clinical reference [U]; they are clinic policy, written
up in docs/sources/sessions.md ("Vital-sign plausibility").
"""

from __future__ import annotations

from collections.abc import Mapping
from decimal import Decimal

# measure: (lowest, highest, unit, what a nurse calls it)
PLAUSIBLE_RANGES: dict[str, tuple[int, int, str, str]] = {
    "systolic": (50, 300, "mmHg", "Systolic pressure"),
    "diastolic": (20, 200, "mmHg", "Diastolic pressure"),
    "heart_rate": (20, 250, "/min", "Heart rate"),
    "spo2": (50, 100, "%", "SpO2"),
    "respiratory_rate": (4, 60, "/min", "Respiratory rate"),
}


def implausible_readings(values: Mapping[str, int | Decimal | None]) -> list[tuple[str, str]]:
    """(field, message) for every value that cannot be a real reading; [] when all may be.

    Absent (None) values are not judged. A diastolic pressure must lie below the systolic.
    """
    problems = []
    for measure, (low, high, unit, label) in PLAUSIBLE_RANGES.items():
        value = values.get(measure)
        if value is not None and not low <= value <= high:
            problems.append(
                (
                    measure,
                    f"{label} {_number(value)} {unit} is not a possible reading (expected "
                    f"{low}-{high} {unit}): check this reading.",
                )
            )
    systolic, diastolic = values.get("systolic"), values.get("diastolic")
    if systolic is not None and diastolic is not None and diastolic >= systolic:
        problems.append(
            (
                "diastolic",
                f"The diastolic pressure {_number(diastolic)} is not below the systolic "
                f"{_number(systolic)}: check this reading (were the two swapped?).",
            )
        )
    return problems


def _number(value: int | Decimal) -> str:
    return f"{Decimal(value).normalize():f}" if isinstance(value, Decimal) else str(value)
