"""Where each screening-policy threshold comes from, for the screen that shows and edits them.

Pure: standard library only. `ketaclinic.screening.policy` keeps these sources as comments next
to each default; this module carries the same text as data so the screen can print every number
next to its citation. `§` means a section of the clinical
reference as written up in docs/sources/screening.md. A threshold marked
`unconfirmed` rests on an item the reference tags [U] (or on nothing in it): its default is the
conservative choice and the clinic owns the value.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class Kind(StrEnum):
    BLOOD_PRESSURE = "bp"  # a BloodPressureLimit: systolic and diastolic, crossed when above
    INTEGER = "int"
    DECIMAL = "decimal"
    BOOLEAN = "bool"


@dataclass(frozen=True, slots=True)
class Threshold:
    name: str  # the ScreeningPolicy field
    label: str
    kind: Kind
    unit: str
    source: str
    unconfirmed: bool


THRESHOLDS: tuple[Threshold, ...] = (
    Threshold(
        "bp_review_above",
        "Screening blood pressure that needs a prescriber's review (above)",
        Kind.BLOOD_PRESSURE,
        "mmHg",
        "Label guide: consider delaying above 140 systolic or 90 diastolic, §2.1 [S] #7, #8",
        False,
    ),
    Threshold(
        "bp_hold_above",
        "Screening blood pressure that makes every route ineligible (above)",
        Kind.BLOOD_PRESSURE,
        "mmHg",
        "The commonly quoted '> 180/100 stop/hold' is not confirmed, §2.2 [U]",
        True,
    ),
    Threshold(
        "home_bp_limit_above",
        "Screening blood pressure that excludes treatment at home (above)",
        Kind.BLOOD_PRESSURE,
        "mmHg",
        "Nobody re-checks BP after an at-home dose: the label's 'consider delaying' value "
        "(§2.1 [S] #7, #8) as a hard limit, clinic policy [U]",
        True,
    ),
    Threshold(
        "screening_bp_max_age_days",
        "Oldest screening blood pressure the rules accept",
        Kind.INTEGER,
        "days",
        "Not in the reference: clinic policy [U], kept to one induction course",
        True,
    ),
    Threshold(
        "decision_validity_days",
        "How long a screening decision stays valid",
        Kind.INTEGER,
        "days",
        "Not in the reference: clinic policy [U], kept to one induction course",
        True,
    ),
    Threshold(
        "minimum_failed_adequate_trials",
        "Failed adequate antidepressant trials in the current episode for TRD (at least)",
        Kind.INTEGER,
        "trials",
        ">= 2 adequate trials in the current episode, §4.1 [C] #4, #59, #60 (never below 2)",
        False,
    ),
    Threshold(
        "partial_response_counts_as_failure",
        "A partial response counts as a failed trial",
        Kind.BOOLEAN,
        "",
        "Non-response = < 50% improvement, §4.1 [C] #61",
        False,
    ),
    Threshold(
        "minimum_adequate_trial_weeks",
        "Shortest antidepressant trial, by its dates, that can count as adequate",
        Kind.INTEGER,
        "weeks",
        "Minimum trial length 4-6 weeks, §4.1 [C] #61; stopping before week 4 is not a failed "
        "trial, §4.1 [C] #62 (never below 4)",
        False,
    ),
    Threshold(
        "benzodiazepine_limit_lorazepam_equivalent_mg_per_day",
        "Benzodiazepine dose that needs a prescriber's review (above)",
        Kind.DECIMAL,
        "mg lorazepam-equivalent a day",
        "Trial exclusion above ~3 mg lorazepam-equivalent a day, §3.2 [C] #50",
        False,
    ),
    Threshold(
        "minimum_age_years",
        "Minimum age",
        Kind.INTEGER,
        "years",
        "Not in the reference: an adult service, clinic policy [U]",
        True,
    ),
    Threshold(
        "older_adult_esketamine_age_years",
        "Age from which esketamine starts at the older-adult dose",
        Kind.INTEGER,
        "years",
        "Non-US monograph, §1.3 [S] #1; US-label dosing for older adults [U]",
        True,
    ),
    Threshold(
        "bp_rise_risk_age_years",
        "Age from which larger blood-pressure rises are flagged",
        Kind.INTEGER,
        "years",
        "Larger BP rises with age >= 50, §2.2 [C] #40",
        False,
    ),
)
THRESHOLDS_BY_NAME = {t.name: t for t in THRESHOLDS}
