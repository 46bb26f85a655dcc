"""Writes to the controlled-substance ledger. Each service is one transaction that

1. locks the organization's ledger chain head (`_locked_head`): on PostgreSQL a
   SELECT ... FOR UPDATE, on SQLite the IMMEDIATE transaction's write lock. Two nurses drawing
   from one vial therefore run one after the other, and the second sees the first's row;
2. loads the `BalanceState` of just the stock key (and dose tally) the entry touches, from the
   stored running balances;
3. lets the pure ledger (`ledger.record_entry`) check every hard stop and build the chained row;
4. stores the row, advances the chain head and writes one audit event.

A `LedgerRuleViolation` becomes a SafetyStop (422) or a Conflict (409) naming the field.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from datetime import date, datetime
from decimal import Decimal, InvalidOperation
from typing import Any
from zoneinfo import ZoneInfo

from django.contrib.auth import authenticate
from django.db import IntegrityError, transaction
from django.db.models import Q, Sum
from django.http import HttpRequest

from ketaclinic.accounts.actor import Actor
from ketaclinic.accounts.audit import audit_record
from ketaclinic.accounts.models import Clinic, Membership, User
from ketaclinic.accounts.roles import Cap
from ketaclinic.core import clock
from ketaclinic.core.errors import (
    Conflict,
    DomainError,
    FieldError,
    NotFound,
    SafetyStop,
    ValidationFailed,
)
from ketaclinic.inventory import calendars, ledger, reconciliation, records
from ketaclinic.inventory.ledger import EntryKind, LedgerEntry, ViolationCode, WasteSource
from ketaclinic.inventory.models import (
    Container,
    DeaForm,
    DiscrepancyCase,
    InventoryCount,
    LedgerChain,
    LedgerRow,
    Lot,
    Product,
    Receipt,
    StorageLocation,
)
from ketaclinic.inventory.products import STANDARD_CATALOG
from ketaclinic.inventory.products import Product as CatalogProduct
from ketaclinic.patients.models import Patient

# Which input a rule violation points at, and whether it is a conflict rather than a safety stop.
_FIELD_OF: dict[ViolationCode, str] = {
    ViolationCode.INSUFFICIENT_STOCK: "quantity_mg",
    ViolationCode.QUANTITY_NOT_POSITIVE: "quantity_mg",
    ViolationCode.QUANTITY_ZERO: "quantity_mg",
    ViolationCode.QUANTITY_TOO_PRECISE: "quantity_mg",
    ViolationCode.QUANTITY_NOT_FINITE: "quantity_mg",
    ViolationCode.QUANTITY_MISMATCH: "quantity_mg",
    ViolationCode.WASTE_EXCEEDS_DRAWN: "quantity_mg",
    ViolationCode.RETURN_EXCEEDS_DRAWN: "quantity_mg",
    ViolationCode.LOT_UNKNOWN: "lot",
    ViolationCode.LOT_EXPIRED: "lot",
    ViolationCode.LOT_EXPIRY_MISSING: "expires_at",
    ViolationCode.LOT_EXPIRY_CONFLICT: "expires_at",
    ViolationCode.WITNESS_MISSING: "witness_username",
    ViolationCode.WITNESS_IS_ACTOR: "witness_username",
    ViolationCode.APPROVAL_MISSING: "approver_username",
    ViolationCode.APPROVER_NOT_COMPLIANCE: "approver_username",
    ViolationCode.APPROVER_IS_ACTOR: "approver_username",
    ViolationCode.REASON_MISSING: "reason",
    ViolationCode.DOCUMENT_MISSING: "document_ref",
    ViolationCode.ADMINISTRATION_LINK_MISSING: "administration_id",
    ViolationCode.WASTE_SOURCE_MISSING: "source",
    ViolationCode.FUTURE_DATED: "occurred_at",
    ViolationCode.NAIVE_DATETIME: "occurred_at",
}
_CONFLICTS = frozenset(
    {
        ViolationCode.LOT_EXPIRY_CONFLICT,
        ViolationCode.TRANSFER_ID_REUSED,
        ViolationCode.TRANSFER_NOT_PENDING,
    }
)


def _violation_error(violation: ledger.LedgerRuleViolation) -> DomainError:
    field = _FIELD_OF.get(violation.code, "non_field")
    error_class = Conflict if violation.code in _CONFLICTS else SafetyStop
    message = violation.message[:1].upper() + violation.message[1:] + "."
    return error_class(message, [FieldError(field, message)])


# --- Small parsers --------------------------------------------------------------------------


def _mg(value: Any, field: str = "quantity_mg") -> Decimal:
    try:
        quantity = Decimal(str(value))
    except (InvalidOperation, ValueError, TypeError):
        raise ValidationFailed.for_field(field, "Enter a number of milligrams.") from None
    if not quantity.is_finite():
        raise ValidationFailed.for_field(field, "Enter a number of milligrams.")
    return quantity


def _when(value: datetime | None, field: str = "occurred_at") -> datetime:
    now = clock.now()
    if value is None:
        return now
    if value.tzinfo is None:
        raise ValidationFailed.for_field(field, "The time needs a time zone.")
    return value


def _units_for(product: CatalogProduct, quantity_mg: Decimal) -> Decimal | None:
    """mL (or devices, troches) for `quantity_mg`, when it is exact to 0.001 of a unit."""
    units = (abs(quantity_mg) / product.mg_per_unit).quantize(Decimal("0.001"))
    return units if product.mg_for_units(units) == abs(quantity_mg) else None


def _clinic_tz(location: StorageLocation) -> ZoneInfo:
    return ZoneInfo(location.clinic.time_zone)


# --- Reference data ---------------------------------------------------------------------------


def _require_any(actor: Actor, *caps: Cap) -> None:
    if not any(actor.can(cap) for cap in caps):
        actor.require(caps[0])


def product_register(
    *, actor: Actor, code: str, catalog_product: CatalogProduct | None = None
) -> Product:
    """Add a catalog product (or a compounded one passed in) to the organization's stock list."""
    _require_any(actor, Cap.INVENTORY_RECEIVE, Cap.ADMIN_ACCESS)
    spec = catalog_product or STANDARD_CATALOG.get(code)
    if spec is None:
        raise ValidationFailed.for_field("code", f"No product {code!r} in the catalog.")
    with transaction.atomic():
        product, created = Product.objects.get_or_create(
            organization=actor.organization,
            code=spec.product_id,
            defaults={
                "display_name": spec.display_name,
                "substance": spec.substance,
                "dea_schedule": spec.dea_schedule,
                "dosage_form": spec.dosage_form.value,
                "dose_unit": spec.dose_unit.value,
                "mg_per_unit": spec.mg_per_unit,
                "units_per_container": spec.units_per_container,
                "container_description": spec.container_description,
                "ndc": spec.ndc or "",
                "compounded": spec.compounded,
            },
        )
        if created:
            audit_record(actor=actor, action="inventory.product.registered", obj=product)
    return product


