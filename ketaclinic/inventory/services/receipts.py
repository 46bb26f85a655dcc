"""Receiving stock and transferring it between storage locations."""

from __future__ import annotations

import uuid
from datetime import date, datetime
from decimal import Decimal
from typing import Any

from django.db import transaction

from ketaclinic.accounts.actor import Actor
from ketaclinic.accounts.audit import audit_record
from ketaclinic.accounts.roles import Cap
from ketaclinic.core import clock
from ketaclinic.core.errors import (
    FieldError,
    SafetyStop,
    ValidationFailed,
)
from ketaclinic.inventory import ledger
from ketaclinic.inventory.ledger import EntryKind
from ketaclinic.inventory.models import (
    Container,
    LedgerRow,
    Lot,
    Product,
    Receipt,
    StorageLocation,
)
from ketaclinic.inventory.services._common import (
    _clinic_tz,
    _entry,
    _key_balance,
    _locked_container,
    _locked_head,
    _post,
    _state_for,
    _violation_error,
    _when,
    require_active_location,
)

# --- Receipt, transfer ------------------------------------------------------------------------


def stock_receive(
    *,
    actor: Actor,
    product: Product,
    location: StorageLocation,
    lot_number: str,
    expires_at: datetime,
    containers: int,
    supplier_name: str,
    supplier_address: str,
    supplier_dea_number: str,
    invoice_reference: str,
    received_on: date | None = None,
    occurred_at: datetime | None = None,
) -> LedgerRow:
    """Receive sealed containers of one lot into a location; each container is tracked."""
    actor.require(Cap.INVENTORY_RECEIVE)
    lot_number = (lot_number or "").strip()
    errors = []
    if not product.is_active:
        errors.append(FieldError("product", "This product was taken off the stock list."))
    if not location.is_active:
        errors.append(FieldError("location", f"{location.name} is retired and takes no stock."))
    if not lot_number:
        errors.append(FieldError("lot_number", "Enter the lot number on the container."))
    if not isinstance(containers, int) or containers < 1 or containers > 1000:
        errors.append(FieldError("containers", "Receive between 1 and 1000 containers."))
    for name, value in (
        ("supplier_name", supplier_name),
        ("supplier_address", supplier_address),
        ("supplier_dea_number", supplier_dea_number),
        ("invoice_reference", invoice_reference),
    ):
        if not (value or "").strip():
            errors.append(FieldError(name, "Required for the receiving record (21 CFR 1304.22)."))
    if expires_at is None or expires_at.tzinfo is None:
        errors.append(FieldError("expires_at", "Enter the lot's expiry date."))
    if errors:
        raise ValidationFailed("The receipt is not complete.", errors)
    when = _when(occurred_at)
    spec = product.as_catalog()
    quantity = spec.mg_for_containers(Decimal(containers))
    with transaction.atomic():
        head = _locked_head(actor)
        state = _state_for(
            product=product, lot_number=lot_number, location=location, administration_id=None
        )
        lot = Lot.objects.filter(product=product, lot_number=lot_number).first()
        receipt: dict[str, Any] = {
            "kind": EntryKind.RECEIPT,
            "actor": actor,
            "product": product,
            "location": location,
            "quantity_mg": quantity,
            "occurred_at": when,
            "quantity_containers": Decimal(containers),
            "lot_expires_at": expires_at,
            "document_ref": invoice_reference.strip(),
        }
        if lot is None:
            # Check the rules before the lot exists, so an expired lot is never created.
            try:
                ledger.apply_entry(state, _entry(lot_number=lot_number, **receipt), now=clock.now())
            except ledger.LedgerRuleViolation as violation:
                raise _violation_error(violation) from None
            lot = Lot.objects.create(
                organization=actor.organization,
                product=product,
                lot_number=lot_number,
                expires_at=expires_at,
            )
        # The state read before a new lot existed, as the check above used.
        _, row = _post(head=head, lot=lot, state=state, **receipt)
        first = Container.objects.filter(lot=lot).count() + 1
        Container.objects.bulk_create(
            [
                Container(
                    organization=actor.organization,
                    lot=lot,
                    location=location,
                    label=f"{lot_number}-{first + index:03d}",
                    remaining_mg=spec.mg_per_container,
                )
                for index in range(containers)
            ]
        )
        Receipt.objects.create(
            organization=actor.organization,
            row=row,
            supplier_name=supplier_name.strip(),
            supplier_address=supplier_address.strip(),
            supplier_dea_number=supplier_dea_number.strip(),
            invoice_reference=invoice_reference.strip(),
            received_on=received_on or when.astimezone(_clinic_tz(location)).date(),
        )
        audit_record(
            actor=actor,
            action="inventory.stock.received",
            obj=row,
            detail={"lot": lot_number, "containers": containers, "mg": str(quantity)},
        )
    return row


def stock_transfer(
    *,
    actor: Actor,
    container: Container,
    to_location: StorageLocation,
    occurred_at: datetime | None = None,
) -> tuple[LedgerRow, LedgerRow]:
    """Move one container (with whatever it holds) to another location: out and in together."""
    actor.require(Cap.INVENTORY_RECEIVE)
    when = _when(occurred_at)
    with transaction.atomic():
        head = _locked_head(actor)
        container = _locked_container(container)
        if container.location_id == to_location.pk:
            raise ValidationFailed.for_field("to_location", "The container is already there.")
        require_active_location(to_location, "to_location")
        if container.remaining_mg == 0:
            raise SafetyStop.for_field("container", "The container is empty.")
        lot = container.lot
        product = lot.product
        source = container.location
        transfer_id = str(uuid.uuid4())
        quantity = Decimal(container.remaining_mg)
        leg: dict[str, Any] = {
            "actor": actor,
            "head": head,
            "product": product,
            "lot": lot,
            "quantity_mg": quantity,
            "occurred_at": when,
            "container": container,
            "transfer_id": transfer_id,
        }
        state, out_row = _post(kind=EntryKind.TRANSFER_OUT, location=source, **leg)
        balance_in = _key_balance(product, lot.lot_number, to_location)
        key_in = ledger.StockKey(product.code, lot.lot_number, str(to_location.public_id))
        state = ledger.BalanceState(
            balances_mg={key_in: Decimal(balance_in or 0)},
            lot_expiry=state.lot_expiry,
            pending_transfers=state.pending_transfers,
        )
        _, in_row = _post(kind=EntryKind.TRANSFER_IN, location=to_location, state=state, **leg)
        container.location = to_location
        container.save(update_fields=["location", "updated_at"])
        audit_record(
            actor=actor,
            action="inventory.stock.transferred",
            obj=container,
            detail={"from": source.name, "to": to_location.name, "mg": str(quantity)},
        )
    return out_row, in_row
