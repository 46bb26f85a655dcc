"""Screening policy: cited defaults, safe configuration, JSON storage."""

from __future__ import annotations

import dataclasses
import json
from decimal import Decimal

import pytest
from hypothesis import given, settings

from ketaclinic.screening.policy import (
    DEFAULT_SEVERITIES,
    BloodPressureLimit,
    Route,
    ScreeningPolicy,
    Severity,
)
from ketaclinic.screening.tests.builders import valid_policies


def test_defaults_follow_the_clinical_reference() -> None:
    policy = ScreeningPolicy()
    assert policy.bp_review_above == BloodPressureLimit(140, 90)  # §2.1 label guide
    assert policy.minimum_failed_adequate_trials == 2  # §4.1
    assert policy.partial_response_counts_as_failure is True  # §4.1 #61: < 50%
    assert policy.benzodiazepine_limit_lorazepam_equivalent_mg_per_day == Decimal(3)  # §3.2
    assert policy.bp_rise_risk_age_years == 50  # §2.2 #40


def test_home_blood_pressure_limit_is_at_least_as_strict_as_the_clinic_review_threshold() -> None:
    policy = ScreeningPolicy()
    assert policy.home_bp_limit_above.systolic_mmhg <= policy.bp_review_above.systolic_mmhg
    assert policy.home_bp_limit_above.diastolic_mmhg <= policy.bp_review_above.diastolic_mmhg
    assert policy.severity_for("screening-bp-above-home-limit", Route.SUBLINGUAL_AT_HOME) is (
        Severity.ABSOLUTE
    )


def test_a_limit_is_crossed_only_strictly_above_it() -> None:
    limit = BloodPressureLimit(140, 90)
    assert not limit.is_exceeded_by(140, 90)
    assert limit.is_exceeded_by(141, 70)
    assert limit.is_exceeded_by(120, 91)


def test_an_implausible_limit_is_rejected() -> None:
    with pytest.raises(ValueError, match="implausible"):
        BloodPressureLimit(90, 140)


def test_policy_survives_a_trip_through_json() -> None:
    policy = ScreeningPolicy(
        policy_id="clinic-7",
        version=4,
        bp_hold_above=BloodPressureLimit(170, 105),
        benzodiazepine_limit_lorazepam_equivalent_mg_per_day=Decimal("2.5"),
        severities={"interaction-lamotrigine": dict.fromkeys(Route, Severity.RELATIVE)},
    )
    stored = json.loads(json.dumps(policy.to_dict()))
    assert ScreeningPolicy.from_dict(stored) == policy


@settings(max_examples=25)
@given(policy=valid_policies())
def test_any_valid_policy_survives_a_trip_through_json(policy: ScreeningPolicy) -> None:
    assert ScreeningPolicy.from_dict(json.loads(json.dumps(policy.to_dict()))) == policy


def test_a_stored_policy_missing_a_newer_rule_gets_that_rules_default() -> None:
    stored = ScreeningPolicy().to_dict()
    del stored["severities"]["urinary-symptoms"]
    restored = ScreeningPolicy.from_dict(stored)
    assert restored.severities["urinary-symptoms"] == DEFAULT_SEVERITIES["urinary-symptoms"]


def test_an_unknown_rule_id_is_rejected_rather_than_ignored() -> None:
    with pytest.raises(ValueError, match="unknown screening rule"):
        ScreeningPolicy(severities={"pregnancyy": dict.fromkeys(Route, Severity.INFO)})


def test_an_unknown_stored_field_is_rejected() -> None:
    stored = ScreeningPolicy().to_dict() | {"max_dose_mg": 100}
    with pytest.raises(ValueError, match="unknown screening policy fields"):
        ScreeningPolicy.from_dict(stored)


@pytest.mark.parametrize("route", list(Route))
def test_hypersensitivity_cannot_be_relaxed_on_any_route(route: Route) -> None:
    relaxed = dict(DEFAULT_SEVERITIES["hypersensitivity"]) | {route: Severity.RELATIVE}
    with pytest.raises(ValueError, match="label contraindication"):
        ScreeningPolicy(severities={"hypersensitivity": relaxed})


@pytest.mark.parametrize(
    "rule_id", ["aneurysmal-vascular-disease-or-avm", "intracerebral-hemorrhage-history"]
)
def test_esketamine_label_contraindications_cannot_be_relaxed(rule_id: str) -> None:
    without_esketamine: dict[Route, Severity] = {
        route: severity
        for route, severity in DEFAULT_SEVERITIES[rule_id].items()
        if route is not Route.INTRANASAL_ESKETAMINE
    }
    with pytest.raises(ValueError, match="label contraindication"):
        ScreeningPolicy(severities={rule_id: without_esketamine})


def test_racemic_routes_may_treat_an_aneurysm_as_a_prescriber_decision() -> None:
    severities = dict(DEFAULT_SEVERITIES["aneurysmal-vascular-disease-or-avm"])
    severities[Route.INTRAVENOUS] = Severity.RELATIVE
    policy = ScreeningPolicy(severities={"aneurysmal-vascular-disease-or-avm": severities})
    assert policy.severity_for("aneurysmal-vascular-disease-or-avm", Route.INTRAVENOUS) is (
        Severity.RELATIVE
    )


def test_a_worse_step_of_a_condition_cannot_be_less_serious_than_a_milder_one() -> None:
    inverted = dict.fromkeys(Route, Severity.INFO)
    with pytest.raises(ValueError, match="cannot be less serious"):
        ScreeningPolicy(severities={"suicidal-ideation-active-with-intent-or-plan": inverted})


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"minimum_failed_adequate_trials": 1}, "cannot be below 2"),
        ({"decision_validity_days": 0}, "at least 1 day"),
        ({"screening_bp_max_age_days": 0}, "at least 1 day"),
        ({"bp_hold_above": BloodPressureLimit(130, 85)}, "hold threshold"),
        ({"benzodiazepine_limit_lorazepam_equivalent_mg_per_day": Decimal(-1)}, "negative"),
        ({"version": 0}, "version"),
    ],
)
def test_unsafe_numbers_are_rejected(changes: dict[str, object], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        ScreeningPolicy(**changes)  # type: ignore[arg-type]


def test_a_clinic_may_demand_more_failed_trials_than_the_definition() -> None:
    assert ScreeningPolicy(minimum_failed_adequate_trials=3).minimum_failed_adequate_trials == 3


def test_a_rule_with_no_entry_for_a_route_does_not_apply_there() -> None:
    policy = ScreeningPolicy()
    assert policy.severity_for("older-adult-esketamine-dosing", Route.INTRAVENOUS) is None
    assert policy.severity_for("older-adult-esketamine-dosing", Route.INTRANASAL_ESKETAMINE) is (
        Severity.INFO
    )


def test_a_published_policy_cannot_be_changed_in_place() -> None:
    policy = ScreeningPolicy()
    with pytest.raises(dataclasses.FrozenInstanceError):
        policy.version = 2  # type: ignore[misc]
    with pytest.raises(TypeError):
        policy.severities["pregnancy"][Route.INTRAVENOUS] = Severity.INFO  # type: ignore[index]
    with pytest.raises(TypeError):
        DEFAULT_SEVERITIES["pregnancy"][Route.INTRAVENOUS] = Severity.INFO  # type: ignore[index]


def test_policy_reference_names_id_and_version() -> None:
    assert ScreeningPolicy(policy_id="clinic-7", version=3).ref == "clinic-7@3"
