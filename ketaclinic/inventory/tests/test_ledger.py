"""Specification of the ledger's hard stops and balances.

Every case starts from `stocked_state()`: 700 mg of lot L1 in the safe, 100 mg drawn for
administration adm-1, and transfer tr-1 of 200 mg on its way to the cart.
"""

from __future__ import annotations

from collections import defaultdict
from datetime import datetime, timedelta
from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ketaclinic.inventory.ledger import (
    EMPTY_STATE,
    BalanceState,
    EntryKind,
    LedgerEntry,
    LedgerPolicy,
    LedgerRuleViolation,
    StockKey,
    ViolationCode,
    WasteSource,
    apply_entry,
)
from ketaclinic.inventory.products import STANDARD_CATALOG
from ketaclinic.inventory.tests.builders import (
    CART,
    COMPLIANCE_OFFICER,
    L1_EXPIRES,
    NURSE,
    PRODUCT,
    SAFE,
    SECOND_NURSE,
    at,
    entry,
    fold,
    stocked_state,
)

K = EntryKind
V = ViolationCode
SAFE_L1 = StockKey(PRODUCT, "L1", SAFE)
NAIVE = datetime(2026, 3, 2, 10, 0)  # noqa: DTZ001 - deliberately naive

# (id, entry, expected violation or None for "accepted")
RULE_CASES = [
    # Every entry names its actor.
    ("actor-named", entry(K.LOSS), None),
    ("actor-missing", entry(K.LOSS, actor_id=" "), V.ACTOR_MISSING),
    # Times carry a zone; nothing is recorded in the future.
    ("naive-time", entry(K.LOSS, occurred_at=NAIVE), V.NAIVE_DATETIME),
    # Quantities: finite, positive, at most one decimal place of a mg.
    ("one-decimal", entry(K.LOSS, "12.5"), None),
    ("trailing-zeros-are-fine", entry(K.LOSS, "12.500"), None),
    ("two-decimals", entry(K.LOSS, "12.55"), V.QUANTITY_TOO_PRECISE),
    ("not-a-number", entry(K.LOSS, "NaN"), V.QUANTITY_NOT_FINITE),
    ("zero-receipt", entry(K.RECEIPT, "0"), V.QUANTITY_NOT_POSITIVE),
    ("negative-draw", entry(K.DRAW, "-5"), V.QUANTITY_NOT_POSITIVE),
    # Receipts: a document, a lot expiry that agrees with earlier receipts, not already expired.
    ("receipt", entry(K.RECEIPT, "500"), None),
    ("receipt-no-invoice", entry(K.RECEIPT, "500", document_ref=""), V.DOCUMENT_MISSING),
    ("receipt-no-expiry", entry(K.RECEIPT, "500", lot_expires_at=None), V.LOT_EXPIRY_MISSING),
    (
        "receipt-naive-expiry",
        entry(K.RECEIPT, "500", lot_expires_at=datetime(2027, 1, 1)),  # noqa: DTZ001
        V.NAIVE_DATETIME,
    ),
    (
        "receipt-expiry-conflict",
        entry(K.RECEIPT, "500", lot_expires_at=L1_EXPIRES + timedelta(days=1)),
        V.LOT_EXPIRY_CONFLICT,
    ),
    (
        "receipt-of-expired-lot",
        entry(K.RECEIPT, "500", lot="L9", lot_expires_at=at(30)),
        V.LOT_EXPIRED,
    ),
    # Draws: for an administration and patient, from a received, unexpired lot with stock.
    ("draw", entry(K.DRAW, "35"), None),
    ("draw-all-stock", entry(K.DRAW, "700"), None),
    ("draw-beyond-stock", entry(K.DRAW, "700.1"), V.INSUFFICIENT_STOCK),
    ("draw-where-no-stock", entry(K.DRAW, "35", location_id=CART), V.INSUFFICIENT_STOCK),
    ("draw-unknown-lot", entry(K.DRAW, "35", lot="L2"), V.LOT_UNKNOWN),
    (
        "draw-just-before-expiry",
        entry(K.DRAW, "35", occurred_at=L1_EXPIRES - timedelta(microseconds=1)),
        None,
    ),
    ("draw-at-expiry", entry(K.DRAW, "35", occurred_at=L1_EXPIRES), V.LOT_EXPIRED),
    (
        "draw-no-administration",
        entry(K.DRAW, administration_id=None),
        V.ADMINISTRATION_LINK_MISSING,
    ),
    ("draw-no-patient", entry(K.DRAW, patient_id=""), V.ADMINISTRATION_LINK_MISSING),
    # Waste: witnessed by someone else; a drawn-dose waste never exceeds what was drawn.
    ("waste-drawn-dose", entry(K.WASTE, "100"), None),
    ("waste-no-witness", entry(K.WASTE, witness_id=None), V.WITNESS_MISSING),
    ("waste-self-witnessed", entry(K.WASTE, witness_id=NURSE), V.WITNESS_IS_ACTOR),
    ("waste-no-source", entry(K.WASTE, waste_source=None), V.WASTE_SOURCE_MISSING),
    ("waste-no-patient", entry(K.WASTE, patient_id=None), V.ADMINISTRATION_LINK_MISSING),
    ("waste-more-than-drawn", entry(K.WASTE, "100.1"), V.WASTE_EXCEEDS_DRAWN),
    (
        "waste-for-another-administration",
        entry(K.WASTE, "1", administration_id="adm-2"),
        V.WASTE_EXCEEDS_DRAWN,
    ),
    (
        "waste-container-remainder",
        entry(K.WASTE, "700", waste_source=WasteSource.CONTAINER_REMAINDER),
        None,
    ),
    (
        "waste-remainder-beyond-stock",
        entry(K.WASTE, "700.1", waste_source=WasteSource.CONTAINER_REMAINDER),
        V.INSUFFICIENT_STOCK,
    ),
    # Returns: never more than was drawn and not yet wasted or returned.
    ("return", entry(K.RETURN, "100"), None),
    ("return-more-than-drawn", entry(K.RETURN, "100.1"), V.RETURN_EXCEEDS_DRAWN),
    ("return-other-lot", entry(K.RETURN, "1", lot="L2"), V.RETURN_EXCEEDS_DRAWN),
    (
        "return-no-administration",
        entry(K.RETURN, administration_id=""),
        V.ADMINISTRATION_LINK_MISSING,
    ),
    # Destruction: a Form 41 / reverse-distributor document and (by default policy) a witness.
    ("destruction", entry(K.DESTRUCTION, "500"), None),
    ("destruction-no-document", entry(K.DESTRUCTION, document_ref=None), V.DOCUMENT_MISSING),
    ("destruction-no-witness", entry(K.DESTRUCTION, witness_id=None), V.WITNESS_MISSING),
    ("destruction-beyond-stock", entry(K.DESTRUCTION, "800"), V.INSUFFICIENT_STOCK),
    # Breakage, loss and theft: what happened is written down; breakage is witnessed.
    ("breakage", entry(K.BREAKAGE, "500"), None),
    ("breakage-no-reason", entry(K.BREAKAGE, reason=""), V.REASON_MISSING),
    ("breakage-no-witness", entry(K.BREAKAGE, witness_id=None), V.WITNESS_MISSING),
    ("loss", entry(K.LOSS, "5"), None),
    ("loss-no-reason", entry(K.LOSS, reason="  "), V.REASON_MISSING),
    ("loss-beyond-stock", entry(K.LOSS, "701"), V.INSUFFICIENT_STOCK),
    ("theft", entry(K.THEFT, "700"), None),
    ("theft-no-reason", entry(K.THEFT, reason=""), V.REASON_MISSING),
    # Adjustments: signed, with a reason, approved by someone else acting as compliance.
    ("adjust-up", entry(K.ADJUSTMENT, "50"), None),
    ("adjust-down", entry(K.ADJUSTMENT, "-700"), None),
    ("adjust-below-zero", entry(K.ADJUSTMENT, "-700.1"), V.INSUFFICIENT_STOCK),
    ("adjust-by-nothing", entry(K.ADJUSTMENT, "0"), V.QUANTITY_ZERO),
    ("adjust-unreceived-lot", entry(K.ADJUSTMENT, "50", lot="L2"), V.LOT_UNKNOWN),
    ("adjust-no-reason", entry(K.ADJUSTMENT, reason=""), V.REASON_MISSING),
    ("adjust-no-approver", entry(K.ADJUSTMENT, approver_id=None), V.APPROVAL_MISSING),
    ("adjust-by-nurse", entry(K.ADJUSTMENT, approver_role="nurse"), V.APPROVER_NOT_COMPLIANCE),
    (
        "adjust-self-approved",
        entry(K.ADJUSTMENT, actor_id=COMPLIANCE_OFFICER),
        V.APPROVER_IS_ACTOR,
    ),
    # Transfers: out under a fresh id; in only for a pending transfer, as sent, elsewhere.
    ("transfer-out", entry(K.TRANSFER_OUT, "700"), None),
    ("transfer-out-no-id", entry(K.TRANSFER_OUT, transfer_id=None), V.TRANSFER_ID_MISSING),
    ("transfer-out-reused-id", entry(K.TRANSFER_OUT, transfer_id="tr-1"), V.TRANSFER_ID_REUSED),
    ("transfer-out-beyond-stock", entry(K.TRANSFER_OUT, "700.1"), V.INSUFFICIENT_STOCK),
    ("transfer-in", entry(K.TRANSFER_IN, "200"), None),
    ("transfer-in-no-id", entry(K.TRANSFER_IN, "200", transfer_id=""), V.TRANSFER_ID_MISSING),
    (
        "transfer-in-unknown",
        entry(K.TRANSFER_IN, "200", transfer_id="tr-5"),
        V.TRANSFER_NOT_PENDING,
    ),
    ("transfer-in-short", entry(K.TRANSFER_IN, "199.9"), V.TRANSFER_MISMATCH),
    ("transfer-in-other-lot", entry(K.TRANSFER_IN, "200", lot="L2"), V.TRANSFER_MISMATCH),
    (
        "transfer-in-back-where-it-left",
        entry(K.TRANSFER_IN, "200", location_id=SAFE),
        V.TRANSFER_SAME_LOCATION,
    ),
]


