"""ICD-10-CM codes for the conditions ketamine clinics treat, offered as choices in the chart.

Source: docs/sources/screening.md (§5.5 of the clinical reference; ICD-10-CM, [C] #119-#121
unless marked). Codes the reference marks unconfirmed ([U]) are offered with `confirmed=False` so the UI can show that the
code should be checked against the current ICD-10-CM release before billing.
"""

from __future__ import annotations

from dataclasses import dataclass

ICD10CM_SYSTEM = "http://hl7.org/fhir/sid/icd-10-cm"


@dataclass(frozen=True, slots=True)
class ConditionCode:
    code: str
    display: str
    group: str
    confirmed: bool = True


PRELOADED_CONDITIONS: tuple[ConditionCode, ...] = (
    ConditionCode("F32.0", "Major depressive disorder, single episode, mild", "Depression"),
    ConditionCode("F32.1", "Major depressive disorder, single episode, moderate", "Depression"),
    ConditionCode(
        "F32.2",
        "Major depressive disorder, single episode, severe without psychotic features",
        "Depression",
    ),
    ConditionCode(
        "F32.3",
        "Major depressive disorder, single episode, severe with psychotic features",
        "Depression",
    ),
    ConditionCode(
        "F32.4", "Major depressive disorder, single episode, in partial remission", "Depression"
    ),
    ConditionCode(
        "F32.5", "Major depressive disorder, single episode, in full remission", "Depression"
    ),
    ConditionCode("F32.9", "Major depressive disorder, single episode, unspecified", "Depression"),
    ConditionCode("F32.A", "Depression, unspecified", "Depression", confirmed=False),  # [S] #122
    ConditionCode(
        "F33.0", "Major depressive disorder, recurrent, mild", "Depression", confirmed=False
    ),
    ConditionCode("F33.1", "Major depressive disorder, recurrent, moderate", "Depression"),
    ConditionCode(
        "F33.2",
        "Major depressive disorder, recurrent, severe without psychotic features",
        "Depression",
    ),
    ConditionCode(
        "F33.3",
        "Major depressive disorder, recurrent, severe with psychotic symptoms",
        "Depression",
        confirmed=False,
    ),
    ConditionCode("F33.9", "Major depressive disorder, recurrent, unspecified", "Depression"),
    ConditionCode(
        "F31.30",
        "Bipolar disorder, current episode depressed, mild or moderate severity, unspecified",
        "Bipolar depression",
    ),
    ConditionCode(
        "F31.4",
        "Bipolar disorder, current episode depressed, severe, without psychotic features",
        "Bipolar depression",
        confirmed=False,
    ),
    ConditionCode(
        "F31.5",
        "Bipolar disorder, current episode depressed, severe, with psychotic features",
        "Bipolar depression",
        confirmed=False,
    ),
    ConditionCode("F31.81", "Bipolar II disorder", "Bipolar depression", confirmed=False),
    ConditionCode("F41.1", "Generalized anxiety disorder", "Anxiety"),
    ConditionCode("F43.10", "Post-traumatic stress disorder, unspecified", "PTSD", confirmed=False),
    ConditionCode("F43.11", "Post-traumatic stress disorder, acute", "PTSD", confirmed=False),
    ConditionCode("F43.12", "Post-traumatic stress disorder, chronic", "PTSD", confirmed=False),
    ConditionCode("F42.2", "Mixed obsessional thoughts and acts", "OCD", confirmed=False),
    ConditionCode("R45.851", "Suicidal ideations", "Suicidal ideation", confirmed=False),
    ConditionCode("G89.29", "Other chronic pain", "Chronic pain", confirmed=False),
    ConditionCode("G89.4", "Chronic pain syndrome", "Chronic pain", confirmed=False),
)

PRELOADED_BY_CODE = {c.code: c for c in PRELOADED_CONDITIONS}
