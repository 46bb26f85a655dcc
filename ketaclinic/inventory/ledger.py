"""The Schedule III controlled-substance ledger: entries, hard stops, running balances, hash chain.

Pure: no Django, no clock. Services load the relevant `BalanceState`, call `apply_entry` (or
`record_entry`, which also builds the hash-chained row), and store the result.

Stock is counted in milligrams per (product, lot, location). How each entry kind moves stock:

    receipt, transfer_in, return                  + quantity
    draw, transfer_out, destruction,
    breakage, loss, theft                          - quantity
    waste of a container remainder                 - quantity   (the rest of an opened vial)
    waste of a drawn dose                            0          (already left stock with the draw)
    adjustment                                     +/- quantity (signed, compliance-approved)

Waste comes in two sources because a clinic wastes two different things (clinical-reference §6,
"Wastage"): the residue of a dose already drawn into a syringe, which left stock with its draw and
belongs to the per-administration account drawn = administered + wasted + returned; and the
unusable rest of an opened container, which is still in stock until it is wasted. Both are linked
to the patient for whom the dose was drawn and both need a witness.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, fields
from datetime import UTC, date, datetime
from decimal import Decimal
from enum import Enum, StrEnum
from types import MappingProxyType
from typing import Any

from ketaclinic.core.formatting import plain_number
from ketaclinic.inventory.products import Product

LEDGER_RULE = "cs-ledger@1"
CHAIN_RULE = "cs-ledger-chain@1"
GENESIS_HASH = "0" * 64

# ARCHITECTURE §5: the role that may approve an inventory adjustment.
COMPLIANCE_ROLE = "compliance"
# ARCHITECTURE §9: doses in mg as Decimal with one decimal place.
MG_DECIMAL_PLACES = 1


class EntryKind(StrEnum):
    RECEIPT = "receipt"
    TRANSFER_OUT = "transfer_out"
    TRANSFER_IN = "transfer_in"
    DRAW = "draw"
    RETURN = "return"
    WASTE = "waste"
    DESTRUCTION = "destruction"
    BREAKAGE = "breakage"
    LOSS = "loss"
    THEFT = "theft"
    ADJUSTMENT = "adjustment"


class WasteSource(StrEnum):
    DRAWN_DOSE = "drawn_dose"
    CONTAINER_REMAINDER = "container_remainder"


class ViolationCode(StrEnum):
    ACTOR_MISSING = "actor_missing"
    NAIVE_DATETIME = "naive_datetime"
    FUTURE_DATED = "future_dated"
    QUANTITY_NOT_FINITE = "quantity_not_finite"
    QUANTITY_TOO_PRECISE = "quantity_too_precise"
    QUANTITY_NOT_POSITIVE = "quantity_not_positive"
    QUANTITY_ZERO = "quantity_zero"
    QUANTITY_MISMATCH = "quantity_mismatch"
    PRODUCT_UNKNOWN = "product_unknown"
    INSUFFICIENT_STOCK = "insufficient_stock"
    LOT_UNKNOWN = "lot_unknown"
    LOT_EXPIRED = "lot_expired"
    LOT_EXPIRY_MISSING = "lot_expiry_missing"
    LOT_EXPIRY_CONFLICT = "lot_expiry_conflict"
    DOCUMENT_MISSING = "document_missing"
    ADMINISTRATION_LINK_MISSING = "administration_link_missing"
    WASTE_SOURCE_MISSING = "waste_source_missing"
    WASTE_EXCEEDS_DRAWN = "waste_exceeds_drawn"
    RETURN_EXCEEDS_DRAWN = "return_exceeds_drawn"
    WITNESS_MISSING = "witness_missing"
    WITNESS_IS_ACTOR = "witness_is_actor"
    REASON_MISSING = "reason_missing"
    APPROVAL_MISSING = "approval_missing"
    APPROVER_NOT_COMPLIANCE = "approver_not_compliance"
    APPROVER_IS_ACTOR = "approver_is_actor"
    TRANSFER_ID_MISSING = "transfer_id_missing"
    TRANSFER_ID_REUSED = "transfer_id_reused"
    TRANSFER_NOT_PENDING = "transfer_not_pending"
    TRANSFER_MISMATCH = "transfer_mismatch"
    TRANSFER_SAME_LOCATION = "transfer_same_location"


class LedgerRuleViolation(Exception):
    """A hard stop: the entry must not be recorded. `code` is stable; `message` is for people."""

    def __init__(self, code: ViolationCode, message: str) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message


@dataclass(frozen=True, slots=True, order=True)
class StockKey:
    product_id: str
    lot: str
    location_id: str


@dataclass(frozen=True, slots=True)
class LedgerEntry:
    """One movement of a controlled substance, as the person who made it recorded it.

    `quantity_mg` is authoritative. `quantity_units` (mL of solution, or devices or troches) and
    `quantity_containers` (sealed commercial containers) are what staff see and the DEA records
    show; when a catalog is passed to `apply_entry` they must agree with the milligrams exactly.
    `quantity_mg` is positive except for an adjustment, where its sign is the direction.
    """

    kind: EntryKind
    product_id: str
    lot: str
    location_id: str
    quantity_mg: Decimal
    actor_id: str
    occurred_at: datetime
    quantity_units: Decimal | None = None
    quantity_containers: Decimal | None = None
    witness_id: str | None = None
    administration_id: str | None = None
    patient_id: str | None = None
    waste_source: WasteSource | None = None
    transfer_id: str | None = None
    lot_expires_at: datetime | None = None
    document_ref: str | None = None
    reason: str = ""
    approver_id: str | None = None
    approver_role: str | None = None

    @property
    def key(self) -> StockKey:
        return StockKey(self.product_id, self.lot, self.location_id)


@dataclass(frozen=True, slots=True)
class DoseTally:
    """What has happened to the milligrams drawn for one administration from one lot."""

    drawn_mg: Decimal = Decimal(0)
    wasted_mg: Decimal = Decimal(0)
    returned_mg: Decimal = Decimal(0)

    @property
    def unaccounted_mg(self) -> Decimal:
        """Drawn milligrams not yet wasted or returned (the most that can still be)."""
        return self.drawn_mg - self.wasted_mg - self.returned_mg


@dataclass(frozen=True, slots=True)
class PendingTransfer:
    transfer_id: str
    product_id: str
    lot: str
    from_location_id: str
    quantity_mg: Decimal


def _empty() -> Mapping[Any, Any]:
    return MappingProxyType({})


@dataclass(frozen=True, slots=True)
class BalanceState:
    """Everything the ledger rules need to know about the past. Immutable; each apply copies.

    A service need not load all history: it may build a state holding only the stock keys, lots,
    dose tallies and transfers the entry touches.
    """

    balances_mg: Mapping[StockKey, Decimal] = field(default_factory=_empty)
    lot_expiry: Mapping[tuple[str, str], datetime] = field(default_factory=_empty)
    dose_tallies: Mapping[tuple[str, str, str], DoseTally] = field(default_factory=_empty)
    pending_transfers: Mapping[str, PendingTransfer] = field(default_factory=_empty)
    closed_transfer_ids: frozenset[str] = frozenset()

    def balance_mg(self, key: StockKey) -> Decimal:
        return self.balances_mg.get(key, Decimal(0))

    def at_location(self, location_id: str) -> Mapping[StockKey, Decimal]:
        return MappingProxyType(
            {key: mg for key, mg in self.balances_mg.items() if key.location_id == location_id}
        )


EMPTY_STATE = BalanceState()


@dataclass(frozen=True, slots=True)
class LedgerPolicy:
    """Clinic-configurable ledger rules that the reference leaves open."""

    # clinical-reference §6 does not say who witnesses a Form 41 destruction; the Form 41 itself
    # has two employee witness lines (see records.py). Conservative default: the ledger entry
    # needs one witness other than the actor; the Form 41 record carries both.
    destruction_requires_witness: bool = True


DEFAULT_POLICY = LedgerPolicy()

_WITNESSED_KINDS = frozenset({EntryKind.WASTE, EntryKind.BREAKAGE})
_REASONED_KINDS = frozenset(
    {EntryKind.BREAKAGE, EntryKind.LOSS, EntryKind.THEFT, EntryKind.ADJUSTMENT}
)
_DOSE_LINKED_KINDS = frozenset({EntryKind.DRAW, EntryKind.RETURN, EntryKind.WASTE})
_INCREASING_KINDS = frozenset({EntryKind.RECEIPT, EntryKind.TRANSFER_IN, EntryKind.RETURN})
_DECREASING_KINDS = frozenset(
    {
        EntryKind.DRAW,
        EntryKind.TRANSFER_OUT,
        EntryKind.DESTRUCTION,
        EntryKind.BREAKAGE,
        EntryKind.LOSS,
        EntryKind.THEFT,
    }
)


def stock_effect_mg(entry: LedgerEntry) -> Decimal:
    """The signed change an entry makes to the balance of its own stock key."""
    if entry.kind in _INCREASING_KINDS or entry.kind is EntryKind.ADJUSTMENT:
        return entry.quantity_mg
    if entry.kind in _DECREASING_KINDS:
        return -entry.quantity_mg
    if entry.kind is EntryKind.WASTE and entry.waste_source is WasteSource.CONTAINER_REMAINDER:
        return -entry.quantity_mg
    return Decimal(0)


def apply_entry(
    state: BalanceState,
    entry: LedgerEntry,
    *,
    now: datetime | None = None,
    catalog: Mapping[str, Product] | None = None,
    policy: LedgerPolicy = DEFAULT_POLICY,
) -> BalanceState:
    """Check every hard stop for `entry` against `state` and return the state after it.

    Raises `LedgerRuleViolation` and leaves `state` untouched when any rule fails. Expiry is
    judged at `entry.occurred_at`, so replaying history gives the same verdicts; `now`, when
    given, only rejects entries dated in the future.
    """
    _check_common(entry, now=now, catalog=catalog)
    _check_kind(state, entry, policy=policy)
    return _fold(state, entry)


def _violation(code: ViolationCode, message: str) -> LedgerRuleViolation:
    return LedgerRuleViolation(code, message)


def _is_aware(moment: datetime) -> bool:
    return moment.tzinfo is not None and moment.utcoffset() is not None


def _blank(text: str | None) -> bool:
    return text is None or not text.strip()


def _check_common(
    entry: LedgerEntry, *, now: datetime | None, catalog: Mapping[str, Product] | None
) -> None:
    if _blank(entry.actor_id):
        raise _violation(ViolationCode.ACTOR_MISSING, "every entry names the person who made it")
    if not _is_aware(entry.occurred_at) or (now is not None and not _is_aware(now)):
        raise _violation(ViolationCode.NAIVE_DATETIME, "times must carry a time zone")
    if now is not None and entry.occurred_at > now:
        raise _violation(ViolationCode.FUTURE_DATED, "an entry cannot record the future")
    quantity = entry.quantity_mg
    if not quantity.is_finite():
        raise _violation(ViolationCode.QUANTITY_NOT_FINITE, "quantity must be a finite number")
    exponent = quantity.normalize().as_tuple().exponent
    if isinstance(exponent, int) and exponent < -MG_DECIMAL_PLACES:
        raise _violation(
            ViolationCode.QUANTITY_TOO_PRECISE,
            f"quantities are recorded to {MG_DECIMAL_PLACES} decimal place(s) of a mg",
        )
    if entry.kind is EntryKind.ADJUSTMENT:
        if quantity == 0:
            raise _violation(ViolationCode.QUANTITY_ZERO, "an adjustment of 0 mg changes nothing")
    elif quantity <= 0:
        raise _violation(ViolationCode.QUANTITY_NOT_POSITIVE, "quantity must be more than 0 mg")
    if catalog is not None:
        _check_quantities_agree(entry, catalog)


def _check_quantities_agree(entry: LedgerEntry, catalog: Mapping[str, Product]) -> None:
    product = catalog.get(entry.product_id)
    if product is None:
        raise _violation(ViolationCode.PRODUCT_UNKNOWN, f"no product {entry.product_id!r}")
    magnitude = abs(entry.quantity_mg)
    if entry.quantity_units is not None and product.mg_for_units(entry.quantity_units) != magnitude:
        raise _violation(
            ViolationCode.QUANTITY_MISMATCH,
            f"{entry.quantity_units} {product.dose_unit.value} of {product.strength_label} "
            f"is not {plain_number(magnitude)} mg",
        )
    if (
        entry.quantity_containers is not None
        and product.mg_for_containers(entry.quantity_containers) != magnitude
    ):
        raise _violation(
            ViolationCode.QUANTITY_MISMATCH,
            f"{entry.quantity_containers} x {product.container_description} is not {plain_number(magnitude)} mg",
        )


def _check_kind(state: BalanceState, entry: LedgerEntry, *, policy: LedgerPolicy) -> None:
    kind = entry.kind
    if kind in _DOSE_LINKED_KINDS and (_blank(entry.administration_id) or _blank(entry.patient_id)):
        raise _violation(
            ViolationCode.ADMINISTRATION_LINK_MISSING,
            f"a {kind} names the administration and the patient it was for",
        )
    witnessed = kind in _WITNESSED_KINDS or (
        kind is EntryKind.DESTRUCTION and policy.destruction_requires_witness
    )
    if witnessed:
        _check_witness(entry)
    if kind in _REASONED_KINDS and _blank(entry.reason):
        raise _violation(ViolationCode.REASON_MISSING, f"a {kind} records what happened and why")
    if kind in (EntryKind.RECEIPT, EntryKind.DESTRUCTION) and _blank(entry.document_ref):
        # Receipts: CIII purchases are documented by invoices (clinical-reference §6 [C] #133).
        # Destruction: the DEA Form 41 or reverse-distributor record (§6 [C] #136).
        raise _violation(ViolationCode.DOCUMENT_MISSING, f"a {kind} cites its document")
    if kind is EntryKind.RECEIPT:
        _check_receipt(state, entry)
    elif kind is EntryKind.DRAW:
        _check_draw(state, entry)
    elif kind is EntryKind.WASTE:
        _check_waste(state, entry)
    elif kind is EntryKind.RETURN:
        _check_return(state, entry)
    elif kind is EntryKind.TRANSFER_OUT:
        _check_transfer_out(state, entry)
    elif kind is EntryKind.TRANSFER_IN:
        _check_transfer_in(state, entry)
    elif kind is EntryKind.ADJUSTMENT:
        _check_adjustment(state, entry)
    if state.balance_mg(entry.key) + stock_effect_mg(entry) < 0:
        raise _violation(
            ViolationCode.INSUFFICIENT_STOCK,
            f"lot {entry.lot} at {entry.location_id} holds {plain_number(state.balance_mg(entry.key))} mg; "
            "a balance never goes below zero",
        )


def _check_witness(entry: LedgerEntry) -> None:
    if _blank(entry.witness_id):
        raise _violation(ViolationCode.WITNESS_MISSING, f"a {entry.kind} needs a witness")
    if entry.witness_id == entry.actor_id:
        raise _violation(
            ViolationCode.WITNESS_IS_ACTOR, "the witness must be a different person from the actor"
        )


def _check_receipt(state: BalanceState, entry: LedgerEntry) -> None:
    expires_at = entry.lot_expires_at
    if expires_at is None:
        raise _violation(ViolationCode.LOT_EXPIRY_MISSING, "a receipt records the lot's expiry")
    if not _is_aware(expires_at):
        raise _violation(ViolationCode.NAIVE_DATETIME, "the lot's expiry must carry a time zone")
    known = state.lot_expiry.get((entry.product_id, entry.lot))
    if known is not None and known != expires_at:
        raise _violation(
            ViolationCode.LOT_EXPIRY_CONFLICT,
            f"lot {entry.lot} was received before with expiry {known.isoformat()}",
        )
    if entry.occurred_at >= expires_at:
        raise _violation(ViolationCode.LOT_EXPIRED, f"lot {entry.lot} is already expired")


def _check_draw(state: BalanceState, entry: LedgerEntry) -> None:
    expires_at = state.lot_expiry.get((entry.product_id, entry.lot))
    if expires_at is None:
        raise _violation(ViolationCode.LOT_UNKNOWN, f"lot {entry.lot} was never received")
    if entry.occurred_at >= expires_at:
        raise _violation(ViolationCode.LOT_EXPIRED, f"lot {entry.lot} expired {expires_at}")


def _dose_key(entry: LedgerEntry) -> tuple[str, str, str]:
    return (entry.administration_id or "", entry.product_id, entry.lot)


def _check_waste(state: BalanceState, entry: LedgerEntry) -> None:
    if entry.waste_source is None:
        raise _violation(
            ViolationCode.WASTE_SOURCE_MISSING,
            "say whether the waste is left over from a drawn dose or the rest of a container",
        )
    if entry.waste_source is WasteSource.DRAWN_DOSE:
        tally = state.dose_tallies.get(_dose_key(entry), DoseTally())
        if entry.quantity_mg > tally.unaccounted_mg:
            raise _violation(
                ViolationCode.WASTE_EXCEEDS_DRAWN,
                f"only {plain_number(tally.unaccounted_mg)} mg of lot {entry.lot} drawn for this "
                "administration is not yet wasted or returned",
            )


def _check_return(state: BalanceState, entry: LedgerEntry) -> None:
    tally = state.dose_tallies.get(_dose_key(entry), DoseTally())
    if entry.quantity_mg > tally.unaccounted_mg:
        raise _violation(
            ViolationCode.RETURN_EXCEEDS_DRAWN,
            f"only {plain_number(tally.unaccounted_mg)} mg of lot {entry.lot} drawn for this administration "
            "is not yet wasted or returned",
        )


def _check_transfer_out(state: BalanceState, entry: LedgerEntry) -> None:
    transfer_id = entry.transfer_id
    if transfer_id is None or _blank(transfer_id):
        raise _violation(ViolationCode.TRANSFER_ID_MISSING, "a transfer carries its transfer id")
    if transfer_id in state.pending_transfers or transfer_id in state.closed_transfer_ids:
        raise _violation(ViolationCode.TRANSFER_ID_REUSED, f"transfer {transfer_id} exists")


def _check_transfer_in(state: BalanceState, entry: LedgerEntry) -> None:
    transfer_id = entry.transfer_id
    if transfer_id is None or _blank(transfer_id):
        raise _violation(ViolationCode.TRANSFER_ID_MISSING, "a transfer carries its transfer id")
    pending = state.pending_transfers.get(transfer_id)
    if pending is None:
        raise _violation(
            ViolationCode.TRANSFER_NOT_PENDING, f"no transfer {transfer_id} is waiting to arrive"
        )
    if (pending.product_id, pending.lot, pending.quantity_mg) != (
        entry.product_id,
        entry.lot,
        entry.quantity_mg,
    ):
        raise _violation(
            ViolationCode.TRANSFER_MISMATCH,
            f"transfer {transfer_id} sent {plain_number(pending.quantity_mg)} mg of lot {pending.lot}",
        )
    if pending.from_location_id == entry.location_id:
        raise _violation(
            ViolationCode.TRANSFER_SAME_LOCATION, "a transfer arrives at a different location"
        )


def _check_adjustment(state: BalanceState, entry: LedgerEntry) -> None:
    if _blank(entry.approver_id):
        raise _violation(ViolationCode.APPROVAL_MISSING, "an adjustment needs an approver")
    if entry.approver_role != COMPLIANCE_ROLE:
        raise _violation(
            ViolationCode.APPROVER_NOT_COMPLIANCE,
            f"an adjustment is approved by someone acting in the {COMPLIANCE_ROLE} role",
        )
    if entry.approver_id == entry.actor_id:
        raise _violation(ViolationCode.APPROVER_IS_ACTOR, "the approver must be a different person")
    if (entry.product_id, entry.lot) not in state.lot_expiry:
        # Only a receipt brings a lot onto the books, with its invoice and expiry.
        raise _violation(ViolationCode.LOT_UNKNOWN, f"lot {entry.lot} was never received")


def _fold(state: BalanceState, entry: LedgerEntry) -> BalanceState:
    """The state after `entry`, without checking any rule (checks happen before)."""
    balances = dict(state.balances_mg)
    balances[entry.key] = state.balance_mg(entry.key) + stock_effect_mg(entry)

    lot_expiry = state.lot_expiry
    if entry.kind is EntryKind.RECEIPT and entry.lot_expires_at is not None:
        lots = dict(state.lot_expiry)
        lots.setdefault((entry.product_id, entry.lot), entry.lot_expires_at)
        lot_expiry = MappingProxyType(lots)

    dose_tallies = state.dose_tallies
    tally_change = _tally_change(entry)
    if tally_change is not None:
        tallies = dict(state.dose_tallies)
        old = tallies.get(_dose_key(entry), DoseTally())
        tallies[_dose_key(entry)] = DoseTally(
            drawn_mg=old.drawn_mg + tally_change.drawn_mg,
            wasted_mg=old.wasted_mg + tally_change.wasted_mg,
            returned_mg=old.returned_mg + tally_change.returned_mg,
        )
        dose_tallies = MappingProxyType(tallies)

    pending_transfers = state.pending_transfers
    closed_transfer_ids = state.closed_transfer_ids
    if entry.kind is EntryKind.TRANSFER_OUT and entry.transfer_id:
        pending = dict(state.pending_transfers)
        pending[entry.transfer_id] = PendingTransfer(
            transfer_id=entry.transfer_id,
            product_id=entry.product_id,
            lot=entry.lot,
            from_location_id=entry.location_id,
            quantity_mg=entry.quantity_mg,
        )
        pending_transfers = MappingProxyType(pending)
    elif entry.kind is EntryKind.TRANSFER_IN and entry.transfer_id:
        pending = dict(state.pending_transfers)
        pending.pop(entry.transfer_id, None)
        pending_transfers = MappingProxyType(pending)
        closed_transfer_ids = closed_transfer_ids | {entry.transfer_id}

    return BalanceState(
        balances_mg=MappingProxyType(balances),
        lot_expiry=lot_expiry,
        dose_tallies=dose_tallies,
        pending_transfers=pending_transfers,
        closed_transfer_ids=closed_transfer_ids,
    )


def _tally_change(entry: LedgerEntry) -> DoseTally | None:
    if entry.kind is EntryKind.DRAW:
        return DoseTally(drawn_mg=entry.quantity_mg)
    if entry.kind is EntryKind.RETURN:
        return DoseTally(returned_mg=entry.quantity_mg)
    if entry.kind is EntryKind.WASTE and entry.waste_source is WasteSource.DRAWN_DOSE:
        return DoseTally(wasted_mg=entry.quantity_mg)
    return None


# --- Hash chain -------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class LedgerRow:
    """An entry as stored: its place in the chain, the running balance of its stock key after
    it, and the hashes that link it to the row before."""

    sequence: int
    entry: LedgerEntry
    balance_after_mg: Decimal
    prev_hash: str
    row_hash: str


def row_fields(
    *, sequence: int, entry: LedgerEntry, balance_after_mg: Decimal
) -> dict[str, object]:
    """The fields a row's hash covers: every entry field, the sequence and the running balance."""
    covered: dict[str, object] = {f.name: getattr(entry, f.name) for f in fields(entry)}
    covered["sequence"] = sequence
    covered["balance_after_mg"] = balance_after_mg
    return covered


