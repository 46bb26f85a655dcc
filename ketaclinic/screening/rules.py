"""Eligibility screening: a snapshot of what the chart says -> a decision per route.

Pure module: standard library and other pure screening modules only. Time comes in as
``as_of`` (the clinic-local calendar date of the screening); thresholds and how serious each
finding is come from a ``ScreeningPolicy``.

How a decision is reached: every rule that applies to the snapshot yields a finding; the
policy says how serious that finding is on each route (absolute / relative / info, or not
applicable); a route's decision is the most serious of its findings:
absolute -> ineligible, relative -> needs_prescriber_review, info or nothing -> eligible.
Because a decision is a maximum, adding a finding can never make a route more permissive.

Yes/no questions are ``bool | None``: ``None`` means "not documented", which is never read
as "no". Undocumented answers produce the ``screening-information-missing`` finding.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, fields, is_dataclass
from datetime import date, datetime, timedelta
from decimal import Decimal
from enum import Enum, StrEnum
from types import MappingProxyType
from typing import Any

from ketaclinic.core.formatting import plain_number
from ketaclinic.screening.interactions import INTERACTIONS, InteractingClass
from ketaclinic.screening.policy import (
    CLINIC_ROUTES,
    Route,
    ScreeningPolicy,
    Severity,
)
from ketaclinic.screening.trd import (
    AntidepressantTrial,
    TrdAssessment,
    TrdStatus,
    assess_trd,
)

__all__ = [
    "ALGORITHM",
    "CLINIC_ROUTES",
    "RULES",
    "BloodPressureReading",
    "Decision",
    "DiseaseStatus",
    "Finding",
    "HepaticImpairment",
    "HypertensionStatus",
    "Route",
    "RouteDecision",
    "RuleSpec",
    "ScreeningInputs",
    "ScreeningResult",
    "Severity",
    "SuicidalIdeation",
    "decision_for_severity",
    "evaluate",
    "inputs_fingerprint",
]

ALGORITHM = "screening-eligibility@1"
_FINGERPRINT_SCHEMA = "screening-inputs@1"


# --- inputs -----------------------------------------------------------------------------


class SuicidalIdeation(StrEnum):
    """Worst current suicidal ideation, e.g. from the C-SSRS screen."""

    NONE = "none"
    PASSIVE = "passive"  # wish to be dead
    ACTIVE_WITHOUT_INTENT = "active_without_intent"
    ACTIVE_WITH_INTENT_OR_PLAN = "active_with_intent_or_plan"


class HypertensionStatus(StrEnum):
    ABSENT = "absent"
    CONTROLLED = "controlled"
    UNCONTROLLED = "uncontrolled"


class DiseaseStatus(StrEnum):
    ABSENT = "absent"
    STABLE = "stable"
    UNSTABLE = "unstable"  # includes significant arrhythmia for cardiovascular disease


class HepaticImpairment(StrEnum):
    NONE = "none"
    CHILD_PUGH_A = "child_pugh_a"  # mild
    CHILD_PUGH_B = "child_pugh_b"  # moderate
    CHILD_PUGH_C = "child_pugh_c"  # severe
    PRESENT_CLASS_UNKNOWN = "present_class_unknown"


@dataclass(frozen=True, slots=True, kw_only=True)
class BloodPressureReading:
    systolic_mmhg: int
    diastolic_mmhg: int
    measured_on: date

    def __post_init__(self) -> None:
        if not 0 < self.diastolic_mmhg < self.systolic_mmhg:
            raise ValueError(
                f"implausible blood pressure {self.systolic_mmhg}/{self.diastolic_mmhg}"
            )


@dataclass(frozen=True, slots=True, kw_only=True)
class ScreeningInputs:
    """Everything screening reads, as documented on the chart at one moment.

    No field has a default: whoever builds a snapshot must say, for every question, yes,
    no, or "not documented" (None).
    """

    # Psychiatric history and current state
    psychosis_history: bool | None  # psychosis or schizophrenia-spectrum disorder, ever
    current_psychotic_symptoms: bool | None
    bipolar_disorder: bool | None
    current_mania_or_hypomania: bool | None
    suicidal_ideation: SuicidalIdeation | None

    # Substance use
    active_substance_use_disorder: bool | None
    active_ketamine_or_pcp_use_disorder: bool | None
    ketamine_or_pcp_misuse_history: bool | None
    prior_ketamine_or_pcp_use: bool | None  # any non-prescribed use, ever
    past_substance_use_disorder: bool | None  # in remission

    # Cardiovascular and neurological
    hypertension: HypertensionStatus | None
    screening_bp: BloodPressureReading | None
    cardiovascular_disease: DiseaseStatus | None
    cerebrovascular_disease: DiseaseStatus | None
    hypertensive_encephalopathy_history: bool | None
    aneurysmal_vascular_disease_or_avm: bool | None
    intracerebral_hemorrhage_history: bool | None
    raised_intracranial_pressure: bool | None
    raised_intraocular_pressure: bool | None

    # Other medical
    hepatic_impairment: HepaticImpairment | None
    cystitis_history: bool | None  # interstitial or ulcerative cystitis
    urinary_symptoms: bool | None  # current lower urinary tract symptoms
    hypersensitivity_to_ketamine_or_esketamine: bool | None
    pregnant: bool | None
    breastfeeding: bool | None
    planning_pregnancy: bool | None

    # Medications: None = the medication list has not been reconciled.
    interacting_medications: frozenset[InteractingClass] | None
    benzodiazepine_lorazepam_equivalent_mg_per_day: Decimal | None

    antidepressant_trials: tuple[AntidepressantTrial, ...]
    age_years: int

    def __post_init__(self) -> None:
        object.__setattr__(self, "antidepressant_trials", tuple(self.antidepressant_trials))
        if self.interacting_medications is not None:
            object.__setattr__(
                self, "interacting_medications", frozenset(self.interacting_medications)
            )
        if self.age_years < 0:
            raise ValueError("age_years cannot be negative")
        dose = self.benzodiazepine_lorazepam_equivalent_mg_per_day
        if dose is not None and dose < 0:
            raise ValueError("benzodiazepine dose cannot be negative")


# --- outputs ----------------------------------------------------------------------------


class Decision(StrEnum):
    ELIGIBLE = "eligible"
    NEEDS_PRESCRIBER_REVIEW = "needs_prescriber_review"
    INELIGIBLE = "ineligible"

    @property
    def rank(self) -> int:
        """Order of permissiveness: eligible 0 < needs_prescriber_review 1 < ineligible 2."""
        return _DECISION_BY_SEVERITY_RANK.index(self)


_DECISION_BY_SEVERITY_RANK = (
    Decision.ELIGIBLE,
    Decision.NEEDS_PRESCRIBER_REVIEW,
    Decision.INELIGIBLE,
)


def decision_for_severity(severity: Severity) -> Decision:
    return _DECISION_BY_SEVERITY_RANK[severity.rank]


@dataclass(frozen=True, slots=True)
class Finding:
    rule_id: str
    rule_version: int
    severity: Severity  # as it applies to the route this finding is listed under
    reason: str
    citation: str

    @property
    def rule(self) -> str:
        """Versioned rule reference, e.g. ``pregnancy@1``."""
        return f"{self.rule_id}@{self.rule_version}"

    def to_dict(self) -> dict[str, Any]:
        return {
            "rule": self.rule,
            "rule_id": self.rule_id,
            "severity": self.severity.value,
            "reason": self.reason,
            "citation": self.citation,
        }


@dataclass(frozen=True, slots=True)
class RouteDecision:
    route: Route
    decision: Decision
    findings: tuple[Finding, ...]  # most serious first


@dataclass(frozen=True, slots=True)
class ScreeningResult:
    algorithm: str
    policy: str  # "<policy_id>@<version>"
    inputs_fingerprint: str
    assessed_on: date
    valid_until: date  # last day on which the decision may be relied on
    trd: TrdAssessment
    routes: tuple[RouteDecision, ...]  # one per Route, in Route order

    def for_route(self, route: Route) -> RouteDecision:
        return next(item for item in self.routes if item.route is route)

    def decision_for(self, route: Route) -> Decision:
        return self.for_route(route).decision

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready summary for storage beside the decision record."""
        return {
            "algorithm": self.algorithm,
            "policy": self.policy,
            "inputs_fingerprint": self.inputs_fingerprint,
            "assessed_on": self.assessed_on.isoformat(),
            "valid_until": self.valid_until.isoformat(),
            "trd": {
                "rule": self.trd.rule,
                "status": self.trd.status.value,
                "counted": [trial.drug for trial in self.trd.counted],
                "not_counted": [
                    {"drug": item.trial.drug, "reasons": list(item.reasons)}
                    for item in self.trd.not_counted
                ],
            },
            "routes": {
                item.route.value: {
                    "decision": item.decision.value,
                    "findings": [finding.to_dict() for finding in item.findings],
                }
                for item in self.routes
            },
        }