def location_create(
    *,
    actor: Actor,
    clinic: Clinic,
    name: str,
    kind: str = StorageLocation.Kind.SAFE,
    dea_registration_number: str = "",
) -> StorageLocation:
    _require_any(actor, Cap.INVENTORY_RECEIVE, Cap.ADMIN_ACCESS)
    if clinic.organization_id != actor.organization.pk:
        raise NotFound("No such clinic.")
    name = (name or "").strip()
    if not name:
        raise ValidationFailed.for_field("name", "A storage location needs a name.")
    if kind not in StorageLocation.Kind.values:
        raise ValidationFailed.for_field("kind", "Unknown kind of location.")
    with transaction.atomic():
        if StorageLocation.objects.filter(clinic=clinic, name=name).exists():
            raise Conflict.for_field("name", f"{clinic.name} already has a location {name!r}.")
        location = StorageLocation.objects.create(
            organization=actor.organization,
            clinic=clinic,
            name=name,
            kind=kind,
            dea_registration_number=dea_registration_number.strip(),
        )
        audit_record(
            actor=actor, action="inventory.location.created", obj=location, detail={"name": name}
        )
    return location


# --- The ledger append ------------------------------------------------------------------------


def _locked_head(actor: Actor) -> LedgerChain:
    organization = actor.organization
    head = LedgerChain.objects.select_for_update().filter(organization=organization).first()
    if head is not None:
        return head
    try:
        with transaction.atomic():
            LedgerChain.objects.create(organization=organization)
    except IntegrityError:
        pass  # another transaction created it first; lock theirs
    return LedgerChain.objects.select_for_update().get(organization=organization)


def _key_balance(product: Product, lot_number: str, location: StorageLocation) -> Decimal | None:
    return (
        LedgerRow.objects.filter(product=product, lot_ref=lot_number, location=location)
        .order_by("-sequence")
        .values_list("balance_after_mg", flat=True)
        .first()
    )


def dose_tally(
    administration_id: uuid.UUID, product: Product | None = None, lot_number: str | None = None
) -> ledger.DoseTally:
    rows = LedgerRow.objects.filter(administration_id=administration_id)
    if product is not None:
        rows = rows.filter(product=product, lot_ref=lot_number)
    totals = rows.aggregate(
        drawn=Sum("quantity_mg", filter=Q(kind=EntryKind.DRAW)),
        returned=Sum("quantity_mg", filter=Q(kind=EntryKind.RETURN)),
        wasted=Sum(
            "quantity_mg", filter=Q(kind=EntryKind.WASTE, waste_source=WasteSource.DRAWN_DOSE)
        ),
    )
    return ledger.DoseTally(
        drawn_mg=totals["drawn"] or Decimal(0),
        wasted_mg=totals["wasted"] or Decimal(0),
        returned_mg=totals["returned"] or Decimal(0),
    )


