"""Specification of the ledger's hash chain and of recomputing balances from stored rows."""

from __future__ import annotations

import itertools
from dataclasses import fields, replace
from datetime import UTC, timedelta, timezone
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from ketaclinic.inventory.ledger import (
    EMPTY_STATE,
    GENESIS_HASH,
    EntryKind,
    LedgerEntry,
    LedgerRow,
    StockKey,
    ViolationCode,
    WasteSource,
    build_row,
    entry_hash,
    recompute_balances,
    record_entry,
    row_fields,
    verify_chain,
)
from ketaclinic.inventory.tests.builders import CART, PRODUCT, SAFE, at, entry

K = EntryKind


def history() -> list[LedgerEntry]:
    """A day in which every entry kind and every optional field appears at least once."""
    return [
        entry(K.RECEIPT, "1000", occurred_at=at(0), quantity_containers=Decimal("2")),
        entry(K.DRAW, "35", occurred_at=at(10), quantity_units=Decimal("0.7")),
        entry(K.WASTE, "5", occurred_at=at(50)),
        entry(K.RETURN, "2.5", occurred_at=at(55)),
        entry(K.WASTE, "465", occurred_at=at(56), waste_source=WasteSource.CONTAINER_REMAINDER),
        entry(K.TRANSFER_OUT, "200", transfer_id="tr-1", occurred_at=at(60)),
        entry(K.TRANSFER_IN, "200", transfer_id="tr-1", location_id=CART, occurred_at=at(70)),
        entry(K.BREAKAGE, "50", location_id=CART, occurred_at=at(80)),
        entry(K.LOSS, "0.5", occurred_at=at(90)),
        entry(K.ADJUSTMENT, "-0.5", occurred_at=at(100)),
        entry(K.DESTRUCTION, "100", location_id=CART, occurred_at=at(110)),
        entry(K.THEFT, "50", location_id=CART, occurred_at=at(120)),
    ]


def chained(entries: list[LedgerEntry]) -> list[LedgerRow]:
    state, prev_hash, rows = EMPTY_STATE, GENESIS_HASH, []
    for sequence, item in enumerate(entries, start=1):
        state, row = record_entry(state, item, sequence=sequence, prev_hash=prev_hash)
        rows.append(row)
        prev_hash = row.row_hash
    return rows


ROWS = chained(history())


def test_an_untouched_chain_verifies() -> None:
    assert verify_chain(ROWS) is None


def test_each_row_stores_the_running_balance_of_its_own_stock_key() -> None:
    assert [row.balance_after_mg for row in ROWS] == [
        Decimal(n)
        for n in ("1000", "965", "965", "967.5", "502.5", "302.5", "200", "150", "302", "301.5")
    ] + [Decimal("50"), Decimal("0")]


def test_the_hash_is_a_sha256_hex_digest_chained_from_the_genesis_hash() -> None:
    assert ROWS[0].prev_hash == GENESIS_HASH
    assert all(len(row.row_hash) == 64 for row in ROWS)
    assert all(later.prev_hash == earlier.row_hash for earlier, later in itertools.pairwise(ROWS))


def test_the_same_fields_always_hash_alike_and_the_previous_hash_matters() -> None:
    covered = row_fields(sequence=1, entry=history()[0], balance_after_mg=Decimal("1000"))
    assert entry_hash(GENESIS_HASH, covered) == entry_hash(GENESIS_HASH, dict(covered))
    assert entry_hash(GENESIS_HASH, covered) != entry_hash("f" * 64, covered)


def test_a_database_round_trip_of_decimal_scale_and_time_zone_does_not_break_the_chain() -> None:
    eastern = timezone(timedelta(hours=-5))
    reloaded = [
        replace(
            row,
            entry=replace(
                row.entry,
                quantity_mg=row.entry.quantity_mg.quantize(Decimal("0.001")),
                occurred_at=row.entry.occurred_at.astimezone(eastern),
            ),
            balance_after_mg=row.balance_after_mg.quantize(Decimal("0.0001")),
        )
        for row in ROWS
    ]
    assert verify_chain(reloaded) is None


def test_a_deleted_row_breaks_the_chain_at_the_row_after_it() -> None:
    assert verify_chain(ROWS[:3] + ROWS[4:]) == 3


def test_two_swapped_rows_break_the_chain_where_the_swap_begins() -> None:
    swapped = ROWS[:2] + [ROWS[3], ROWS[2]] + ROWS[4:]
    assert verify_chain(swapped) == 2


def test_a_slice_verifies_given_the_hash_of_the_row_before_it() -> None:
    assert verify_chain(ROWS[5:], prev_hash=ROWS[4].row_hash) is None
    assert verify_chain(ROWS[5:]) == 0


def test_a_chain_rebuilt_around_a_forged_balance_verifies_but_recomputing_exposes_it() -> None:
    forged = list(ROWS[:3])
    forged.append(
        build_row(
            sequence=4,
            entry=ROWS[3].entry,
            balance_after_mg=ROWS[3].balance_after_mg + 10,
            prev_hash=forged[-1].row_hash,
        )
    )
    assert verify_chain(forged) is None
    report = recompute_balances(forged)
    assert not report.ok
    assert [(m.index, m.stored_mg, m.recomputed_mg) for m in report.balance_mismatches] == [
        (3, Decimal("977.5"), Decimal("967.5"))
    ]


