"""The dosing-frequency rule read as a specification: gap, sessions a week, planned count."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

from hypothesis import given
from hypothesis import strategies as st

from ketaclinic.sessions.frequency import (
    FrequencyLimits,
    PreviousDose,
    dose_frequency_findings,
    weekly_window,
)

MONDAY = datetime(2026, 3, 2, 15, 0, tzinfo=UTC)
IV_INDUCTION = FrequencyLimits(
    min_hours_between_doses=40,
    max_sessions_per_week=Decimal(3),
    planned_sessions=6,
    phase="induction",
)


def dose(days: float) -> PreviousDose:
    at = MONDAY + timedelta(days=days)
    return PreviousDose(at, at.date())


def codes(at_days: float, previous: list[PreviousDose], given_in_phase: int = 0) -> list[str]:
    at = MONDAY + timedelta(days=at_days)
    return [
        f.code
        for f in dose_frequency_findings(
            at=at,
            local_day=at.date(),
            previous=previous,
            doses_in_phase=given_in_phase,
            limits=IV_INDUCTION,
        )
    ]


def test_monday_wednesday_friday_is_within_every_limit() -> None:
    assert codes(4, [dose(0), dose(2)], given_in_phase=2) == []


def test_a_second_dose_six_minutes_later_is_too_soon() -> None:
    assert codes(6 / 1440, [dose(0)]) == ["min-interval"]


def test_a_fourth_dose_in_seven_days_is_too_many() -> None:
    assert codes(6, [dose(0), dose(2), dose(4)]) == ["per-week"]


def test_the_seventh_induction_dose_needs_an_extension() -> None:
    findings = dose_frequency_findings(
        at=MONDAY, local_day=MONDAY.date(), previous=[], doses_in_phase=6, limits=IV_INDUCTION
    )
    assert [(f.code, f.overridable) for f in findings] == [("planned-count", False)]


def test_every_other_week_allows_one_in_fourteen_days() -> None:
    assert weekly_window(Decimal("0.5")) == (14, 1)
    assert weekly_window(Decimal("2.5")) == (7, 2)


@given(
    gaps=st.lists(st.floats(min_value=0.01, max_value=20), min_size=1, max_size=8),
    hours=st.integers(min_value=1, max_value=96),
)
def test_a_dose_closer_than_the_gap_is_always_refused(gaps: list[float], hours: int) -> None:
    limits = FrequencyLimits(hours, Decimal(7), None, "maintenance")
    previous = [dose(-g) for g in gaps]
    findings = dose_frequency_findings(
        at=MONDAY, local_day=MONDAY.date(), previous=previous, doses_in_phase=0, limits=limits
    )
    too_close = min(gaps) * 24 < hours
    assert ("min-interval" in [f.code for f in findings]) == too_close


@given(count=st.integers(min_value=0, max_value=30), planned=st.integers(min_value=0, max_value=30))
def test_the_planned_count_refuses_exactly_from_the_planned_number(
    count: int, planned: int
) -> None:
    limits = FrequencyLimits(0, Decimal(7), planned, "induction")
    findings = dose_frequency_findings(
        at=MONDAY, local_day=MONDAY.date(), previous=[], doses_in_phase=count, limits=limits
    )
    assert ("planned-count" in [f.code for f in findings]) == (count >= planned)