def _state_for(
    *,
    product: Product,
    lot_number: str,
    location: StorageLocation,
    administration_id: uuid.UUID | None,
) -> ledger.BalanceState:
    """The part of the ledger's state that one entry's rules read, from the stored rows."""
    key = ledger.StockKey(product.code, lot_number, str(location.public_id))
    balances: dict[ledger.StockKey, Decimal] = {}
    balance = _key_balance(product, lot_number, location)
    if balance is not None:
        balances[key] = Decimal(balance)
    lot_expiry = {}
    lot = Lot.objects.filter(product=product, lot_number=lot_number).first()
    if lot is not None:
        lot_expiry[(product.code, lot_number)] = lot.expires_at
    tallies = {}
    if administration_id is not None:
        tallies[(str(administration_id), product.code, lot_number)] = dose_tally(
            administration_id, product, lot_number
        )
    return ledger.BalanceState(balances_mg=balances, lot_expiry=lot_expiry, dose_tallies=tallies)


def _append(
    *,
    actor: Actor,
    head: LedgerChain,
    state: ledger.BalanceState,
    entry: LedgerEntry,
    product: Product,
    lot: Lot,
    location: StorageLocation,
    container: Container | None = None,
    witness: User | None = None,
    approver: User | None = None,
    patient: Patient | None = None,
) -> tuple[ledger.BalanceState, LedgerRow]:
    """Check `entry` against `state`, store its chained row and advance the locked head."""
    try:
        after, pure_row = ledger.record_entry(
            state,
            entry,
            sequence=head.last_seq + 1,
            prev_hash=head.last_hash,
            now=clock.now(),
            catalog={product.code: product.as_catalog()},
        )
    except ledger.LedgerRuleViolation as violation:
        raise _violation_error(violation) from None
    row = LedgerRow.objects.create(
        organization=actor.organization,
        sequence=pure_row.sequence,
        kind=entry.kind.value,
        occurred_at=entry.occurred_at,
        product=product,
        lot=lot,
        location=location,
        container=container,
        product_ref=entry.product_id,
        lot_ref=entry.lot,
        location_ref=entry.location_id,
        quantity_mg=entry.quantity_mg,
        quantity_units=entry.quantity_units,
        quantity_containers=entry.quantity_containers,
        balance_after_mg=pure_row.balance_after_mg,
        actor=actor.user,
        actor_ref=entry.actor_id,
        witness=witness,
        witness_ref=entry.witness_id or "",
        approver=approver,
        approver_ref=entry.approver_id or "",
        approver_role=entry.approver_role or "",
        patient=patient,
        patient_ref=entry.patient_id or "",
        administration_id=uuid.UUID(entry.administration_id) if entry.administration_id else None,
        waste_source=entry.waste_source.value if entry.waste_source else "",
        transfer_ref=entry.transfer_id or "",
        lot_expires_at=entry.lot_expires_at,
        document_ref=entry.document_ref or "",
        reason=entry.reason,
        prev_hash=pure_row.prev_hash,
        hash=pure_row.row_hash,
    )
    head.last_seq = pure_row.sequence
    head.last_hash = pure_row.row_hash
    LedgerChain.objects.filter(pk=head.pk).update(last_seq=head.last_seq, last_hash=head.last_hash)
    return after, row


def _entry(
    *,
    kind: EntryKind,
    actor: Actor,
    product: Product,
    lot_number: str,
    location: StorageLocation,
    quantity_mg: Decimal,
    occurred_at: datetime,
    **extra: Any,
) -> LedgerEntry:
    extra.setdefault("quantity_units", _units_for(product.as_catalog(), quantity_mg))
    return LedgerEntry(
        kind=kind,
        product_id=product.code,
        lot=lot_number,
        location_id=str(location.public_id),
        quantity_mg=quantity_mg,
        actor_id=str(actor.user.public_id),
        occurred_at=occurred_at,
        **extra,
    )


def _post(
    *,
    actor: Actor,
    head: LedgerChain,
    kind: EntryKind,
    product: Product,
    lot: Lot,
    location: StorageLocation,
    quantity_mg: Decimal,
    occurred_at: datetime,
    container: Container | None = None,
    witness: User | None = None,
    approver: User | None = None,
    patient: Patient | None = None,
    administration_id: uuid.UUID | None = None,
    state: ledger.BalanceState | None = None,
    **entry_fields: Any,
) -> tuple[ledger.BalanceState, LedgerRow]:
    """Post one entry on the locked chain: load the state of its stock key (and dose tally),
    build the entry and `_append` it. A `state` passed in is used as it is: a transfer's second
    leg checks against the state after the first. `entry_fields` go on the `LedgerEntry`."""
    if state is None:
        state = _state_for(
            product=product,
            lot_number=lot.lot_number,
            location=location,
            administration_id=administration_id,
        )
    if administration_id is not None:
        entry_fields["administration_id"] = str(administration_id)
    entry = _entry(
        kind=kind,
        actor=actor,
        product=product,
        lot_number=lot.lot_number,
        location=location,
        quantity_mg=quantity_mg,
        occurred_at=occurred_at,
        **entry_fields,
    )
    return _append(
        actor=actor,
        head=head,
        state=state,
        entry=entry,
        product=product,
        lot=lot,
        location=location,
        container=container,
        witness=witness,
        approver=approver,
        patient=patient,
    )