def test_recomputing_an_honest_history_matches_every_stored_balance() -> None:
    report = recompute_balances(ROWS)
    assert report.ok
    assert report.rule == "cs-ledger@1"
    assert report.state.balance_mg(StockKey(PRODUCT, "L1", SAFE)) == Decimal("301.5")
    assert report.state.balance_mg(StockKey(PRODUCT, "L1", CART)) == Decimal("0")


def test_recomputing_reports_a_stored_row_that_broke_a_rule_and_carries_on() -> None:
    overdraw = entry(K.DRAW, "5000", occurred_at=at(200))
    bad_row = build_row(
        sequence=len(ROWS) + 1,
        entry=overdraw,
        balance_after_mg=Decimal("-4698.5"),
        prev_hash=ROWS[-1].row_hash,
    )
    report = recompute_balances([*ROWS, bad_row])
    assert [(v.index, v.code) for v in report.violations] == [
        (len(ROWS), ViolationCode.INSUFFICIENT_STOCK)
    ]
    assert report.balance_mismatches == ()


# --- Any single-field tamper is detected --------------------------------------------------------

TEXT = st.text(min_size=1, max_size=12)
DECIMALS = st.decimals(
    min_value=Decimal("-100000"), max_value=Decimal("100000"), places=3, allow_nan=False
)
MOMENTS = st.datetimes(timezones=st.just(UTC))

ENTRY_FIELD_VALUES: dict[str, st.SearchStrategy[Any]] = {
    "kind": st.sampled_from(EntryKind),
    "product_id": TEXT,
    "lot": TEXT,
    "location_id": TEXT,
    "quantity_mg": DECIMALS,
    "actor_id": TEXT,
    "occurred_at": MOMENTS,
    "quantity_units": st.none() | DECIMALS,
    "quantity_containers": st.none() | DECIMALS,
    "witness_id": st.none() | TEXT,
    "administration_id": st.none() | TEXT,
    "patient_id": st.none() | TEXT,
    "waste_source": st.none() | st.sampled_from(WasteSource),
    "transfer_id": st.none() | TEXT,
    "lot_expires_at": st.none() | MOMENTS,
    "document_ref": st.none() | TEXT,
    "reason": st.text(max_size=12),
    "approver_id": st.none() | TEXT,
    "approver_role": st.none() | TEXT,
}
ROW_FIELD_VALUES: dict[str, st.SearchStrategy[Any]] = {
    "sequence": st.integers(min_value=-5, max_value=10_000),
    "balance_after_mg": DECIMALS,
    "prev_hash": st.text(alphabet="0123456789abcdef", min_size=64, max_size=64),
    "row_hash": st.text(alphabet="0123456789abcdef", min_size=64, max_size=64),
}


def test_the_tamper_strategies_cover_every_field_of_an_entry_and_a_row() -> None:
    assert set(ENTRY_FIELD_VALUES) == {f.name for f in fields(LedgerEntry)}
    assert set(ROW_FIELD_VALUES) == {f.name for f in fields(LedgerRow)} - {"entry"}


@settings(max_examples=500, deadline=None)
@given(
    index=st.integers(min_value=0, max_value=len(ROWS) - 1),
    name_and_value=st.sampled_from(sorted(ENTRY_FIELD_VALUES)).flatmap(
        lambda name: st.tuples(st.just(name), ENTRY_FIELD_VALUES[name])
    ),
)
def test_changing_any_one_entry_field_of_any_row_is_detected_at_that_row(
    index: int, name_and_value: tuple[str, Any]
) -> None:
    name, value = name_and_value
    row = ROWS[index]
    assume(value != getattr(row.entry, name))
    tampered = list(ROWS)
    tampered[index] = replace(row, entry=replace(row.entry, **{name: value}))
    assert verify_chain(tampered) == index


@settings(max_examples=300, deadline=None)
@given(
    index=st.integers(min_value=0, max_value=len(ROWS) - 1),
    name_and_value=st.sampled_from(sorted(ROW_FIELD_VALUES)).flatmap(
        lambda name: st.tuples(st.just(name), ROW_FIELD_VALUES[name])
    ),
)
def test_changing_the_sequence_balance_or_hashes_of_any_row_is_detected_at_that_row(
    index: int, name_and_value: tuple[str, Any]
) -> None:
    name, value = name_and_value
    row = ROWS[index]
    assume(value != getattr(row, name))
    tampered = list(ROWS)
    tampered[index] = replace(row, **{name: value})
    assert verify_chain(tampered) == index


@pytest.mark.parametrize("bad", [Decimal("NaN"), Decimal("Infinity")])
def test_a_row_whose_quantity_cannot_be_hashed_breaks_the_chain(bad: Decimal) -> None:
    tampered = list(ROWS)
    tampered[2] = replace(ROWS[2], entry=replace(ROWS[2].entry, quantity_mg=bad))
    assert verify_chain(tampered) == 2
