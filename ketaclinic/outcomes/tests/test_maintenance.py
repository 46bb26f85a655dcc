"""Maintenance interval against relapse (docs/sources/outcomes.md section 1): which band a
responder falls in, and the durability curves by band."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta
from decimal import Decimal

from hypothesis import given
from hypothesis import strategies as st

from ketaclinic.outcomes.cohort import (
    NO_MAINTENANCE,
    Course,
    course_outcome,
    maintenance_band,
    summarize,
)
from ketaclinic.outcomes.rules import Measurement, OutcomePolicy

START = datetime(2025, 3, 3, 9, 0, tzinfo=UTC)
RESPONSE = START + timedelta(days=14)
UNTIL = START + timedelta(days=120)


def day(n: float) -> datetime:
    return START + timedelta(days=n)


def test_weekly_doses_after_the_response_are_weekly() -> None:
    doses = [day(d) for d in (0, 3, 7, 10, 14, 21, 28, 35)]
    assert maintenance_band(doses, response_at=RESPONSE, until=UNTIL) == "weekly"


def test_a_dose_a_few_hours_late_still_counts_as_weekly() -> None:
    doses = [day(14), day(21.2), day(28.3)]  # 7.2 and 7.1 days: the median rounds to 7
    assert maintenance_band(doses, response_at=RESPONSE, until=UNTIL) == "weekly"


def test_fortnightly_doses_are_every_2_weeks_and_monthly_are_less_often() -> None:
    fortnightly = [day(d) for d in (14, 28, 42, 56)]
    monthly = [day(d) for d in (14, 44, 74)]
    assert maintenance_band(fortnightly, response_at=RESPONSE, until=UNTIL) == "every 2 weeks"
    assert maintenance_band(monthly, response_at=RESPONSE, until=UNTIL) == "less often"


def test_a_gap_of_8_days_is_every_2_weeks_and_15_days_less_often() -> None:
    assert maintenance_band([day(14), day(22)], response_at=RESPONSE, until=UNTIL) == (
        "every 2 weeks"
    )
    assert maintenance_band([day(14), day(29)], response_at=RESPONSE, until=UNTIL) == "less often"


def test_no_dose_after_the_response_or_none_before_the_end() -> None:
    induction_only = [day(d) for d in (0, 3, 7, 10)]
    assert maintenance_band(induction_only, response_at=RESPONSE, until=UNTIL) == NO_MAINTENANCE
    late = [day(10), day(130)]  # the only later dose comes after relapse / the last score
    assert maintenance_band(late, response_at=RESPONSE, until=UNTIL) == NO_MAINTENANCE
    assert maintenance_band([], response_at=RESPONSE, until=UNTIL) == NO_MAINTENANCE


@given(
    st.lists(st.floats(min_value=0, max_value=150, allow_nan=False), max_size=30),
    st.randoms(use_true_random=False),
)
def test_the_band_does_not_depend_on_the_order_the_doses_arrive_in(
    offsets: list[float], shuffler: random.Random
) -> None:
    doses = [day(d) for d in offsets]
    shuffled = doses[:]
    shuffler.shuffle(shuffled)
    assert maintenance_band(doses, response_at=RESPONSE, until=UNTIL) == maintenance_band(
        shuffled, response_at=RESPONSE, until=UNTIL
    )


def madrs(n: float, score: int) -> Measurement:
    return Measurement("madrs", Decimal(score), day(n))


def test_responders_get_one_durability_curve_per_band_and_the_others_none() -> None:
    """Two weekly responders (one relapses on days 60 and 67), one with no dose after the
    response, and a non-responder who has no durability record and so no band."""
    policy = OutcomePolicy()
    induction = [day(d) for d in (0, 3, 7, 10)]
    weekly = induction + [day(d) for d in range(17, 120, 7)]
    responding = [madrs(-1, 32), madrs(14, 12), madrs(30, 10), madrs(90, 11)]
    relapsing = [madrs(-1, 32), madrs(14, 12), madrs(30, 10), madrs(60, 26), madrs(67, 28)]
    courses = [
        Course("intravenous", START, responding, weekly),
        Course("intravenous", START, relapsing, weekly),
        Course("intravenous", START, responding, induction),
        Course("intravenous", START, [madrs(-1, 32), madrs(14, 30), madrs(40, 31)], weekly),
    ]
    outcomes = [course_outcome(c, policy=policy) for c in courses]
    assert [o.maintenance for o in outcomes] == ["weekly", "weekly", NO_MAINTENANCE, None]
    summary = summarize(outcomes)
    assert list(summary.durability_by_maintenance) == ["weekly", NO_MAINTENANCE]
    weekly_fit = summary.durability_by_maintenance["weekly"]
    assert (weekly_fit.n, weekly_fit.events) == (2, 1)
    assert summary.maintenance_observations[NO_MAINTENANCE] == ([76.0], [False])
    assert summary.maintenance_logrank is not None