def _container_take(container: Container, quantity_mg: Decimal, *, field: str) -> None:
    """Take milligrams out of one vial or device; never below empty."""
    if quantity_mg > container.remaining_mg:
        raise SafetyStop.for_field(
            field,
            f"Container {container.label} holds {container.remaining_mg} mg; "
            f"{quantity_mg} mg cannot be taken from it.",
        )
    container.remaining_mg -= quantity_mg
    container.status = (
        Container.Status.EMPTY if container.remaining_mg == 0 else Container.Status.OPENED
    )
    container.save(update_fields=["remaining_mg", "status", "updated_at"])


def _locked_container(container: Container) -> Container:
    found = Container.objects.select_for_update().filter(pk=container.pk).first()
    if found is None:
        raise NotFound("No such container.")
    return found


# --- Credentials of a second person (witness, approver) ---------------------------------------


def _second_person(
    *,
    actor: Actor,
    username: str,
    password: str,
    capability: Cap,
    field: str,
    what: str,
) -> Membership:
    """Check that a different staff member of this organization is present and re-entered their
    own password. The refusal does not say which part failed, and is audited."""
    username = (username or "").strip()
    request = HttpRequest()
    request.META["REMOTE_ADDR"] = actor.client_address or "127.0.0.1"
    user = authenticate(request, username=username, password=password) if username else None
    membership = None
    if user is not None:
        membership = (
            Membership.objects.select_related("user", "organization")
            .filter(user=user, organization=actor.organization, is_active=True)
            .first()
        )
    reason = ""
    if membership is None:
        reason = f"The {what}'s username and password were not accepted."
    elif membership.user_id == actor.user.pk:
        reason = f"The {what} must be a different staff member from the person recording."
    elif not Actor(membership=membership, channel=actor.channel).can(capability):
        reason = f"{membership.user.display_name}'s role may not act as {what}."
    if reason:
        audit_record(
            actor=actor,
            action=f"inventory.{what}.refused",
            outcome="denied",
            detail={"username": username[:150]},
        )
        raise SafetyStop(reason, [FieldError(field, reason)])
    assert membership is not None
    return membership


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


# --- Draw, return, waste (the administration's account) ---------------------------------------


def inventory_draw_for_administration(
    *,
    actor: Actor,
    container: Container,
    quantity_mg: Any,
    administration_public_id: uuid.UUID | str,
    patient: Patient,
    occurred_at: datetime | None = None,
) -> LedgerRow:
    """Draw a dose from one vial or device for one administration of one patient.

    The hook the sessions app calls when a dose is drawn. Refused when the lot is expired, when
    the container or the lot's balance at its location would go below zero, or when the
    patient belongs to another organization.
    """
    actor.require(Cap.INVENTORY_DRAW)
    quantity = _mg(quantity_mg)
    administration_id = _administration_uuid(administration_public_id)
    if patient.organization_id != actor.organization.pk:
        raise NotFound("No such patient.")
    when = _when(occurred_at)
    with transaction.atomic():
        head = _locked_head(actor)
        container = _locked_container(container)
        lot = container.lot
        product = lot.product
        location = container.location
        _, row = _post(
            actor=actor,
            head=head,
            kind=EntryKind.DRAW,
            product=product,
            lot=lot,
            location=location,
            quantity_mg=quantity,
            occurred_at=when,
            container=container,
            patient=patient,
            administration_id=administration_id,
            patient_id=str(patient.public_id),
        )
        _container_take(container, quantity, field="quantity_mg")
        audit_record(
            actor=actor,
            action="inventory.dose.drawn",
            patient_id=patient.public_id,
            obj=row,
            detail={
                "administration": str(administration_id),
                "mg": str(quantity),
                "container": container.label,
            },
        )
    return row


def _administration_uuid(value: uuid.UUID | str) -> uuid.UUID:
    try:
        return value if isinstance(value, uuid.UUID) else uuid.UUID(str(value))
    except ValueError:
        raise ValidationFailed.for_field(
            "administration_id", "Name the administration (its id)."
        ) from None


def _last_draw(administration_id: uuid.UUID) -> LedgerRow:
    row = (
        LedgerRow.objects.select_related("product", "lot", "location", "container", "patient")
        .filter(administration_id=administration_id, kind=EntryKind.DRAW)
        .order_by("-sequence")
        .first()
    )
    if row is None:
        raise SafetyStop.for_field(
            "administration_id", "Nothing was drawn for this administration."
        )
    return row


def stock_return(
    *,
    actor: Actor,
    administration_public_id: uuid.UUID | str,
    quantity_mg: Any,
    occurred_at: datetime | None = None,
) -> LedgerRow:
    """Put back an undrawn (unused, uncontaminated) part of a dose into its container's lot."""
    actor.require(Cap.INVENTORY_DRAW)
    quantity = _mg(quantity_mg)
    administration_id = _administration_uuid(administration_public_id)
    when = _when(occurred_at)
    with transaction.atomic():
        head = _locked_head(actor)
        draw = _last_draw(administration_id)
        _, row = _post(
            actor=actor,
            head=head,
            kind=EntryKind.RETURN,
            product=draw.product,
            lot=draw.lot,
            location=draw.location,
            quantity_mg=quantity,
            occurred_at=when,
            container=draw.container,
            patient=draw.patient,
            administration_id=administration_id,
            patient_id=draw.patient_ref,
        )
        if draw.container is not None:
            container = _locked_container(draw.container)
            container.remaining_mg += quantity
            container.status = Container.Status.OPENED
            container.save(update_fields=["remaining_mg", "status", "updated_at"])
        audit_record(
            actor=actor,
            action="inventory.dose.returned",
            patient_id=draw.patient.public_id if draw.patient else None,
            obj=row,
            detail={"administration": str(administration_id), "mg": str(quantity)},
        )
    return row