# --- rule catalogue -------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class RuleSpec:
    rule_id: str
    version: int
    citation: str

    @property
    def ref(self) -> str:
        return f"{self.rule_id}@{self.version}"


_LABEL = "clinical-reference §3.1 [C] #1, #14, #38"
_LABEL_WARNINGS = "clinical-reference §3.1 label warnings [C]/[S] #8"
_RACEMIC_TABLE = "clinical-reference §3.2"


def _spec(rule_id: str, citation: str, version: int = 1) -> tuple[str, RuleSpec]:
    return rule_id, RuleSpec(rule_id, version, citation)


RULES: Mapping[str, RuleSpec] = MappingProxyType(
    dict(
        [
            _spec("hypersensitivity", _LABEL),
            _spec("aneurysmal-vascular-disease-or-avm", f"{_LABEL}; §3.2 [S] #48"),
            _spec("intracerebral-hemorrhage-history", f"{_LABEL}; §3.2 [S] #48"),
            _spec("active-psychotic-symptoms", f"{_RACEMIC_TABLE} [C] #50, #53; §8 [S] #53"),
            _spec("current-mania", f"{_RACEMIC_TABLE} [C] #50, #53"),
            _spec("psychosis-history", f"{_LABEL_WARNINGS}; {_RACEMIC_TABLE} [C] #11, #51"),
            _spec("bipolar-disorder", f"{_RACEMIC_TABLE} [C] #50, #53; §4.1 [C] #62"),
            _spec("suicidal-ideation-passive", f"{_LABEL_WARNINGS}; §8 [S] #53"),
            _spec("suicidal-ideation-active-without-intent", "clinical-reference §8 [S] #53"),
            _spec(
                "suicidal-ideation-active-with-intent-or-plan",
                f"{_RACEMIC_TABLE} [S] #53; §1.3 [C] #1, #2",
            ),
            _spec("active-substance-use-disorder", f"{_RACEMIC_TABLE} [C] #11, #50, #52; §8"),
            _spec("active-ketamine-or-pcp-use-disorder", f"{_RACEMIC_TABLE} [C] #11, #50, #52"),
            _spec("ketamine-or-pcp-misuse-history", f"{_LABEL_WARNINGS}; §2.3 [C] #17"),
            _spec("prior-ketamine-or-pcp-use", f"{_LABEL_WARNINGS}; §2.2 [C] #11"),
            _spec("past-substance-use-disorder", f"{_LABEL_WARNINGS}; §2.2 [C] #11"),
            _spec("hypertension-controlled", f"{_LABEL_WARNINGS}; §8 [S] #152"),
            _spec("hypertension-uncontrolled", f"{_RACEMIC_TABLE} [C] #50, [S] #48"),
            _spec("screening-bp-missing-or-stale", "clinical-reference §2.2 [S] #12"),
            _spec("screening-bp-above-review-threshold", "clinical-reference §2.1 [S] #7, #8"),
            _spec("screening-bp-above-hold-threshold", "clinical-reference §2.2 ([U] threshold)"),
            _spec("screening-bp-above-home-limit", "clinical-reference §2.1 [S] #7, #8; §8"),
            _spec("cardiovascular-disease-stable", _LABEL_WARNINGS),
            _spec("cardiovascular-disease-unstable", f"{_RACEMIC_TABLE} [C] #50, [S] #48"),
            _spec("cerebrovascular-disease-stable", _LABEL_WARNINGS),
            _spec("cerebrovascular-disease-unstable", f"{_RACEMIC_TABLE} [C] #50, [S] #48"),
            _spec("hypertensive-encephalopathy-history", _LABEL_WARNINGS),
            _spec("raised-intracranial-pressure", f"{_RACEMIC_TABLE} [C] #51"),
            _spec("raised-intraocular-pressure", f"{_RACEMIC_TABLE} [C] #51"),
            _spec("hepatic-impairment-mild", "clinical-reference §1.3, §3.1 [S] #8"),
            _spec("hepatic-impairment-moderate", "clinical-reference §1.3, §3.1 [S] #8"),
            _spec("hepatic-impairment-severe", "clinical-reference §1.3, §3.1 [S] #8"),
            _spec("hepatic-impairment-class-unknown", "clinical-reference §1.3, §3.1 [S] #8"),
            _spec("cystitis-history", f"{_LABEL_WARNINGS}; §9.3 [C] #159, #160"),
            _spec("urinary-symptoms", "clinical-reference §9.3 [S] #8"),
            _spec("pregnancy", f"{_RACEMIC_TABLE} [C] #50, #38; {_LABEL_WARNINGS}"),
            _spec("breastfeeding", f"{_RACEMIC_TABLE} [C] #50, #38; {_LABEL_WARNINGS}"),
            _spec("planning-pregnancy", _LABEL_WARNINGS),
            *(
                _spec(drug_class.rule_id, INTERACTIONS[drug_class].citation)
                for drug_class in InteractingClass
            ),
            _spec("benzodiazepine-dose-above-limit", f"{_RACEMIC_TABLE} [C] #50"),
            _spec("trd-not-established", "clinical-reference §4.1 [C] #4, #59, #60, #61, #62"),
            _spec("trial-adequacy-contradicts-dates", "clinical-reference §4.1 [C] #61, #62"),
            _spec("below-minimum-age", "clinic policy (not in clinical-reference) [U]"),
            _spec("older-adult-esketamine-dosing", "clinical-reference §1.3 [S] #1 (US [U])"),
            _spec("age-associated-bp-rise", "clinical-reference §2.2 [C] #40"),
            _spec("screening-information-missing", "clinical-reference §2.2 [C] #10, #11"),
        ]
    )
)


