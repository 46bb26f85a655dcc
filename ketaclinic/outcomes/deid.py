"""HIPAA Safe Harbor de-identification rules for the research export: pure, standard library.

The export is built by allow-list: only the fields named in `export.py`'s data dictionary leave,
each through one of these functions. What the 18 Safe Harbor identifiers are and how each is
handled is in docs/sources/outcomes.md section 4.
"""

from __future__ import annotations

import re
import secrets
from dataclasses import dataclass
from datetime import date, datetime, timedelta

SAFE_HARBOR_RULE = "safe-harbor@1"
# Safe Harbor: ages over 89 (and the birth year that would reveal them) are one group.
AGE_GROUP_TOP = 90
MAX_SHIFT_DAYS = 365

# docs/sources/outcomes.md section 4: ZIP3 tables by version. Only the 2000-census list that
# HHS published (17 areas of 20,000 people or fewer) could be sourced, and HHS says not to rely
# on it once newer census data exist; so the default keeps no ZIP digits at all ("000").
ZIP3_CONSERVATIVE = "zip3-none@1"
ZIP3_CENSUS_2000 = "zip3-census2000-hhs@1"
ZIP3_TABLES: dict[str, frozenset[str] | None] = {
    ZIP3_CONSERVATIVE: None,  # None: every area is treated as under 20,000 people
    ZIP3_CENSUS_2000: frozenset(
        "036 059 063 102 203 556 692 790 821 823 830 831 878 879 884 890 893".split()
    ),
}
DEFAULT_ZIP3_TABLE = ZIP3_CONSERVATIVE
_ZIP = re.compile(r"\b(\d{5})(?:-\d{4})?\b")


def new_shift_days() -> int:
    """A secret random shift in whole days, never 0 (a zero shift would reveal true dates)."""
    while True:
        days = secrets.randbelow(2 * MAX_SHIFT_DAYS + 1) - MAX_SHIFT_DAYS
        if days:
            return days


def shifted_year(moment: date | datetime, shift_days: int) -> int:
    """The only element of a date that leaves: the year, after the patient's shift."""
    return (moment + timedelta(days=shift_days)).year


def days_between(start: datetime, end: datetime) -> int:
    """An interval in whole days (intervals are not dates, so they may leave as they are)."""
    return (end - start).days


def age_on(birth: date, day: date) -> int:
    return day.year - birth.year - ((day.month, day.day) < (birth.month, birth.day))


@dataclass(frozen=True, slots=True)
class AgeFields:
    age: str  # "47" or "90+"
    birth_year: str  # "" when the age is over 89


def age_fields(birth: date, on: date, shift_days: int) -> AgeFields:
    age = age_on(birth, on)
    if age >= AGE_GROUP_TOP:
        return AgeFields(f"{AGE_GROUP_TOP}+", "")
    return AgeFields(str(age), str(shifted_year(birth, shift_days)))


def zip3(address: str, *, table: str = DEFAULT_ZIP3_TABLE) -> str:
    """The first three ZIP digits where the area holds over 20,000 people, else "000"."""
    if table not in ZIP3_TABLES:
        raise ValueError(f"unknown ZIP3 table {table!r}")
    matches = _ZIP.findall(address or "")
    restricted = ZIP3_TABLES[table]
    if not matches or restricted is None:
        return "000"
    first3 = matches[-1][:3]
    return "000" if first3 in restricted else first3


def pseudonym(index: int) -> str:
    """Per-export pseudonyms in a shuffled order: R00001, R00002, ... (no link to any id)."""
    return f"R{index:05d}"
