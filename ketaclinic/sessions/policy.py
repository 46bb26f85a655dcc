"""A clinic's session safety policy: the numbers the session rules compare against.

Pure: standard library only. A policy is immutable and versioned; publishing a change creates a
new version, and every gate, alert and discharge decision stores the `policy_key` it used.

Sources: `§` means a section of the clinical reference
(docs/sources/sessions.md). Fields marked [U] have no confirmed source;
their defaults lean to the cautious side, they are clinic settings, and their names are listed in
UNCONFIRMED_FIELDS so the settings screen can say so. A clinical lead must review them before use.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields
from typing import Any

from ketaclinic.core.errors import FieldError, ValidationFailed

# The label floor for esketamine observation: at least 2 h after each dose (§2.1 [C] #1, #16).
# A clinic may observe longer, never shorter.
ESKETAMINE_MINIMUM_OBSERVATION_MINUTES = 120


class PolicyInvalid(ValidationFailed):
    """A policy value that is missing, of the wrong type, or unsafe."""

    code = "policy-invalid"


@dataclass(frozen=True, slots=True)
class SessionSafetyPolicy:
    policy_id: str = "session-safety"
    version: int = 1

    # --- pre-dose blood pressure gate -------------------------------------------------------
    # Above this the Spravato label guide says to weigh the BP rise against benefit and consider
    # delaying (>140 systolic or >90 diastolic, §2.1 [S] #7, #8): we ask for a prescriber override.
    predose_systolic_max: int = 140
    predose_diastolic_max: int = 90
    predose_override_allowed: bool = True
    # Above this, never dose, override or not. The often-quoted ">180/100 stop" is [U] (§2.2,
    # NOT-confirmed #1); we take it as the cautious ceiling. Murrough 2013 withdrew a patient at
    # 180/115 (§2.2 [C] #23).
    predose_systolic_hard_ceiling: int = 180
    predose_diastolic_hard_ceiling: int = 100
    # How old the pre-dose vitals may be when the dose starts. [U] no source; 30 min.
    predose_vitals_max_age_minutes: int = 30

    # --- body weight ------------------------------------------------------------------------
    # [U] no source. 30 days covers one induction series (six infusions over ~12 days, §1.1 [C]
    # #23; four weeks of esketamine induction, §1.3 [C] #1) with one weighing.
    weight_max_age_days: int = 30
    # Esketamine and sublingual doses do not depend on weight; asking for a current weight anyway
    # is our cautious choice (ARCHITECTURE §6).
    require_current_weight_for_fixed_doses: bool = True

    # --- alerts during monitoring: "warning" = look again, "critical" = act now -------------
    # Systolic/diastolic warnings reuse the label's "elevated" line (§2.1 [S] #7) and criticals the
    # hard ceiling above [U]. Transient rises are expected: mean peak +16/+11 mmHg at 40 min in
    # 2,342 infusions (§2.2 [C] #41).
    systolic_high_warning: int = 140
    systolic_high_critical: int = 180
    diastolic_high_warning: int = 90
    diastolic_high_critical: int = 100
    # Everything below has no source in the reference [U]. Defaults are common bedside alarm
    # limits, chosen to alert early rather than late. Clinic settings; review before use.
    systolic_low_warning: int = 90
    systolic_low_critical: int = 80
    diastolic_low_warning: int = 50
    diastolic_low_critical: int = 40
    # Heart-rate warnings use the textbook bradycardia/tachycardia lines (<60, >100).
    heart_rate_low_warning: int = 60
    heart_rate_low_critical: int = 40
    heart_rate_high_warning: int = 100
    heart_rate_high_critical: int = 130
    spo2_low_warning: int = 94
    spo2_low_critical: int = 90
    respiratory_rate_low_warning: int = 10
    respiratory_rate_low_critical: int = 8
    respiratory_rate_high_warning: int = 24
    respiratory_rate_high_critical: int = 30

    # --- observation and discharge ----------------------------------------------------------
    minimum_observation_minutes_esketamine: int = ESKETAMINE_MINIMUM_OBSERVATION_MINUTES
    # [U] no source for racemic ketamine; we mirror the esketamine 2 h (§2.1 [C] #1).
    minimum_observation_minutes_racemic: int = 120
    # BP re-check ~40 min after an esketamine dose (§2.1 [C] #13).
    bp_recheck_minutes_after_esketamine: int = 40
    # How far from that time a reading still counts as the re-check. [U] no source; 10 min.
    bp_recheck_tolerance_minutes: int = 10
    # The vitals a discharge relies on must be this fresh. [U]; 15 min, the slow end of "every
    # 5-15 min" in the ASA moderate-sedation guidance (§2.4 [S] #46).
    discharge_vitals_max_age_minutes: int = 15
    # Released to a responsible adult; no driving until the next day (§2.4 [S] #45, [C] #13).
    discharge_requires_escort: bool = True

    # --- how often a patient may be dosed: docs/sources/sessions.md, "Dosing frequency" ------
    # The most frequent schedule the reference cites is racemic IV induction 2-3 times a week,
    # six infusions over ~12 days (§1.1 [C] #22, #23); esketamine induction is twice weekly
    # (§1.3 [C] #1, #2). Neither gives a minimum gap between two doses [U]. Clinic policy: 40 h
    # keeps Monday/Wednesday/Friday possible with a morning-afternoon shift and refuses a second
    # dose the same or the next day; 48 h for esketamine keeps any twice-weekly pair possible.
    min_hours_between_doses_racemic: int = 40
    min_hours_between_doses_esketamine: int = 48
    # A phase without a weekly maximum (a booster, an open-ended maintenance) still never exceeds
    # the most frequent schedule the reference cites: 3 a week (§1.1 [C] #22).
    max_dosing_sessions_per_week_default: int = 3
    # A prescriber may override the gap and the weekly maximum with a written justification
    # (audited). Planned session counts are never overridden: the prescriber extends the phase.
    dose_frequency_override_allowed: bool = True
    # A chair is booked for a whole monitored session: 2 h observation (§2.1 [C] #1) plus check-in,
    # pre-checks and dosing. [U] clinic policy; 180 min.
    chair_booking_minutes: int = 180
    # A session is booked no further ahead than a year and back-dated by at most a week. [U]
    # clinic policy: nothing in a course of treatment is planned further out (§1.3 [C] #1).
    schedule_max_days_ahead: int = 366
    schedule_max_days_back: int = 7

    # --- controlled-substance ledger --------------------------------------------------------
    # The note is signed only when every administration balances in the inventory ledger:
    # drawn = administered + wasted + returned (issue 7; 21 CFR 1304.22(c)). On by default.
    require_ledger_reconciliation: bool = True

    def __post_init__(self) -> None:
        problems = _type_problems(self) or _safety_problems(self)
        if problems:
            raise PolicyInvalid(
                "The session safety policy is not valid.",
                [FieldError(name, message) for name, message in problems],
            )

    @property
    def policy_key(self) -> str:
        return f"{self.policy_id}@{self.version}"

    def minimum_observation_minutes(self, drug: str) -> int:
        """Minutes from dose start before discharge may be considered, for `drug`."""
        if drug == "esketamine":
            return self.minimum_observation_minutes_esketamine
        return self.minimum_observation_minutes_racemic

    def min_hours_between_doses(self, drug: str) -> int:
        """The smallest gap between two doses of `drug` for one patient."""
        if drug == "esketamine":
            return self.min_hours_between_doses_esketamine
        return self.min_hours_between_doses_racemic

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> SessionSafetyPolicy:
        """Rebuild a stored policy. Unknown keys are an error; a key added to the code after the
        policy was stored takes its default."""
        unknown = sorted(set(data) - {f.name for f in fields(cls)})
        if unknown:
            raise PolicyInvalid(
                "The stored policy has fields this code does not know.",
                [FieldError(name, "unknown policy field") for name in unknown],
            )
        return cls(**data)


UNCONFIRMED_FIELDS: tuple[str, ...] = (
    "predose_systolic_hard_ceiling",
    "predose_diastolic_hard_ceiling",
    "predose_vitals_max_age_minutes",
    "weight_max_age_days",
    "systolic_high_critical",
    "diastolic_high_critical",
    "systolic_low_warning",
    "systolic_low_critical",
    "diastolic_low_warning",
    "diastolic_low_critical",
    "heart_rate_low_warning",
    "heart_rate_low_critical",
    "heart_rate_high_warning",
    "heart_rate_high_critical",
    "spo2_low_warning",
    "spo2_low_critical",
    "respiratory_rate_low_warning",
    "respiratory_rate_low_critical",
    "respiratory_rate_high_warning",
    "respiratory_rate_high_critical",
    "minimum_observation_minutes_racemic",
    "bp_recheck_tolerance_minutes",
    "discharge_vitals_max_age_minutes",
    "min_hours_between_doses_racemic",
    "min_hours_between_doses_esketamine",
    "chair_booking_minutes",
    "schedule_max_days_ahead",
    "schedule_max_days_back",
)

# The measures with alert limits; each has <measure>_{low,high}_{warning,critical} fields or None.
VITAL_MEASURES = ("systolic", "diastolic", "heart_rate", "spo2", "respiratory_rate")


def alert_limits(policy: SessionSafetyPolicy, measure: str) -> tuple[int | None, ...]:
    """(critical_low, warning_low, warning_high, critical_high) for a measure; None if unused."""
    return (
        getattr(policy, f"{measure}_low_critical", None),
        getattr(policy, f"{measure}_low_warning", None),
        getattr(policy, f"{measure}_high_warning", None),
        getattr(policy, f"{measure}_high_critical", None),
    )


def _type_problems(policy: SessionSafetyPolicy) -> list[tuple[str, str]]:
    problems = []
    for f in fields(policy):
        value = getattr(policy, f.name)
        if f.type == "str" and not (isinstance(value, str) and value):
            problems.append((f.name, "must be a non-empty text"))
        elif f.type == "bool" and not isinstance(value, bool):
            problems.append((f.name, "must be true or false"))
        elif f.type == "int" and (isinstance(value, bool) or not isinstance(value, int)):
            problems.append((f.name, "must be a whole number"))
        elif f.type == "int" and value <= 0:
            problems.append((f.name, "must be positive"))
    return problems


def _safety_problems(policy: SessionSafetyPolicy) -> list[tuple[str, str]]:
    problems = []
    if policy.minimum_observation_minutes_esketamine < ESKETAMINE_MINIMUM_OBSERVATION_MINUTES:
        problems.append(
            (
                "minimum_observation_minutes_esketamine",
                f"the esketamine label requires at least {ESKETAMINE_MINIMUM_OBSERVATION_MINUTES}"
                " minutes of observation",
            )
        )
    for gate, ceiling in (
        ("predose_systolic_max", "predose_systolic_hard_ceiling"),
        ("predose_diastolic_max", "predose_diastolic_hard_ceiling"),
    ):
        if getattr(policy, gate) > getattr(policy, ceiling):
            problems.append((gate, f"must not be above {ceiling}"))
    if policy.spo2_low_warning > 100:
        problems.append(("spo2_low_warning", "an oxygen saturation cannot exceed 100%"))
    for measure in VITAL_MEASURES:
        limits = [value for value in alert_limits(policy, measure) if value is not None]
        if limits != sorted(limits):
            problems.append(
                (
                    f"{measure}_low_critical",
                    f"{measure} limits must rise: critical low <= warning low < warning high "
                    "<= critical high",
                )
            )
    return problems


DEFAULT_POLICY = SessionSafetyPolicy()
