"""The SPRAVATO REMS Patient Monitoring Form (PMF): its fields, a completeness check, its deadline.

Pure: standard library only. Source: §2.1 of the clinical reference (docs/sources/sessions.md;
2021 and 2024 form versions, [C] #18, #37; submission rules [C] #18, #19). Outpatient settings submit one PMF
after every esketamine session, within 7 days; inpatient settings do not submit PMFs ([C] #19).
Re-check the live REMS site before relying on these: §2.1 flags possible 2025 changes as [U].
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

RULE_PMF = "spravato-pmf@1"

# "within 7 days" (§2.1 [C] #18, #19). We count calendar days, the earlier reading of the two.
PMF_SUBMISSION_DAYS = 7
MINIMUM_MONITORING_MINUTES = 120  # the form asks for >= 120 min, §2.1 [C] #18
PMF_DOSE_CHOICES = ("56", "84", "other")


@dataclass(frozen=True, slots=True)
class PmfField:
    key: str
    section: str
    label: str
    required: bool = True


PMF_FIELDS: tuple[PmfField, ...] = (
    PmfField("patient_first_name", "patient", "First name"),
    PmfField("patient_last_name", "patient", "Last name"),
    PmfField("patient_date_of_birth", "patient", "Date of birth"),
    PmfField("patient_sex", "patient", "Sex"),
    PmfField("first_treatment", "patient", "Is this the patient's first treatment?"),
    PmfField("patient_enrolled_in_rems", "patient", "Is the patient enrolled in the REMS?"),
    PmfField("concomitant_benzodiazepines", "concomitant", "Benzodiazepines"),
    PmfField(
        "concomitant_non_benzodiazepine_sedative_hypnotics",
        "concomitant",
        "Non-benzodiazepine sedative-hypnotics",
    ),
    PmfField("concomitant_psychostimulants", "concomitant", "Psychostimulants"),
    PmfField("concomitant_maois", "concomitant", "MAOIs"),
    # Mentioned in the J&J video only, not the form excerpts (§2.1 #18): asked, not required.
    PmfField("concomitant_opioids", "concomitant", "Opioids", required=False),
    PmfField("monitoring_hcp_name", "monitoring_hcp", "Monitoring healthcare provider"),
    PmfField("monitoring_hcp_phone", "monitoring_hcp", "Phone"),
    PmfField("monitoring_hcp_email", "monitoring_hcp", "Email"),
    PmfField("setting_name", "setting", "Healthcare setting name"),
    PmfField("setting_address", "setting", "Healthcare setting address"),
    PmfField("treatment_date", "session", "Treatment date"),
    PmfField("dose", "session", "Dose (56 mg, 84 mg or other)"),
    PmfField("dose_other_mg", "session", "Other dose (mg)", required=False),  # when dose=other
    PmfField("lot_number", "session", "Lot number"),
    PmfField(
        "monitoring_duration_minutes",
        "duration",
        "Minutes from the first device to the end of monitoring",
    ),
    PmfField(
        "minutes_until_ready_without_two_hour_rule",
        "rems_evaluation",
        "Minutes from the start of administration until the patient would have been ready to "
        "leave, absent the 2-hour requirement",
    ),
    PmfField(
        "vitals_acceptable_before_administration", "vital_signs", "Vitals acceptable before dose?"
    ),
    PmfField(
        "vitals_acceptable_before_completion", "vital_signs", "Vitals acceptable before leaving?"
    ),
    PmfField("bp_predose_systolic", "blood_pressure", "Pre-dose systolic (mmHg)"),
    PmfField("bp_predose_diastolic", "blood_pressure", "Pre-dose diastolic (mmHg)"),
    PmfField("bp_40min_systolic", "blood_pressure", "40 min post-dose systolic (mmHg)"),
    PmfField("bp_40min_diastolic", "blood_pressure", "40 min post-dose diastolic (mmHg)"),
    PmfField("bp_completion_systolic", "blood_pressure", "Before completion systolic (mmHg)"),
    PmfField("bp_completion_diastolic", "blood_pressure", "Before completion diastolic (mmHg)"),
    # The form excerpt is cut off at "Did the patient experience Sedati..." (§2.1); the exact
    # sub-questions are [U]. We ask the three outcomes the REMS goal names ([C] #16).
    PmfField("experienced_sedation", "adverse_outcomes", "Sedation occurred?"),
    PmfField("experienced_dissociation", "adverse_outcomes", "Dissociation occurred?"),
    PmfField(
        "experienced_respiratory_depression", "adverse_outcomes", "Respiratory depression occurred?"
    ),
)

PMF_FIELD_KEYS = tuple(field.key for field in PMF_FIELDS)


def pmf_missing_fields(data: Mapping[str, Any]) -> list[str]:
    """Keys of required fields that are absent or blank, in form order. False and 0 are answers."""
    missing = [
        field.key for field in PMF_FIELDS if field.required and _is_blank(data.get(field.key))
    ]
    if data.get("dose") == "other" and _is_blank(data.get("dose_other_mg")):
        missing.append("dose_other_mg")
    return missing


def pmf_problems(data: Mapping[str, Any]) -> list[str]:
    """Answers that are present but cannot be right; check after pmf_missing_fields is empty."""
    problems = []
    dose = data.get("dose")
    if not _is_blank(dose) and str(dose) not in PMF_DOSE_CHOICES:
        problems.append(f"dose must be one of {', '.join(PMF_DOSE_CHOICES)}")
    duration = data.get("monitoring_duration_minutes")
    if isinstance(duration, int) and duration < MINIMUM_MONITORING_MINUTES:
        problems.append(
            f"monitoring_duration_minutes is {duration}; the REMS requires at least "
            f"{MINIMUM_MONITORING_MINUTES}"
        )
    return problems


def pmf_required(setting_kind: str) -> bool:
    """Outpatient settings submit a PMF after every session; inpatient settings do not."""
    if setting_kind not in ("outpatient", "inpatient"):
        raise ValueError("setting_kind is 'outpatient' or 'inpatient'")
    return setting_kind == "outpatient"


def pmf_submission_deadline(treatment_date: date) -> date:
    """The last day the PMF for a session on `treatment_date` may be submitted."""
    return treatment_date + timedelta(days=PMF_SUBMISSION_DAYS)


def pmf_is_overdue(treatment_date: date, *, today: date, submitted_on: date | None = None) -> bool:
    """Late if submitted after the deadline, or still unsubmitted once the deadline has passed."""
    deadline = pmf_submission_deadline(treatment_date)
    if submitted_on is not None:
        return submitted_on > deadline
    return today > deadline


def _is_blank(value: Any) -> bool:
    return value is None or (isinstance(value, str) and not value.strip())