def entry_hash(prev_hash: str, entry_fields: Mapping[str, object]) -> str:
    """sha256 over the previous hash and the canonical JSON of the fields (hex digest).

    Canonical form: keys sorted, no spaces, UTF-8; Decimals as plain numbers without trailing
    zeros ("35.0" and "35.000" hash alike, so a database's column scale cannot break the chain);
    datetimes as UTC ISO 8601 with microseconds and "Z"; dates ISO; enums by value.
    """
    payload = json.dumps(
        {name: _canonical(value) for name, value in entry_fields.items()},
        sort_keys=True,
        separators=(",", ":"),
        ensure_ascii=False,
    )
    digest = hashlib.sha256()
    digest.update(prev_hash.encode("ascii"))
    digest.update(b"\n")
    digest.update(payload.encode("utf-8"))
    return digest.hexdigest()


def _canonical(value: object) -> object:
    if value is None or isinstance(value, bool | int):
        return value
    if isinstance(value, Enum):
        return _canonical(value.value)
    if isinstance(value, str):
        return value
    if isinstance(value, Decimal):
        if not value.is_finite():
            raise ValueError("cannot hash a non-finite Decimal")
        normal = value.normalize()
        return "0" if normal == 0 else format(normal, "f")
    if isinstance(value, datetime):
        if not _is_aware(value):
            raise ValueError("cannot hash a naive datetime")
        return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    if isinstance(value, date):
        return value.isoformat()
    raise TypeError(f"no canonical form for {type(value).__name__}")


