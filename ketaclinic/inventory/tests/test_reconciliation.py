"""Specification of the administration and physical-count reconciliations."""

from __future__ import annotations

from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ketaclinic.inventory.ledger import EntryKind, StockKey, WasteSource
from ketaclinic.inventory.products import (
    ESKETAMINE_28MG_NASAL_DEVICE,
    KETAMINE_50MG_PER_ML_10ML_VIAL,
    catalog_of,
    compounded_troche,
)
from ketaclinic.inventory.reconciliation import (
    CountLine,
    CountPolicy,
    DiscrepancyCode,
    OpenedContainerCount,
    estimate_allowed,
    reconcile_administration,
    reconcile_counts,
)
from ketaclinic.inventory.tests.builders import CART, PRODUCT, SAFE, entry, stocked_state

K = EntryKind
D = DiscrepancyCode

# --- Per administration -----------------------------------------------------------------------


def dose_entries(drawn: str, wasted: str = "0", returned: str = "0") -> list:
    entries = [entry(K.DRAW, drawn)]
    if Decimal(wasted):
        entries.append(entry(K.WASTE, wasted))
    if Decimal(returned):
        entries.append(entry(K.RETURN, returned))
    return entries


@pytest.mark.parametrize(
    ("drawn", "administered", "wasted", "returned", "difference"),
    [
        ("35", "35", "0", "0", "0"),
        ("40", "35", "5", "0", "0"),
        ("40", "35", "2.5", "2.5", "0"),
        ("40", "35", "0", "0", "5"),
        ("40", "35", "5.1", "0", "-0.1"),
        ("40", "40.1", "0", "0", "-0.1"),
    ],
    ids=[
        "all-given",
        "rest-wasted",
        "wasted-and-returned",
        "5mg-unaccounted",
        "over-wasted",
        "over-given",
    ],
)
def test_drawn_must_equal_administered_plus_wasted_plus_returned_to_the_tenth_of_a_mg(
    drawn: str, administered: str, wasted: str, returned: str, difference: str
) -> None:
    result = reconcile_administration(
        administration_id="adm-1",
        entries=dose_entries(drawn, wasted, returned),
        administered_mg=Decimal(administered),
    )
    assert result.difference_mg == Decimal(difference)
    assert result.balanced is (Decimal(difference) == 0)
    assert result.rule == "administration-reconciliation@1"


def test_entries_of_other_administrations_do_not_count() -> None:
    entries = [*dose_entries("40", "5"), entry(K.DRAW, "100", administration_id="adm-2")]
    result = reconcile_administration(
        administration_id="adm-1", entries=entries, administered_mg=Decimal("35")
    )
    assert (result.drawn_mg, result.balanced) == (Decimal("40"), True)


def test_wasting_the_rest_of_a_vial_is_reported_beside_the_dose_but_not_inside_it() -> None:
    entries = [
        *dose_entries("35"),
        entry(K.WASTE, "465", waste_source=WasteSource.CONTAINER_REMAINDER),
    ]
    result = reconcile_administration(
        administration_id="adm-1", entries=entries, administered_mg=Decimal("35")
    )
    assert result.balanced
    assert result.container_remainder_wasted_mg == Decimal("465")


TENTHS = st.integers(min_value=0, max_value=20_000).map(lambda n: Decimal(n) / 10)


@given(administered=TENTHS, wasted=TENTHS, returned=TENTHS, nudge=st.sampled_from([-1, 1]))
def test_any_exact_split_balances_and_a_tenth_of_a_mg_either_way_does_not(
    administered: Decimal, wasted: Decimal, returned: Decimal, nudge: int
) -> None:
    drawn = administered + wasted + returned
    entries = [entry(K.DRAW, drawn)] if drawn else []
    if wasted:
        entries.append(entry(K.WASTE, wasted))
    if returned:
        entries.append(entry(K.RETURN, returned))
    exact = reconcile_administration(
        administration_id="adm-1", entries=entries, administered_mg=administered
    )
    off = reconcile_administration(
        administration_id="adm-1",
        entries=entries,
        administered_mg=administered + nudge * Decimal("0.1"),
    )
    assert exact.balanced
    assert not off.balanced
    assert off.difference_mg == -nudge * Decimal("0.1")


# --- Per location ---------------------------------------------------------------------------

VIAL = KETAMINE_50MG_PER_ML_10ML_VIAL
BIG_BOTTLE = compounded_troche(strength_mg=Decimal("10"), troches_per_container=1001)
SMALL_BOTTLE = compounded_troche(strength_mg=Decimal("100"), troches_per_container=1000)
CATALOG = catalog_of(VIAL, ESKETAMINE_28MG_NASAL_DEVICE, BIG_BOTTLE, SMALL_BOTTLE)
SAFE_L1 = StockKey(PRODUCT, "L1", SAFE)


def count_safe(*lines: CountLine, expected=None, policy: CountPolicy | None = None):
    expected = stocked_state().at_location(SAFE) if expected is None else expected
    return reconcile_counts(
        location_id=SAFE,
        expected_mg=expected,
        counts=list(lines),
        catalog=CATALOG,
        policy=policy or CountPolicy(),
    )


def codes(result) -> list[DiscrepancyCode]:
    return [d.code for d in result.discrepancies]


