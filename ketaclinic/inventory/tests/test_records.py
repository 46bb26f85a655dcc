"""Specification of the DEA record field lists, the Form 106 deadline and record retention."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ketaclinic.inventory.records import (
    MINIMUM_RETENTION_YEARS,
    REQUIRED_FIELDS,
    REQUIRED_ITEM_FIELDS,
    ReportKind,
    form_106_deadline,
    may_delete,
    missing_fields,
    next_biennial_inventory_due,
    required_field_names,
    retention_decision,
)

NEW_YORK = ZoneInfo("America/New_York")


def complete(kind: ReportKind) -> dict[str, object]:
    """A record of `kind` with every required field (and one complete line item) filled in."""
    data: dict[str, object] = {spec.name: f"{spec.name}-value" for spec in REQUIRED_FIELDS[kind]}
    if "reported_to_police" in data:
        data["reported_to_police"] = True
    item_specs = REQUIRED_ITEM_FIELDS.get(kind)
    if item_specs is not None:
        data["items"] = [{spec.name: f"{spec.name}-value" for spec in item_specs}]
    return data


@pytest.mark.parametrize("kind", list(ReportKind))
def test_a_complete_record_of_every_kind_has_nothing_missing(kind: ReportKind) -> None:
    assert missing_fields(kind, complete(kind)) == ()


@pytest.mark.parametrize(
    ("kind", "name"),
    [(kind, spec.name) for kind in ReportKind for spec in REQUIRED_FIELDS[kind]],
)
@pytest.mark.parametrize("gap", [None, "", "   ", [], "absent"])
def test_every_required_field_left_empty_is_reported_by_name(
    kind: ReportKind, name: str, gap: object
) -> None:
    data = complete(kind)
    if gap == "absent":
        del data[name]
    else:
        data[name] = gap
    assert missing_fields(kind, data) == (name,)


@pytest.mark.parametrize("value", [0, False])
def test_zero_and_false_are_answers_not_gaps(value: object) -> None:
    data = complete(ReportKind.DEA_FORM_41)
    data["items"][0]["full_packages"] = value  # type: ignore[index]
    data["items"][0]["partial_package_count"] = value  # type: ignore[index]
    assert missing_fields(ReportKind.DEA_FORM_41, data) == ()


def test_the_police_department_is_required_only_when_police_were_told() -> None:
    told = complete(ReportKind.DEA_FORM_106)
    del told["police_department"]
    not_told = dict(told, reported_to_police=False)
    assert missing_fields(ReportKind.DEA_FORM_106, told) == ("police_department",)
    assert missing_fields(ReportKind.DEA_FORM_106, not_told) == ()


@pytest.mark.parametrize("kind", list(REQUIRED_ITEM_FIELDS))
def test_itemised_records_need_at_least_one_complete_item(kind: ReportKind) -> None:
    data = complete(kind)
    good_item = data["items"][0]  # type: ignore[index]
    assert missing_fields(kind, dict(data, items=[])) == ("items",)
    assert missing_fields(kind, {k: v for k, v in data.items() if k != "items"}) == ("items",)
    broken = dict(good_item, substance_name="")
    assert missing_fields(kind, dict(data, items=[good_item, broken])) == (
        "items[1].substance_name",
    )
    assert missing_fields(kind, dict(data, items=[good_item, "not-a-mapping"])) == ("items[1]",)


def test_the_waste_log_asks_for_both_signatures_and_the_patient() -> None:
    names = required_field_names(ReportKind.WASTE_LOG)
    assert {"wasted_by_signature", "witness_signature", "patient", "quantity_wasted"} <= set(names)


def test_the_dispensing_record_carries_the_1304_22_fields() -> None:
    names = set(required_field_names(ReportKind.ADMINISTRATION_LOG))
    assert {
        "substance_name",
        "finished_form",
        "container_size",
        "quantity_administered",
        "patient_name",
        "patient_address",
        "administered_on",
        "administered_by",
    } <= names


def test_form_41_needs_two_witnesses() -> None:
    names = set(required_field_names(ReportKind.DEA_FORM_41))
    assert {"first_witness_name", "second_witness_name"} <= names


def test_every_field_names_its_source() -> None:
    every = [spec for specs in REQUIRED_FIELDS.values() for spec in specs] + [
        spec for specs in REQUIRED_ITEM_FIELDS.values() for spec in specs
    ]
    assert all(spec.source.strip() for spec in every)


# --- Form 106 deadline ----------------------------------------------------------------------


def local(year: int, month: int, day: int, hour: int, minute: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, tzinfo=NEW_YORK)


@pytest.mark.parametrize(
    ("discovered", "holidays", "due"),
    [
        (local(2026, 3, 2, 10), (), local(2026, 3, 3, 10)),  # Monday -> Tuesday
        (local(2026, 3, 6, 15), (), local(2026, 3, 9, 15)),  # Friday -> Monday
        (local(2026, 3, 7, 10), (), local(2026, 3, 9, 10)),  # Saturday -> Monday
        (local(2026, 3, 8, 23, 59), (), local(2026, 3, 9, 23, 59)),  # Sunday -> Monday
        (local(2026, 5, 22, 9), (date(2026, 5, 25),), local(2026, 5, 26, 9)),  # Memorial Day
        (local(2026, 7, 2, 9), (date(2026, 7, 3),), local(2026, 7, 6, 9)),  # observed holiday
    ],
    ids=["weekday", "friday", "saturday", "sunday", "monday-holiday", "friday-holiday"],
)
def test_form_106_is_due_one_business_day_after_discovery(
    discovered: datetime, holidays: tuple[date, ...], due: datetime
) -> None:
    deadline = form_106_deadline(discovered, holidays=frozenset(holidays))
    assert deadline.due_by == due
    assert deadline.rule == "dea-form-106-deadline@1"


def test_the_deadline_is_read_in_the_clinics_zone_and_stays_in_it() -> None:
    # 23:30 Friday in New York is already Saturday in UTC; the clinic's Friday is what counts.
    deadline = form_106_deadline(local(2026, 3, 6, 23, 30))
    assert deadline.due_by == local(2026, 3, 9, 23, 30)
    assert deadline.due_by.tzinfo is NEW_YORK


def test_a_deadline_without_a_zone_is_refused() -> None:
    with pytest.raises(ValueError, match="time zone"):
        form_106_deadline(datetime(2026, 3, 2, 10))  # noqa: DTZ001 - deliberately naive


def test_a_report_is_overdue_only_after_its_deadline() -> None:
    deadline = form_106_deadline(local(2026, 3, 2, 10))
    assert not deadline.is_overdue(local(2026, 3, 3, 10))
    assert deadline.is_overdue(local(2026, 3, 3, 10, 1))


@given(
    discovered=st.datetimes(
        min_value=datetime(2024, 1, 1), max_value=datetime(2030, 12, 31), timezones=st.just(UTC)
    ),
    holidays=st.frozensets(st.dates(min_value=date(2024, 1, 1), max_value=date(2031, 1, 31))),
)
def test_the_deadline_is_always_a_later_business_day_and_no_business_day_is_skipped(
    discovered: datetime, holidays: frozenset[date]
) -> None:
    due_day = form_106_deadline(discovered, holidays=holidays).due_by.date()
    assert due_day > discovered.date()
    assert due_day.weekday() < 5
    assert due_day not in holidays
    between = (
        discovered.date() + timedelta(days=n) for n in range(1, (due_day - discovered.date()).days)
    )
    assert all(day.weekday() >= 5 or day in holidays for day in between)


# --- Retention and biennial inventory -------------------------------------------------------


@pytest.mark.parametrize(
    ("record_date", "today", "years", "allowed"),
    [
        (date(2024, 1, 10), date(2025, 1, 10), 2, False),
        (date(2024, 1, 10), date(2026, 1, 10), 2, False),  # the anniversary itself: keep
        (date(2024, 1, 10), date(2026, 1, 11), 2, True),
        (date(2024, 1, 10), date(2026, 1, 11), 5, False),  # a state asks for longer
        (date(2024, 1, 10), date(2029, 1, 11), 5, True),
        (date(2024, 2, 29), date(2026, 2, 28), 2, False),
        (date(2024, 2, 29), date(2026, 3, 1), 2, False),  # leap day: kept through 1 March
        (date(2024, 2, 29), date(2026, 3, 2), 2, True),
    ],
)
def test_a_record_may_be_deleted_only_after_its_retention_window(
    record_date: date, today: date, years: int, allowed: bool
) -> None:
    assert may_delete(record_date, today, years) is allowed


@pytest.mark.parametrize("years", [0, 1])
def test_retention_can_be_raised_but_never_lowered_below_two_years(years: int) -> None:
    with pytest.raises(ValueError, match="never lowered"):
        may_delete(date(2024, 1, 10), date(2030, 1, 1), years)


def test_retention_years_must_be_a_whole_number() -> None:
    with pytest.raises(TypeError):
        may_delete(date(2024, 1, 10), date(2030, 1, 1), 2.5)  # type: ignore[arg-type]


def test_the_retention_decision_names_its_rule_and_keep_until_date() -> None:
    decision = retention_decision(date(2024, 1, 10), date(2025, 1, 1))
    assert (decision.keep_until, decision.rule) == (date(2026, 1, 10), "cs-record-retention@1")


@given(
    record_date=st.dates(min_value=date(2000, 1, 1), max_value=date(2090, 1, 1)),
    days_later=st.integers(min_value=-400, max_value=3000),
    extra_years=st.integers(min_value=0, max_value=8),
)
def test_nothing_younger_than_its_retention_years_is_ever_deleted_and_nothing_older_is_kept(
    record_date: date, days_later: int, extra_years: int
) -> None:
    today = record_date + timedelta(days=days_later)
    years = MINIMUM_RETENTION_YEARS + extra_years
    if days_later <= 365 * years:
        assert not may_delete(record_date, today, years)
    if days_later > 366 * years + 1:
        assert may_delete(record_date, today, years)


@pytest.mark.parametrize(
    ("last", "due"),
    [(date(2026, 5, 4), date(2028, 5, 4)), (date(2024, 2, 29), date(2026, 2, 28))],
)
def test_the_next_inventory_is_due_within_two_years_of_the_last(last: date, due: date) -> None:
    result = next_biennial_inventory_due(last)
    assert result.due_on == due
    assert result.rule == "cs-biennial-inventory@1"
