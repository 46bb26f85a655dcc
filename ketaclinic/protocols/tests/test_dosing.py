"""The dose calculator, read as a specification: worked examples first, then invariants."""

from __future__ import annotations

import json
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from ketaclinic.protocols.catalog import (
    ESKETAMINE_SUICIDAL_IDEATION,
    ESKETAMINE_TRD,
    IV_KETAMINE_INDUCTION,
    IV_KETAMINE_TITRATION,
    ORAL_CLINIC,
    STANDARD_TEMPLATES,
    SUBLINGUAL_CLINIC,
    DoseKind,
    ProtocolTemplate,
)
from ketaclinic.protocols.dosing import (
    ALGORITHM_ESKETAMINE_DEVICE,
    ALGORITHM_FIXED,
    ALGORITHM_TITRATION,
    ALGORITHM_WEIGHT_BASED,
    DoseInput,
    DoseRefused,
    DoseResult,
    TitrationDirection,
    WeightMeasurement,
    calculate_dose,
    titrate,
)

NOW = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
UP, DOWN = TitrationDirection.INCREASE, TitrationDirection.DECREASE


@dataclass(frozen=True)
class Policy:
    weight_max_age_days: int = 30
    require_current_weight_for_fixed_doses: bool = True


POLICY = Policy()


def weighed(value: str, unit: str = "kg", days_ago: float = 1) -> tuple[WeightMeasurement, ...]:
    return (WeightMeasurement(Decimal(value), unit, NOW - timedelta(days=days_ago)),)


def iv(
    mg_per_kg: str,
    kg: str = "70",
    *,
    minutes: int | None = None,
    concentration: str = "10",
    diluent: str = "0",
    protocol: ProtocolTemplate = IV_KETAMINE_INDUCTION,
) -> DoseResult:
    return calculate_dose(
        DoseInput(
            Decimal(mg_per_kg),
            weighed(kg),
            concentration_mg_per_ml=Decimal(concentration),
            infusion_minutes=minutes,
            diluent_volume_ml=Decimal(diluent),
        ),
        protocol=protocol,
        policy=POLICY,
        now=NOW,
    )


def fixed(
    mg: str, protocol: ProtocolTemplate, *, session: int | None = None, **changes: Any
) -> DoseResult:
    dose_input = replace(DoseInput(Decimal(mg), weighed("70"), session_number=session), **changes)
    return calculate_dose(dose_input, protocol=protocol, policy=POLICY, now=NOW)


def refusal(call: object, *args: object, **kwargs: object) -> DoseRefused:
    with pytest.raises(DoseRefused) as caught:
        call(*args, **kwargs)  # type: ignore[operator]
    return caught.value


# --- weight-based (IV, IM) ---------------------------------------------------------------------


def test_half_a_milligram_per_kilo_for_70_kg_is_35_mg_in_3_5_ml_at_10_mg_per_ml() -> None:
    result = iv("0.5", "70")
    assert result.dose_mg == Decimal("35.0")
    assert result.volume_ml == Decimal("3.50")
    assert result.infusion_minutes == 40
    assert result.algorithm == ALGORITHM_WEIGHT_BASED
    assert result.protocol_key == "iv-ketamine-induction@1"


def test_the_pump_rate_spreads_drug_and_diluent_over_the_infusion() -> None:
    # (3.5 mL + 100 mL) over 40 min = 155.25 mL/h, set down to 155.2 so the pump never runs fast.
    result = iv("0.5", "70", diluent="100")
    assert result.pump_rate_ml_per_h == Decimal("155.2")


def test_a_weight_in_pounds_is_converted_before_dosing() -> None:
    result = calculate_dose(
        DoseInput(Decimal("0.5"), weighed("154.5", "lb"), concentration_mg_per_ml=Decimal(10)),
        protocol=IV_KETAMINE_INDUCTION,
        policy=POLICY,
        now=NOW,
    )
    assert result.weight is not None
    assert result.weight.weight_kg == Decimal("70.08")
    assert result.weight.entered_as == "154.5 lb"
    assert result.dose_mg == Decimal("35.0")


