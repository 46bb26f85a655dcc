"""The session safety policy: cited defaults, storage as JSON, and values it refuses to hold."""

from __future__ import annotations

import json
from dataclasses import fields, replace
from datetime import UTC, datetime
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ketaclinic.protocols.catalog import ESKETAMINE_TRD, IV_KETAMINE_INDUCTION
from ketaclinic.protocols.dosing import DoseInput, DoseRefused, WeightMeasurement, calculate_dose
from ketaclinic.sessions.policy import (
    DEFAULT_POLICY,
    UNCONFIRMED_FIELDS,
    PolicyInvalid,
    SessionSafetyPolicy,
)


def test_defaults_carry_the_label_numbers() -> None:
    policy = DEFAULT_POLICY
    assert (policy.predose_systolic_max, policy.predose_diastolic_max) == (140, 90)
    assert policy.minimum_observation_minutes("esketamine") == 120
    assert policy.bp_recheck_minutes_after_esketamine == 40
    assert policy.policy_key == "session-safety@1"


def test_the_esketamine_observation_floor_is_the_label_two_hours() -> None:
    with pytest.raises(PolicyInvalid) as caught:
        SessionSafetyPolicy(minimum_observation_minutes_esketamine=119)
    assert caught.value.errors[0].field == "minimum_observation_minutes_esketamine"
    assert (
        SessionSafetyPolicy(minimum_observation_minutes_esketamine=180).minimum_observation_minutes(
            "esketamine"
        )
        == 180
    )


def test_racemic_ketamine_uses_its_own_observation_setting() -> None:
    policy = SessionSafetyPolicy(minimum_observation_minutes_racemic=150)
    assert policy.minimum_observation_minutes("racemic-ketamine") == 150


def test_a_policy_survives_a_trip_through_json() -> None:
    policy = SessionSafetyPolicy(
        version=3, heart_rate_high_warning=105, predose_override_allowed=False
    )
    stored = json.dumps(policy.to_dict())
    assert SessionSafetyPolicy.from_dict(json.loads(stored)) == policy


def test_a_stored_policy_with_an_unknown_field_is_rejected() -> None:
    data = DEFAULT_POLICY.to_dict() | {"predose_pulse_max": 120}
    with pytest.raises(PolicyInvalid) as caught:
        SessionSafetyPolicy.from_dict(data)
    assert caught.value.errors[0].field == "predose_pulse_max"


def test_a_field_missing_from_a_stored_policy_takes_its_default() -> None:
    data = DEFAULT_POLICY.to_dict()
    del data["discharge_vitals_max_age_minutes"]
    assert SessionSafetyPolicy.from_dict(data).discharge_vitals_max_age_minutes == 15


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"predose_systolic_max": 190}, "predose_systolic_max"),
        ({"predose_diastolic_max": 110}, "predose_diastolic_max"),
        ({"weight_max_age_days": 0}, "weight_max_age_days"),
        ({"weight_max_age_days": True}, "weight_max_age_days"),
        ({"weight_max_age_days": "30"}, "weight_max_age_days"),
        ({"predose_override_allowed": "yes"}, "predose_override_allowed"),
        ({"spo2_low_warning": 101}, "spo2_low_warning"),
        ({"heart_rate_low_critical": 70}, "heart_rate_low_critical"),
        ({"systolic_high_critical": 130}, "systolic_low_critical"),
        ({"policy_id": ""}, "policy_id"),
    ],
)
def test_an_unsafe_or_malformed_value_is_refused_and_named(change: dict, field: str) -> None:
    with pytest.raises(PolicyInvalid) as caught:
        SessionSafetyPolicy(**change)
    assert field in [error.field for error in caught.value.errors]


def test_every_unconfirmed_field_is_a_real_field() -> None:
    names = {f.name for f in fields(SessionSafetyPolicy)}
    assert set(UNCONFIRMED_FIELDS) <= names


def test_the_policy_drives_the_dose_calculators_weight_window() -> None:
    now = datetime(2026, 3, 2, tzinfo=UTC)
    weight = (WeightMeasurement(Decimal(70), "kg", datetime(2026, 2, 20, tzinfo=UTC)),)
    dose_input = DoseInput(Decimal("0.5"), weight, concentration_mg_per_ml=Decimal(10))
    calculate_dose(dose_input, protocol=IV_KETAMINE_INDUCTION, policy=DEFAULT_POLICY, now=now)
    strict = replace(DEFAULT_POLICY, weight_max_age_days=7)
    with pytest.raises(DoseRefused):
        calculate_dose(dose_input, protocol=IV_KETAMINE_INDUCTION, policy=strict, now=now)
    no_weight = replace(DEFAULT_POLICY, require_current_weight_for_fixed_doses=False)
    result = calculate_dose(
        DoseInput(Decimal(56)), protocol=ESKETAMINE_TRD, policy=no_weight, now=now
    )
    assert result.device_count == 2


@given(
    st.integers(min_value=120, max_value=600),
    st.integers(min_value=1, max_value=365),
    st.integers(min_value=100, max_value=180),
    st.booleans(),
)
def test_any_valid_policy_round_trips(
    observation: int, days: int, gate: int, override: bool
) -> None:
    policy = SessionSafetyPolicy(
        minimum_observation_minutes_esketamine=observation,
        weight_max_age_days=days,
        predose_systolic_max=gate,
        predose_override_allowed=override,
    )
    assert SessionSafetyPolicy.from_dict(json.loads(json.dumps(policy.to_dict()))) == policy