def stock_waste(
    *,
    actor: Actor,
    source: str,
    administration_public_id: uuid.UUID | str,
    witness_username: str,
    witness_password: str,
    method: str,
    quantity_mg: Any = None,
    container: Container | None = None,
    occurred_at: datetime | None = None,
) -> LedgerRow:
    """Waste witnessed by a second staff member who re-enters their own password.

    `source="drawn_dose"`: what was drawn for the administration but not given (the stock left
    with the draw; this closes the dose's account). `source="container_remainder"`: the rest of
    an opened container (`container`; the whole remainder when `quantity_mg` is omitted), linked
    to the administration it was opened for.
    """
    actor.require(Cap.INVENTORY_DRAW)
    try:
        waste_source = WasteSource(source)
    except ValueError:
        raise ValidationFailed.for_field(
            "source", "Choose waste of a drawn dose or of a container's remainder."
        ) from None
    method = (method or "").strip()
    if not method:
        raise ValidationFailed.for_field(
            "method", "Say how the waste was rendered non-retrievable."
        )
    administration_id = _administration_uuid(administration_public_id)
    witness = _second_person(
        actor=actor,
        username=witness_username,
        password=witness_password,
        capability=Cap.INVENTORY_WITNESS,
        field="witness_username",
        what="witness",
    )
    when = _when(occurred_at)
    with transaction.atomic():
        head = _locked_head(actor)
        draw = _last_draw(administration_id)
        if waste_source is WasteSource.CONTAINER_REMAINDER:
            if container is None:
                container = draw.container
            if container is None:
                raise ValidationFailed.for_field("container", "Name the container wasted.")
            container = _locked_container(container)
            lot, location = container.lot, container.location
            quantity = (
                Decimal(container.remaining_mg) if quantity_mg in (None, "") else _mg(quantity_mg)
            )
        else:
            lot, location = draw.lot, draw.location
            container = draw.container
            if quantity_mg in (None, ""):
                raise ValidationFailed.for_field("quantity_mg", "Enter the milligrams wasted.")
            quantity = _mg(quantity_mg)
        product = lot.product
        _, row = _post(
            actor=actor,
            head=head,
            kind=EntryKind.WASTE,
            product=product,
            lot=lot,
            location=location,
            quantity_mg=quantity,
            occurred_at=when,
            container=container,
            witness=witness.user,
            patient=draw.patient,
            administration_id=administration_id,
            patient_id=draw.patient_ref,
            witness_id=str(witness.user.public_id),
            waste_source=waste_source,
            reason=method,
        )
        if waste_source is WasteSource.CONTAINER_REMAINDER and container is not None:
            _container_take(container, quantity, field="quantity_mg")
        audit_record(
            actor=actor,
            action="inventory.waste.recorded",
            patient_id=draw.patient.public_id if draw.patient else None,
            obj=row,
            detail={
                "administration": str(administration_id),
                "mg": str(quantity),
                "source": waste_source.value,
                "witness": witness.user.username,
            },
        )
    return row


# --- Destruction, loss and theft, adjustment --------------------------------------------------


DISPOSALS = {
    "on_site": records.ReportKind.DEA_FORM_41,
    "reverse_distributor": records.ReportKind.REVERSE_DISTRIBUTOR,
}


def _fill_blank(data: dict[str, Any], defaults: Mapping[str, Any]) -> None:
    """Fill the fields the caller left blank with what the clinic's records already say."""
    for name, value in defaults.items():
        current = data.get(name)
        if current is None or (isinstance(current, str) and not current.strip()):
            if value not in (None, ""):
                data[name] = value


def _registrant(actor: Actor, location: StorageLocation, address_field: str) -> dict[str, str]:
    clinic = location.clinic
    return {
        "registrant_name": actor.organization.name,
        "dea_registration_number": location.dea_registration_number,
        address_field: clinic.address,
        "telephone": clinic.phone,
    }


def _label(field_name: str) -> str:
    """`dea_registration_number` -> `DEA registration number`."""
    words = [w.upper() if w in ("dea", "ndc") else w for w in field_name.split("_")]
    text = " ".join(words)
    return text[:1].upper() + text[1:]


def _e_signature(user: User, when: datetime) -> str:
    return f"{user.display_name} (electronic: {user.username}, {when.isoformat()})"