# --- rules ------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Detection:
    rule_id: str
    reason: str


@dataclass(frozen=True, slots=True)
class _Context:
    inputs: ScreeningInputs
    policy: ScreeningPolicy
    as_of: date
    trd: TrdAssessment


@dataclass(frozen=True, slots=True)
class _YesNoRule:
    field_name: str
    rule_id: str
    question: str  # how the missing answer is named to the prescriber
    reason: str


_YES_NO_RULES: tuple[_YesNoRule, ...] = (
    _YesNoRule(
        "hypersensitivity_to_ketamine_or_esketamine",
        "hypersensitivity",
        "hypersensitivity to ketamine or esketamine",
        "Known hypersensitivity to ketamine, esketamine or an excipient (label contraindication).",
    ),
    _YesNoRule(
        "aneurysmal_vascular_disease_or_avm",
        "aneurysmal-vascular-disease-or-avm",
        "aneurysmal vascular disease or arteriovenous malformation",
        "Aneurysmal vascular disease or an arteriovenous malformation: the blood-pressure "
        "rise after a dose could be dangerous (label contraindication for esketamine).",
    ),
    _YesNoRule(
        "intracerebral_hemorrhage_history",
        "intracerebral-hemorrhage-history",
        "history of intracerebral haemorrhage",
        "History of intracerebral haemorrhage (label contraindication for esketamine).",
    ),
    _YesNoRule(
        "current_psychotic_symptoms",
        "active-psychotic-symptoms",
        "current psychotic symptoms",
        "Current psychotic symptoms: ketamine can worsen psychosis.",
    ),
    _YesNoRule(
        "current_mania_or_hypomania",
        "current-mania",
        "current mania or hypomania",
        "Current mania or hypomania.",
    ),
    _YesNoRule(
        "psychosis_history",
        "psychosis-history",
        "history of psychosis or schizophrenia",
        "History of psychosis or schizophrenia: dissociation may be harmful; treat only if "
        "the benefit outweighs the risk.",
    ),
    _YesNoRule(
        "bipolar_disorder",
        "bipolar-disorder",
        "bipolar disorder",
        "Bipolar disorder: risk of switching to mania, and bipolar depression falls outside "
        "the TRD definition.",
    ),
    _YesNoRule(
        "active_substance_use_disorder",
        "active-substance-use-disorder",
        "active substance use disorder",
        "Active substance use disorder: risk of misuse.",
    ),
    _YesNoRule(
        "active_ketamine_or_pcp_use_disorder",
        "active-ketamine-or-pcp-use-disorder",
        "active ketamine or PCP use disorder",
        "Active ketamine or PCP use disorder.",
    ),
    _YesNoRule(
        "ketamine_or_pcp_misuse_history",
        "ketamine-or-pcp-misuse-history",
        "history of ketamine or PCP misuse",
        "History of ketamine or PCP misuse: assess the risk of misuse and diversion.",
    ),
    _YesNoRule(
        "prior_ketamine_or_pcp_use",
        "prior-ketamine-or-pcp-use",
        "prior non-prescribed ketamine or PCP use",
        "Prior non-prescribed ketamine or PCP use.",
    ),
    _YesNoRule(
        "past_substance_use_disorder",
        "past-substance-use-disorder",
        "past substance use disorder",
        "Past substance use disorder (in remission): assess the risk of misuse.",
    ),
    _YesNoRule(
        "hypertensive_encephalopathy_history",
        "hypertensive-encephalopathy-history",
        "history of hypertensive encephalopathy",
        "History of hypertensive encephalopathy: monitor blood pressure closely.",
    ),
    _YesNoRule(
        "raised_intracranial_pressure",
        "raised-intracranial-pressure",
        "raised intracranial pressure",
        "Raised intracranial pressure (precaution).",
    ),
    _YesNoRule(
        "raised_intraocular_pressure",
        "raised-intraocular-pressure",
        "raised intraocular pressure",
        "Raised intraocular pressure (precaution).",
    ),
    _YesNoRule(
        "cystitis_history",
        "cystitis-history",
        "interstitial or ulcerative cystitis",
        "Interstitial or ulcerative cystitis: ketamine can cause bladder toxicity; monitor "
        "urinary symptoms.",
    ),
    _YesNoRule(
        "urinary_symptoms",
        "urinary-symptoms",
        "current urinary symptoms",
        "Urinary symptoms at baseline: record them so later changes can be recognised.",
    ),
    _YesNoRule(
        "pregnant",
        "pregnancy",
        "pregnancy",
        "Pregnancy: risk of embryo-fetal toxicity.",
    ),
    _YesNoRule(
        "breastfeeding",
        "breastfeeding",
        "breastfeeding",
        "Breastfeeding: not recommended during treatment.",
    ),
    _YesNoRule(
        "planning_pregnancy",
        "planning-pregnancy",
        "pregnancy planning",
        "Planning a pregnancy: counsel on embryo-fetal risk and contraception.",
    ),
)