@pytest.mark.parametrize(
    ("kg", "expected_mg"),
    [
        ("70.11", "35.1"),  # 35.055 rounds half-up
        ("70.09", "35.0"),  # 35.045 rounds down
        ("69.9", "35.0"),  # 34.95 rounds half-up
    ],
)
def test_the_dose_is_rounded_half_up_to_a_tenth_of_a_milligram(kg: str, expected_mg: str) -> None:
    assert iv("0.5", kg).dose_mg == Decimal(expected_mg)


def test_rounding_never_lifts_the_dose_above_the_per_kilo_cap() -> None:
    # 0.75 mg/kg x 70.07 kg = 52.5525 mg; half-up would give 52.6 mg, above the 52.5525 mg cap.
    result = iv("0.75", "70.07", minutes=60)
    assert result.dose_mg == Decimal("52.5")


def test_a_dose_above_the_per_kilo_cap_is_refused_not_trimmed() -> None:
    error = refusal(iv, "0.8", "70", minutes=60)
    assert error.field == "prescribed_amount"
    assert "0.75 mg/kg" in error.reason


def test_a_dose_above_the_absolute_cap_is_refused() -> None:
    # 0.5 mg/kg x 150 kg = 75 mg > the 70 mg IV cap.
    error = refusal(iv, "0.5", "150")
    assert error.field == "prescribed_amount"
    assert "70 mg" in error.reason


def test_an_infusion_faster_than_the_low_dose_rate_ceiling_is_refused() -> None:
    error = refusal(iv, "0.5", "70", minutes=29)
    assert error.field == "infusion_minutes"
    assert "at least 30 min" in error.reason
    assert iv("0.5", "70", minutes=30).dose_mg == Decimal("35.0")


@pytest.mark.parametrize("minutes", [0, 1, 101])
def test_an_infusion_outside_the_reported_duration_range_is_refused(minutes: int) -> None:
    assert refusal(iv, "0.1", "70", minutes=minutes).field == "infusion_minutes"


def test_a_slipped_decimal_point_below_the_protocol_minimum_is_refused() -> None:
    error = refusal(iv, "0.05", "70")
    assert error.field == "prescribed_amount"
    assert "minimum" in error.reason


@pytest.mark.parametrize("amount", ["0", "-0.5", "NaN", "Infinity"])
def test_an_amount_that_is_not_a_positive_number_is_refused(amount: str) -> None:
    assert refusal(iv, amount, "70").field == "prescribed_amount"


def test_an_infusion_without_a_concentration_is_refused() -> None:
    error = refusal(
        calculate_dose,
        DoseInput(Decimal("0.5"), weighed("70")),
        protocol=IV_KETAMINE_INDUCTION,
        policy=POLICY,
        now=NOW,
    )
    assert error.field == "concentration_mg_per_ml"


# --- weight selection ------------------------------------------------------------------------


def test_no_recorded_weight_means_no_weight_based_dose() -> None:
    error = refusal(
        calculate_dose,
        DoseInput(Decimal("0.5"), (), concentration_mg_per_ml=Decimal(10)),
        protocol=IV_KETAMINE_INDUCTION,
        policy=POLICY,
        now=NOW,
    )
    assert error.field == "weights"


@pytest.mark.parametrize(("days_ago", "allowed"), [(30, True), (30.01, False), (90, False)])
def test_the_weight_must_be_measured_within_the_policy_window(
    days_ago: float, allowed: bool
) -> None:
    dose_input = DoseInput(
        Decimal("0.5"), weighed("70", days_ago=days_ago), concentration_mg_per_ml=Decimal(10)
    )
    if allowed:
        calculate_dose(dose_input, protocol=IV_KETAMINE_INDUCTION, policy=POLICY, now=NOW)
    else:
        error = refusal(
            calculate_dose, dose_input, protocol=IV_KETAMINE_INDUCTION, policy=POLICY, now=NOW
        )
        assert error.field == "weights"
        assert "30 days" in error.reason


