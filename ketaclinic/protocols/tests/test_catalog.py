"""The standard protocol templates: what each says, and that every one is internally sound."""

from __future__ import annotations

import json
from decimal import Decimal

import pytest

from ketaclinic.protocols.catalog import (
    ESKETAMINE_SUICIDAL_IDEATION,
    ESKETAMINE_TRD,
    IV_KETAMINE_INDUCTION,
    IV_KETAMINE_TITRATION,
    KAP_INTRAMUSCULAR,
    KAP_SUBLINGUAL,
    STANDARD_TEMPLATES,
    SUBLINGUAL_HOME,
    DoseKind,
    DoseRule,
    Drug,
    PhaseKind,
    ProtocolTemplate,
    Setting,
    VisitKind,
    get_template,
)

ALL = pytest.mark.parametrize("template", STANDARD_TEMPLATES, ids=lambda t: t.key)


@ALL
def test_every_template_survives_a_trip_through_json(template: ProtocolTemplate) -> None:
    stored = json.dumps(template.to_dict())
    assert ProtocolTemplate.from_dict(json.loads(stored)) == template


def test_template_keys_are_unique_and_found_by_key() -> None:
    keys = [template.key for template in STANDARD_TEMPLATES]
    assert len(keys) == len(set(keys))
    assert get_template("iv-ketamine-induction@1") is IV_KETAMINE_INDUCTION


def test_an_unknown_template_key_names_the_known_ones() -> None:
    with pytest.raises(KeyError, match="iv-ketamine-induction@1"):
        get_template("iv-ketamine-induction@99")


def test_a_stored_template_with_an_unknown_field_is_rejected() -> None:
    data = IV_KETAMINE_INDUCTION.to_dict()
    data["caps"]["max_mg_per_lb"] = "1"
    with pytest.raises(ValueError, match="max_mg_per_lb"):
        ProtocolTemplate.from_dict(data)


@ALL
def test_the_starting_dose_lies_within_the_templates_own_caps(template: ProtocolTemplate) -> None:
    dose, caps = template.dose, template.caps
    assert dose.minimum_amount <= dose.starting_amount
    if dose.kind is DoseKind.PER_KG:
        assert caps.max_mg_per_kg is not None
        assert dose.starting_amount <= caps.max_mg_per_kg
        if caps.max_infusion_rate_mg_per_kg_per_h is not None and template.infusion:
            hours = Decimal(template.infusion.default_minutes) / 60
            assert dose.starting_amount / hours <= caps.max_infusion_rate_mg_per_kg_per_h
    else:
        assert caps.max_mg is not None
        assert dose.starting_amount <= caps.max_mg


@ALL
def test_every_template_has_an_absolute_cap_in_milligrams(template: ProtocolTemplate) -> None:
    assert template.caps.max_mg is not None


@ALL
def test_clinic_settings_name_fields_that_exist(template: ProtocolTemplate) -> None:
    for dotted in template.clinic_settings:
        target: object = template
        for part in dotted.split("."):
            assert hasattr(target, part), dotted
            target = getattr(target, part)


@ALL
def test_titration_steps_are_positive(template: ProtocolTemplate) -> None:
    if template.titration is not None:
        assert template.titration.step > 0
        assert 1 <= template.titration.max_adverse_event_grade_for_increase <= 5


@ALL
def test_vitals_times_are_increasing_and_within_observation(template: ProtocolTemplate) -> None:
    minutes = template.monitoring.vitals_minutes_after_dose
    assert list(minutes) == sorted(set(minutes))
    assert all(0 < m <= template.monitoring.minimum_observation_minutes for m in minutes)


def test_the_iv_induction_is_half_a_milligram_per_kilo_over_40_minutes_six_times() -> None:
    template = IV_KETAMINE_INDUCTION
    assert template.dose.starting_amount == Decimal("0.5")
    assert template.infusion is not None
    assert template.infusion.default_minutes == 40
    induction = template.phases[0]
    assert induction.kind is PhaseKind.INDUCTION
    assert induction.planned_sessions == 6
    assert (induction.sessions_per_week_min, induction.sessions_per_week_max) == (2, 3)
    assert template.titration is None