# The yes/no intake questions, in the order the intake asks them.
YES_NO_QUESTIONS: tuple[str, ...] = tuple(rule.field_name for rule in _YES_NO_RULES)

# An intake answered in full with no contraindication: the screening then rests on the chart
# alone (the demo clinic and the tests start from it).
CLEAN_INTAKE: Mapping[str, Any] = MappingProxyType(
    {
        **dict.fromkeys(YES_NO_QUESTIONS, False),
        "suicidal_ideation": "none",
        "hypertension": "absent",
        "cardiovascular_disease": "absent",
        "cerebrovascular_disease": "absent",
        "hepatic_impairment": "none",
        "medications_reconciled": True,
    }
)

_OTHER_QUESTIONS: Mapping[str, str] = MappingProxyType(
    {
        "suicidal_ideation": "current suicidal ideation (e.g. C-SSRS)",
        "hypertension": "hypertension and whether it is controlled",
        "cardiovascular_disease": "cardiovascular disease",
        "cerebrovascular_disease": "cerebrovascular disease",
        "hepatic_impairment": "hepatic impairment",
        "interacting_medications": "reconciled current medication list",
    }
)


def _check_yes_no_questions(ctx: _Context) -> Iterator[_Detection]:
    for rule in _YES_NO_RULES:
        if getattr(ctx.inputs, rule.field_name) is True:
            yield _Detection(rule.rule_id, rule.reason)


