"""May the patient leave? Every discharge criterion checked, every unmet one named.

Pure: standard library and pure project modules only. The criteria follow §2.1 and §2.4 of
the clinical reference (docs/sources/sessions.md): at least the minimum observation time from the start of the
dose (2 h for esketamine, [C] #1, #16); sedation, dissociation and respiratory depression resolved
and the patient clinically stable ([C] #16); blood pressure back at a safe level ([C] #13);
baseline mental status and a responsible adult to take the patient home ([S] #45, [C] #13).

A missed esketamine BP re-check at ~40 min ([C] #13) is reported as a deviation, not an unmet
criterion: it is a lapse to record (the REMS form asks for that reading), and holding the patient
longer would not undo it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from ketaclinic.sessions.policy import SessionSafetyPolicy
from ketaclinic.sessions.vitals import (
    PrescriberOverride,
    Severity,
    VitalsSample,
    classify_vitals,
)

RULE_DISCHARGE = "discharge@1"


@dataclass(frozen=True, slots=True)
class DischargeAssessment:
    """The nurse's or prescriber's bedside observations at the time of the check."""

    alert_and_oriented: bool
    sedation_resolved: bool
    dissociation_resolved: bool
    respiratory_depression_resolved: bool
    clinically_stable: bool
    escort_present: bool


@dataclass(frozen=True, slots=True)
class UnmetCriterion:
    code: str
    detail: str


@dataclass(frozen=True, slots=True)
class DischargeResult:
    ready: bool
    unmet: tuple[UnmetCriterion, ...]
    deviations: tuple[UnmetCriterion, ...]  # process lapses to record; they do not block
    earliest_discharge_at: datetime  # when the observation time alone would allow it
    observed_minutes: int
    vitals_override: PrescriberOverride | None  # set only when warnings were accepted with it
    policy_key: str
    rule: str = RULE_DISCHARGE

    @property
    def unmet_codes(self) -> tuple[str, ...]:
        return tuple(criterion.code for criterion in self.unmet)


def evaluate_discharge(
    *,
    drug: str,
    dose_started_at: datetime,
    now: datetime,
    vitals: Sequence[VitalsSample],
    assessment: DischargeAssessment,
    policy: SessionSafetyPolicy,
    protocol_minimum_observation_minutes: int | None = None,
    vitals_override: PrescriberOverride | None = None,
) -> DischargeResult:
    """Check every criterion; `vitals` are the samples of this session (any order).

    `vitals_override` lets a prescriber accept last vitals that carry only warnings (for example a
    patient whose usual BP sits above the warning line). Critical values are never overridden.
    """
    if dose_started_at.tzinfo is None or now.tzinfo is None:
        raise ValueError("dose_started_at and now must be timezone-aware (UTC)")
    if dose_started_at > now:
        raise ValueError("the dose cannot start after the discharge check")
    unmet: list[UnmetCriterion] = []
    deviations: list[UnmetCriterion] = []

    required_minutes = max(
        policy.minimum_observation_minutes(drug), protocol_minimum_observation_minutes or 0
    )
    earliest = dose_started_at + timedelta(minutes=required_minutes)
    observed = int((now - dose_started_at) / timedelta(minutes=1))
    if now < earliest:
        unmet.append(
            UnmetCriterion(
                "observation_time",
                f"Observed {observed} of the required {required_minutes} minutes since the dose "
                "started.",
            )
        )

    post_dose = sorted(
        (sample for sample in vitals if dose_started_at <= sample.taken_at <= now),
        key=lambda sample: sample.taken_at,
    )
    used_override = _check_last_vitals(post_dose, now, policy, vitals_override, unmet)
    if drug == "esketamine":
        _check_bp_recheck(post_dose, dose_started_at, policy, deviations)
    _check_assessment(assessment, policy, unmet)

    return DischargeResult(
        ready=not unmet,
        unmet=tuple(unmet),
        deviations=tuple(deviations),
        earliest_discharge_at=earliest,
        observed_minutes=observed,
        vitals_override=used_override,
        policy_key=policy.policy_key,
    )


def _check_last_vitals(
    post_dose: list[VitalsSample],
    now: datetime,
    policy: SessionSafetyPolicy,
    override: PrescriberOverride | None,
    unmet: list[UnmetCriterion],
) -> PrescriberOverride | None:
    if not post_dose:
        unmet.append(UnmetCriterion("vitals_recorded", "No vitals recorded since the dose."))
        return None
    last = post_dose[-1]
    age_limit = timedelta(minutes=policy.discharge_vitals_max_age_minutes)
    if now - last.taken_at > age_limit:
        unmet.append(
            UnmetCriterion(
                "vitals_recent",
                f"The last vitals are older than {policy.discharge_vitals_max_age_minutes} "
                "minutes; measure again before discharge.",
            )
        )
    if not last.has_blood_pressure:
        unmet.append(UnmetCriterion("vitals_blood_pressure", "The last vitals have no BP."))
    alerts = classify_vitals(last, policy)
    critical = [alert for alert in alerts if alert.severity is Severity.CRITICAL]
    if critical:
        detail = "; ".join(alert.message for alert in critical)
        unmet.append(UnmetCriterion("vitals_in_range", f"{detail} (not overridable)."))
        return None
    if alerts and override is None:
        detail = "; ".join(alert.message for alert in alerts)
        unmet.append(UnmetCriterion("vitals_in_range", f"{detail}; re-check or override."))
        return None
    return override if alerts else None


def _check_bp_recheck(
    post_dose: list[VitalsSample],
    dose_started_at: datetime,
    policy: SessionSafetyPolicy,
    deviations: list[UnmetCriterion],
) -> None:
    due = dose_started_at + timedelta(minutes=policy.bp_recheck_minutes_after_esketamine)
    tolerance = timedelta(minutes=policy.bp_recheck_tolerance_minutes)
    if not any(
        sample.has_blood_pressure and abs(sample.taken_at - due) <= tolerance
        for sample in post_dose
    ):
        deviations.append(
            UnmetCriterion(
                "bp_recheck_missed",
                f"No BP within {policy.bp_recheck_tolerance_minutes} minutes of the "
                f"{policy.bp_recheck_minutes_after_esketamine}-minute post-dose re-check.",
            )
        )


def _check_assessment(
    assessment: DischargeAssessment, policy: SessionSafetyPolicy, unmet: list[UnmetCriterion]
) -> None:
    checks = [
        ("alert_and_oriented", assessment.alert_and_oriented, "Not yet alert and oriented."),
        ("sedation_resolved", assessment.sedation_resolved, "Sedation has not resolved."),
        ("dissociation_resolved", assessment.dissociation_resolved, "Dissociation persists."),
        (
            "respiratory_depression_resolved",
            assessment.respiratory_depression_resolved,
            "Respiratory depression has not resolved.",
        ),
        ("clinically_stable", assessment.clinically_stable, "Not judged clinically stable."),
    ]
    if policy.discharge_requires_escort:
        checks.append(
            ("escort_present", assessment.escort_present, "No responsible adult to go home with.")
        )
    for code, met, detail in checks:
        if not met:
            unmet.append(UnmetCriterion(code, detail))
