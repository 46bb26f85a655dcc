"""Ready-made ledger entries for the inventory tests: valid by default, one override away from
breaking exactly one rule."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from ketaclinic.inventory.ledger import (
    COMPLIANCE_ROLE,
    EMPTY_STATE,
    BalanceState,
    EntryKind,
    LedgerEntry,
    WasteSource,
    apply_entry,
)
from ketaclinic.inventory.products import KETAMINE_50MG_PER_ML_10ML_VIAL

VIAL = KETAMINE_50MG_PER_ML_10ML_VIAL
PRODUCT = VIAL.product_id
SAFE = "safe"
CART = "cart"
NURSE = "nurse-ana"
SECOND_NURSE = "nurse-ben"
COMPLIANCE_OFFICER = "compliance-cora"
T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
L1_EXPIRES = datetime(2027, 1, 1, tzinfo=UTC)


def at(minutes: int) -> datetime:
    return T0 + timedelta(minutes=minutes)


_DEFAULTS: dict[EntryKind, dict[str, Any]] = {
    EntryKind.RECEIPT: {"lot_expires_at": L1_EXPIRES, "document_ref": "invoice-77"},
    EntryKind.TRANSFER_OUT: {"transfer_id": "tr-9"},
    EntryKind.TRANSFER_IN: {"transfer_id": "tr-1", "location_id": CART},
    EntryKind.DRAW: {"administration_id": "adm-1", "patient_id": "pt-1"},
    EntryKind.RETURN: {"administration_id": "adm-1", "patient_id": "pt-1"},
    EntryKind.WASTE: {
        "administration_id": "adm-1",
        "patient_id": "pt-1",
        "witness_id": SECOND_NURSE,
        "waste_source": WasteSource.DRAWN_DOSE,
    },
    EntryKind.DESTRUCTION: {"document_ref": "form41-3", "witness_id": SECOND_NURSE},
    EntryKind.BREAKAGE: {"witness_id": SECOND_NURSE, "reason": "vial dropped, not recoverable"},
    EntryKind.LOSS: {"reason": "count short after shift change"},
    EntryKind.THEFT: {"reason": "cabinet forced overnight"},
    EntryKind.ADJUSTMENT: {
        "reason": "receipt keyed as 9 vials, packing slip says 10",
        "approver_id": COMPLIANCE_OFFICER,
        "approver_role": COMPLIANCE_ROLE,
    },
}


def entry(kind: EntryKind, quantity_mg: str | Decimal = "10", **overrides: Any) -> LedgerEntry:
    """A valid entry of `kind` against `stocked_state()`, with `overrides` applied."""
    fields: dict[str, Any] = {
        "kind": kind,
        "product_id": PRODUCT,
        "lot": "L1",
        "location_id": SAFE,
        "quantity_mg": Decimal(quantity_mg),
        "actor_id": NURSE,
        "occurred_at": at(60),
    }
    fields.update(_DEFAULTS[kind])
    base = LedgerEntry(**fields)
    return replace(base, **overrides)


def fold(*entries: LedgerEntry, start: BalanceState = EMPTY_STATE) -> BalanceState:
    state = start
    for item in entries:
        state = apply_entry(state, item)
    return state


def stocked_state() -> BalanceState:
    """1,000 mg of lot L1 received into the safe; 100 mg drawn for adm-1; 200 mg of it sent
    towards the cart as transfer tr-1 (not yet arrived). The safe holds 700 mg."""
    return fold(
        entry(EntryKind.RECEIPT, "1000", occurred_at=at(0)),
        entry(EntryKind.DRAW, "100", occurred_at=at(10)),
        entry(EntryKind.TRANSFER_OUT, "200", transfer_id="tr-1", occurred_at=at(20)),
    )
