"""Destruction, loss and theft reports, DEA forms and adjustments."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date, datetime
from decimal import Decimal
from typing import Any

from django.db import transaction

from ketaclinic.accounts.actor import Actor
from ketaclinic.accounts.audit import audit_record
from ketaclinic.accounts.models import User
from ketaclinic.accounts.roles import Cap
from ketaclinic.core import clock
from ketaclinic.core.errors import (
    Conflict,
    FieldError,
    SafetyStop,
    ValidationFailed,
)
from ketaclinic.inventory import calendars, records
from ketaclinic.inventory.ledger import EntryKind
from ketaclinic.inventory.models import (
    Container,
    DeaForm,
    LedgerRow,
    Lot,
    StorageLocation,
)
from ketaclinic.inventory.services._common import (
    _clinic_tz,
    _container_take,
    _locked_container,
    _locked_head,
    _mg,
    _post,
    _second_person,
    _when,
)

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
    witness_code: str,
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
        code=witness_code,
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
    approver_code: str,
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
        code=approver_code,
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