def _check_missing_information(ctx: _Context) -> Iterator[_Detection]:
    missing = [
        rule.question for rule in _YES_NO_RULES if getattr(ctx.inputs, rule.field_name) is None
    ]
    missing += [
        question
        for field_name, question in _OTHER_QUESTIONS.items()
        if getattr(ctx.inputs, field_name) is None
    ]
    if missing:
        yield _Detection(
            "screening-information-missing",
            "Not documented, so eligibility cannot be confirmed: " + "; ".join(missing) + ".",
        )


_SUICIDAL_IDEATION_RULES = {
    SuicidalIdeation.PASSIVE: (
        "suicidal-ideation-passive",
        "Passive suicidal ideation: keep a safety plan in place.",
    ),
    SuicidalIdeation.ACTIVE_WITHOUT_INTENT: (
        "suicidal-ideation-active-without-intent",
        "Active suicidal ideation without intent: needs a prescriber's safety assessment; "
        "not suitable for unsupervised home dosing.",
    ),
    SuicidalIdeation.ACTIVE_WITH_INTENT_OR_PLAN: (
        "suicidal-ideation-active-with-intent-or-plan",
        "Active suicidal ideation with intent or a plan: needs a same-day safety "
        "assessment; excluded from home dosing.",
    ),
}


def _check_suicidal_ideation(ctx: _Context) -> Iterator[_Detection]:
    level = ctx.inputs.suicidal_ideation
    if level in _SUICIDAL_IDEATION_RULES:
        rule_id, reason = _SUICIDAL_IDEATION_RULES[level]
        yield _Detection(rule_id, reason)


