"""Eligibility rules: each rule fires on its case and stays silent on the near miss."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest

from ketaclinic.screening.interactions import INTERACTIONS, InteractingClass
from ketaclinic.screening.policy import (
    CLINIC_ROUTES,
    DEFAULT_SEVERITIES,
    Route,
    ScreeningPolicy,
    Severity,
)
from ketaclinic.screening.rules import (
    ALGORITHM,
    RULES,
    Decision,
    DiseaseStatus,
    HepaticImpairment,
    HypertensionStatus,
    ScreeningInputs,
    ScreeningResult,
    SuicidalIdeation,
    evaluate,
)
from ketaclinic.screening.tests.builders import AS_OF, bp, clean_inputs, failed_trial
from ketaclinic.screening.trd import TrdStatus

POLICY = ScreeningPolicy()
HOME = Route.SUBLINGUAL_AT_HOME
ESKETAMINE = Route.INTRANASAL_ESKETAMINE


def screen(inputs: ScreeningInputs, policy: ScreeningPolicy = POLICY) -> ScreeningResult:
    return evaluate(inputs, policy, as_of=AS_OF)


def fired_rules(result: ScreeningResult) -> set[str]:
    return {finding.rule_id for route in result.routes for finding in route.findings}


# (rule id, what makes it fire, the nearest thing that must not)
CASES: list[tuple[str, dict[str, Any], dict[str, Any]]] = [
    ("hypersensitivity", {"hypersensitivity_to_ketamine_or_esketamine": True}, {}),
    ("aneurysmal-vascular-disease-or-avm", {"aneurysmal_vascular_disease_or_avm": True}, {}),
    ("intracerebral-hemorrhage-history", {"intracerebral_hemorrhage_history": True}, {}),
    ("active-psychotic-symptoms", {"current_psychotic_symptoms": True}, {}),
    ("current-mania", {"current_mania_or_hypomania": True}, {"bipolar_disorder": True}),
    ("psychosis-history", {"psychosis_history": True}, {}),
    ("bipolar-disorder", {"bipolar_disorder": True}, {}),
    (
        "suicidal-ideation-passive",
        {"suicidal_ideation": SuicidalIdeation.PASSIVE},
        {"suicidal_ideation": SuicidalIdeation.NONE},
    ),
    (
        "suicidal-ideation-active-without-intent",
        {"suicidal_ideation": SuicidalIdeation.ACTIVE_WITHOUT_INTENT},
        {"suicidal_ideation": SuicidalIdeation.PASSIVE},
    ),
    (
        "suicidal-ideation-active-with-intent-or-plan",
        {"suicidal_ideation": SuicidalIdeation.ACTIVE_WITH_INTENT_OR_PLAN},
        {"suicidal_ideation": SuicidalIdeation.ACTIVE_WITHOUT_INTENT},
    ),
    ("active-substance-use-disorder", {"active_substance_use_disorder": True}, {}),
    (
        "active-ketamine-or-pcp-use-disorder",
        {"active_ketamine_or_pcp_use_disorder": True},
        {"active_substance_use_disorder": True},
    ),
    (
        "ketamine-or-pcp-misuse-history",
        {"ketamine_or_pcp_misuse_history": True},
        {"prior_ketamine_or_pcp_use": True},
    ),
    ("prior-ketamine-or-pcp-use", {"prior_ketamine_or_pcp_use": True}, {}),
    (
        "past-substance-use-disorder",
        {"past_substance_use_disorder": True},
        {"prior_ketamine_or_pcp_use": True},
    ),
    (
        "hypertension-controlled",
        {"hypertension": HypertensionStatus.CONTROLLED},
        {"hypertension": HypertensionStatus.ABSENT},
    ),
    (
        "hypertension-uncontrolled",
        {"hypertension": HypertensionStatus.UNCONTROLLED},
        {"hypertension": HypertensionStatus.CONTROLLED},
    ),
    ("screening-bp-missing-or-stale", {"screening_bp": None}, {"screening_bp": bp(118, 76)}),
    (
        "screening-bp-missing-or-stale",
        {"screening_bp": bp(118, 76, days_old=31)},
        {"screening_bp": bp(118, 76, days_old=30)},
    ),
    (
        "screening-bp-missing-or-stale",
        {"screening_bp": bp(118, 76, days_old=-1)},
        {"screening_bp": bp(118, 76, days_old=0)},
    ),
    (
        "screening-bp-above-review-threshold",
        {"screening_bp": bp(141, 80)},
        {"screening_bp": bp(140, 90)},
    ),
    (
        "screening-bp-above-review-threshold",
        {"screening_bp": bp(130, 91)},
        {"screening_bp": bp(140, 90)},
    ),
    (
        "screening-bp-above-hold-threshold",
        {"screening_bp": bp(181, 95)},
        {"screening_bp": bp(180, 100)},
    ),
    (
        "screening-bp-above-hold-threshold",
        {"screening_bp": bp(170, 101)},
        {"screening_bp": bp(180, 100)},
    ),
    (
        "screening-bp-above-home-limit",
        {"screening_bp": bp(135, 91)},
        {"screening_bp": bp(140, 90)},
    ),
    (
        "cardiovascular-disease-stable",
        {"cardiovascular_disease": DiseaseStatus.STABLE},
        {"cardiovascular_disease": DiseaseStatus.ABSENT},
    ),
    (
        "cardiovascular-disease-unstable",
        {"cardiovascular_disease": DiseaseStatus.UNSTABLE},
        {"cardiovascular_disease": DiseaseStatus.STABLE},
    ),
    (
        "cerebrovascular-disease-stable",
        {"cerebrovascular_disease": DiseaseStatus.STABLE},
        {"cerebrovascular_disease": DiseaseStatus.ABSENT},
    ),
    (
        "cerebrovascular-disease-unstable",
        {"cerebrovascular_disease": DiseaseStatus.UNSTABLE},
        {"cerebrovascular_disease": DiseaseStatus.STABLE},
    ),
    (
        "hypertensive-encephalopathy-history",
        {"hypertensive_encephalopathy_history": True},
        {"hypertension": HypertensionStatus.CONTROLLED},
    ),
    ("raised-intracranial-pressure", {"raised_intracranial_pressure": True}, {}),
    ("raised-intraocular-pressure", {"raised_intraocular_pressure": True}, {}),
    (
        "hepatic-impairment-mild",
        {"hepatic_impairment": HepaticImpairment.CHILD_PUGH_A},
        {"hepatic_impairment": HepaticImpairment.NONE},
    ),
    (
        "hepatic-impairment-moderate",
        {"hepatic_impairment": HepaticImpairment.CHILD_PUGH_B},
        {"hepatic_impairment": HepaticImpairment.CHILD_PUGH_A},
    ),
    (
        "hepatic-impairment-severe",
        {"hepatic_impairment": HepaticImpairment.CHILD_PUGH_C},
        {"hepatic_impairment": HepaticImpairment.CHILD_PUGH_B},
    ),
    (
        "hepatic-impairment-class-unknown",
        {"hepatic_impairment": HepaticImpairment.PRESENT_CLASS_UNKNOWN},
        {"hepatic_impairment": HepaticImpairment.CHILD_PUGH_A},
    ),
    ("cystitis-history", {"cystitis_history": True}, {"urinary_symptoms": True}),
    ("urinary-symptoms", {"urinary_symptoms": True}, {}),
    ("pregnancy", {"pregnant": True}, {"planning_pregnancy": True}),
    ("breastfeeding", {"breastfeeding": True}, {}),
    ("planning-pregnancy", {"planning_pregnancy": True}, {}),
    *(
        (
            drug_class.rule_id,
            {"interacting_medications": frozenset({drug_class})},
            {"interacting_medications": frozenset(InteractingClass) - {drug_class}},
        )
        for drug_class in InteractingClass
    ),
    (
        "benzodiazepine-dose-above-limit",
        {"benzodiazepine_lorazepam_equivalent_mg_per_day": Decimal("3.5")},
        {"benzodiazepine_lorazepam_equivalent_mg_per_day": Decimal("3.0")},
    ),
    (
        "trd-not-established",
        {"antidepressant_trials": (failed_trial("sertraline"),)},
        {"antidepressant_trials": (failed_trial("sertraline"), failed_trial("bupropion"))},
    ),
    (
        "trial-adequacy-contradicts-dates",
        {
            "antidepressant_trials": (
                replace(failed_trial("sertraline"), days=21),
                failed_trial("bupropion"),
            )
        },
        {
            "antidepressant_trials": (
                replace(failed_trial("sertraline"), days=28),
                failed_trial("bupropion"),
            )
        },
    ),
    ("below-minimum-age", {"age_years": 17}, {"age_years": 18}),
    ("older-adult-esketamine-dosing", {"age_years": 65}, {"age_years": 64}),
    ("age-associated-bp-rise", {"age_years": 50}, {"age_years": 49}),
    ("screening-information-missing", {"pregnant": None}, {"pregnant": False}),
    (
        "screening-information-missing",
        {"interacting_medications": None},
        {"interacting_medications": frozenset()},
    ),
    (
        "screening-information-missing",
        {"suicidal_ideation": None},
        {"suicidal_ideation": SuicidalIdeation.NONE},
    ),
]


def _case_id(case: tuple[str, dict[str, Any], dict[str, Any]]) -> str:
    rule_id, fires_on, _ = case
    return f"{rule_id}:{','.join(f'{k}={v}' for k, v in fires_on.items())}"


def test_every_rule_has_a_positive_and_a_negative_case() -> None:
    assert {rule_id for rule_id, _, _ in CASES} == set(RULES)


@pytest.mark.parametrize("case", CASES, ids=[_case_id(case) for case in CASES])
def test_rule_fires_on_its_case(case: tuple[str, dict[str, Any], dict[str, Any]]) -> None:
    rule_id, fires_on, _ = case
    assert rule_id in fired_rules(screen(clean_inputs(**fires_on)))


@pytest.mark.parametrize("case", CASES, ids=[_case_id(case) for case in CASES])
def test_rule_stays_silent_on_the_near_miss(
    case: tuple[str, dict[str, Any], dict[str, Any]],
) -> None:
    rule_id, _, near_miss = case
    assert rule_id not in fired_rules(screen(clean_inputs(**near_miss)))


def test_every_rule_has_a_default_severity_and_every_severity_a_rule() -> None:
    assert set(RULES) == set(DEFAULT_SEVERITIES)


def test_a_patient_with_nothing_of_note_is_eligible_for_every_route() -> None:
    result = screen(clean_inputs())
    assert [item.decision for item in result.routes] == [Decision.ELIGIBLE] * len(Route)
    assert fired_rules(result) == set()


@pytest.mark.parametrize(
    "field_name",
    [
        "hypersensitivity_to_ketamine_or_esketamine",
        "aneurysmal_vascular_disease_or_avm",
        "intracerebral_hemorrhage_history",
    ],
)
def test_label_contraindications_make_esketamine_ineligible(field_name: str) -> None:
    result = screen(clean_inputs(**{field_name: True}))
    assert result.decision_for(ESKETAMINE) is Decision.INELIGIBLE


@pytest.mark.parametrize(
    "changes",
    [
        {"current_psychotic_symptoms": True},
        {"current_mania_or_hypomania": True},
        {"pregnant": True},
        {"breastfeeding": True},
        {"active_ketamine_or_pcp_use_disorder": True},
        {"screening_bp": bp(190, 105)},
    ],
)
def test_exclusions_make_every_route_ineligible(changes: dict[str, Any]) -> None:
    result = screen(clean_inputs(**changes))
    assert {item.decision for item in result.routes} == {Decision.INELIGIBLE}


@pytest.mark.parametrize(
    "changes",
    [
        {"suicidal_ideation": SuicidalIdeation.ACTIVE_WITH_INTENT_OR_PLAN},
        {"suicidal_ideation": SuicidalIdeation.ACTIVE_WITHOUT_INTENT},
        {"hypertension": HypertensionStatus.UNCONTROLLED},
        {"active_substance_use_disorder": True},
        {"psychosis_history": True},
        {"hepatic_impairment": HepaticImpairment.CHILD_PUGH_B},
        {"screening_bp": bp(150, 85)},
    ],
)
def test_home_dosing_is_stricter_than_the_clinic(changes: dict[str, Any]) -> None:
    result = screen(clean_inputs(**changes))
    assert result.decision_for(HOME) is Decision.INELIGIBLE
    for route in CLINIC_ROUTES:
        assert result.decision_for(route) is Decision.NEEDS_PRESCRIBER_REVIEW


def test_passive_suicidal_ideation_is_shown_in_clinic_and_reviewed_for_home() -> None:
    result = screen(clean_inputs(suicidal_ideation=SuicidalIdeation.PASSIVE))
    assert result.decision_for(Route.INTRAVENOUS) is Decision.ELIGIBLE
    assert [f.rule_id for f in result.for_route(Route.INTRAVENOUS).findings] == [
        "suicidal-ideation-passive"
    ]
    assert result.decision_for(HOME) is Decision.NEEDS_PRESCRIBER_REVIEW


def test_severe_hepatic_impairment_excludes_esketamine_but_leaves_iv_to_the_prescriber() -> None:
    result = screen(clean_inputs(hepatic_impairment=HepaticImpairment.CHILD_PUGH_C))
    assert result.decision_for(ESKETAMINE) is Decision.INELIGIBLE
    assert result.decision_for(Route.INTRAVENOUS) is Decision.NEEDS_PRESCRIBER_REVIEW


def test_older_adult_dosing_note_applies_to_esketamine_only() -> None:
    result = screen(clean_inputs(age_years=70))
    esketamine_rules = {f.rule_id for f in result.for_route(ESKETAMINE).findings}
    iv_rules = {f.rule_id for f in result.for_route(Route.INTRAVENOUS).findings}
    assert "older-adult-esketamine-dosing" in esketamine_rules
    assert "older-adult-esketamine-dosing" not in iv_rules
    assert {item.decision for item in result.routes} == {Decision.ELIGIBLE}


def test_an_undocumented_answer_is_never_read_as_no() -> None:
    result = screen(clean_inputs(pregnant=None))
    assert Decision.ELIGIBLE not in {item.decision for item in result.routes}
    (finding,) = result.for_route(Route.INTRAVENOUS).findings
    assert "pregnancy" in finding.reason


def test_a_stale_high_blood_pressure_still_counts() -> None:
    result = screen(clean_inputs(screening_bp=bp(200, 110, days_old=90)))
    rules = {f.rule_id for f in result.for_route(Route.INTRAVENOUS).findings}
    assert {"screening-bp-missing-or-stale", "screening-bp-above-hold-threshold"} <= rules
    assert result.decision_for(Route.INTRAVENOUS) is Decision.INELIGIBLE


def test_above_the_hold_threshold_reports_the_hold_not_the_review() -> None:
    result = screen(clean_inputs(screening_bp=bp(185, 95)))
    rules = {f.rule_id for f in result.for_route(Route.INTRAVENOUS).findings}
    assert "screening-bp-above-hold-threshold" in rules
    assert "screening-bp-above-review-threshold" not in rules


def test_an_interaction_finding_explains_the_effect_and_cites_the_reference() -> None:
    result = screen(clean_inputs(interacting_medications=frozenset({InteractingClass.MAOI})))
    (finding,) = result.for_route(Route.INTRAVENOUS).findings
    assert finding.rule == "interaction-maoi@1"
    assert INTERACTIONS[InteractingClass.MAOI].effect in finding.reason
    assert finding.citation == INTERACTIONS[InteractingClass.MAOI].citation
    assert finding.severity is Severity.RELATIVE


def test_every_finding_carries_a_versioned_rule_and_a_reference_citation() -> None:
    everything = clean_inputs(
        psychosis_history=True,
        hypertension=HypertensionStatus.UNCONTROLLED,
        interacting_medications=frozenset(InteractingClass),
        age_years=70,
        pregnant=None,
    )
    for item in screen(everything).routes:
        for finding in item.findings:
            assert finding.rule == f"{finding.rule_id}@{finding.rule_version}"
            assert finding.citation
            assert finding.reason.endswith(".")


def test_findings_are_listed_most_serious_first() -> None:
    result = screen(clean_inputs(pregnant=True, urinary_symptoms=True, bipolar_disorder=True))
    severities = [f.severity for f in result.for_route(Route.INTRAVENOUS).findings]
    assert severities == [Severity.ABSOLUTE, Severity.RELATIVE, Severity.INFO]


def test_result_names_the_algorithm_policy_and_validity_window() -> None:
    policy = ScreeningPolicy(policy_id="clinic-7", version=3, decision_validity_days=14)
    result = screen(clean_inputs(), policy)
    assert result.algorithm == ALGORITHM == "screening-eligibility@1"
    assert result.policy == "clinic-7@3"
    assert result.assessed_on == AS_OF
    assert result.valid_until == AS_OF + timedelta(days=14)
    assert result.trd.status is TrdStatus.MET
    assert result.trd.rule == "trd-failed-adequate-trials@1"


def test_a_clinic_policy_can_make_a_relative_finding_absolute() -> None:
    strict = ScreeningPolicy(
        severities={"interaction-benzodiazepine": dict.fromkeys(Route, Severity.ABSOLUTE)}
    )
    inputs = clean_inputs(interacting_medications=frozenset({InteractingClass.BENZODIAZEPINE}))
    assert screen(inputs).decision_for(Route.INTRAVENOUS) is Decision.NEEDS_PRESCRIBER_REVIEW
    assert screen(inputs, strict).decision_for(Route.INTRAVENOUS) is Decision.INELIGIBLE


def test_screening_date_must_be_a_calendar_date() -> None:
    with pytest.raises(TypeError):
        evaluate(clean_inputs(), POLICY, as_of=datetime(2026, 3, 2, 9, tzinfo=UTC))


def test_result_serialises_to_json() -> None:
    result = screen(clean_inputs(pregnant=True, antidepressant_trials=()))
    stored = json.loads(json.dumps(result.to_dict()))
    assert stored["routes"]["intravenous"]["decision"] == "ineligible"
    assert stored["trd"]["status"] == "not_met"
    assert stored["inputs_fingerprint"] == result.inputs_fingerprint


def test_decisions_are_ordered_by_permissiveness() -> None:
    assert [d.rank for d in Decision] == [0, 1, 2]
    assert Decision.ELIGIBLE.rank < Decision.NEEDS_PRESCRIBER_REVIEW.rank
    assert Decision.NEEDS_PRESCRIBER_REVIEW.rank < Decision.INELIGIBLE.rank
