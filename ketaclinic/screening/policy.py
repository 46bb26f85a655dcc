"""A clinic's screening policy: thresholds and how serious each screening finding is per route.

Pure module. Every default below is cited to clinical-reference.md. Where the reference marks
a number or a rule [U] (not confirmed) or says nothing, the default is the conservative choice
and is marked "[U] clinic policy": a clinic may change it by publishing a new policy version.

Severity per route decides the outcome: ``absolute`` makes a route ineligible, ``relative``
sends it to a prescriber, ``info`` is shown but does not block. A rule with no entry for a
route does not apply to that route.

Two things a policy cannot loosen, because they are label contraindications
(clinical-reference §3.1 [C] #1, #14, #38): hypersensitivity is absolute on every route, and
aneurysmal vascular disease/AVM and intracerebral haemorrhage are absolute for esketamine.
And within each ladder of the same condition (e.g. passive -> active suicidal ideation) a
worse step may never be less serious than a milder one, so a worse finding never makes a
decision more permissive.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from decimal import Decimal
from enum import StrEnum
from itertools import pairwise
from types import MappingProxyType
from typing import Any


class Route(StrEnum):
    INTRAVENOUS = "intravenous"
    INTRAMUSCULAR = "intramuscular"
    INTRANASAL_ESKETAMINE = "intranasal_esketamine"
    SUBLINGUAL_ORAL_IN_CLINIC = "sublingual_oral_in_clinic"
    SUBLINGUAL_AT_HOME = "sublingual_at_home"

    @property
    def is_at_home(self) -> bool:
        return self is Route.SUBLINGUAL_AT_HOME


CLINIC_ROUTES = tuple(route for route in Route if not route.is_at_home)
RACEMIC_CLINIC_ROUTES = tuple(
    route for route in CLINIC_ROUTES if route is not Route.INTRANASAL_ESKETAMINE
)


class Severity(StrEnum):
    INFO = "info"
    RELATIVE = "relative"
    ABSOLUTE = "absolute"

    @property
    def rank(self) -> int:
        return _SEVERITY_RANK[self]


_SEVERITY_RANK = {Severity.INFO: 0, Severity.RELATIVE: 1, Severity.ABSOLUTE: 2}

RouteSeverities = Mapping[Route, Severity]


def _everywhere(severity: Severity) -> dict[Route, Severity]:
    return dict.fromkeys(Route, severity)


def _clinic_and_home(clinic: Severity, home: Severity) -> dict[Route, Severity]:
    return {**dict.fromkeys(CLINIC_ROUTES, clinic), Route.SUBLINGUAL_AT_HOME: home}


ABSOLUTE, RELATIVE, INFO = Severity.ABSOLUTE, Severity.RELATIVE, Severity.INFO

# Default severity of every screening rule on every route. Keys are the rule ids used by
# ketaclinic.screening.rules; a test keeps the two in step.
_DEFAULT_TABLE: dict[str, dict[Route, Severity]] = {
    # §3.1 [C] #1, #14, #38: label contraindication (hypersensitivity to esketamine,
    # ketamine or excipients). Locked absolute on every route.
    "hypersensitivity": _everywhere(ABSOLUTE),
    # §3.1 [C] label contraindications for esketamine (locked). For racemic ketamine the
    # Ketalar label excludes conditions where a BP rise is a serious hazard (§3.2 [S] #48,
    # wording [U]); these two are exactly such conditions, so absolute there too.
    "aneurysmal-vascular-disease-or-avm": _everywhere(ABSOLUTE),
    "intracerebral-hemorrhage-history": _everywhere(ABSOLUTE),
    # §3.2 [C] #50, #53 exclusions; §8 [S] #53 for home.
    "active-psychotic-symptoms": _everywhere(ABSOLUTE),
    "current-mania": _everywhere(ABSOLUTE),
    # §3.1 (dissociation: assess psychosis history), §3.2 [C] #11, #51: relative.
    # Home: unmonitored dissociation, so ineligible ([U] clinic policy).
    "psychosis-history": _clinic_and_home(RELATIVE, ABSOLUTE),
    # Bipolar history without current mania: prescriber judgement ([U] clinic policy);
    # bipolar depression is outside the TRD definition (§4.1 [C] #62).
    "bipolar-disorder": _everywhere(RELATIVE),
    # Suicidal ideation ladder. Home exclusion of active ideation: §8, §3.2 [S] #53.
    # In clinic the esketamine label has an indication for acute suicidal ideation
    # (§1.3 [C] #1, #2), so active ideation needs a prescriber, not an automatic refusal.
    "suicidal-ideation-passive": _clinic_and_home(INFO, RELATIVE),
    "suicidal-ideation-active-without-intent": _clinic_and_home(RELATIVE, ABSOLUTE),
    "suicidal-ideation-active-with-intent-or-plan": _clinic_and_home(RELATIVE, ABSOLUTE),
    # §3.2 [C] #11, #50, #52: active SUD relative/exclusion; home exclusion §8 [S] #53.
    "active-substance-use-disorder": _clinic_and_home(RELATIVE, ABSOLUTE),
    # §3.2: "esp. ketamine/PCP": the conservative reading of relative/exclusion.
    "active-ketamine-or-pcp-use-disorder": _everywhere(ABSOLUTE),
    # §3.1 abuse/misuse warning; at home the supply leaves the clinic (§2.3 [C] #17:
    # watch for diversion), so ineligible there ([U] clinic policy).
    "ketamine-or-pcp-misuse-history": _clinic_and_home(RELATIVE, ABSOLUTE),
    # In clinic every dose is given under direct observation; at home it is not
    # ([U] clinic policy).
    "prior-ketamine-or-pcp-use": _clinic_and_home(INFO, RELATIVE),
    "past-substance-use-disorder": _clinic_and_home(INFO, RELATIVE),
    # §3.1 BP increases (monitor); §8 [S] #152 BP cuff at home if hypertensive.
    "hypertension-controlled": _clinic_and_home(INFO, RELATIVE),
    # §3.2 [C] #50: uncontrolled hypertension relative in practice; stricter at home.
    "hypertension-uncontrolled": _clinic_and_home(RELATIVE, ABSOLUTE),
    # Screening BP (thresholds below).
    "screening-bp-missing-or-stale": _everywhere(RELATIVE),
    "screening-bp-above-review-threshold": dict.fromkeys(CLINIC_ROUTES, RELATIVE),
    "screening-bp-above-hold-threshold": _everywhere(ABSOLUTE),
    "screening-bp-above-home-limit": {Route.SUBLINGUAL_AT_HOME: ABSOLUTE},
    # §3.1 label: cardiovascular/cerebrovascular disease -> monitor closely (relative).
    # Unstable disease or significant arrhythmia: trial exclusion §3.2 [C] #50 and a
    # BP-rise hazard (§3.2 [S] #48): absolute. Home: no monitoring or rescue equipment
    # (§2.3 [C] #17), so ineligible ([U] clinic policy).
    "cardiovascular-disease-stable": _clinic_and_home(RELATIVE, ABSOLUTE),
    "cardiovascular-disease-unstable": _everywhere(ABSOLUTE),
    "cerebrovascular-disease-stable": _clinic_and_home(RELATIVE, ABSOLUTE),
    "cerebrovascular-disease-unstable": _everywhere(ABSOLUTE),
    "hypertensive-encephalopathy-history": _clinic_and_home(RELATIVE, ABSOLUTE),
    # §3.2 [C] #51 precautions.
    "raised-intracranial-pressure": _clinic_and_home(RELATIVE, ABSOLUTE),
    "raised-intraocular-pressure": _everywhere(RELATIVE),
    # §1.3 / §3.1 [S] #8: moderate -> longer monitoring (impossible at home);
    # severe -> not recommended for esketamine (taken as ineligible, [U] clinic policy).
    "hepatic-impairment-mild": _everywhere(INFO),
    "hepatic-impairment-moderate": _clinic_and_home(RELATIVE, ABSOLUTE),
    "hepatic-impairment-severe": {
        **dict.fromkeys(RACEMIC_CLINIC_ROUTES, RELATIVE),
        Route.INTRANASAL_ESKETAMINE: ABSOLUTE,
        Route.SUBLINGUAL_AT_HOME: ABSOLUTE,
    },
    "hepatic-impairment-class-unknown": _clinic_and_home(RELATIVE, ABSOLUTE),
    # §3.1 label warning, §9.3: cystitis relative; urinary symptoms are a baseline record.
    "cystitis-history": _everywhere(RELATIVE),
    "urinary-symptoms": _everywhere(INFO),
    # §3.2 [C] #50, §3.1 label [C] #38: pregnancy and lactation exclusions.
    "pregnancy": _everywhere(ABSOLUTE),
    "breastfeeding": _everywhere(ABSOLUTE),
    # §3.1 embryo-fetal toxicity: pregnancy planning needs counselling.
    "planning-pregnancy": _everywhere(RELATIVE),
    # §3.3 interactions.
    "interaction-benzodiazepine": _everywhere(RELATIVE),
    "interaction-non-benzodiazepine-sedative-hypnotic": _everywhere(RELATIVE),
    "interaction-opioid": _everywhere(RELATIVE),
    "interaction-lamotrigine": _everywhere(INFO),
    "interaction-maoi": _everywhere(RELATIVE),
    "interaction-psychostimulant": _everywhere(RELATIVE),
    "interaction-naltrexone": _everywhere(RELATIVE),
    "interaction-antipsychotic": _everywhere(INFO),
    "interaction-cyp2b6-or-cyp3a4-modulator": _everywhere(INFO),
    # §3.2 [C] #50: trial exclusion above ~3 mg lorazepam-equivalent a day.
    "benzodiazepine-dose-above-limit": _everywhere(RELATIVE),
    # §4.1: esketamine is indicated for TRD; evidence for racemic ketamine is in TRD.
    "trd-not-established": _everywhere(RELATIVE),
    # §4.1 [C] #61, #62: a trial ticked adequate that its dates contradict goes to a prescriber.
    "trial-adequacy-contradicts-dates": _everywhere(RELATIVE),
    # Not in the reference: an adult service by default ([U] clinic policy).
    "below-minimum-age": _everywhere(ABSOLUTE),
    # §1.3 [S] #1 (non-US) / US [U]: older adults may start at 28 mg.
    "older-adult-esketamine-dosing": {Route.INTRANASAL_ESKETAMINE: INFO},
    # §2.2 [C] #40: larger BP rises from age 50.
    "age-associated-bp-rise": _everywhere(INFO),
    # Undocumented answers: cannot be called eligible until a prescriber has looked.
    "screening-information-missing": _everywhere(RELATIVE),
}
DEFAULT_SEVERITIES: Mapping[str, RouteSeverities] = MappingProxyType(
    {rule_id: MappingProxyType(by_route) for rule_id, by_route in _DEFAULT_TABLE.items()}
)
del ABSOLUTE, RELATIVE, INFO, _DEFAULT_TABLE

# (rule id, routes on which it must stay absolute): label contraindications, §3.1.
LABEL_CONTRAINDICATION_LOCKS: Mapping[str, tuple[Route, ...]] = MappingProxyType(
    {
        "hypersensitivity": tuple(Route),
        "aneurysmal-vascular-disease-or-avm": (Route.INTRANASAL_ESKETAMINE,),
        "intracerebral-hemorrhage-history": (Route.INTRANASAL_ESKETAMINE,),
    }
)

# Steps of one condition from mild to severe; evaluation reports only the worst step, so each
# step must be at least as serious as the one before on every route.
SEVERITY_LADDERS: tuple[tuple[str, ...], ...] = (
    (
        "suicidal-ideation-passive",
        "suicidal-ideation-active-without-intent",
        "suicidal-ideation-active-with-intent-or-plan",
    ),
    ("hypertension-controlled", "hypertension-uncontrolled"),
    ("screening-bp-above-review-threshold", "screening-bp-above-hold-threshold"),
    ("cardiovascular-disease-stable", "cardiovascular-disease-unstable"),
    ("cerebrovascular-disease-stable", "cerebrovascular-disease-unstable"),
    ("hepatic-impairment-mild", "hepatic-impairment-moderate", "hepatic-impairment-severe"),
)


@dataclass(frozen=True, slots=True)
class BloodPressureLimit:
    """A limit that is crossed when systolic OR diastolic is strictly above it (mmHg)."""

    systolic_mmhg: int
    diastolic_mmhg: int

    def __post_init__(self) -> None:
        if not 0 < self.diastolic_mmhg < self.systolic_mmhg:
            raise ValueError(f"implausible blood pressure limit {self}")

    def is_exceeded_by(self, systolic_mmhg: int, diastolic_mmhg: int) -> bool:
        return systolic_mmhg > self.systolic_mmhg or diastolic_mmhg > self.diastolic_mmhg

    def __str__(self) -> str:
        return f"{self.systolic_mmhg}/{self.diastolic_mmhg} mmHg"


def _rank_or_absent(severity: Severity | None) -> int:
    return -1 if severity is None else severity.rank


def _freeze_severities(raw: Mapping[str, Mapping[Any, Any]]) -> Mapping[str, RouteSeverities]:
    unknown = sorted(set(raw) - set(DEFAULT_SEVERITIES))
    if unknown:
        raise ValueError(f"unknown screening rule ids in policy: {unknown}")
    merged: dict[str, RouteSeverities] = {}
    for rule_id, default in DEFAULT_SEVERITIES.items():
        chosen = raw.get(rule_id, default)
        merged[rule_id] = MappingProxyType(
            {Route(route): Severity(severity) for route, severity in chosen.items()}
        )
    return MappingProxyType(merged)


@dataclass(frozen=True, slots=True, kw_only=True)
class ScreeningPolicy:
    policy_id: str = "ketaclinic-default-screening"
    version: int = 1

    # §2.1 [S] #7, #8: label guide "consider delaying" above 140 systolic or 90 diastolic.
    bp_review_above: BloodPressureLimit = BloodPressureLimit(140, 90)
    # §2.2 commonly quoted "> 180/100 stop/hold" is [U]: clinic policy, conservative default.
    bp_hold_above: BloodPressureLimit = BloodPressureLimit(180, 100)
    # At home nobody re-checks BP after dosing, so the label's "consider delaying" value
    # becomes a hard limit there ([U] clinic policy; number from §2.1 [S] #7, #8).
    home_bp_limit_above: BloodPressureLimit = BloodPressureLimit(140, 90)
    # Not in the reference: [U] clinic policy, kept short on purpose (one induction course).
    screening_bp_max_age_days: int = 30
    decision_validity_days: int = 30

    # §4.1 [C] #4, #59, #60: >= 2 adequate failed trials in the current episode.
    minimum_failed_adequate_trials: int = 2
    # §4.1 [C] #61: non-response = < 50% improvement, so a partial response is a failure.
    partial_response_counts_as_failure: bool = True
    # §4.1 [C] #61: minimum trial length 4-6 weeks; [C] #62: stopping before week 4 is not a
    # failed trial. 4 is the floor; a clinic may ask for more (6-8 weeks is clinic wording, [S] #63).
    minimum_adequate_trial_weeks: int = 4

    # §3.2 [C] #50: trial exclusion above ~3 mg lorazepam-equivalent per day.
    benzodiazepine_limit_lorazepam_equivalent_mg_per_day: Decimal = Decimal("3")

    # Not in the reference: adult service ([U] clinic policy).
    minimum_age_years: int = 18
    # §1.3 [S] #1 (non-US monograph; US label [U]).
    older_adult_esketamine_age_years: int = 65
    # §2.2 [C] #40: larger BP rises with age >= 50.
    bp_rise_risk_age_years: int = 50

    severities: Mapping[str, RouteSeverities] = field(default_factory=lambda: DEFAULT_SEVERITIES)

    def __post_init__(self) -> None:
        object.__setattr__(self, "severities", _freeze_severities(self.severities))
        self._check_numbers()
        self._check_label_locks()
        self._check_ladders()

    @property
    def ref(self) -> str:
        return f"{self.policy_id}@{self.version}"

    def severity_for(self, rule_id: str, route: Route) -> Severity | None:
        """How serious ``rule_id`` is on ``route``; None when it does not apply there."""
        return self.severities[rule_id].get(route)

    def _check_numbers(self) -> None:
        if not self.policy_id or self.version < 1:
            raise ValueError("a policy needs an id and a version >= 1")
        if self.minimum_adequate_trial_weeks < 4:
            # Below week 4 a stopped trial is not a failure (§4.1 [C] #62).
            raise ValueError("minimum_adequate_trial_weeks cannot be below 4")
        if self.minimum_failed_adequate_trials < 2:
            # The definition (§4.1 [C]) needs at least two; a clinic may only ask for more.
            raise ValueError("minimum_failed_adequate_trials cannot be below 2")
        for name in ("screening_bp_max_age_days", "decision_validity_days"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be at least 1 day")
        if self.bp_hold_above.systolic_mmhg < self.bp_review_above.systolic_mmhg or (
            self.bp_hold_above.diastolic_mmhg < self.bp_review_above.diastolic_mmhg
        ):
            raise ValueError("the hold threshold cannot be below the review threshold")
        if self.benzodiazepine_limit_lorazepam_equivalent_mg_per_day < 0:
            raise ValueError("the benzodiazepine limit cannot be negative")
        if self.minimum_age_years < 0:
            raise ValueError("minimum_age_years cannot be negative")

    def _check_label_locks(self) -> None:
        for rule_id, routes in LABEL_CONTRAINDICATION_LOCKS.items():
            for route in routes:
                if self.severity_for(rule_id, route) is not Severity.ABSOLUTE:
                    raise ValueError(
                        f"{rule_id} is a label contraindication and must stay absolute "
                        f"for {route.value}"
                    )

    def _check_ladders(self) -> None:
        for ladder in SEVERITY_LADDERS:
            for milder, worse in pairwise(ladder):
                for route in Route:
                    if _rank_or_absent(self.severity_for(worse, route)) < _rank_or_absent(
                        self.severity_for(milder, route)
                    ):
                        raise ValueError(
                            f"{worse} cannot be less serious than {milder} on {route.value}"
                        )

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form for storage; ``from_dict(to_dict(p)) == p``."""
        data: dict[str, Any] = {}
        for policy_field in fields(self):
            value = getattr(self, policy_field.name)
            if isinstance(value, BloodPressureLimit):
                value = {
                    "systolic_mmhg": value.systolic_mmhg,
                    "diastolic_mmhg": value.diastolic_mmhg,
                }
            elif isinstance(value, Decimal):
                value = str(value)
            elif policy_field.name == "severities":
                value = {
                    rule_id: {route.value: severity.value for route, severity in by_route.items()}
                    for rule_id, by_route in value.items()
                }
            data[policy_field.name] = value
        return data

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ScreeningPolicy:
        """Rebuild a stored policy. Rules missing from an older stored policy get defaults."""
        known = {policy_field.name for policy_field in fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ValueError(f"unknown screening policy fields: {unknown}")
        values: dict[str, Any] = dict(data)
        for name in ("bp_review_above", "bp_hold_above", "home_bp_limit_above"):
            if name in values:
                values[name] = BloodPressureLimit(**values[name])
        name = "benzodiazepine_limit_lorazepam_equivalent_mg_per_day"
        if name in values:
            values[name] = Decimal(str(values[name]))
        return cls(**values)
