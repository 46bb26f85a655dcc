"""Draw, return and waste against one administration's account."""

from __future__ import annotations

import uuid
from datetime import datetime
from decimal import Decimal
from typing import Any

from django.apps import apps
from django.db import transaction

from ketaclinic.accounts.actor import Actor
from ketaclinic.accounts.audit import audit_record
from ketaclinic.accounts.roles import Cap
from ketaclinic.core.errors import (
    NotFound,
    SafetyStop,
    ValidationFailed,
)
from ketaclinic.inventory.ledger import EntryKind, WasteSource
from ketaclinic.inventory.models import (
    Container,
    LedgerRow,
)
from ketaclinic.inventory.services._common import (
    _container_take,
    _locked_container,
    _locked_head,
    _mg,
    _post,
    _second_person,
    _when,
)
from ketaclinic.patients.models import Patient

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
    _require_administration_of(administration_id, patient)
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


def _require_administration_of(administration_id: uuid.UUID, patient: Patient) -> None:
    """A draw is for a dose recorded on this patient's session, never for a made-up id (issue
    10). Looked up by label: inventory does not import the sessions app."""
    try:
        model = apps.get_model("treatment_sessions", "DoseAdministration")
    except LookupError:  # the sessions app is not installed: nothing to check against
        return
    if not model.objects.filter(public_id=administration_id, patient_id=patient.pk).exists():
        raise SafetyStop.for_field(
            "administration_id",
            "No dose was recorded with this administration id for this patient: draw only for "
            "an administration charted on the patient's session.",
        )


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
    witness_code: str,
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
        code=witness_code,
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