def _check_hypertension(ctx: _Context) -> Iterator[_Detection]:
    status = ctx.inputs.hypertension
    if status is HypertensionStatus.CONTROLLED:
        yield _Detection(
            "hypertension-controlled",
            "Controlled hypertension: ketamine raises blood pressure; monitor closely.",
        )
    elif status is HypertensionStatus.UNCONTROLLED:
        yield _Detection(
            "hypertension-uncontrolled",
            "Uncontrolled hypertension: ketamine raises blood pressure; control it first "
            "or weigh the risk.",
        )


def _check_vascular_disease(ctx: _Context) -> Iterator[_Detection]:
    for status, name in (
        (ctx.inputs.cardiovascular_disease, "cardiovascular"),
        (ctx.inputs.cerebrovascular_disease, "cerebrovascular"),
    ):
        if status is DiseaseStatus.STABLE:
            yield _Detection(
                f"{name}-disease-stable",
                f"Stable {name} disease: blood-pressure rises after a dose need close monitoring.",
            )
        elif status is DiseaseStatus.UNSTABLE:
            yield _Detection(
                f"{name}-disease-unstable",
                f"Unstable {name} disease (or significant arrhythmia): a blood-pressure "
                "rise could be dangerous.",
            )


def _check_screening_bp(ctx: _Context) -> Iterator[_Detection]:
    policy, reading = ctx.policy, ctx.inputs.screening_bp
    if reading is None:
        yield _Detection(
            "screening-bp-missing-or-stale", "No screening blood pressure is recorded."
        )
        return
    age_days = (ctx.as_of - reading.measured_on).days
    if age_days < 0:
        yield _Detection(
            "screening-bp-missing-or-stale",
            f"The screening blood pressure is dated {reading.measured_on.isoformat()}, "
            "after the screening date.",
        )
    elif age_days > policy.screening_bp_max_age_days:
        yield _Detection(
            "screening-bp-missing-or-stale",
            f"The screening blood pressure is {age_days} days old (policy allows "
            f"{policy.screening_bp_max_age_days}); record a new one.",
        )
    # A stale reading still counts as evidence: a high old value is not ignored.
    systolic, diastolic = reading.systolic_mmhg, reading.diastolic_mmhg
    shown = f"{systolic}/{diastolic} mmHg"
    if policy.bp_hold_above.is_exceeded_by(systolic, diastolic):
        yield _Detection(
            "screening-bp-above-hold-threshold",
            f"Screening blood pressure {shown} is above the hold threshold {policy.bp_hold_above}.",
        )
    elif policy.bp_review_above.is_exceeded_by(systolic, diastolic):
        yield _Detection(
            "screening-bp-above-review-threshold",
            f"Screening blood pressure {shown} is above {policy.bp_review_above}: weigh the "
            "short-term rise against the benefit; consider delaying.",
        )
    if policy.home_bp_limit_above.is_exceeded_by(systolic, diastolic):
        yield _Detection(
            "screening-bp-above-home-limit",
            f"Screening blood pressure {shown} is above the home-dosing limit "
            f"{policy.home_bp_limit_above}.",
        )