@pytest.mark.parametrize(
    ("new_entry", "expected"), [c[1:] for c in RULE_CASES], ids=[c[0] for c in RULE_CASES]
)
def test_each_rule_accepts_the_valid_case_and_stops_the_invalid_one(
    new_entry: LedgerEntry, expected: ViolationCode | None
) -> None:
    state = stocked_state()
    if expected is None:
        after = apply_entry(state, new_entry)
        assert all(balance >= 0 for balance in after.balances_mg.values())
    else:
        with pytest.raises(LedgerRuleViolation) as stopped:
            apply_entry(state, new_entry)
        assert stopped.value.code == expected


def test_the_rule_table_covers_every_violation_code_that_apply_entry_alone_can_raise() -> None:
    covered = {expected for _, _, expected in RULE_CASES if expected is not None}
    needs_now_or_catalog = {V.FUTURE_DATED, V.PRODUCT_UNKNOWN, V.QUANTITY_MISMATCH}
    assert covered | needs_now_or_catalog == set(ViolationCode)


def test_an_entry_dated_after_now_is_refused_and_one_dated_now_is_accepted() -> None:
    state = stocked_state()
    moment = at(60)
    apply_entry(state, entry(K.LOSS, occurred_at=moment), now=moment)
    with pytest.raises(LedgerRuleViolation) as stopped:
        apply_entry(state, entry(K.LOSS, occurred_at=moment + timedelta(seconds=1)), now=moment)
    assert stopped.value.code == V.FUTURE_DATED