def test_the_most_recent_weight_is_used_and_future_ones_are_ignored() -> None:
    weights = (
        WeightMeasurement(Decimal("90"), "kg", NOW - timedelta(days=10)),
        WeightMeasurement(Decimal("80"), "kg", NOW - timedelta(days=2)),
        WeightMeasurement(Decimal("60"), "kg", NOW + timedelta(hours=1)),
        WeightMeasurement(Decimal("85"), "kg", NOW - timedelta(days=5)),
    )
    result = calculate_dose(
        DoseInput(Decimal("0.5"), weights, concentration_mg_per_ml=Decimal(10)),
        protocol=IV_KETAMINE_INDUCTION,
        policy=POLICY,
        now=NOW,
    )
    assert result.weight is not None
    assert result.weight.weight_kg == Decimal("80.00")
    assert result.dose_mg == Decimal("40.0")


def test_only_future_weights_is_refused() -> None:
    weights = (WeightMeasurement(Decimal("70"), "kg", NOW + timedelta(minutes=5)),)
    error = refusal(
        calculate_dose,
        DoseInput(Decimal("0.5"), weights, concentration_mg_per_ml=Decimal(10)),
        protocol=IV_KETAMINE_INDUCTION,
        policy=POLICY,
        now=NOW,
    )
    assert "future" in error.reason


@pytest.mark.parametrize(("value", "unit"), [("700", "kg"), ("1", "kg"), ("70", "stone")])
def test_an_impossible_weight_or_unknown_unit_is_refused(value: str, unit: str) -> None:
    error = refusal(
        calculate_dose,
        DoseInput(Decimal("0.5"), weighed(value, unit), concentration_mg_per_ml=Decimal(10)),
        protocol=IV_KETAMINE_INDUCTION,
        policy=POLICY,
        now=NOW,
    )
    assert error.field == "weights"


def test_a_naive_clock_is_a_programming_error() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        calculate_dose(
            DoseInput(Decimal("0.5"), weighed("70")),
            protocol=IV_KETAMINE_INDUCTION,
            policy=POLICY,
            now=NOW.replace(tzinfo=None),
        )


# --- esketamine devices ------------------------------------------------------------------------


@pytest.mark.parametrize(("mg", "devices", "ml"), [("56", 2, "0.4"), ("84", 3, "0.6")])
def test_esketamine_is_given_in_whole_28_mg_devices(mg: str, devices: int, ml: str) -> None:
    result = fixed(mg, ESKETAMINE_TRD, session=2)
    assert result.device_count == devices
    assert result.volume_ml == Decimal(ml)
    assert result.minutes_between_devices == 5
    assert result.mg_in_volume == Decimal(mg)
    assert result.algorithm == ALGORITHM_ESKETAMINE_DEVICE


@pytest.mark.parametrize(
    ("mg", "reason"),
    [
        ("70", "whole number of 28 mg devices"),
        ("28", "below this protocol's minimum of 56 mg"),
        ("112", "not a dose of this protocol"),
    ],
)
def test_esketamine_doses_off_the_label_are_refused(mg: str, reason: str) -> None:
    assert reason in refusal(fixed, mg, ESKETAMINE_TRD, session=3).reason


def test_esketamine_for_trd_starts_at_56_mg_on_day_one() -> None:
    assert "first session" in refusal(fixed, "84", ESKETAMINE_TRD, session=1).reason
    assert fixed("56", ESKETAMINE_TRD, session=1).dose_mg == 56


def test_esketamine_for_suicidal_ideation_may_start_at_84_mg() -> None:
    assert fixed("84", ESKETAMINE_SUICIDAL_IDEATION, session=1).device_count == 3