_HEPATIC_RULES = {
    HepaticImpairment.CHILD_PUGH_A: (
        "hepatic-impairment-mild",
        "Mild hepatic impairment (Child-Pugh A).",
    ),
    HepaticImpairment.CHILD_PUGH_B: (
        "hepatic-impairment-moderate",
        "Moderate hepatic impairment (Child-Pugh B): monitor for longer after each dose.",
    ),
    HepaticImpairment.CHILD_PUGH_C: (
        "hepatic-impairment-severe",
        "Severe hepatic impairment (Child-Pugh C): esketamine is not recommended.",
    ),
    HepaticImpairment.PRESENT_CLASS_UNKNOWN: (
        "hepatic-impairment-class-unknown",
        "Hepatic impairment of unknown severity: determine the Child-Pugh class.",
    ),
}


def _check_hepatic_impairment(ctx: _Context) -> Iterator[_Detection]:
    impairment = ctx.inputs.hepatic_impairment
    if impairment in _HEPATIC_RULES:
        rule_id, reason = _HEPATIC_RULES[impairment]
        yield _Detection(rule_id, reason)


def _check_interacting_medications(ctx: _Context) -> Iterator[_Detection]:
    classes = ctx.inputs.interacting_medications or frozenset()
    for drug_class in InteractingClass:  # fixed order, whatever order the set iterates in
        if drug_class in classes:
            interaction = INTERACTIONS[drug_class]
            yield _Detection(
                drug_class.rule_id,
                f"Takes a {interaction.label}: {interaction.effect}",
            )
    limit = ctx.policy.benzodiazepine_limit_lorazepam_equivalent_mg_per_day
    dose = ctx.inputs.benzodiazepine_lorazepam_equivalent_mg_per_day
    if dose is not None and dose > limit:
        yield _Detection(
            "benzodiazepine-dose-above-limit",
            f"Benzodiazepine dose of {plain_number(dose)} mg lorazepam-equivalent a day is above {plain_number(limit)} mg.",
        )


def _check_trd(ctx: _Context) -> Iterator[_Detection]:
    trd = ctx.trd
    weeks = ctx.policy.minimum_adequate_trial_weeks
    for trial in trd.contradicted:
        yield _Detection(
            "trial-adequacy-contradicts-dates",
            f"{trial.drug} is marked as an adequate trial, but its dates show {trial.days} days; "
            f"an adequate trial lasts at least {weeks} weeks. Check the dates or the tick.",
        )
    if trd.status is TrdStatus.MET:
        return
    summary = (
        f"{len(trd.counted)} failed adequate antidepressant trial(s) in the current episode "
        f"documented; treatment-resistant depression needs {trd.required_failed_trials}"
    )
    if trd.status is TrdStatus.UNDETERMINED:
        reason = (
            f"Treatment resistance not yet established ({summary}): complete the trial history."
        )
    else:
        reason = f"Not treatment-resistant depression on the documented history ({summary})."
    yield _Detection("trd-not-established", reason)


def _check_age(ctx: _Context) -> Iterator[_Detection]:
    age, policy = ctx.inputs.age_years, ctx.policy
    if age < policy.minimum_age_years:
        yield _Detection(
            "below-minimum-age",
            f"Age {age} is below this clinic's minimum of {policy.minimum_age_years}.",
        )
    if age >= policy.older_adult_esketamine_age_years:
        yield _Detection(
            "older-adult-esketamine-dosing",
            f"Age {age}: a lower esketamine starting dose (28 mg) may apply to older adults.",
        )
    if age >= policy.bp_rise_risk_age_years:
        yield _Detection(
            "age-associated-bp-rise",
            f"Age {age}: larger blood-pressure rises during infusions are reported from age "
            f"{policy.bp_rise_risk_age_years}.",
        )


