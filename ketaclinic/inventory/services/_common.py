"""The ledger append shared by every stock movement, reference data and second-person checks."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta
from decimal import Decimal, InvalidOperation
from typing import Any
from zoneinfo import ZoneInfo

from django.db import IntegrityError, transaction
from django.db.models import Q, Sum

from ketaclinic.accounts.actor import Actor
from ketaclinic.accounts.audit import audit_record
from ketaclinic.accounts.models import AuditEvent, Clinic, Membership, User
from ketaclinic.accounts.roles import Cap
from ketaclinic.accounts.second_factor import totp_code_matches
from ketaclinic.core import clock
from ketaclinic.core.errors import (
    Conflict,
    DomainError,
    FieldError,
    NotFound,
    SafetyStop,
    ValidationFailed,
)
from ketaclinic.core.formatting import plain_number
from ketaclinic.inventory import ledger
from ketaclinic.inventory.ledger import EntryKind, LedgerEntry, ViolationCode, WasteSource
from ketaclinic.inventory.models import (
    Container,
    LedgerChain,
    LedgerRow,
    Lot,
    Product,
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


def location_set_active(
    *, actor: Actor, location: StorageLocation, is_active: bool
) -> StorageLocation:
    """Retire a storage location (or bring it back). Only an empty one can be retired: stock
    must be moved or disposed of first, so no controlled substance sits where no one counts."""
    from ketaclinic.inventory.selectors import balances_at_location

    _require_any(actor, Cap.INVENTORY_RECEIVE, Cap.ADMIN_ACCESS)
    if location.organization_id != actor.organization.pk:
        raise NotFound("No such storage location.")
    with transaction.atomic():
        location = StorageLocation.objects.select_for_update().get(pk=location.pk)
        if location.is_active == is_active:
            return location
        if not is_active:
            held = [mg for mg in balances_at_location(location).values() if mg > 0]
            if held:
                total = plain_number(sum(held, Decimal(0)))
                raise Conflict.for_field(
                    "is_active",
                    f"{location.name} still holds {total} mg in {len(held)} "
                    f"lot{'s' if len(held) != 1 else ''}: transfer or dispose of it first.",
                )
        location.is_active = is_active
        location.save(update_fields=["is_active", "updated_at"])
        audit_record(
            actor=actor,
            action="inventory.location.reactivated" if is_active else "inventory.location.retired",
            obj=location,
            detail={"name": location.name},
        )
    return location


def require_active_location(location: StorageLocation, field: str = "location") -> None:
    if not location.is_active:
        raise ValidationFailed.for_field(
            field, f"{location.name} is retired and takes no stock; choose another location."
        )


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
            f"Container {container.label} holds {plain_number(container.remaining_mg)} mg; "
            f"{plain_number(quantity_mg)} mg cannot be taken from it.",
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


# A witness's authenticator has its own throttle: this many wrong codes for one witness within
# the window refuse further attempts for that witness (never the witness's login).
WITNESS_CODE_ATTEMPTS = 5
WITNESS_CODE_WINDOW = timedelta(minutes=15)


def _second_person(
    *,
    actor: Actor,
    username: str,
    code: str,
    capability: Cap,
    field: str,
    what: str,
) -> Membership:
    """Check that a different staff member of this organization is present and typed the current
    code of their own authenticator. The refusal does not say which part failed, and is audited;
    the audit events of refusals are the throttle (WITNESS_CODE_ATTEMPTS per WITNESS_CODE_WINDOW)."""
    username = (username or "").strip()[:150]
    refusals = AuditEvent.objects.filter(
        organization=actor.organization,
        action__in=("inventory.witness.refused", "inventory.approver.refused"),
        occurred_at__gte=clock.now() - WITNESS_CODE_WINDOW,
        detail__username=username,
    )
    if refusals.count() >= WITNESS_CODE_ATTEMPTS:
        minutes = int(WITNESS_CODE_WINDOW.total_seconds() // 60)
        reason = (
            f"Too many wrong codes for this {what}: wait {minutes} minutes, or ask another "
            f"staff member to {'witness' if what == 'witness' else 'approve'}."
        )
        raise SafetyStop(reason, [FieldError(field, reason)])
    membership = (
        Membership.objects.select_related("user", "organization")
        .filter(user__username=username, organization=actor.organization, is_active=True)
        .first()
        if username
        else None
    )
    if membership is not None and not totp_code_matches(membership.user, code):
        membership = None
    reason = ""
    if membership is None:
        reason = f"The {what}'s username and authenticator code were not accepted."
    elif membership.user_id == actor.user.pk:
        reason = f"The {what} must be a different staff member from the person recording."
    elif not Actor(membership=membership, channel=actor.channel).can(capability):
        reason = f"{membership.user.display_name}'s role may not act as {what}."
    if reason:
        audit_record(
            actor=actor,
            action=f"inventory.{what}.refused",
            outcome="denied",
            detail={"username": username},
        )
        raise SafetyStop(reason, [FieldError(field, reason)])
    assert membership is not None
    return membership
