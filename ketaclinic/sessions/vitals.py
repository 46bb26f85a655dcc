"""Vital signs against a clinic's safety policy: the pre-dose gate and alerts while monitoring.

Pure: standard library and pure project modules only. Thresholds live in SessionSafetyPolicy;
a value strictly above a "high" limit or strictly below a "low" limit raises an alert, so a limit
reads the way the label words it ("> 140 systolic").
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum

from ketaclinic.sessions.policy import VITAL_MEASURES, SessionSafetyPolicy, alert_limits

RULE_PREDOSE_GATE = "predose-gate@1"
RULE_VITALS_ALERTS = "vitals-alerts@1"


@dataclass(frozen=True, slots=True)
class VitalsSample:
    taken_at: datetime
    systolic: int | None = None  # mmHg
    diastolic: int | None = None  # mmHg
    heart_rate: int | None = None  # beats/min
    spo2: int | None = None  # % by pulse oximetry
    respiratory_rate: int | None = None  # breaths/min

    def __post_init__(self) -> None:
        if self.taken_at.tzinfo is None or self.taken_at.utcoffset() is None:
            raise ValueError("taken_at must be timezone-aware (UTC)")
        for measure in VITAL_MEASURES:
            value = getattr(self, measure)
            if value is None:
                continue
            # `type(...) is int` first: most values are plain ints (and a bool is not one).
            if type(value) is not int and (isinstance(value, bool) or not isinstance(value, int)):
                raise ValueError(f"{measure} must be a whole number")
            if value <= 0:
                raise ValueError(f"{measure} must be positive")
        if self.spo2 is not None and self.spo2 > 100:
            raise ValueError("spo2 cannot exceed 100%")
        systolic, diastolic = self.systolic, self.diastolic
        if systolic is not None and diastolic is not None and diastolic >= systolic:
            raise ValueError("diastolic pressure must be below systolic; check the order")

    @property
    def has_blood_pressure(self) -> bool:
        return self.systolic is not None and self.diastolic is not None


class Severity(StrEnum):
    WARNING = "warning"  # look again, consider a repeat measurement
    CRITICAL = "critical"  # act now


@dataclass(frozen=True, slots=True)
class VitalAlert:
    measure: str
    value: int
    threshold: int
    direction: str  # "above" or "below"
    severity: Severity
    rule: str = RULE_VITALS_ALERTS

    @property
    def message(self) -> str:
        return (
            f"{self.measure} {self.value} is {self.direction} the {self.severity} limit "
            f"{self.threshold}"
        )


def classify_vitals(sample: VitalsSample, policy: SessionSafetyPolicy) -> list[VitalAlert]:
    """Every out-of-range value in `sample`, critical alerts first, one alert per measure."""
    return _classify(sample, _limits(policy))


def classify_batch(
    samples: Sequence[VitalsSample], policy: SessionSafetyPolicy
) -> list[list[VitalAlert]]:
    """`classify_vitals` of every sample of a batch (a monitor catching up), in the order given.
    The policy's limits are read once for the whole batch."""
    limits = _limits(policy)
    return [_classify(sample, limits) for sample in samples]


def worst_severity(alerts: Sequence[VitalAlert]) -> str:
    """The severity a flowsheet row is filed under: its worst alert's, "" when none."""
    return alerts[0].severity.value if alerts else ""


# Per measure: its name, the band in which no check can fire (at or above every "below"
# threshold, at or below every "above" one), and the checks in the order they are tried.
_Check = tuple[int, str, Severity]
_Limits = tuple[tuple[str, float, float, tuple[_Check, ...]], ...]


def _limits(policy: SessionSafetyPolicy) -> _Limits:
    limits = []
    for measure in VITAL_MEASURES:
        critical_low, warning_low, warning_high, critical_high = alert_limits(policy, measure)
        ordered = (
            (critical_low, "below", Severity.CRITICAL),
            (critical_high, "above", Severity.CRITICAL),
            (warning_low, "below", Severity.WARNING),
            (warning_high, "above", Severity.WARNING),
        )
        checks = tuple((t, d, s) for t, d, s in ordered if t is not None)
        lows = [t for t, d, _ in checks if d == "below"]
        highs = [t for t, d, _ in checks if d == "above"]
        quiet_from = max(lows) if lows else float("-inf")
        quiet_to = min(highs) if highs else float("inf")
        limits.append((measure, quiet_from, quiet_to, checks))
    return tuple(limits)