def test_a_nasal_spray_is_not_infused() -> None:
    assert refusal(fixed, "56", ESKETAMINE_TRD, infusion_minutes=40).field == "infusion_minutes"


# --- fixed doses -------------------------------------------------------------------------------


def test_a_sublingual_dose_is_given_as_prescribed_with_its_volume() -> None:
    result = fixed("100", SUBLINGUAL_CLINIC, concentration_mg_per_ml=Decimal("100"))
    assert result.dose_mg == 100
    assert result.volume_ml == Decimal("1.00")
    assert result.algorithm == ALGORITHM_FIXED
    assert result.dose_mg_per_kg == Decimal("1.429")


def test_a_sublingual_dose_above_its_cap_is_refused() -> None:
    assert "200 mg" in refusal(fixed, "250", SUBLINGUAL_CLINIC).reason


def test_fixed_doses_are_written_to_a_tenth_of_a_milligram() -> None:
    assert refusal(fixed, "100.05", SUBLINGUAL_CLINIC).field == "prescribed_amount"


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"infusion_minutes": 40}, "infusion_minutes"),
        ({"diluent_volume_ml": Decimal(5)}, "diluent_volume_ml"),
    ],
)
def test_an_oral_dose_is_neither_infused_nor_diluted(change: dict, field: str) -> None:
    assert refusal(fixed, "50", ORAL_CLINIC, **change).field == field


def test_a_fixed_dose_needs_a_current_weight_only_if_the_policy_says_so() -> None:
    dose_input = DoseInput(Decimal("56"))
    with pytest.raises(DoseRefused):
        calculate_dose(dose_input, protocol=ESKETAMINE_TRD, policy=POLICY, now=NOW)
    relaxed = Policy(require_current_weight_for_fixed_doses=False)
    result = calculate_dose(dose_input, protocol=ESKETAMINE_TRD, policy=relaxed, now=NOW)
    assert result.weight is None
    assert result.dose_mg_per_kg is None


def test_a_result_stores_as_json_with_its_inputs_algorithm_and_time() -> None:
    stored = json.loads(json.dumps(iv("0.5", "70").to_dict()))
    assert stored["algorithm"] == "dose-weight-based@1"
    assert stored["protocol_key"] == "iv-ketamine-induction@1"
    assert stored["prescribed_amount"] == "0.5"
    assert stored["prescribed_unit"] == "mg/kg"
    assert stored["weight"]["weight_kg"] == "70.00"
    assert stored["concentration_mg_per_ml"] == "10"
    assert stored["caps"]["max_mg"] == "70"
    assert stored["computed_at"] == NOW.isoformat()
    device = fixed("84", ESKETAMINE_TRD, session=2).to_dict()
    assert device["concentration_mg_per_ml"] == "140.0"


# --- titration ---------------------------------------------------------------------------------


def step(
    protocol: ProtocolTemplate,
    current: str,
    direction: TitrationDirection = UP,
    *,
    sessions: int = 2,
    grade: int | None = None,
    **kwargs: object,
) -> Decimal:
    result = titrate(
        protocol=protocol,
        current_amount=Decimal(current),
        direction=direction,
        now=NOW,
        sessions_at_current_amount=sessions,
        worst_adverse_event_grade=grade,
        **kwargs,  # type: ignore[arg-type]
    )
    assert result.algorithm == ALGORITHM_TITRATION
    assert result.protocol_key == protocol.key
    return result.new_amount


def test_an_iv_dose_rises_one_tenth_of_a_milligram_per_kilo() -> None:
    assert step(IV_KETAMINE_TITRATION, "0.5") == Decimal("0.6")


