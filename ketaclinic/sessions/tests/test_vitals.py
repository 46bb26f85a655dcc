"""Vitals: alerts while monitoring and the pre-dose blood-pressure gate."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ketaclinic.sessions.policy import DEFAULT_POLICY, VITAL_MEASURES, alert_limits
from ketaclinic.sessions.vitals import (
    GateOutcome,
    PrescriberOverride,
    Severity,
    VitalAlert,
    VitalsSample,
    check_predose_gate,
    classify_batch,
    classify_vitals,
)

NOW = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
OVERRIDE = PrescriberOverride("dr-okafor", "Usual BP 150/88; benefit outweighs transient rise.")


def sample(minutes_ago: int = 5, **values: int) -> VitalsSample:
    return VitalsSample(taken_at=NOW - timedelta(minutes=minutes_ago), **values)


def normal(**changes: int) -> VitalsSample:
    values = {
        "systolic": 124,
        "diastolic": 78,
        "heart_rate": 72,
        "spo2": 98,
        "respiratory_rate": 14,
    } | changes
    return sample(**values)


# --- alerts ------------------------------------------------------------------------------------


def test_normal_vitals_raise_no_alert() -> None:
    assert classify_vitals(normal(), DEFAULT_POLICY) == []


@pytest.mark.parametrize(
    ("measure", "value", "threshold", "direction", "severity"),
    [
        ("systolic", 141, 140, "above", Severity.WARNING),
        ("systolic", 181, 180, "above", Severity.CRITICAL),
        ("systolic", 89, 90, "below", Severity.WARNING),
        ("systolic", 79, 80, "below", Severity.CRITICAL),
        ("diastolic", 91, 90, "above", Severity.WARNING),
        ("diastolic", 101, 100, "above", Severity.CRITICAL),
        ("heart_rate", 101, 100, "above", Severity.WARNING),
        ("heart_rate", 131, 130, "above", Severity.CRITICAL),
        ("heart_rate", 59, 60, "below", Severity.WARNING),
        ("heart_rate", 39, 40, "below", Severity.CRITICAL),
        ("spo2", 93, 94, "below", Severity.WARNING),
        ("spo2", 89, 90, "below", Severity.CRITICAL),
        ("respiratory_rate", 9, 10, "below", Severity.WARNING),
        ("respiratory_rate", 7, 8, "below", Severity.CRITICAL),
        ("respiratory_rate", 31, 30, "above", Severity.CRITICAL),
    ],
)
def test_each_value_past_a_limit_raises_one_alert_naming_it(
    measure: str, value: int, threshold: int, direction: str, severity: Severity
) -> None:
    (alert,) = classify_vitals(normal(**{measure: value}), DEFAULT_POLICY)
    assert (alert.measure, alert.value, alert.threshold) == (measure, value, threshold)
    assert (alert.direction, alert.severity) == (direction, severity)
    assert alert.rule == "vitals-alerts@1"


@pytest.mark.parametrize(("measure", "value"), [("systolic", 140), ("diastolic", 90), ("spo2", 94)])
def test_a_value_exactly_on_a_limit_is_not_past_it(measure: str, value: int) -> None:
    assert classify_vitals(normal(**{measure: value}), DEFAULT_POLICY) == []


def test_critical_alerts_come_first() -> None:
    alerts = classify_vitals(normal(heart_rate=105, spo2=88), DEFAULT_POLICY)
    assert [alert.severity for alert in alerts] == [Severity.CRITICAL, Severity.WARNING]


def test_missing_measures_are_skipped_not_alerted() -> None:
    assert classify_vitals(sample(systolic=120, diastolic=80), DEFAULT_POLICY) == []


@pytest.mark.parametrize(
    "values",
    [
        {"systolic": 80, "diastolic": 120},
        {"spo2": 101},
        {"heart_rate": 0},
        {"heart_rate": True},
    ],
)
def test_impossible_vitals_are_rejected_on_entry(values: dict) -> None:
    with pytest.raises(ValueError):  # noqa: PT011 - each case has its own message
        sample(**values)


def test_vitals_need_a_timezone() -> None:
    with pytest.raises(ValueError, match="timezone"):
        VitalsSample(taken_at=NOW.replace(tzinfo=None), systolic=120, diastolic=80)


limits = st.integers(min_value=2, max_value=300)


@given(st.sampled_from(["systolic", "heart_rate", "respiratory_rate"]), limits, limits)
def test_a_higher_reading_above_the_normal_range_is_never_less_severe(
    measure: str, a: int, b: int
) -> None:
    low, high = sorted((a, b))
    rank = {None: 0, Severity.WARNING: 1, Severity.CRITICAL: 2}

    def severity(value: int) -> Severity | None:
        systolic = value if measure == "systolic" else 124
        values = {"systolic": systolic, "diastolic": min(78, systolic - 1)}
        values[measure] = value
        found = [
            x for x in classify_vitals(sample(**values), DEFAULT_POLICY) if x.measure == measure
        ]
        return found[0].severity if found and found[0].direction == "above" else None

    assert rank[severity(low)] <= rank[severity(high)]


# --- the pre-dose gate -----------------------------------------------------------------------


def gate(vitals: VitalsSample | None, override: PrescriberOverride | None = None, **policy: Any):
    return check_predose_gate(vitals, replace(DEFAULT_POLICY, **policy), now=NOW, override=override)


def test_normal_pre_dose_vitals_let_the_dose_start() -> None:
    result = gate(normal())
    assert result.outcome is GateOutcome.PROCEED
    assert result.may_dose
    assert result.rule == "predose-gate@1"
    assert result.policy_key == "session-safety@1"


def test_bp_above_140_over_90_needs_a_prescriber_override() -> None:
    result = gate(normal(systolic=150, diastolic=85))
    assert result.outcome is GateOutcome.NEEDS_OVERRIDE
    assert not result.may_dose
    assert "150/85" in result.reasons[0]


def test_a_documented_override_lets_an_elevated_bp_through_and_is_recorded() -> None:
    result = gate(normal(systolic=150, diastolic=95), OVERRIDE)
    assert result.outcome is GateOutcome.PROCEED_WITH_OVERRIDE
    assert result.may_dose
    assert result.override == OVERRIDE


def test_an_override_offered_when_none_is_needed_is_not_recorded() -> None:
    assert gate(normal(), OVERRIDE).override is None


def test_a_clinic_that_allows_no_override_refuses_an_elevated_bp() -> None:
    result = gate(normal(systolic=150), OVERRIDE, predose_override_allowed=False)
    assert result.outcome is GateOutcome.REFUSE


@pytest.mark.parametrize(("systolic", "diastolic"), [(185, 95), (170, 105)])
def test_bp_above_the_hard_ceiling_is_refused_even_with_an_override(
    systolic: int, diastolic: int
) -> None:
    result = gate(normal(systolic=systolic, diastolic=diastolic), OVERRIDE)
    assert result.outcome is GateOutcome.REFUSE
    assert "no override" in result.reasons[0]


def test_bp_exactly_at_the_hard_ceiling_still_may_be_overridden() -> None:
    assert gate(normal(systolic=180, diastolic=100)).outcome is GateOutcome.NEEDS_OVERRIDE


def test_a_critical_oxygen_saturation_refuses_the_dose() -> None:
    result = gate(normal(spo2=88), OVERRIDE)
    assert result.outcome is GateOutcome.REFUSE
    assert "spo2" in result.reasons[0]


def test_warnings_other_than_bp_let_the_dose_start_and_are_shown() -> None:
    result = gate(normal(heart_rate=104))
    assert result.outcome is GateOutcome.PROCEED
    assert result.alerts[0].measure == "heart_rate"


@pytest.mark.parametrize(
    ("vitals", "reason"),
    [
        (None, "No pre-dose blood pressure"),
        (sample(heart_rate=70, spo2=98), "No pre-dose blood pressure"),
        (VitalsSample(NOW + timedelta(minutes=1), systolic=120, diastolic=80), "future"),
        (sample(minutes_ago=31, systolic=120, diastolic=80), "older than 30 minutes"),
    ],
)
def test_missing_stale_or_future_vitals_refuse_the_dose(
    vitals: VitalsSample | None, reason: str
) -> None:
    result = gate(vitals)
    assert result.outcome is GateOutcome.REFUSE
    assert reason in result.reasons[0]


def test_an_override_must_name_the_prescriber_and_a_reason() -> None:
    with pytest.raises(ValueError, match="reason"):
        PrescriberOverride("dr-okafor", "  ")


bp = st.tuples(st.integers(min_value=60, max_value=260), st.integers(min_value=30, max_value=160))


@given(bp, st.booleans(), st.booleans())
def test_the_gate_never_lets_a_bp_above_the_ceiling_through(
    pressure: tuple[int, int], with_override: bool, override_allowed: bool
) -> None:
    systolic, diastolic = pressure
    if diastolic >= systolic:
        return
    result = gate(
        sample(systolic=systolic, diastolic=diastolic),
        OVERRIDE if with_override else None,
        predose_override_allowed=override_allowed,
    )
    above_ceiling = systolic > 180 or diastolic > 100
    above_gate = systolic > 140 or diastolic > 90
    if above_ceiling:
        assert not result.may_dose
    if result.may_dose and above_gate:
        assert result.outcome is GateOutcome.PROCEED_WITH_OVERRIDE
        assert with_override
        assert override_allowed


def _reference_alerts(sample: VitalsSample, policy: Any) -> list[VitalAlert]:
    """The rule as the policy words it, checked measure by measure, check by check."""
    alerts = []
    for measure in VITAL_MEASURES:
        value = getattr(sample, measure)
        if value is None:
            continue
        critical_low, warning_low, warning_high, critical_high = alert_limits(policy, measure)
        for threshold, direction, severity in (
            (critical_low, "below", Severity.CRITICAL),
            (critical_high, "above", Severity.CRITICAL),
            (warning_low, "below", Severity.WARNING),
            (warning_high, "above", Severity.WARNING),
        ):
            if threshold is None:
                continue
            if value < threshold if direction == "below" else value > threshold:
                alerts.append(VitalAlert(measure, value, threshold, direction, severity))
                break
    return sorted(alerts, key=lambda alert: alert.severity is not Severity.CRITICAL)


reading = st.one_of(st.none(), st.integers(min_value=1, max_value=300))


def bounds(highest: int) -> st.SearchStrategy[list[int]]:
    return st.lists(st.integers(1, highest), min_size=4, max_size=4, unique=True)


@given(
    st.tuples(reading, reading, reading, st.integers(1, 100) | st.none(), reading),
    st.fixed_dictionaries({m: bounds(100 if m == "spo2" else 250) for m in VITAL_MEASURES}),
)
def test_classifying_is_the_rule_checked_one_threshold_at_a_time(
    values: tuple[int | None, ...], chosen: dict[str, list[int]]
) -> None:
    """The quick path (one comparison per measure inside the band no threshold reaches) gives
    what checking every threshold in order gives, for any policy's limits."""
    changes: dict[str, Any] = {}
    for measure, picked in chosen.items():
        low_critical, low_warning, high_warning, high_critical = sorted(picked)
        for name, value in (
            (f"{measure}_low_critical", low_critical),
            (f"{measure}_low_warning", low_warning),
            (f"{measure}_high_warning", high_warning),
            (f"{measure}_high_critical", high_critical),
        ):
            if hasattr(DEFAULT_POLICY, name):
                changes[name] = value
    policy = replace(DEFAULT_POLICY, **changes)
    systolic, diastolic, heart_rate, spo2, respiratory_rate = values
    if systolic is not None and diastolic is not None and diastolic >= systolic:
        diastolic = None
    sample = VitalsSample(
        taken_at=NOW,
        systolic=systolic,
        diastolic=diastolic,
        heart_rate=heart_rate,
        spo2=spo2,
        respiratory_rate=respiratory_rate,
    )
    assert classify_vitals(sample, policy) == _reference_alerts(sample, policy)
    assert classify_batch([sample, sample], policy) == [_reference_alerts(sample, policy)] * 2