def test_the_iv_titration_variant_stays_within_the_reported_range() -> None:
    template = IV_KETAMINE_TITRATION
    assert template.dose.minimum_amount == Decimal("0.1")
    assert template.caps.max_mg_per_kg == Decimal("0.75")
    assert template.titration is not None


@pytest.mark.parametrize("template", [ESKETAMINE_TRD, ESKETAMINE_SUICIDAL_IDEATION])
def test_esketamine_follows_the_label_devices_doses_and_observation(
    template: ProtocolTemplate,
) -> None:
    dose = template.dose
    assert template.drug is Drug.ESKETAMINE
    assert dose.kind is DoseKind.DEVICE
    assert dose.device_mg == 28
    assert dose.minutes_between_devices == 5
    assert dose.allowed_amounts == (56, 84)
    assert all(amount % 28 == 0 for amount in dose.allowed_amounts)
    assert template.caps.max_mg == 84
    assert template.monitoring.minimum_observation_minutes >= 120
    assert template.monitoring.bp_recheck_minutes == 40
    assert template.monitoring.pulse_oximetry


def test_esketamine_for_trd_starts_at_56_and_tapers_its_frequency() -> None:
    assert ESKETAMINE_TRD.dose.first_session_max_mg == 56
    induction, weeks_5_to_8, week_9_on = ESKETAMINE_TRD.phases
    assert (induction.start_week, induction.end_week, induction.sessions_per_week_max) == (1, 4, 2)
    assert (weeks_5_to_8.start_week, weeks_5_to_8.end_week) == (5, 8)
    assert weeks_5_to_8.sessions_per_week_max == 1
    assert week_9_on.start_week == 9
    assert week_9_on.end_week is None
    assert (week_9_on.sessions_per_week_min, week_9_on.sessions_per_week_max) == (
        Decimal("0.5"),
        1,
    )


def test_esketamine_for_suicidal_ideation_is_84_mg_twice_weekly_for_four_weeks() -> None:
    template = ESKETAMINE_SUICIDAL_IDEATION
    assert template.dose.starting_amount == 84
    (treatment,) = template.phases
    assert (treatment.planned_sessions, treatment.sessions_per_week_max) == (8, 2)
    assert treatment.end_week == 4


def test_at_home_sessions_need_a_sitter_and_a_lower_cap_than_the_clinic() -> None:
    assert SUBLINGUAL_HOME.setting is Setting.HOME
    assert SUBLINGUAL_HOME.monitoring.requires_sitter
    assert SUBLINGUAL_HOME.caps.max_mg is not None
    assert KAP_SUBLINGUAL.caps.max_mg is not None
    assert SUBLINGUAL_HOME.caps.max_mg < KAP_SUBLINGUAL.caps.max_mg
    assert "caps.max_mg" in SUBLINGUAL_HOME.clinic_settings


@pytest.mark.parametrize("template", [KAP_SUBLINGUAL, KAP_INTRAMUSCULAR])
def test_kap_courses_have_preparation_dosing_and_integration_visits(
    template: ProtocolTemplate,
) -> None:
    visits = [phase.visit for phase in template.phases]
    assert visits == [VisitKind.PREPARATION, VisitKind.DOSING, VisitKind.INTEGRATION]
    assert template.monitoring.therapist_present


def test_a_device_rule_without_a_device_size_cannot_be_built() -> None:
    with pytest.raises(ValueError, match="device"):
        DoseRule(kind=DoseKind.DEVICE, starting_amount=Decimal(56), minimum_amount=Decimal(56))


def test_a_rule_starting_below_its_own_minimum_cannot_be_built() -> None:
    with pytest.raises(ValueError, match="minimum"):
        DoseRule(kind=DoseKind.FIXED, starting_amount=Decimal(5), minimum_amount=Decimal(10))
