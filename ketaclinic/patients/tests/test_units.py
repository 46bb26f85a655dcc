from datetime import date
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ketaclinic.patients.units import (
    UnitError,
    body_mass_index,
    check_birth_date,
    height_to_cm,
    weight_to_kg,
)


def test_a_weight_in_pounds_is_stored_in_kilograms():
    assert weight_to_kg(Decimal("185"), "lb") == Decimal("83.91")
    assert weight_to_kg(Decimal("185"), "[lb_av]") == Decimal("83.91")


def test_a_height_in_inches_is_stored_in_centimetres():
    assert height_to_cm(Decimal("70"), "in") == Decimal("177.80")


@pytest.mark.parametrize(("value", "unit"), [("0.5", "kg"), ("900", "kg"), ("1800", "lb")])
def test_impossible_weights_are_refused_with_the_reason(value, unit):
    with pytest.raises(UnitError, match="not a possible body weight") as error:
        weight_to_kg(Decimal(value), unit)
    assert error.value.field == "weight"


def test_an_unknown_unit_names_the_unit_field():
    with pytest.raises(UnitError) as error:
        weight_to_kg(Decimal("70"), "stone")
    assert error.value.field == "weight_unit"


def test_bmi_is_weight_over_height_squared():
    assert body_mass_index(Decimal("70"), Decimal("175")) == Decimal("22.9")


def test_birth_dates_in_the_future_or_beyond_human_age_are_refused():
    with pytest.raises(UnitError, match="future"):
        check_birth_date(date(2030, 1, 1), date(2026, 11, 22))
    with pytest.raises(UnitError, match="more than 125"):
        check_birth_date(date(1890, 1, 1), date(2026, 11, 22))
    check_birth_date(date(1950, 1, 1), date(2026, 11, 22))


@given(st.decimals(min_value=Decimal("5"), max_value=Decimal("1400"), places=1))
def test_pounds_and_kilograms_agree_within_rounding(pounds):
    kg = weight_to_kg(pounds, "lb")
    assert abs(kg - pounds * Decimal("0.45359237")) <= Decimal("0.005")


@given(
    st.decimals(min_value=Decimal("2"), max_value=Decimal("600"), places=2),
    st.decimals(min_value=Decimal("0.01"), max_value=Decimal("40"), places=2),
)
def test_heavier_is_never_lighter(weight, extra):
    assert weight_to_kg(weight + extra, "kg") >= weight_to_kg(weight, "kg") or weight + extra > 650


@given(st.decimals(min_value=Decimal("2"), max_value=Decimal("650"), places=3))
def test_kilograms_are_stored_exactly_as_pint_converts_them(kg):
    """Kilograms skip pint (the write API's common case); the result is pint's own."""
    from decimal import ROUND_HALF_UP

    from ketaclinic.patients.units import _ureg

    converted = Decimal(_ureg.Quantity(kg, "kilogram").to("kilogram").magnitude)
    assert weight_to_kg(kg, "kg") == converted.quantize(Decimal("0.01"), rounding=ROUND_HALF_UP)