def test_a_rise_stops_at_the_infusion_rate_ceiling_for_40_minutes() -> None:
    result = titrate(
        protocol=IV_KETAMINE_TITRATION,
        current_amount=Decimal("0.6"),
        direction=UP,
        now=NOW,
        sessions_at_current_amount=2,
        worst_adverse_event_grade=None,
    )
    assert result.new_amount == Decimal("0.66")
    assert result.limited_by == "max_infusion_rate_mg_per_kg_per_h"


def test_a_longer_infusion_lets_the_dose_reach_the_per_kilo_cap() -> None:
    assert step(IV_KETAMINE_TITRATION, "0.7", infusion_minutes=60) == Decimal("0.75")
    with pytest.raises(DoseRefused, match="already at the cap"):
        step(IV_KETAMINE_TITRATION, "0.75", infusion_minutes=60)


def test_with_a_weight_the_absolute_cap_also_holds_a_rise_short() -> None:
    # 70 mg / 100 kg = 0.70 mg/kg.
    amount = step(IV_KETAMINE_TITRATION, "0.65", weight_kg=Decimal(100), infusion_minutes=60)
    assert amount == Decimal("0.70")


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"sessions": 1}, "sessions_at_current_amount"),
        ({"grade": 2}, "worst_adverse_event_grade"),
    ],
)
def test_a_rise_waits_for_enough_sessions_and_a_tolerated_dose(kwargs: dict, field: str) -> None:
    with pytest.raises(DoseRefused) as caught:
        step(IV_KETAMINE_TITRATION, "0.5", **kwargs)
    assert caught.value.field == field


def test_an_oral_dose_rises_25_mg_no_sooner_than_every_3_days() -> None:
    assert step(ORAL_CLINIC, "50", last_changed_at=NOW - timedelta(days=3)) == 75
    with pytest.raises(DoseRefused, match="3 days"):
        step(ORAL_CLINIC, "50", last_changed_at=NOW - timedelta(days=2))
    assert step(ORAL_CLINIC, "290") == 300


def test_a_decrease_is_always_allowed_down_to_the_minimum() -> None:
    assert step(IV_KETAMINE_TITRATION, "0.5", DOWN, sessions=0, grade=3) == Decimal("0.4")
    assert step(IV_KETAMINE_TITRATION, "0.15", DOWN) == Decimal("0.1")
    with pytest.raises(DoseRefused, match="minimum"):
        step(IV_KETAMINE_TITRATION, "0.1", DOWN)


def test_esketamine_moves_between_56_and_84_mg_only() -> None:
    assert step(ESKETAMINE_TRD, "56", sessions=1) == 84
    assert step(ESKETAMINE_TRD, "84", DOWN) == 56
    with pytest.raises(DoseRefused, match="cap"):
        step(ESKETAMINE_TRD, "84")
    with pytest.raises(DoseRefused, match="minimum"):
        step(ESKETAMINE_TRD, "56", DOWN)


def test_a_fixed_dose_protocol_is_not_titrated() -> None:
    with pytest.raises(DoseRefused) as caught:
        step(IV_KETAMINE_INDUCTION, "0.5")
    assert caught.value.field == "protocol"


# --- invariants ------------------------------------------------------------------------------

kilos = st.decimals(min_value=Decimal("2"), max_value=Decimal("650"), places=2)
pounds = st.decimals(min_value=Decimal("5"), max_value=Decimal("1400"), places=1)
concentrations = st.sampled_from([Decimal(c) for c in ("1", "10", "50", "100")])
per_kg_templates = st.sampled_from(
    [t for t in STANDARD_TEMPLATES if t.dose.kind is DoseKind.PER_KG]
)


def weight_based(
    protocol: ProtocolTemplate, amount: Decimal, kg: Decimal, mins: int, conc: Decimal
) -> DoseResult | None:
    try:
        return calculate_dose(
            DoseInput(
                amount,
                (WeightMeasurement(kg, "kg", NOW),),
                concentration_mg_per_ml=conc,
                infusion_minutes=mins if protocol.infusion else None,
            ),
            protocol=protocol,
            policy=POLICY,
            now=NOW,
        )
    except DoseRefused:
        return None