def stock_destroy(
    *,
    actor: Actor,
    container: Container,
    witness_username: str,
    witness_password: str,
    form_41: Mapping[str, Any],
    document_ref: str,
    disposal: str = "on_site",
    occurred_at: datetime | None = None,
) -> LedgerRow:
    """Destroy on site (DEA Form 41) or hand to a reverse distributor the whole of one container.

    A second staff member witnesses by re-entering their own password (the waste pattern). On
    site, the Form 41's two employee witnesses default to the person recording and that witness,
    signed electronically; names given in `form_41` win. The registrant's name, DEA number,
    address and telephone default to the organization, location and clinic on file.
    """
    actor.require(Cap.INVENTORY_COUNT)
    report_kind = DISPOSALS.get(disposal)
    if report_kind is None:
        raise ValidationFailed.for_field(
            "disposal", "Choose destruction on site or a reverse distributor."
        )
    witness = _second_person(
        actor=actor,
        username=witness_username,
        password=witness_password,
        capability=Cap.INVENTORY_WITNESS,
        field="witness_username",
        what="witness",
    )
    when = _when(occurred_at)
    with transaction.atomic():
        head = _locked_head(actor)
        container = _locked_container(container)
        if container.remaining_mg == 0:
            raise SafetyStop.for_field("container", "The container is empty.")
        lot, location = container.lot, container.location
        product = lot.product
        quantity = Decimal(container.remaining_mg)
        spec = product.as_catalog()
        data = {**dict(form_41), "disposal": disposal}
        address_field = "registered_address"
        _fill_blank(data, _registrant(actor, location, address_field))
        _fill_blank(
            data,
            {
                "destruction_date": when.astimezone(_clinic_tz(location)).date().isoformat(),
                "destruction_location": f"{location.clinic.name}, {location.name}",
                "contact_name": actor.user.display_name,
                "invoice_reference": (document_ref or "").strip(),
            },
        )
        if disposal == "on_site":
            _fill_blank(
                data,
                {
                    "first_witness_name": actor.user.display_name,
                    "first_witness_signature": _e_signature(actor.user, when),
                    "second_witness_name": witness.user.display_name,
                    "second_witness_signature": _e_signature(witness.user, when),
                },
            )
        else:
            data.setdefault("destruction_method", "transferred to a reverse distributor")
        sealed = container.status == Container.Status.SEALED
        data.setdefault(
            "items",
            [
                {
                    "ndc_or_dea_code": product.ndc or "7285",  # DEA code number for ketamine
                    "lot": lot.lot_number,
                    "substance_name": product.substance,
                    "strength": spec.strength_label,
                    "dosage_form": product.dosage_form,
                    "package_quantity": product.container_description,
                    "full_packages": 1 if sealed else 0,
                    "partial_package_count": "0" if sealed else f"{quantity} mg",
                    "total_destroyed": f"{quantity} mg",
                }
            ],
        )
        missing = records.missing_fields(report_kind, data)
        if missing:
            label = "DEA Form 41" if disposal == "on_site" else "reverse-distributor record"
            raise ValidationFailed(
                f"The {label} is incomplete.",
                [
                    FieldError(f"form_41.{name}", f"{_label(name)}: required on the {label}.")
                    for name in missing
                ],
            )
        _, row = _post(
            actor=actor,
            head=head,
            kind=EntryKind.DESTRUCTION,
            product=product,
            lot=lot,
            location=location,
            quantity_mg=quantity,
            occurred_at=when,
            container=container,
            witness=witness.user,
            witness_id=str(witness.user.public_id),
            document_ref=(document_ref or "").strip(),
            reason=str(data.get("destruction_method", "")),
        )
        _container_take(container, quantity, field="container")
        DeaForm.objects.create(
            organization=actor.organization, kind=DeaForm.Kind.FORM_41, row=row, data=data
        )
        audit_record(
            actor=actor,
            action="inventory.stock.destroyed",
            obj=row,
            detail={
                "mg": str(quantity),
                "container": container.label,
                "disposal": disposal,
                "witness": witness.user.username,
            },
        )
    return row