_CHECKS: tuple[Callable[[_Context], Iterator[_Detection]], ...] = (
    _check_yes_no_questions,
    _check_suicidal_ideation,
    _check_hypertension,
    _check_screening_bp,
    _check_vascular_disease,
    _check_hepatic_impairment,
    _check_interacting_medications,
    _check_trd,
    _check_age,
    _check_missing_information,
)


# --- evaluation -------------------------------------------------------------------------


def evaluate(inputs: ScreeningInputs, policy: ScreeningPolicy, *, as_of: date) -> ScreeningResult:
    """Decide eligibility for every route from one chart snapshot.

    ``as_of`` is the screening's calendar date in the clinic's time zone: it dates the
    decision and decides whether the screening blood pressure is recent enough.
    """
    if isinstance(as_of, datetime):
        raise TypeError("as_of is a calendar date in the clinic's time zone, not a datetime")
    trd = assess_trd(
        inputs.antidepressant_trials,
        minimum_failed_adequate_trials=policy.minimum_failed_adequate_trials,
        partial_response_counts_as_failure=policy.partial_response_counts_as_failure,
        minimum_trial_weeks=policy.minimum_adequate_trial_weeks,
    )
    context = _Context(inputs=inputs, policy=policy, as_of=as_of, trd=trd)
    detections = [detection for check in _CHECKS for detection in check(context)]

    route_decisions = []
    for route in Route:
        findings = []
        for detection in detections:
            severity = policy.severity_for(detection.rule_id, route)
            if severity is None:
                continue
            spec = RULES[detection.rule_id]
            findings.append(
                Finding(spec.rule_id, spec.version, severity, detection.reason, spec.citation)
            )
        findings.sort(key=lambda finding: (-finding.severity.rank, finding.rule_id))
        decision = max(
            (decision_for_severity(finding.severity) for finding in findings),
            key=lambda item: item.rank,
            default=Decision.ELIGIBLE,
        )
        route_decisions.append(RouteDecision(route, decision, tuple(findings)))

    return ScreeningResult(
        algorithm=ALGORITHM,
        policy=policy.ref,
        inputs_fingerprint=inputs_fingerprint(inputs),
        assessed_on=as_of,
        valid_until=as_of + timedelta(days=policy.decision_validity_days),
        trd=trd,
        routes=tuple(route_decisions),
    )


# --- fingerprint ------------------------------------------------------------------------


def _canonical(value: Any) -> Any:
    if value is None or isinstance(value, bool | int | str):
        return value
    if isinstance(value, Enum):
        return value.value
    if isinstance(value, Decimal):
        # 3, 3.0 and 3.00 mg are the same dose and must fingerprint the same.
        return format(value.normalize(), "f")
    if isinstance(value, date):
        return value.isoformat()
    if is_dataclass(value) and not isinstance(value, type):
        return {
            item.name: _canonical(getattr(value, item.name))
            for item in fields(value)
            if not (item.name in _ADDED_WHEN_SET and getattr(value, item.name) is None)
        }
    if isinstance(value, frozenset | set):
        return sorted((_canonical(item) for item in value), key=_json)
    if isinstance(value, tuple | list):
        return [_canonical(item) for item in value]
    raise TypeError(f"cannot fingerprint a {type(value).__name__}")


# Input fields added after decisions were stored: left out while unset, so an older snapshot
# keeps its fingerprint and its decision does not look out of date.
_ADDED_WHEN_SET = frozenset({"days"})


def _json(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def inputs_fingerprint(inputs: ScreeningInputs) -> str:
    """sha256 of the snapshot's canonical JSON.

    Stored with a decision so a later snapshot can tell whether anything screening reads
    has changed. The order of the antidepressant trials does not matter; every value does.
    """
    canonical = _canonical(inputs)
    canonical["antidepressant_trials"] = sorted(canonical["antidepressant_trials"], key=_json)
    payload = _json({"schema": _FINGERPRINT_SCHEMA, "inputs": canonical})
    return hashlib.sha256(payload.encode("utf-8")).hexdigest()
