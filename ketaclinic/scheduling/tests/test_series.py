"""The plan's series as RFC 5545 rules: the right dates for IV induction and the esketamine label
schedule, in the clinic's wall-clock time across daylight saving changes."""

from __future__ import annotations

from datetime import date, datetime, time, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

from hypothesis import given
from hypothesis import strategies as st

from ketaclinic.scheduling.series import PhasePlan, expand, phase_rule

IV_INDUCTION = [PhasePlan("induction", 6, Decimal("3"), 1)]
ESKETAMINE_LABEL = [
    PhasePlan("induction", 8, Decimal("2"), 1),
    PhasePlan("maintenance weeks 5-8", 4, Decimal("1"), 5),
    PhasePlan("maintenance week 9 onward", None, Decimal("0.5"), 9),
]
CHICAGO = "America/Chicago"


def local_dates(visits, zone=CHICAGO):
    return [v.starts_at.astimezone(ZoneInfo(zone)).date() for v in visits]


def test_iv_induction_is_six_infusions_monday_wednesday_friday_over_twelve_days():
    visits = expand(IV_INDUCTION, first_day=date(2026, 3, 2), wall_time=time(9), time_zone=CHICAGO)
    assert local_dates(visits) == [
        date(2026, 3, 2), date(2026, 3, 4), date(2026, 3, 6),
        date(2026, 3, 9), date(2026, 3, 11), date(2026, 3, 13),
    ]  # fmt: skip
    assert visits[0].rrule == "FREQ=WEEKLY;BYDAY=MO,WE,FR;COUNT=6"
    days = local_dates(visits)
    assert (days[-1] - days[0]).days == 11  # about 12 days, as in the cited series


def test_esketamine_follows_the_label_twice_weekly_then_weekly_then_every_two_weeks():
    visits = expand(
        ESKETAMINE_LABEL, first_day=date(2026, 1, 6), wall_time=time(10), time_zone=CHICAGO
    )
    days = local_dates(visits)
    induction, weekly, later = days[:8], days[8:12], days[12:]
    assert induction == [
        date(2026, 1, 6), date(2026, 1, 9), date(2026, 1, 13), date(2026, 1, 16),
        date(2026, 1, 20), date(2026, 1, 23), date(2026, 1, 27), date(2026, 1, 30),
    ]  # fmt: skip
    assert weekly == [date(2026, 2, 3), date(2026, 2, 10), date(2026, 2, 17), date(2026, 2, 24)]
    assert later == [date(2026, 3, 3), date(2026, 3, 17), date(2026, 3, 31), date(2026, 4, 14)]
    assert [v.index for v in visits] == list(range(1, 17))
    assert {v.rrule for v in visits} == {
        "FREQ=WEEKLY;BYDAY=TU,FR;COUNT=8",
        "FREQ=WEEKLY;BYDAY=TU;COUNT=4",
        "FREQ=WEEKLY;INTERVAL=2;BYDAY=TU;COUNT=4",
    }


def test_the_wall_clock_time_survives_the_spring_change():
    # Chicago moves to daylight time on Sunday 8 March 2026.
    visits = expand(IV_INDUCTION, first_day=date(2026, 3, 2), wall_time=time(9), time_zone=CHICAGO)
    utc_hours = [v.starts_at.hour for v in visits]
    assert utc_hours == [15, 15, 15, 14, 14, 14]
    assert {v.starts_at.astimezone(ZoneInfo(CHICAGO)).time() for v in visits} == {time(9)}


def test_exceptions_skip_a_day_without_moving_the_others():
    visits = expand(
        IV_INDUCTION,
        first_day=date(2026, 3, 2),
        wall_time=time(9),
        time_zone=CHICAGO,
        exceptions=[date(2026, 3, 4)],
    )
    assert date(2026, 3, 4) not in local_dates(visits)
    assert len(visits) == 5


ZONES = st.sampled_from(
    ["America/Chicago", "America/New_York", "Europe/Berlin", "Australia/Sydney", "UTC",
     "America/Phoenix", "Pacific/Auckland"]
)  # fmt: skip
PLANS = st.sampled_from([IV_INDUCTION, ESKETAMINE_LABEL])


@given(
    plan=PLANS,
    zone=ZONES,
    first=st.dates(min_value=date(2025, 1, 1), max_value=date(2030, 12, 31)),
    hour=st.integers(min_value=6, max_value=19),
    minute=st.sampled_from([0, 15, 30, 45]),
)
def test_every_visit_keeps_its_wall_time_weekday_rhythm_and_order(plan, zone, first, hour, minute):
    wall = time(hour, minute)
    visits = expand(plan, first_day=first, wall_time=wall, time_zone=zone)
    local = [v.starts_at.astimezone(ZoneInfo(zone)) for v in visits]
    assert all(v.starts_at.utcoffset() == timedelta(0) for v in visits)
    assert [lt.time() for lt in local] == [wall] * len(visits)  # no clinic hour is in a DST gap
    assert local == sorted(local)
    assert len({lt.date() for lt in local}) == len(local)
    assert local[0].date() == first
    expected = sum(p.planned_sessions or 4 for p in plan)
    assert len(visits) == expected
    # Never more visits in a week than the phase allows.
    for phase in plan:
        days = [lt.date() for lt, v in zip(local, visits, strict=True) if v.phase == phase.name]
        for day in days:
            same_week = [d for d in days if 0 <= (d - day).days < 7]
            assert len(same_week) <= max(1, int(phase.sessions_per_week))


@given(
    zone=st.sampled_from(["America/Chicago", "Europe/Berlin", "America/New_York"]),
    year=st.integers(min_value=2025, max_value=2030),
)
def test_a_wall_time_inside_the_spring_gap_moves_forward_by_the_gap(zone, year):
    # 2:30 at night does not exist on the spring-forward day; the clock shows 3:30 instead.
    tz = ZoneInfo(zone)
    day = next(
        date(year, month, d)
        for month in (3, 4)
        for d in range(1, 32 if month == 3 else 30)
        if datetime.combine(date(year, month, d), time(1), tz).utcoffset()
        != datetime.combine(date(year, month, d), time(4), tz).utcoffset()
    )
    [visit] = expand(
        [PhasePlan("one", 1, Decimal("1"), 1)], first_day=day, wall_time=time(2, 30), time_zone=zone
    )
    assert visit.starts_at.astimezone(tz).time() == time(3, 30)


def test_an_irregular_phase_has_no_rule():
    assert phase_rule(PhasePlan("booster", None, None), 0) is None