@pytest.mark.parametrize(
    ("overrides", "expected"),
    [
        ({"quantity_mg": Decimal("35"), "quantity_units": Decimal("0.7")}, None),
        ({"quantity_mg": Decimal("500"), "quantity_containers": Decimal("1")}, None),
        ({"quantity_mg": Decimal("35"), "quantity_units": Decimal("0.8")}, V.QUANTITY_MISMATCH),
        ({"quantity_mg": Decimal("400"), "quantity_containers": Decimal("1")}, V.QUANTITY_MISMATCH),
        ({"product_id": "ketamine-unlisted"}, V.PRODUCT_UNKNOWN),
    ],
    ids=["mL-agree", "containers-agree", "mL-disagree", "containers-disagree", "unknown-product"],
)
def test_with_a_catalog_millilitres_and_containers_must_agree_with_the_milligrams(
    overrides: dict, expected: ViolationCode | None
) -> None:
    new_entry = entry(K.DRAW, **overrides)
    if expected is None:
        apply_entry(stocked_state(), new_entry, catalog=STANDARD_CATALOG)
    else:
        with pytest.raises(LedgerRuleViolation) as stopped:
            apply_entry(stocked_state(), new_entry, catalog=STANDARD_CATALOG)
        assert stopped.value.code == expected