def stock_loss_report(
    *,
    actor: Actor,
    kind: str,
    lot: Lot,
    location: StorageLocation,
    quantity_mg: Any,
    reason: str,
    discovered_at: datetime,
    form_106: Mapping[str, Any],
    container: Container | None = None,
    holidays: frozenset[date] | None = None,
) -> tuple[LedgerRow, DeaForm]:
    """Record a theft or significant loss and the data for DEA Form 106, due one business day
    after discovery (shown on the dashboard and the stock page until marked filed).

    Business days skip weekends and US federal holidays (`calendars`), with the day of discovery
    read in the clinic's time zone; `holidays` replaces the calendar (tests, a stricter clinic).
    """
    actor.require(Cap.INVENTORY_COUNT)
    if kind not in (EntryKind.LOSS, EntryKind.THEFT):
        raise ValidationFailed.for_field("kind", "Choose loss or theft.")
    quantity = _mg(quantity_mg)
    if discovered_at is None or discovered_at.tzinfo is None:
        raise ValidationFailed.for_field("discovered_at", "When was it discovered?")
    if discovered_at > clock.now():
        raise ValidationFailed.for_field("discovered_at", "The discovery cannot be in the future.")
    with transaction.atomic():
        head = _locked_head(actor)
        product = lot.product
        if container is not None:
            container = _locked_container(container)
            if container.lot_id != lot.pk or container.location_id != location.pk:
                raise ValidationFailed.for_field("container", "The container is not of this lot.")
        _, row = _post(
            actor=actor,
            head=head,
            kind=EntryKind(kind),
            product=product,
            lot=lot,
            location=location,
            quantity_mg=quantity,
            occurred_at=_when(None),
            container=container,
            reason=(reason or "").strip(),
        )
        if container is not None:
            _container_take(container, quantity, field="quantity_mg")
        try:
            local = discovered_at.astimezone(_clinic_tz(location))
            if holidays is None:
                holidays = calendars.form_106_holidays(local.date())
            deadline = records.form_106_deadline(local, holidays=holidays)
        except (OverflowError, ValueError):
            raise ValidationFailed.for_field(
                "discovered_at", "Enter a real date and time of discovery."
            ) from None
        spec = product.as_catalog()
        data = {
            "discovered_at": local.isoformat(),
            "theft_or_loss_type": kind,
            "items": [
                {
                    "ndc_or_dea_code": product.ndc or "7285",
                    "substance_name": product.substance,
                    "strength": spec.strength_label,
                    "dosage_form": product.dosage_form,
                    "quantity_lost": f"{quantity} mg",
                }
            ],
            **dict(form_106),
        }
        _fill_blank(data, _registrant(actor, location, "registrant_address"))
        form = DeaForm.objects.create(
            organization=actor.organization,
            kind=DeaForm.Kind.FORM_106,
            row=row,
            data=data,
            discovered_at=discovered_at,
            due_by=deadline.due_by,
            due_rule=deadline.rule,
        )
        audit_record(
            actor=actor,
            action=f"inventory.stock.{kind}_reported",
            obj=row,
            detail={"mg": str(quantity), "due_by": deadline.due_by.isoformat()},
        )
    return row, form


def dea_form_mark_filed(
    *, actor: Actor, form: DeaForm, filed_at: datetime | None = None
) -> DeaForm:
    """Record that a DEA form was submitted (which ends the Form 106 reminder). Refused while a
    required field is empty; the errors name them (`form_106.county`)."""
    actor.require(Cap.INVENTORY_COUNT)
    when = _when(filed_at, "filed_at")
    if when > clock.now():
        raise ValidationFailed.for_field("filed_at", "A form cannot be filed in the future.")
    with transaction.atomic():
        form = DeaForm.objects.select_for_update().get(pk=form.pk)
        if form.filed_at is not None:
            raise Conflict.for_field("filed_at", "The form is already marked as filed.")
        if form.kind == DeaForm.Kind.FORM_106:
            report_kind, prefix = records.ReportKind.DEA_FORM_106, "form_106."
        else:
            report_kind = DISPOSALS.get(form.data.get("disposal", "on_site"), DISPOSALS["on_site"])
            prefix = "form_41."
        missing = records.missing_fields(report_kind, form.data)
        if missing:
            raise ValidationFailed(
                "The form is incomplete: " + ", ".join(missing) + ".",
                [
                    FieldError(prefix + name, f"{_label(name)}: required on the form.")
                    for name in missing
                ],
            )
        if form.discovered_at is not None and when < form.discovered_at:
            raise ValidationFailed.for_field(
                "filed_at", "A report cannot be filed before the loss was discovered."
            )
        form.filed_at = when
        form.save(update_fields=["filed_at", "updated_at"])
        audit_record(
            actor=actor,
            action="inventory.dea_form.filed",
            obj=form,
            detail={"kind": form.kind, "late": bool(form.due_by and when > form.due_by)},
        )
    return form


def stock_adjust(
    *,
    actor: Actor,
    lot: Lot,
    location: StorageLocation,
    quantity_mg: Any,
    reason: str,
    approver_username: str,
    approver_password: str,
    occurred_at: datetime | None = None,
) -> LedgerRow:
    """A signed correction of a lot's balance at a location, approved on the spot by a
    compliance user re-entering their password. Never below zero."""
    actor.require(Cap.INVENTORY_COUNT)
    quantity = _mg(quantity_mg)
    if not (reason or "").strip():
        raise ValidationFailed.for_field("reason", "An adjustment records why.")
    approver = _second_person(
        actor=actor,
        username=approver_username,
        password=approver_password,
        capability=Cap.INVENTORY_ADJUST_APPROVE,
        field="approver_username",
        what="approver",
    )
    when = _when(occurred_at)
    with transaction.atomic():
        head = _locked_head(actor)
        product = lot.product
        _, row = _post(
            actor=actor,
            head=head,
            kind=EntryKind.ADJUSTMENT,
            product=product,
            lot=lot,
            location=location,
            quantity_mg=quantity,
            occurred_at=when,
            approver=approver.user,
            reason=reason.strip(),
            approver_id=str(approver.user.public_id),
            approver_role=approver.role,
        )
        audit_record(
            actor=actor,
            action="inventory.stock.adjusted",
            obj=row,
            detail={"mg": str(quantity), "approver": approver.user.username},
        )
    return row


# --- Counts and discrepancy cases -------------------------------------------------------------


