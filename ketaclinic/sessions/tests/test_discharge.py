"""Discharge: each criterion, and that none can be skipped."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ketaclinic.sessions.discharge import DischargeAssessment, DischargeResult, evaluate_discharge
from ketaclinic.sessions.policy import DEFAULT_POLICY, SessionSafetyPolicy
from ketaclinic.sessions.vitals import PrescriberOverride, VitalsSample

DOSE_START = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
READY = DischargeAssessment(
    alert_and_oriented=True,
    sedation_resolved=True,
    dissociation_resolved=True,
    respiratory_depression_resolved=True,
    clinically_stable=True,
    escort_present=True,
)
OVERRIDE = PrescriberOverride("dr-okafor", "BP at the patient's usual level.")


def at(minutes: int, systolic: int = 126, diastolic: int = 80, **values: int) -> VitalsSample:
    return VitalsSample(
        DOSE_START + timedelta(minutes=minutes),
        systolic=systolic,
        diastolic=diastolic,
        heart_rate=values.get("heart_rate", 74),
        spo2=values.get("spo2", 98),
        respiratory_rate=values.get("respiratory_rate", 14),
    )


USUAL_VITALS = (at(40), at(90), at(118))


def check(
    minutes_after: int = 125,
    *,
    drug: str = "esketamine",
    vitals: tuple[VitalsSample, ...] = USUAL_VITALS,
    assessment: DischargeAssessment = READY,
    policy: SessionSafetyPolicy = DEFAULT_POLICY,
    **kwargs: object,
) -> DischargeResult:
    return evaluate_discharge(
        drug=drug,
        dose_started_at=DOSE_START,
        now=DOSE_START + timedelta(minutes=minutes_after),
        vitals=vitals,
        assessment=assessment,
        policy=policy,
        **kwargs,  # type: ignore[arg-type]
    )


def test_a_stable_patient_after_two_hours_may_leave() -> None:
    result = check()
    assert result.ready
    assert result.unmet == ()
    assert result.rule == "discharge@1"
    assert result.policy_key == "session-safety@1"
    assert result.earliest_discharge_at == DOSE_START + timedelta(minutes=120)


def test_esketamine_patients_stay_at_least_two_hours() -> None:
    result = check(119, vitals=(at(40), at(110)))
    assert not result.ready
    assert result.unmet_codes == ("observation_time",)
    assert result.observed_minutes == 119


def test_a_protocol_may_ask_for_longer_observation_than_the_policy() -> None:
    result = check(130, protocol_minimum_observation_minutes=150, vitals=(at(40), at(125)))
    assert result.unmet_codes == ("observation_time",)
    assert result.earliest_discharge_at == DOSE_START + timedelta(minutes=150)


def test_no_vitals_since_the_dose_blocks_discharge() -> None:
    before_dose = VitalsSample(DOSE_START - timedelta(minutes=5), systolic=120, diastolic=80)
    result = check(vitals=(before_dose,), drug="racemic-ketamine")
    assert result.unmet_codes == ("vitals_recorded",)


def test_the_last_vitals_must_be_recent() -> None:
    result = check(140, vitals=(at(40), at(120)))
    assert result.unmet_codes == ("vitals_recent",)


def test_the_last_vitals_must_include_a_blood_pressure() -> None:
    pulse_only = VitalsSample(DOSE_START + timedelta(minutes=118), heart_rate=70, spo2=98)
    result = check(vitals=(at(40), pulse_only))
    assert result.unmet_codes == ("vitals_blood_pressure",)


def test_a_critical_value_blocks_discharge_and_cannot_be_overridden() -> None:
    result = check(vitals=(at(40), at(118, spo2=88)), vitals_override=OVERRIDE)
    assert result.unmet_codes == ("vitals_in_range",)
    assert "not overridable" in result.unmet[0].detail
    assert result.vitals_override is None


def test_a_warning_blocks_discharge_until_rechecked_or_overridden() -> None:
    elevated = (at(40), at(118, systolic=150))
    assert check(vitals=elevated).unmet_codes == ("vitals_in_range",)
    accepted = check(vitals=elevated, vitals_override=OVERRIDE)
    assert accepted.ready
    assert accepted.vitals_override == OVERRIDE


def test_an_unneeded_override_is_not_recorded() -> None:
    assert check(vitals_override=OVERRIDE).vitals_override is None


@pytest.mark.parametrize(("minutes", "missed"), [(29, True), (30, False), (50, False), (51, True)])
def test_a_missed_40_minute_esketamine_bp_recheck_is_recorded_but_does_not_hold_the_patient(
    minutes: int, missed: bool
) -> None:
    result = check(vitals=(at(minutes), at(118)), drug="esketamine")
    assert result.ready
    expected = ("bp_recheck_missed",) if missed else ()
    assert tuple(deviation.code for deviation in result.deviations) == expected


def test_racemic_ketamine_has_no_40_minute_recheck_rule() -> None:
    assert check(vitals=(at(20), at(118)), drug="racemic-ketamine").deviations == ()


@pytest.mark.parametrize(
    "criterion",
    [
        "alert_and_oriented",
        "sedation_resolved",
        "dissociation_resolved",
        "respiratory_depression_resolved",
        "clinically_stable",
        "escort_present",
    ],
)
def test_each_bedside_criterion_is_named_when_unmet(criterion: str) -> None:
    result = check(assessment=replace(READY, **{criterion: False}))
    assert result.unmet_codes == (criterion,)


def test_a_clinic_may_waive_the_escort() -> None:
    policy = replace(DEFAULT_POLICY, discharge_requires_escort=False)
    assert check(assessment=replace(READY, escort_present=False), policy=policy).ready


def test_every_unmet_criterion_is_listed_at_once() -> None:
    nothing_done = DischargeAssessment(False, False, False, False, False, False)
    result = check(30, vitals=(), assessment=nothing_done)
    assert result.unmet_codes == (
        "observation_time",
        "vitals_recorded",
        "alert_and_oriented",
        "sedation_resolved",
        "dissociation_resolved",
        "respiratory_depression_resolved",
        "clinically_stable",
        "escort_present",
    )


def test_a_dose_that_starts_after_the_check_is_a_programming_error() -> None:
    with pytest.raises(ValueError, match="after"):
        check(-1)


@given(
    st.integers(min_value=0, max_value=400),
    st.sampled_from(["esketamine", "racemic-ketamine"]),
    st.integers(min_value=120, max_value=240),
    st.lists(st.integers(min_value=0, max_value=400), max_size=6),
)
def test_no_patient_is_ready_before_the_minimum_observation_time(
    minutes_after: int, drug: str, policy_minutes: int, sample_minutes: list[int]
) -> None:
    policy = replace(
        DEFAULT_POLICY,
        minimum_observation_minutes_esketamine=policy_minutes,
        minimum_observation_minutes_racemic=policy_minutes,
    )
    result = check(
        minutes_after, drug=drug, vitals=tuple(at(m) for m in sample_minutes), policy=policy
    )
    if result.ready:
        assert minutes_after >= policy_minutes >= 120
        assert result.observed_minutes >= policy.minimum_observation_minutes(drug)