def test_a_clinic_may_let_destruction_go_unwitnessed_only_by_changing_policy() -> None:
    unwitnessed = entry(K.DESTRUCTION, witness_id=None)
    relaxed = LedgerPolicy(destruction_requires_witness=False)
    apply_entry(stocked_state(), unwitnessed, policy=relaxed)
    with pytest.raises(LedgerRuleViolation):
        apply_entry(stocked_state(), unwitnessed)


def test_a_completed_transfer_id_cannot_be_used_again() -> None:
    arrived = fold(entry(K.TRANSFER_IN, "200"), start=stocked_state())
    with pytest.raises(LedgerRuleViolation) as stopped:
        apply_entry(arrived, entry(K.TRANSFER_OUT, transfer_id="tr-1"))
    assert stopped.value.code == V.TRANSFER_ID_REUSED


def test_a_transfer_arrives_once() -> None:
    arrived = fold(entry(K.TRANSFER_IN, "200"), start=stocked_state())
    assert arrived.balance_mg(StockKey(PRODUCT, "L1", CART)) == Decimal("200")
    with pytest.raises(LedgerRuleViolation) as stopped:
        apply_entry(arrived, entry(K.TRANSFER_IN, "200"))
    assert stopped.value.code == V.TRANSFER_NOT_PENDING


def test_waste_of_a_drawn_dose_leaves_stock_alone_but_the_rest_of_a_vial_leaves_stock() -> None:
    state = stocked_state()
    after_dose_waste = apply_entry(state, entry(K.WASTE, "15"))
    after_remainder = apply_entry(
        state, entry(K.WASTE, "15", waste_source=WasteSource.CONTAINER_REMAINDER)
    )
    assert after_dose_waste.balance_mg(SAFE_L1) == Decimal("700")
    assert after_remainder.balance_mg(SAFE_L1) == Decimal("685")


def test_a_refused_entry_leaves_the_state_it_was_given_untouched() -> None:
    state = stocked_state()
    before = dict(state.balances_mg)
    with pytest.raises(LedgerRuleViolation):
        apply_entry(state, entry(K.DRAW, "10000"))
    assert dict(state.balances_mg) == before


def test_an_accepted_entry_returns_a_new_state_and_leaves_the_old_one_as_it_was() -> None:
    state = stocked_state()
    after = apply_entry(state, entry(K.DRAW, "35"))
    assert state.balance_mg(SAFE_L1) == Decimal("700")
    assert after.balance_mg(SAFE_L1) == Decimal("665")


def test_drawn_dose_waste_and_returns_together_never_exceed_what_was_drawn() -> None:
    state = fold(entry(K.WASTE, "60"), start=stocked_state())
    apply_entry(state, entry(K.RETURN, "40"))
    with pytest.raises(LedgerRuleViolation) as stopped:
        apply_entry(state, entry(K.RETURN, "40.1"))
    assert stopped.value.code == V.RETURN_EXCEEDS_DRAWN