def count_record(
    *,
    actor: Actor,
    location: StorageLocation,
    kind: str,
    lines: Sequence[Mapping[str, Any]],
    opening_or_close: str = "close",
    taken_at: datetime | None = None,
) -> InventoryCount:
    """Count one location against the ledger. Each line: product (code), lot, sealed_containers,
    opened: [{remaining_mg, estimated}]. Every discrepancy opens a case for compliance."""
    actor.require(Cap.INVENTORY_COUNT)
    if kind not in InventoryCount.Kind.values:
        raise ValidationFailed.for_field("kind", "Unknown kind of count.")
    if opening_or_close not in ("opening", "close"):
        raise ValidationFailed.for_field("opening_or_close", "Opening or close of business?")
    count_lines = []
    try:
        for line in lines:
            count_lines.append(
                reconciliation.CountLine(
                    product_id=str(line["product"]),
                    lot=str(line["lot"]).strip(),
                    sealed_containers=int(line.get("sealed_containers", 0)),
                    opened=tuple(
                        reconciliation.OpenedContainerCount(
                            remaining_mg=_mg(item["remaining_mg"]),
                            estimated=bool(item.get("estimated", False)),
                        )
                        for item in line.get("opened", ())
                    ),
                )
            )
    except (KeyError, TypeError, ValueError):
        raise ValidationFailed.for_field(
            "lines", "Each line names product, lot and counts."
        ) from None
    when = _when(taken_at)
    with transaction.atomic():
        head = _locked_head(actor)
        from ketaclinic.inventory.selectors import balances_at_location

        expected = balances_at_location(location)
        products = {p.code: p for p in Product.objects.all()}
        result = reconciliation.reconcile_counts(
            location_id=str(location.public_id),
            expected_mg=expected,
            counts=count_lines,
            catalog={code: p.as_catalog() for code, p in products.items()},
        )
        stored_lines = []
        for line in count_lines:
            key = ledger.StockKey(line.product_id, line.lot, str(location.public_id))
            product = products.get(line.product_id)
            counted = (
                product.as_catalog().mg_for_containers(Decimal(line.sealed_containers))
                if product
                else Decimal(0)
            ) + sum((o.remaining_mg for o in line.opened), Decimal(0))
            stored_lines.append(_line_json(product, line, expected.get(key, Decimal(0)), counted))
        for key, mg in expected.items():
            if mg and not any(
                (line.product_id, line.lot) == (key.product_id, key.lot) for line in count_lines
            ):
                line = reconciliation.CountLine(key.product_id, key.lot, 0)
                stored_lines.append(_line_json(products.get(key.product_id), line, mg, Decimal(0)))
        count = InventoryCount.objects.create(
            organization=actor.organization,
            location=location,
            kind=kind,
            taken_at=when,
            opening_or_close=opening_or_close,
            taken_by=actor.user,
            as_of_sequence=head.last_seq,
            lines=stored_lines,
            balanced=result.balanced,
            rule=result.rule,
        )
        DiscrepancyCase.objects.bulk_create(
            [
                DiscrepancyCase(
                    organization=actor.organization,
                    count=count,
                    code=d.code.value,
                    product_ref=d.key.product_id,
                    lot_ref=d.key.lot,
                    expected_mg=d.expected_mg,
                    counted_mg=d.counted_mg,
                    message=d.message,
                )
                for d in result.discrepancies
            ]
        )
        audit_record(
            actor=actor,
            action="inventory.count.recorded",
            obj=count,
            detail={"kind": kind, "balanced": result.balanced, "cases": len(result.discrepancies)},
        )
    return count


def _line_json(
    product: Product | None,
    line: reconciliation.CountLine,
    expected: Decimal,
    counted: Decimal,
) -> dict[str, Any]:
    spec = product.as_catalog() if product else None
    return {
        "product": line.product_id,
        "substance_name": product.substance if product else "",
        "display_name": product.display_name if product else line.product_id,
        "finished_form": spec.strength_label if spec else "",
        "container_size": product.container_description if product else "",
        "lot": line.lot,
        "sealed_containers": line.sealed_containers,
        "opened": [
            {"remaining_mg": str(o.remaining_mg), "estimated": o.estimated} for o in line.opened
        ],
        "opened_quantity": str(sum((o.remaining_mg for o in line.opened), Decimal(0))),
        "opened_quantity_estimated": any(o.estimated for o in line.opened),
        "expected_mg": str(expected),
        "counted_mg": str(counted),
    }


def case_resolve(*, actor: Actor, case: DiscrepancyCase, note: str) -> DiscrepancyCase:
    """A compliance user closes a discrepancy case with a note (what was found, what was done)."""
    actor.require(Cap.INVENTORY_ADJUST_APPROVE)
    note = (note or "").strip()
    if not note:
        raise ValidationFailed.for_field("note", "Say what was found and what was done.")
    with transaction.atomic():
        case = DiscrepancyCase.objects.select_for_update().get(pk=case.pk)
        if case.status == DiscrepancyCase.Status.RESOLVED:
            raise Conflict("The case is already resolved.")
        case.status = DiscrepancyCase.Status.RESOLVED
        case.resolved_by = actor.user
        case.resolved_at = clock.now()
        case.resolution_note = note
        case.save(
            update_fields=["status", "resolved_by", "resolved_at", "resolution_note", "updated_at"]
        )
        audit_record(actor=actor, action="inventory.case.resolved", obj=case)
    return case
