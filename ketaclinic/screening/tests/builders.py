"""Snapshots and strategies shared by the screening tests."""

from __future__ import annotations

from dataclasses import fields, replace
from datetime import date, timedelta
from enum import Enum
from typing import Any

from hypothesis import strategies as st

from ketaclinic.screening.interactions import InteractingClass
from ketaclinic.screening.policy import (
    DEFAULT_SEVERITIES,
    LABEL_CONTRAINDICATION_LOCKS,
    SEVERITY_LADDERS,
    Route,
    ScreeningPolicy,
    Severity,
)
from ketaclinic.screening.rules import (
    BloodPressureReading,
    DiseaseStatus,
    HepaticImpairment,
    HypertensionStatus,
    ScreeningInputs,
    SuicidalIdeation,
)
from ketaclinic.screening.trd import AntidepressantTrial, TrialOutcome

AS_OF = date(2026, 3, 2)


def failed_trial(drug: str) -> AntidepressantTrial:
    return AntidepressantTrial(
        drug=drug, adequate=True, outcome=TrialOutcome.NO_RESPONSE, in_current_episode=True
    )


def bp(systolic: int, diastolic: int, *, days_old: int = 0) -> BloodPressureReading:
    return BloodPressureReading(
        systolic_mmhg=systolic,
        diastolic_mmhg=diastolic,
        measured_on=AS_OF - timedelta(days=days_old),
    )


_CLEAN = ScreeningInputs(
    psychosis_history=False,
    current_psychotic_symptoms=False,
    bipolar_disorder=False,
    current_mania_or_hypomania=False,
    suicidal_ideation=SuicidalIdeation.NONE,
    active_substance_use_disorder=False,
    active_ketamine_or_pcp_use_disorder=False,
    ketamine_or_pcp_misuse_history=False,
    prior_ketamine_or_pcp_use=False,
    past_substance_use_disorder=False,
    hypertension=HypertensionStatus.ABSENT,
    screening_bp=bp(118, 76),
    cardiovascular_disease=DiseaseStatus.ABSENT,
    cerebrovascular_disease=DiseaseStatus.ABSENT,
    hypertensive_encephalopathy_history=False,
    aneurysmal_vascular_disease_or_avm=False,
    intracerebral_hemorrhage_history=False,
    raised_intracranial_pressure=False,
    raised_intraocular_pressure=False,
    hepatic_impairment=HepaticImpairment.NONE,
    cystitis_history=False,
    urinary_symptoms=False,
    hypersensitivity_to_ketamine_or_esketamine=False,
    pregnant=False,
    breastfeeding=False,
    planning_pregnancy=False,
    interacting_medications=frozenset(),
    benzodiazepine_lorazepam_equivalent_mg_per_day=None,
    antidepressant_trials=(failed_trial("sertraline"), failed_trial("venlafaxine")),
    age_years=40,
)


def clean_inputs(**changes: Any) -> ScreeningInputs:
    """A 40-year-old with treatment-resistant depression and nothing else of note."""
    return replace(_CLEAN, **changes)


YES_NO_FIELDS = tuple(item.name for item in fields(ScreeningInputs) if item.type == "bool | None")
ENUM_FIELDS: dict[str, type[Enum]] = {
    "suicidal_ideation": SuicidalIdeation,
    "hypertension": HypertensionStatus,
    "cardiovascular_disease": DiseaseStatus,
    "cerebrovascular_disease": DiseaseStatus,
    "hepatic_impairment": HepaticImpairment,
}


@st.composite
def bp_readings(draw: st.DrawFn) -> BloodPressureReading:
    # Values at and either side of the policy thresholds come up far more often than chance.
    systolic = draw(st.sampled_from([118, 140, 141, 180, 181]) | st.integers(70, 240))
    boundary_diastolics = [d for d in (76, 90, 91, 100, 101) if d < systolic]
    any_diastolic = st.integers(40, systolic - 1)
    diastolic = draw(
        st.sampled_from(boundary_diastolics) | any_diastolic
        if boundary_diastolics
        else any_diastolic
    )
    days_old = draw(st.sampled_from([0, 29, 30, 31]) | st.integers(-2, 60))
    return bp(systolic, diastolic, days_old=days_old)


trials = st.builds(
    AntidepressantTrial,
    drug=st.sampled_from(["sertraline", "Sertraline ", "escitalopram", "bupropion", "venlafaxine"]),
    adequate=st.sampled_from([True, False, None]),
    outcome=st.sampled_from(TrialOutcome),
    in_current_episode=st.sampled_from([True, False, None]),
)

FIELD_STRATEGIES: dict[str, st.SearchStrategy[Any]] = {
    **{name: st.sampled_from([True, False, None]) for name in YES_NO_FIELDS},
    **{name: st.none() | st.sampled_from(enum) for name, enum in ENUM_FIELDS.items()},
    "screening_bp": st.none() | bp_readings(),
    "interacting_medications": st.none() | st.frozensets(st.sampled_from(InteractingClass)),
    "benzodiazepine_lorazepam_equivalent_mg_per_day": st.none()
    | st.decimals(min_value=0, max_value=12, places=1),
    "antidepressant_trials": st.lists(trials, max_size=4).map(tuple),
    "age_years": st.integers(min_value=12, max_value=95),
}
assert set(FIELD_STRATEGIES) == {item.name for item in fields(ScreeningInputs)}, (
    "every snapshot field needs a strategy"
)


@st.composite
def _nearly_clean_inputs(draw: st.DrawFn) -> ScreeningInputs:
    """A clean chart with a few answers changed: decisions near the thresholds."""
    names = draw(st.lists(st.sampled_from(sorted(FIELD_STRATEGIES)), max_size=2, unique=True))
    changes = {name: draw(FIELD_STRATEGIES[name]) for name in names}
    # Blood pressure has the most thresholds, so it gets changed more often than its share.
    if "screening_bp" not in changes and draw(st.booleans()):
        changes["screening_bp"] = draw(bp_readings())
    return clean_inputs(**changes)


_any_inputs = st.fixed_dictionaries(FIELD_STRATEGIES).map(lambda kw: ScreeningInputs(**kw))

# Fully random charts are nearly always ineligible everywhere, which would hide a rule that
# loosens a decision; nearly clean charts keep the decisions interesting.
screening_inputs = st.one_of(
    _nearly_clean_inputs(), _nearly_clean_inputs(), _nearly_clean_inputs(), _any_inputs
)


@st.composite
def valid_policies(draw: st.DrawFn) -> ScreeningPolicy:
    """Any severity table a clinic could publish: random, then made to respect the locks."""
    # One seeded random source instead of 260 separate draws keeps generation fast.
    rng = draw(st.randoms(use_true_random=False))
    choices: list[Severity | None] = [None, *Severity]
    table: dict[str, dict[Route, Severity]] = {}
    for rule_id in DEFAULT_SEVERITIES:
        table[rule_id] = {}
        for route in Route:
            severity = rng.choice(choices)
            if severity is not None:
                table[rule_id][route] = severity
    for ladder in SEVERITY_LADDERS:
        for route in Route:
            floor: Severity | None = None
            for rule_id in ladder:
                current = table[rule_id].get(route)
                if floor is not None and (current is None or current.rank < floor.rank):
                    table[rule_id][route] = floor
                floor = table[rule_id].get(route)
    for rule_id, routes in LABEL_CONTRAINDICATION_LOCKS.items():
        for route in routes:
            table[rule_id][route] = Severity.ABSOLUTE
    return ScreeningPolicy(policy_id="random", severities=table)