# --- Invariants over arbitrary histories --------------------------------------------------------

LOTS = ("L1", "L2")
LOCATIONS = (SAFE, CART)
PEOPLE = (NURSE, SECOND_NURSE, COMPLIANCE_OFFICER)
ADMINISTRATIONS = ("adm-1", "adm-2")
EXPIRY = {"L1": L1_EXPIRES, "L2": at(60 * 24 * 3)}  # L2 expires part-way through a history
# Every kind, with the dose flow (draw, then waste or return) over-represented so that
# histories reach it often.
KIND_MIX = (*EntryKind, K.DRAW, K.DRAW, K.WASTE, K.WASTE, K.RETURN)
TENTHS = st.integers(min_value=1, max_value=6000).map(lambda n: Decimal(n) / 10)


@st.composite
def arbitrary_entry(draw: st.DrawFn, state: BalanceState, moment: datetime) -> LedgerEntry:
    """Any entry from a small world. Three times in four it is well formed and shaped to fit
    the state (so transfers arrive, doses are wasted and returned, stock runs down to zero);
    otherwise every field is drawn at random and the entry is usually refused."""
    kind = draw(st.sampled_from(KIND_MIX))
    if draw(st.integers(min_value=0, max_value=3)) == 0:
        return draw(random_fields_entry(kind, moment))
    actor, other, third = draw(st.permutations(PEOPLE))
    lot = draw(st.sampled_from(LOTS))
    location = draw(st.sampled_from(LOCATIONS))
    quantity = draw(TENTHS)
    administration = draw(st.sampled_from(ADMINISTRATIONS))
    transfer_id: str | None = f"tr-{moment.isoformat()}"
    in_stock = sorted((k, mg) for k, mg in state.balances_mg.items() if mg > 0)
    open_doses = sorted(
        ((key, tally) for key, tally in state.dose_tallies.items() if tally.unaccounted_mg > 0),
        key=str,
    )
    if kind is K.TRANSFER_IN and state.pending_transfers:
        pending = draw(st.sampled_from(sorted(state.pending_transfers.values(), key=str)))
        lot, quantity, transfer_id = pending.lot, pending.quantity_mg, pending.transfer_id
        location = SAFE if pending.from_location_id == CART else CART
    elif kind in (K.RETURN, K.WASTE) and open_doses:
        (administration, _, lot), tally = draw(st.sampled_from(open_doses))
        # Waste or return where that lot is kept, as a nurse would.
        lot_locations = [key.location_id for key, _ in in_stock if key.lot == lot]
        location = draw(st.sampled_from(lot_locations or list(LOCATIONS)))
        quantity = draw(
            st.sampled_from((tally.unaccounted_mg, min(quantity, tally.unaccounted_mg)))
        )
    elif kind is not K.RECEIPT and in_stock:
        key, balance = draw(st.sampled_from(in_stock))
        lot, location = key.lot, key.location_id
        quantity = draw(st.sampled_from((min(quantity, balance), balance)))
    if kind is K.ADJUSTMENT and draw(st.booleans()):
        quantity = -quantity
    return LedgerEntry(
        kind=kind,
        product_id=PRODUCT,
        lot=lot,
        location_id=location,
        quantity_mg=quantity,
        actor_id=actor,
        occurred_at=moment,
        witness_id=other,
        administration_id=administration,
        patient_id="pt-1",
        waste_source=draw(st.sampled_from(WasteSource)),
        transfer_id=transfer_id,
        lot_expires_at=EXPIRY[lot],
        document_ref="doc-1",
        reason="counted short",
        approver_id=third,
        approver_role="compliance",
    )