@st.composite
def up_to_the_caps(draw: st.DrawFn) -> tuple[ProtocolTemplate, Decimal, Decimal, int]:
    """A per-kg protocol, a weight, and a dose and infusion time reaching just past whichever of
    the protocol's caps binds first (mg/kg, total mg, mg/kg/h), so most cases are dosed and the
    rest are refused at an edge. Drawn independently, nearly every case was refused and
    Hypothesis gave up on the filtering (its filter_too_much health check, on some seeds)."""
    protocol = draw(per_kg_templates)
    caps, least = protocol.caps, protocol.dose.minimum_amount
    assert caps.max_mg is not None
    assert caps.max_mg_per_kg is not None
    kg = draw(kilos)
    top = min(caps.max_mg_per_kg, caps.max_mg / kg) * Decimal("1.05")
    amount = draw(st.decimals(min_value=least, max_value=max(least, top), places=2))
    infusion, rate = protocol.infusion, caps.max_infusion_rate_mg_per_kg_per_h
    if infusion is None:
        return protocol, amount, kg, 40
    shortest = infusion.min_minutes
    if rate is not None:
        shortest = max(shortest, int(amount * 60 / rate) - 2)
    mins = draw(
        st.integers(min_value=min(shortest, infusion.max_minutes), max_value=infusion.max_minutes)
    )
    return protocol, amount, kg, mins


@given(up_to_the_caps(), concentrations)
def test_a_dose_never_exceeds_any_cap(
    case: tuple[ProtocolTemplate, Decimal, Decimal, int], conc: Decimal
) -> None:
    protocol, amount, kg, mins = case
    result = weight_based(protocol, amount, kg, mins, conc)
    assume(result is not None)
    assert result is not None
    caps = protocol.caps
    assert caps.max_mg is not None
    assert caps.max_mg_per_kg is not None
    assert result.dose_mg <= caps.max_mg
    assert result.dose_mg <= caps.max_mg_per_kg * kg
    if caps.max_infusion_rate_mg_per_kg_per_h is not None and result.infusion_minutes:
        assert result.dose_mg * 60 <= caps.max_infusion_rate_mg_per_kg_per_h * kg * mins


# Amounts and weights whose products stay mostly below the 70 mg cap, so few cases are refused.
below_cap_per_kilo = st.decimals(min_value=Decimal("0.1"), max_value=Decimal("0.6"), places=2)
below_cap_kilos = st.decimals(min_value=Decimal("2"), max_value=Decimal("116"), places=2)


@given(below_cap_per_kilo, below_cap_kilos, below_cap_kilos)
def test_below_the_cap_a_heavier_patient_never_gets_less(
    amount: Decimal, kg_a: Decimal, kg_b: Decimal
) -> None:
    lighter, heavier = sorted((kg_a, kg_b))
    low = weight_based(IV_KETAMINE_INDUCTION, amount, lighter, 40, Decimal(10))
    high = weight_based(IV_KETAMINE_INDUCTION, amount, heavier, 40, Decimal(10))
    assume(low is not None and high is not None)
    assert low is not None
    assert high is not None
    assert low.dose_mg <= high.dose_mg


@given(up_to_the_caps(), concentrations)
def test_what_is_drawn_up_is_the_dose_to_within_one_hundredth_of_a_millilitre(
    case: tuple[ProtocolTemplate, Decimal, Decimal, int], conc: Decimal
) -> None:
    protocol, amount, kg, mins = case
    result = weight_based(protocol, amount, kg, mins, conc)
    assume(result is not None)
    assert result is not None
    assert result.volume_ml is not None
    drawn = result.volume_ml * conc
    assert drawn == result.mg_in_volume
    assert Decimal(0) <= result.dose_mg - drawn < Decimal("0.01") * conc