def _classify(sample: VitalsSample, limits: _Limits) -> list[VitalAlert]:
    # Most readings are inside every band: one comparison per measure (a 60-sample batch is
    # classified before the write transaction, but its CPU still counts, issue 13).
    alerts = []
    for measure, quiet_from, quiet_to, checks in limits:
        value = getattr(sample, measure)
        if value is None or quiet_from <= value <= quiet_to:
            continue
        alert = _classify_one(measure, value, checks)
        if alert is not None:
            alerts.append(alert)
    if len(alerts) < 2:
        return alerts
    return sorted(alerts, key=lambda alert: alert.severity is not Severity.CRITICAL)


def _classify_one(measure: str, value: int, checks: tuple[_Check, ...]) -> VitalAlert | None:
    for threshold, direction, severity in checks:
        crossed = value < threshold if direction == "below" else value > threshold
        if crossed:
            return VitalAlert(measure, value, threshold, direction, severity)
    return None


# --- the pre-dose gate ------------------------------------------------------------------------


class GateOutcome(StrEnum):
    PROCEED = "proceed"
    PROCEED_WITH_OVERRIDE = "proceed-with-override"
    NEEDS_OVERRIDE = "needs-override"
    REFUSE = "refuse"


@dataclass(frozen=True, slots=True)
class PrescriberOverride:
    prescriber_id: str
    reason: str

    def __post_init__(self) -> None:
        if not self.prescriber_id.strip() or not self.reason.strip():
            raise ValueError("an override names the prescriber and gives a reason")


@dataclass(frozen=True, slots=True)
class GateResult:
    outcome: GateOutcome
    reasons: tuple[str, ...]
    alerts: tuple[VitalAlert, ...]
    override: PrescriberOverride | None  # set only when the override was needed and used
    policy_key: str
    rule: str = RULE_PREDOSE_GATE

    @property
    def may_dose(self) -> bool:
        return self.outcome in (GateOutcome.PROCEED, GateOutcome.PROCEED_WITH_OVERRIDE)


def check_predose_gate(
    vitals: VitalsSample | None,
    policy: SessionSafetyPolicy,
    *,
    now: datetime,
    override: PrescriberOverride | None = None,
) -> GateResult:
    """May the dose start on these pre-dose vitals?

    Refuse: no blood pressure, vitals too old or dated after `now`, BP above the hard ceiling, or
    any critical alert. Needs override: BP above the gate but not the ceiling (refused instead when
    the policy allows no override). Otherwise pass; warnings ride along for the nurse to see.
    """

    def result(outcome: GateOutcome, reasons: list[str], alerts: list[VitalAlert]) -> GateResult:
        used = override if outcome is GateOutcome.PROCEED_WITH_OVERRIDE else None
        return GateResult(outcome, tuple(reasons), tuple(alerts), used, policy.policy_key)

    if vitals is None or not vitals.has_blood_pressure:
        return result(GateOutcome.REFUSE, ["No pre-dose blood pressure is recorded."], [])
    if vitals.taken_at > now:
        return result(GateOutcome.REFUSE, ["The pre-dose vitals are dated in the future."], [])
    if now - vitals.taken_at > timedelta(minutes=policy.predose_vitals_max_age_minutes):
        return result(
            GateOutcome.REFUSE,
            [
                f"The pre-dose vitals are older than {policy.predose_vitals_max_age_minutes} "
                "minutes; measure again."
            ],
            [],
        )
    alerts = classify_vitals(vitals, policy)
    systolic, diastolic = vitals.systolic or 0, vitals.diastolic or 0
    refusals = [alert.message for alert in alerts if alert.severity is Severity.CRITICAL]
    if (
        systolic > policy.predose_systolic_hard_ceiling
        or diastolic > policy.predose_diastolic_hard_ceiling
    ):
        refusals.insert(
            0,
            f"BP {systolic}/{diastolic} is above the hard ceiling "
            f"{policy.predose_systolic_hard_ceiling}/{policy.predose_diastolic_hard_ceiling}; "
            "no override can allow this dose.",
        )
    if refusals:
        return result(GateOutcome.REFUSE, refusals, alerts)
    if systolic > policy.predose_systolic_max or diastolic > policy.predose_diastolic_max:
        reason = (
            f"BP {systolic}/{diastolic} is above the pre-dose gate "
            f"{policy.predose_systolic_max}/{policy.predose_diastolic_max}."
        )
        if not policy.predose_override_allowed:
            return result(GateOutcome.REFUSE, [reason, "This clinic allows no override."], alerts)
        if override is None:
            return result(GateOutcome.NEEDS_OVERRIDE, [reason], alerts)
        return result(
            GateOutcome.PROCEED_WITH_OVERRIDE,
            [reason, f"Overridden by {override.prescriber_id}: {override.reason}"],
            alerts,
        )
    return result(GateOutcome.PROCEED, [alert.message for alert in alerts], alerts)
