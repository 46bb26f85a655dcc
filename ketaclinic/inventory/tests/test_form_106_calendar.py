"""The DEA Form 106 deadline counts business days in the US federal calendar (observed dates),
with the day of discovery read in the clinic's time zone."""

from __future__ import annotations

from datetime import UTC, date, datetime
from zoneinfo import ZoneInfo

import pytest
from django_scopes import scope

from ketaclinic.inventory import calendars, records, services

CHICAGO = ZoneInfo("America/Chicago")


def deadline(discovered: datetime) -> datetime:
    local = discovered.astimezone(CHICAGO)
    holidays = calendars.form_106_holidays(local.date())
    return records.form_106_deadline(local, holidays=holidays).due_by


@pytest.mark.parametrize(
    ("day", "name"),
    [
        (date(2026, 7, 3), "Independence Day observed on the Friday"),
        (date(2026, 11, 11), "Veterans Day"),
        (date(2026, 11, 26), "Thanksgiving"),
        (date(2027, 7, 5), "Independence Day observed on the Monday"),
        (date(2027, 12, 24), "Christmas observed on the Friday"),
        (date(2027, 12, 31), "New Year's Day 2028 observed in 2027"),
    ],
)
def test_the_federal_calendar_has_the_observed_holidays(day: date, name: str) -> None:
    assert day in calendars.us_federal_holidays([day.year]), name


def test_state_holidays_do_not_move_a_federal_deadline() -> None:
    # Patriots' Day (Massachusetts) and Cesar Chavez Day (California) are state holidays only.
    federal = calendars.us_federal_holidays([2026])
    assert date(2026, 4, 20) not in federal
    assert date(2026, 3, 31) not in federal


@pytest.mark.parametrize(
    ("discovered", "due"),
    [
        # The day before Thanksgiving (Wednesday): due Friday, not Thursday.
        (
            datetime(2026, 11, 25, 10, 0, tzinfo=CHICAGO),
            datetime(2026, 11, 27, 10, 0, tzinfo=CHICAGO),
        ),
        # Thursday before the observed Independence Day (Friday 3 July): due Monday.
        (datetime(2026, 7, 2, 15, 0, tzinfo=CHICAGO), datetime(2026, 7, 6, 15, 0, tzinfo=CHICAGO)),
        # Thursday before New Year's Day 2028, observed Friday 31 December 2027: due in 2028.
        (datetime(2027, 12, 30, 9, 0, tzinfo=CHICAGO), datetime(2028, 1, 3, 9, 0, tzinfo=CHICAGO)),
        # An ordinary Tuesday: due Wednesday.
        (
            datetime(2026, 11, 17, 9, 0, tzinfo=CHICAGO),
            datetime(2026, 11, 18, 9, 0, tzinfo=CHICAGO),
        ),
    ],
)
def test_a_loss_discovered_the_day_before_a_federal_holiday_is_due_after_it(
    discovered: datetime, due: datetime
) -> None:
    assert deadline(discovered) == due


@pytest.mark.django_db
def test_the_service_supplies_the_federal_calendar_in_the_clinics_time_zone(
    org_a, nurse, stock
) -> None:
    # Tuesday 10 November 2026 at 23:30 in Chicago is already Wednesday (Veterans Day) in UTC.
    # Read in the clinic's time zone it is Tuesday: the next business day is Thursday, because
    # Wednesday is a federal holiday.
    discovered = datetime(2026, 11, 11, 5, 30, tzinfo=UTC)
    with scope(organization=org_a):
        _, form = services.stock_loss_report(
            actor=nurse,
            kind="loss",
            lot=stock["lot"],
            location=stock["safe"],
            quantity_mg="10",
            reason="count short",
            discovered_at=discovered,
            form_106={},
        )
        assert form.due_by == datetime(2026, 11, 12, 23, 30, tzinfo=CHICAGO)
        # A clinic-supplied calendar replaces the federal one.
        _, plain = services.stock_loss_report(
            actor=nurse,
            kind="loss",
            lot=stock["lot"],
            location=stock["safe"],
            quantity_mg="10",
            reason="count short",
            discovered_at=discovered,
            form_106={},
            holidays=frozenset(),
        )
        assert plain.due_by == datetime(2026, 11, 11, 23, 30, tzinfo=CHICAGO)