@st.composite
def random_fields_entry(draw: st.DrawFn, kind: EntryKind, moment: datetime) -> LedgerEntry:
    quantity = draw(TENTHS)
    lot = draw(st.sampled_from(LOTS))
    return LedgerEntry(
        kind=kind,
        product_id=PRODUCT,
        lot=lot,
        location_id=draw(st.sampled_from(LOCATIONS)),
        quantity_mg=-quantity if draw(st.booleans()) else quantity,
        actor_id=draw(st.sampled_from(PEOPLE)),
        occurred_at=moment,
        witness_id=draw(st.sampled_from((*PEOPLE, None))),
        administration_id=draw(st.sampled_from((*ADMINISTRATIONS, None))),
        patient_id=draw(st.sampled_from(("pt-1", None))),
        waste_source=draw(st.sampled_from((*WasteSource, None))),
        transfer_id=draw(st.sampled_from(("tr-a", "tr-b", None))),
        lot_expires_at=draw(st.sampled_from((EXPIRY[lot], L1_EXPIRES + timedelta(days=9)))),
        document_ref=draw(st.sampled_from(("doc-1", None))),
        reason=draw(st.sampled_from(("counted short", ""))),
        approver_id=draw(st.sampled_from((*PEOPLE, None))),
        approver_role=draw(st.sampled_from(("compliance", "nurse", None))),
    )


def expected_balances(accepted: list[LedgerEntry]) -> dict[StockKey, Decimal]:
    """Balance = receipts + transfers in + returns - draws - transfers out - remainder waste
    - destruction - breakage - loss - theft +/- adjustments. Waste of a drawn dose does not
    count: it left stock with its draw."""
    sign = {
        K.RECEIPT: 1,
        K.TRANSFER_IN: 1,
        K.RETURN: 1,
        K.ADJUSTMENT: 1,
        K.DRAW: -1,
        K.TRANSFER_OUT: -1,
        K.DESTRUCTION: -1,
        K.BREAKAGE: -1,
        K.LOSS: -1,
        K.THEFT: -1,
    }
    totals: dict[StockKey, Decimal] = defaultdict(Decimal)
    for item in accepted:
        if item.kind is K.WASTE:
            factor = -1 if item.waste_source is WasteSource.CONTAINER_REMAINDER else 0
        else:
            factor = sign[item.kind]
        totals[item.key] += factor * item.quantity_mg
    return totals


def run_history(data: st.DataObject, steps: int) -> tuple[BalanceState, list[LedgerEntry]]:
    state = EMPTY_STATE
    accepted: list[LedgerEntry] = []
    for step in range(steps):
        candidate = data.draw(arbitrary_entry(state, at(step * 90)))
        try:
            state = apply_entry(state, candidate)
        except LedgerRuleViolation:
            continue
        accepted.append(candidate)
        assert all(balance >= 0 for balance in state.balances_mg.values())
    return state, accepted


@settings(max_examples=200, deadline=None)
@given(data=st.data(), steps=st.integers(min_value=1, max_value=40))
def test_any_history_never_goes_negative_and_every_balance_is_the_signed_sum_of_its_entries(
    data: st.DataObject, steps: int
) -> None:
    # run_history asserts after every accepted entry that no balance is negative.
    state, accepted = run_history(data, steps)
    expected = expected_balances(accepted)
    assert {k: v for k, v in state.balances_mg.items() if v} == {
        k: v for k, v in expected.items() if v
    }
    for tally in state.dose_tallies.values():
        assert tally.wasted_mg + tally.returned_mg <= tally.drawn_mg


def test_every_waste_and_breakage_in_a_history_names_a_different_witness() -> None:
    state = stocked_state()
    for kind in (K.WASTE, K.BREAKAGE):
        for witness in (None, "", NURSE):
            with pytest.raises(LedgerRuleViolation):
                apply_entry(state, entry(kind, witness_id=witness))
        apply_entry(state, entry(kind, witness_id=SECOND_NURSE))


def test_expiry_is_judged_at_the_time_of_the_entry_so_a_replay_reaches_the_same_verdict() -> None:
    state = stocked_state()
    late_documented = entry(K.DRAW, "35", occurred_at=L1_EXPIRES - timedelta(hours=1))
    apply_entry(state, late_documented, now=L1_EXPIRES + timedelta(days=2))