def test_one_sealed_vial_and_an_opened_vial_measured_at_200_mg_match_700_mg() -> None:
    result = count_safe(
        CountLine(PRODUCT, "L1", 1, (OpenedContainerCount(Decimal("200"), estimated=False),))
    )
    assert result.balanced
    assert result.rule == "count-reconciliation@1"


def test_a_missing_sealed_vial_is_a_shortage_of_its_whole_content() -> None:
    result = count_safe(
        CountLine(PRODUCT, "L1", 0, (OpenedContainerCount(Decimal("200"), estimated=False),))
    )
    assert codes(result) == [D.COUNT_DIFFERS]
    assert result.discrepancies[0].difference_mg == Decimal("-500")


def test_with_the_default_policy_an_estimate_that_differs_is_listed_for_review() -> None:
    result = count_safe(
        CountLine(PRODUCT, "L1", 1, (OpenedContainerCount(Decimal("195"), estimated=True),))
    )
    assert codes(result) == [D.COUNT_DIFFERS]


def test_a_clinic_tolerance_covers_estimated_opened_containers_only() -> None:
    policy = CountPolicy(estimate_tolerance_mg_per_opened_container=Decimal("5"))
    estimated = CountLine(PRODUCT, "L1", 1, (OpenedContainerCount(Decimal("195"), True),))
    measured = CountLine(PRODUCT, "L1", 1, (OpenedContainerCount(Decimal("195"), False),))
    too_far = CountLine(PRODUCT, "L1", 1, (OpenedContainerCount(Decimal("194.9"), True),))
    assert count_safe(estimated, policy=policy).balanced
    assert codes(count_safe(measured, policy=policy)) == [D.COUNT_DIFFERS]
    assert codes(count_safe(too_far, policy=policy)) == [D.COUNT_DIFFERS]


@pytest.mark.parametrize(
    ("product", "allowed"),
    [
        (VIAL, True),
        (ESKETAMINE_28MG_NASAL_DEVICE, True),
        (SMALL_BOTTLE, True),
        (BIG_BOTTLE, False),
    ],
    ids=["vial", "device", "1000-troches", "1001-troches"],
)
def test_opened_schedule_iii_containers_may_be_estimated_unless_they_hold_over_1000_units(
    product, allowed: bool
) -> None:
    assert estimate_allowed(product) is allowed


def test_an_estimate_where_an_exact_count_is_required_is_a_discrepancy() -> None:
    key = StockKey(BIG_BOTTLE.product_id, "T1", SAFE)
    line = CountLine(key.product_id, "T1", 0, (OpenedContainerCount(Decimal("5000"), True),))
    result = count_safe(line, expected={key: Decimal("5000")})
    assert codes(result) == [D.ESTIMATE_NOT_ALLOWED]


def test_stock_the_ledger_expects_but_nobody_counted_is_listed() -> None:
    assert codes(count_safe()) == [D.NOT_COUNTED]


def test_stock_on_the_shelf_the_ledger_does_not_know_is_listed() -> None:
    result = count_safe(
        CountLine(PRODUCT, "L1", 1, (OpenedContainerCount(Decimal("200"), False),)),
        CountLine(PRODUCT, "L7", 1),
    )
    assert codes(result) == [D.UNEXPECTED_STOCK]


def test_counts_at_other_locations_are_not_this_locations_business() -> None:
    expected = {SAFE_L1: Decimal("500"), StockKey(PRODUCT, "L1", CART): Decimal("200")}
    assert count_safe(CountLine(PRODUCT, "L1", 1), expected=expected).balanced


@pytest.mark.parametrize(
    ("line", "code"),
    [
        (CountLine("no-such-product", "L1", 1), D.UNKNOWN_PRODUCT),
        (CountLine(PRODUCT, "L1", -1), D.INVALID_COUNT),
        (
            CountLine(PRODUCT, "L1", 1, (OpenedContainerCount(Decimal("-1"), False),)),
            D.INVALID_COUNT,
        ),
    ],
    ids=["unknown-product", "negative-sealed", "negative-opened"],
)
def test_a_count_line_that_cannot_be_read_is_a_discrepancy(line: CountLine, code) -> None:
    result = count_safe(line, expected={StockKey(line.product_id, "L1", SAFE): Decimal("500")})
    assert codes(result) == [code]


def test_a_lot_counted_twice_is_flagged_rather_than_summed() -> None:
    line = CountLine(PRODUCT, "L1", 1, (OpenedContainerCount(Decimal("200"), False),))
    assert codes(count_safe(line, line)) == [D.DUPLICATE_LINE]


@given(
    sealed=st.integers(min_value=0, max_value=20),
    opened_tenths=st.lists(st.integers(min_value=0, max_value=5000), max_size=4),
)
def test_a_count_balances_exactly_when_it_adds_up_to_the_ledger_balance(
    sealed: int, opened_tenths: list[int]
) -> None:
    opened = tuple(OpenedContainerCount(Decimal(t) / 10, estimated=False) for t in opened_tenths)
    counted = VIAL.mg_per_container * sealed + sum((o.remaining_mg for o in opened), Decimal(0))
    line = CountLine(PRODUCT, "L1", sealed, opened)
    assert count_safe(line, expected={SAFE_L1: counted}).balanced
    assert not count_safe(line, expected={SAFE_L1: counted + Decimal("0.1")}).balanced
