"""Numbers and times as people read them (ketaclinic/core/formatting.py)."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ketaclinic.core.formatting import (
    NotANumber,
    local_time,
    mg,
    ml,
    ml_per_hour,
    plain_number,
    quantity,
)

PLAIN = re.compile(r"^-?(0|[1-9]\d*)(\.\d*[1-9])?$")

decimals = st.decimals(allow_nan=False, allow_infinity=False, min_value=-(10**9), max_value=10**9)


@pytest.mark.parametrize(
    ("value", "shown"),
    [
        (Decimal("1E+2"), "100"),
        (Decimal("100").normalize(), "100"),
        (Decimal("7E+1"), "70"),
        (Decimal("35.0"), "35"),
        (Decimal(".5"), "0.5"),
        (Decimal("0.70"), "0.7"),
        (Decimal("-0.0"), "0"),
        (Decimal("1E-7"), "0.0000001"),
        (56, "56"),
        (0.1, "0.1"),
        ("84.000", "84"),
    ],
)
def test_a_number_is_plain_text_without_exponent_or_trailing_zero(value, shown):
    assert plain_number(value) == shown


def test_doses_volumes_and_rates_read_as_a_clinician_writes_them():
    assert mg(Decimal("35.0")) == "35 mg"
    assert mg(Decimal("0.5")) == "0.5 mg"
    assert mg(Decimal("1E+2")) == "100 mg"
    assert ml(Decimal("0.70")) == "0.7 mL"
    assert ml(Decimal("2.345")) == "2.35 mL"  # at most 2 decimals of a mL
    assert ml_per_hour(Decimal("120.00")) == "120 mL/h"
    assert quantity(Decimal("0.500"), "mg/kg") == "0.5 mg/kg"
    assert quantity(Decimal("3.00"), "devices") == "3 devices"


def test_mg_is_shown_to_the_protocol_rounding_of_a_tenth():
    assert mg(Decimal("35.25")) == "35.3 mg"
    assert mg(Decimal("35.25"), places=2) == "35.25 mg"


def test_what_is_not_a_number_is_refused():
    for bad in ("abc", Decimal("NaN"), float("inf"), True, (0, (1,), 2), None):
        with pytest.raises(NotANumber):
            plain_number(bad)


@given(decimals)
def test_no_number_is_ever_shown_in_exponent_notation(value):
    shown = plain_number(value)
    assert PLAIN.match(shown), shown
    assert "E" not in shown.upper()


@given(decimals)
def test_the_text_reads_back_as_the_same_value(value):
    assert Decimal(plain_number(value)) == value


@given(decimals.map(lambda d: d.normalize()))
def test_normalized_decimals_round_trip_too(value):
    assert Decimal(plain_number(value)) == value
    assert PLAIN.match(plain_number(value))


@given(decimals, st.integers(min_value=0, max_value=4))
def test_precision_caps_the_decimals_and_is_within_half_a_step(value, places):
    shown = plain_number(value, places)
    assert PLAIN.match(shown)
    decimals_shown = len(shown.partition(".")[2])
    assert decimals_shown <= places
    assert abs(Decimal(shown) - value) <= Decimal(1).scaleb(-places) / 2


@given(st.decimals(min_value=0, max_value=10**4, places=3, allow_nan=False))
def test_ml_never_shows_more_than_two_decimals(value):
    number, unit = ml(value).split(" ")
    assert unit == "mL"
    assert len(number.partition(".")[2]) <= 2


def test_a_time_shows_in_the_clinic_zone_with_its_abbreviation():
    winter = datetime(2026, 12, 6, 15, 0, tzinfo=UTC)
    summer = datetime(2026, 7, 6, 14, 0, tzinfo=UTC)
    assert local_time(winter, "America/Chicago") == "09:00 CST"
    assert local_time(summer, "America/Chicago") == "09:00 CDT"
    assert local_time(winter, "America/Chicago", with_date=True) == "2026-12-06 09:00 CST"
    assert local_time(winter, "UTC") == "15:00 UTC"


def test_a_naive_time_is_refused_rather_than_guessed():
    with pytest.raises(ValueError, match="naive"):
        local_time(datetime(2026, 12, 6, 9, 0), "America/Chicago")  # noqa: DTZ001


def test_audit_and_signature_times_keep_their_seconds():
    moment = datetime(2026, 12, 6, 15, 0, 5, tzinfo=UTC)
    assert local_time(moment, "America/Chicago", with_date=True, seconds=True) == (
        "2026-12-06 09:00:05 CST"
    )