# Infusions of 40 minutes or more keep the rate cap out of play, so refusals stay rare.
infusion_minutes = st.integers(min_value=40, max_value=120)


@given(
    below_cap_per_kilo,
    below_cap_kilos,
    infusion_minutes,
    st.decimals(min_value=0, max_value=500, places=0),
)
def test_the_pump_never_runs_faster_than_the_bag_over_the_infusion_time(
    amount: Decimal, kg: Decimal, mins: int, diluent: Decimal
) -> None:
    try:
        result = calculate_dose(
            DoseInput(
                amount,
                (WeightMeasurement(kg, "kg", NOW),),
                concentration_mg_per_ml=Decimal(10),
                infusion_minutes=mins,
                diluent_volume_ml=diluent,
            ),
            protocol=IV_KETAMINE_INDUCTION,
            policy=POLICY,
            now=NOW,
        )
    except DoseRefused:
        assume(False)
        return
    assert result.pump_rate_ml_per_h is not None
    assert result.volume_ml is not None
    bag = result.volume_ml + diluent
    assert result.pump_rate_ml_per_h * mins / 60 <= bag
    assert bag - result.pump_rate_ml_per_h * mins / 60 < Decimal("0.1") * mins / 60


@given(pounds)
def test_pounds_and_their_kilogram_equivalent_give_the_same_dose(lb: Decimal) -> None:
    def dose(value: Decimal, unit: str) -> DoseResult | None:
        try:
            return calculate_dose(
                DoseInput(
                    Decimal("0.5"),
                    (WeightMeasurement(value, unit, NOW),),
                    concentration_mg_per_ml=Decimal(10),
                ),
                protocol=IV_KETAMINE_INDUCTION,
                policy=POLICY,
                now=NOW,
            )
        except DoseRefused:
            return None

    in_pounds = dose(lb, "lb")
    assume(in_pounds is not None)
    assert in_pounds is not None
    assert in_pounds.weight is not None
    in_kilos = dose(in_pounds.weight.weight_kg, "kg")
    assert in_kilos is not None
    assert in_pounds.dose_mg == in_kilos.dose_mg
    assert in_pounds.dose_mg.as_tuple().exponent == -1  # always mg to one decimal place


@given(
    st.integers(min_value=1, max_value=200),
    st.sampled_from([ESKETAMINE_TRD, ESKETAMINE_SUICIDAL_IDEATION]),
)
def test_esketamine_is_always_a_multiple_of_28_mg(mg: int, protocol: ProtocolTemplate) -> None:
    try:
        result = fixed(str(mg), protocol, session=2)
    except DoseRefused:
        assert mg not in (56, 84)
        return
    assert result.dose_mg % 28 == 0
    assert result.device_count is not None
    assert result.device_count * 28 == result.dose_mg


titratable = st.sampled_from([t for t in STANDARD_TEMPLATES if t.titration is not None])


@given(titratable, st.integers(min_value=0, max_value=400), st.sampled_from([UP, DOWN]))
def test_titration_moves_one_way_and_never_past_a_cap_or_the_floor(
    protocol: ProtocolTemplate, hundredths: int, direction: TitrationDirection
) -> None:
    quantum = Decimal("0.01") if protocol.dose.kind is DoseKind.PER_KG else Decimal(1)
    current = Decimal(hundredths) * quantum
    assume(current > 0)
    try:
        new = step(protocol, str(current), direction, sessions=5)
    except DoseRefused:
        return
    caps = protocol.caps
    if direction is UP:
        assert new > current
        ceiling = caps.max_mg_per_kg if protocol.dose.kind is DoseKind.PER_KG else caps.max_mg
        assert ceiling is not None
        assert new <= ceiling
    else:
        assert protocol.dose.minimum_amount <= new < current
    if protocol.dose.allowed_amounts:
        assert new in protocol.dose.allowed_amounts