def build_row(
    *, sequence: int, entry: LedgerEntry, balance_after_mg: Decimal, prev_hash: str
) -> LedgerRow:
    covered = row_fields(sequence=sequence, entry=entry, balance_after_mg=balance_after_mg)
    return LedgerRow(
        sequence=sequence,
        entry=entry,
        balance_after_mg=balance_after_mg,
        prev_hash=prev_hash,
        row_hash=entry_hash(prev_hash, covered),
    )


def record_entry(
    state: BalanceState,
    entry: LedgerEntry,
    *,
    sequence: int,
    prev_hash: str,
    now: datetime | None = None,
    catalog: Mapping[str, Product] | None = None,
    policy: LedgerPolicy = DEFAULT_POLICY,
) -> tuple[BalanceState, LedgerRow]:
    """`apply_entry`, then the chained row to store (running balance included)."""
    after = apply_entry(state, entry, now=now, catalog=catalog, policy=policy)
    row = build_row(
        sequence=sequence,
        entry=entry,
        balance_after_mg=after.balance_mg(entry.key),
        prev_hash=prev_hash,
    )
    return after, row


def verify_chain(rows: Sequence[LedgerRow], *, prev_hash: str = GENESIS_HASH) -> int | None:
    """Index of the first row that breaks the chain, or None when every link holds.

    A row breaks the chain when its sequence does not follow the row before, its stored
    `prev_hash` is not the previous row's hash, or its own hash does not match its fields.
    Pass the hash of the row before `rows[0]` to verify a slice of a longer chain.
    """
    expected_prev = prev_hash
    for index, row in enumerate(rows):
        if index > 0 and row.sequence != rows[index - 1].sequence + 1:
            return index
        if row.prev_hash != expected_prev:
            return index
        covered = row_fields(
            sequence=row.sequence, entry=row.entry, balance_after_mg=row.balance_after_mg
        )
        try:
            recomputed = entry_hash(row.prev_hash, covered)
        except (TypeError, ValueError):
            return index
        if recomputed != row.row_hash:
            return index
        expected_prev = row.row_hash
    return None


