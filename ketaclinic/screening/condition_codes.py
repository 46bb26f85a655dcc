"""Which screening question a coded chart condition answers "yes", in ICD-10-CM or SNOMED CT.

Pure module: standard library only. The value sets are data (value_sets/conditions.json, each
with its sources); this module only reads them and matches a (system, code) pair. ICD-10-CM
entries are category prefixes (the tabular hierarchy); SNOMED CT entries are exact concept ids.
A code from any other system, or one in no set, answers nothing (the intake answer stands).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import cache
from importlib import resources

ICD10CM = "http://hl7.org/fhir/sid/icd-10-cm"
SNOMED = "http://snomed.info/sct"
EVER = ("active", "recurrence", "relapse", "inactive", "remission", "resolved")
ACTIVE = ("active", "recurrence", "relapse")
_STATUSES = {"ever": EVER, "active": ACTIVE}


@dataclass(frozen=True, slots=True)
class ConditionValueSet:
    flag: str
    statuses: tuple[str, ...]  # clinical statuses for which a coded condition counts
    icd10cm_prefixes: tuple[str, ...]
    snomed_codes: frozenset[str]
    snomed_displays: tuple[tuple[str, str], ...]

    def matches(self, system: str, code: str) -> bool:
        code = (code or "").strip()
        if system == ICD10CM:
            normal = _icd(code)
            return any(normal.startswith(_icd(prefix)) for prefix in self.icd10cm_prefixes)
        if system == SNOMED:
            return code in self.snomed_codes
        return False


def _icd(code: str) -> str:
    """ICD-10-CM is written with or without its dot ("F31.4" / "F314"); compare without."""
    return code.upper().replace(".", "")


@cache
def value_sets() -> dict[str, ConditionValueSet]:
    raw = json.loads(
        resources.files("ketaclinic.screening")
        .joinpath("value_sets/conditions.json")
        .read_text(encoding="utf-8")
    )
    return {
        flag: ConditionValueSet(
            flag=flag,
            statuses=_STATUSES[entry["statuses"]],
            icd10cm_prefixes=tuple(entry["icd10cm"]),
            snomed_codes=frozenset(entry["snomed"]),
            snomed_displays=tuple(sorted(entry["snomed"].items())),
        )
        for flag, entry in raw["sets"].items()
    }


def flags_answered(system: str, code: str, clinical_status: str) -> frozenset[str]:
    """The screening questions this one chart condition answers "yes"."""
    return frozenset(
        flag
        for flag, value_set in value_sets().items()
        if clinical_status in value_set.statuses and value_set.matches(system, code)
    )
