"""The Condition a ketamine or esketamine treatment is for: `reasonReference` of the session's
Encounter and of each MedicationAdministration.

Treatment plans record no indication of their own, so the reason is read from the chart: the
patient's current depression diagnosis. Treatment-resistant depression has no code of its own; it
is documented as major depression plus the treatment history (clinical-reference §5.5 note [U],
§4.1), so the depression Condition is the honest target. Chosen: among the patient's conditions
that are active, recurring or relapsed and not entered in error, those coded

- ICD-10-CM (or ICD-10) F32.* / F33.*: major depressive disorder, single episode and recurrent,
  and F32.A depression unspecified (§5.5 [C] #119, #120, #121; [S] #122);
- SNOMED CT 35489007 depressive disorder, 36923009 single major depressive episode, 268621008 /
  191610000 / 191611001 recurrent major depressive episodes, 191613003 recurrent severe major
  depression with psychosis (§5.5 [C] #123, #124);

the one with the latest onset (then the latest recorded). Bipolar depression (F31.*) is left out:
it falls outside the TRD definition (§4.1 [C] #62). No matching condition: no reasonReference
(nothing is claimed that the chart does not say).
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date
from typing import Any

from django.db.models import Q

from ketaclinic.patients.models import Condition, CorrectableQuerySet

ICD10_SYSTEMS = ("http://hl7.org/fhir/sid/icd-10-cm", "http://hl7.org/fhir/sid/icd-10")
SNOMED = "http://snomed.info/sct"
DEPRESSION_ICD10_PREFIXES = ("F32", "F33")  # §5.5 [C] #119-#121
DEPRESSION_SNOMED = (  # §5.5 [C] #123, #124
    "35489007",
    "36923009",
    "268621008",
    "191610000",
    "191611001",
    "191613003",
)
CURRENT = ("active", "recurrence", "relapse")


def _depression_q() -> Q:
    icd = Q(code_system__in=ICD10_SYSTEMS) & (
        Q(code__startswith=DEPRESSION_ICD10_PREFIXES[0])
        | Q(code__startswith=DEPRESSION_ICD10_PREFIXES[1])
    )
    return icd | Q(code_system=SNOMED, code__in=DEPRESSION_SNOMED)


def treated_conditions(patient_pks: Iterable[int]) -> dict[int, Condition]:
    """Per patient pk, the depression Condition treatment is for (one query for all)."""
    pks = sorted(set(patient_pks))
    if not pks:
        return {}
    return treated_conditions_where(Condition.objects.filter(patient_id__in=pks))


def treated_conditions_where(conditions: CorrectableQuerySet) -> dict[int, Condition]:
    """The same for the patients' conditions `conditions` holds (bulk export: a chunk of
    patients by key range, no key list)."""
    rows = (
        conditions.in_use()
        .filter(_depression_q(), clinical_status__in=CURRENT)
        .only("pk", "public_id", "patient_id", "code", "display", "onset_date")
    )
    chosen: dict[int, Condition] = {}
    for row in rows:
        best = chosen.get(row.patient_id)
        if best is None or _rank(row) > _rank(best):
            chosen[row.patient_id] = row
    return chosen


def _rank(row: Condition) -> tuple[date, int]:
    return (row.onset_date or date.min, row.pk)


def reason_reference(condition: Condition | None) -> list[dict[str, Any]] | None:
    if condition is None:
        return None
    return [
        {
            "reference": f"Condition/{condition.public_id}",
            "display": condition.display or condition.code,
        }
    ]