# --- Recomputing balances from history ----------------------------------------------------------


@dataclass(frozen=True, slots=True)
class BalanceMismatch:
    index: int
    key: StockKey
    stored_mg: Decimal
    recomputed_mg: Decimal


@dataclass(frozen=True, slots=True)
class RowViolation:
    index: int
    code: ViolationCode
    message: str


@dataclass(frozen=True, slots=True)
class RecomputeReport:
    state: BalanceState
    balance_mismatches: tuple[BalanceMismatch, ...]
    violations: tuple[RowViolation, ...]
    rule: str = LEDGER_RULE

    @property
    def ok(self) -> bool:
        return not self.balance_mismatches and not self.violations


def recompute_balances(
    rows: Iterable[LedgerRow],
    *,
    start: BalanceState = EMPTY_STATE,
    catalog: Mapping[str, Product] | None = None,
    policy: LedgerPolicy = DEFAULT_POLICY,
) -> RecomputeReport:
    """Replay stored rows from `start`, re-checking every rule and every stored running balance.

    Nothing is raised: a row that breaks a rule is reported and its stock effect still applied,
    so the balances after it stay comparable with what was stored.
    """
    state = start
    mismatches: list[BalanceMismatch] = []
    violations: list[RowViolation] = []
    for index, row in enumerate(rows):
        try:
            state = apply_entry(state, row.entry, catalog=catalog, policy=policy)
        except LedgerRuleViolation as broken:
            violations.append(RowViolation(index, broken.code, broken.message))
            if row.entry.quantity_mg.is_finite():
                state = _fold(state, row.entry)
        recomputed = state.balance_mg(row.entry.key)
        if recomputed != row.balance_after_mg:
            mismatches.append(
                BalanceMismatch(index, row.entry.key, row.balance_after_mg, recomputed)
            )
    return RecomputeReport(
        state=state, balance_mismatches=tuple(mismatches), violations=tuple(violations)
    )
