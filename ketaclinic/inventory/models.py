"""The controlled-substance ledger as stored: products, lots, locations, containers, the
append-only hash-chained ledger rows, counts, discrepancy cases and DEA form records.

Rows are written only by `ketaclinic.inventory.services`. Ledger rows are never updated or
deleted (the QuerySet and the model refuse, every foreign key to them PROTECTs): a controlled-
substance record must be kept at least two years (clinical-reference §6), so there is no delete
path at all, inside the retention window or after it.
"""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from typing import Any, TypedDict
from zoneinfo import ZoneInfo

from django.db import models
from django_scopes import ScopedManager

from ketaclinic.accounts.models import Clinic, Organization, User
from ketaclinic.core.formatting import plain_number
from ketaclinic.core.models import PublicIdModel
from ketaclinic.inventory import ledger
from ketaclinic.inventory import products as catalog
from ketaclinic.patients.models import Patient

SCOPED = {"organization": "organization"}


class _Digits(TypedDict):
    max_digits: int
    decimal_places: int


MG: _Digits = {"max_digits": 12, "decimal_places": 1}


class Product(PublicIdModel):
    """One commercial presentation the organization stocks (a copy of a catalog product)."""

    organization = models.ForeignKey(Organization, on_delete=models.PROTECT, related_name="+")
    code = models.CharField(max_length=80)  # the catalog's product_id; the ledger's product key
    display_name = models.CharField(max_length=200)
    substance = models.CharField(max_length=100)
    dea_schedule = models.CharField(max_length=8)
    dosage_form = models.CharField(max_length=32)
    dose_unit = models.CharField(max_length=16)
    mg_per_unit = models.DecimalField(max_digits=10, decimal_places=3)
    units_per_container = models.DecimalField(max_digits=10, decimal_places=3)
    container_description = models.CharField(max_length=120)
    ndc = models.CharField(max_length=20, blank=True)
    compounded = models.BooleanField(default=False)
    is_active = models.BooleanField(default=True)

    objects = ScopedManager(**SCOPED)

    class Meta:
        ordering = ["display_name"]
        constraints = [
            models.UniqueConstraint(fields=["organization", "code"], name="inv_product_code_unique")
        ]

    def __str__(self) -> str:
        return self.display_name

    def as_catalog(self) -> catalog.Product:
        return catalog.Product(
            product_id=self.code,
            display_name=self.display_name,
            substance=self.substance,
            dea_schedule=self.dea_schedule,
            dosage_form=catalog.DosageForm(self.dosage_form),
            dose_unit=catalog.DoseUnit(self.dose_unit),
            mg_per_unit=Decimal(self.mg_per_unit).normalize(),
            units_per_container=Decimal(self.units_per_container).normalize(),
            container_description=self.container_description,
            ndc=self.ndc or None,
            compounded=self.compounded,
        )

    @property
    def strength_label(self) -> str:
        return self.as_catalog().strength_label


class StorageLocation(PublicIdModel):
    """A safe, a cart, a locked drawer: where stock sits in one clinic."""

    class Kind(models.TextChoices):
        SAFE = "safe", "Safe"
        CART = "cart", "Cart"
        OTHER = "other", "Other"

    organization = models.ForeignKey(Organization, on_delete=models.PROTECT, related_name="+")
    clinic = models.ForeignKey(Clinic, on_delete=models.PROTECT, related_name="+")
    name = models.CharField(max_length=100)
    kind = models.CharField(max_length=10, choices=Kind.choices, default=Kind.SAFE)
    dea_registration_number = models.CharField(max_length=20, blank=True)
    # Retired locations keep their ledger history but take no new stock.
    is_active = models.BooleanField(default=True)

    objects = ScopedManager(**SCOPED)

    class Meta:
        ordering = ["clinic__name", "name"]
        constraints = [
            models.UniqueConstraint(fields=["clinic", "name"], name="inv_location_unique_in_clinic")
        ]

    def __str__(self) -> str:
        return f"{self.clinic.name} · {self.name}"


class Lot(PublicIdModel):
    organization = models.ForeignKey(Organization, on_delete=models.PROTECT, related_name="+")
    product = models.ForeignKey(Product, on_delete=models.PROTECT, related_name="lots")
    lot_number = models.CharField(max_length=40)
    expires_at = models.DateTimeField()

    objects = ScopedManager(**SCOPED)

    class Meta:
        ordering = ["expires_at", "lot_number"]
        constraints = [
            models.UniqueConstraint(fields=["product", "lot_number"], name="inv_lot_unique")
        ]

    def __str__(self) -> str:
        return f"{self.lot_number} (exp. {self.expires_at:%Y-%m-%d} UTC)"

    def expiry_date(self, time_zone: str | None) -> date:
        """The expiry date as received: `expires_at` is the end of that day in the receiving
        clinic's time zone, so read in UTC it can fall on the next day."""
        return (
            self.expires_at.astimezone(ZoneInfo(time_zone)) if time_zone else self.expires_at
        ).date()


class Container(PublicIdModel):
    """One vial or device, tracked from receipt to empty. `remaining_mg` is kept by the services
    under the ledger lock; `ledger-verify` recomputes it from the rows that name the container."""

    class Status(models.TextChoices):
        SEALED = "sealed", "Sealed"
        OPENED = "opened", "Opened"
        EMPTY = "empty", "Empty"

    organization = models.ForeignKey(Organization, on_delete=models.PROTECT, related_name="+")
    lot = models.ForeignKey(Lot, on_delete=models.PROTECT, related_name="containers")
    location = models.ForeignKey(StorageLocation, on_delete=models.PROTECT, related_name="+")
    label = models.CharField(max_length=60)
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.SEALED)
    remaining_mg = models.DecimalField(**MG)

    objects = ScopedManager(**SCOPED)

    class Meta:
        ordering = ["lot__expires_at", "label"]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(remaining_mg__gte=0), name="inv_container_never_negative"
            )
        ]

    def __str__(self) -> str:
        return f"{self.label} ({plain_number(self.remaining_mg)} mg)"


class LedgerChain(models.Model):
    """The head of one organization's ledger chain. Every ledger write locks this row first
    (SELECT ... FOR UPDATE on PostgreSQL; SQLite's IMMEDIATE transactions lock the database), so
    balances are read and written by one writer at a time."""

    organization = models.OneToOneField(Organization, on_delete=models.PROTECT, related_name="+")
    last_seq = models.BigIntegerField(default=0)
    last_hash = models.CharField(max_length=64, default=ledger.GENESIS_HASH)


class LedgerRowQuerySet(models.QuerySet["LedgerRow"]):
    def update(self, **kwargs: Any) -> int:
        raise PermissionError("Ledger rows are append-only")

    def delete(self) -> tuple[int, dict[str, int]]:
        raise PermissionError("Ledger rows are append-only")


_LedgerRowManager = models.Manager.from_queryset(LedgerRowQuerySet)


class LedgerRow(PublicIdModel):
    """One ledger entry as stored. The `*_ref` columns and quantities are exactly what the
    row's hash covers (see `to_pure`); the foreign keys beside them are for joins and reports."""

    # Functional TextChoices built from the ledger's enums (one source of truth); django-stubs
    # types only the single-member form of this call.
    Kind = models.TextChoices(  # type: ignore[call-overload]
        "Kind", [(k.value, k.value.replace("_", " ")) for k in ledger.EntryKind]
    )
    WasteSource = models.TextChoices(  # type: ignore[call-overload]
        "WasteSource", [(w.value, w.value.replace("_", " ")) for w in ledger.WasteSource]
    )

    organization = models.ForeignKey(Organization, on_delete=models.PROTECT, related_name="+")
    sequence = models.BigIntegerField()
    kind = models.CharField(max_length=16, choices=Kind.choices)
    occurred_at = models.DateTimeField()
    product = models.ForeignKey(Product, on_delete=models.PROTECT, related_name="+")
    lot = models.ForeignKey(Lot, on_delete=models.PROTECT, related_name="+")
    location = models.ForeignKey(StorageLocation, on_delete=models.PROTECT, related_name="+")
    container = models.ForeignKey(
        Container, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    product_ref = models.CharField(max_length=80)
    lot_ref = models.CharField(max_length=40)
    location_ref = models.CharField(max_length=36)
    quantity_mg = models.DecimalField(**MG)
    quantity_units = models.DecimalField(max_digits=12, decimal_places=3, null=True, blank=True)
    quantity_containers = models.DecimalField(
        max_digits=10, decimal_places=3, null=True, blank=True
    )
    balance_after_mg = models.DecimalField(**MG)
    actor = models.ForeignKey(User, on_delete=models.PROTECT, related_name="+")
    actor_ref = models.CharField(max_length=36)
    witness = models.ForeignKey(
        User, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    witness_ref = models.CharField(max_length=36, blank=True)
    approver = models.ForeignKey(
        User, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    approver_ref = models.CharField(max_length=36, blank=True)
    approver_role = models.CharField(max_length=20, blank=True)
    patient = models.ForeignKey(
        Patient, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    patient_ref = models.CharField(max_length=36, blank=True)
    administration_id = models.UUIDField(null=True, blank=True, db_index=True)
    waste_source = models.CharField(max_length=24, blank=True, choices=WasteSource.choices)
    transfer_ref = models.CharField(max_length=36, blank=True)
    lot_expires_at = models.DateTimeField(null=True, blank=True)
    document_ref = models.CharField(max_length=120, blank=True)
    # Why (loss, theft, breakage, adjustment); for a waste, how it was made non-retrievable.
    reason = models.TextField(blank=True)
    prev_hash = models.CharField(max_length=64)
    hash = models.CharField(max_length=64)

    objects = ScopedManager(_manager_class=_LedgerRowManager, **SCOPED)

    class Meta:
        ordering = ["organization", "sequence"]
        constraints = [
            models.UniqueConstraint(
                fields=["organization", "sequence"], name="inv_ledger_seq_unique_in_org"
            ),
        ]
        indexes = [
            models.Index(fields=["product", "lot", "location", "-sequence"], name="inv_row_key"),
            models.Index(fields=["organization", "kind", "occurred_at"], name="inv_row_kind"),
        ]

    def __str__(self) -> str:
        return f"#{self.sequence} {self.kind} {plain_number(self.quantity_mg)} mg"

    def save(self, *args: Any, **kwargs: Any) -> None:
        if self.pk is not None:
            raise PermissionError("Ledger rows are append-only")
        super().save(*args, **kwargs)

    def delete(self, *args: Any, **kwargs: Any) -> tuple[int, dict[str, int]]:
        raise PermissionError("Ledger rows are append-only")

    def to_entry(self) -> ledger.LedgerEntry:
        return ledger.LedgerEntry(
            kind=ledger.EntryKind(self.kind),
            product_id=self.product_ref,
            lot=self.lot_ref,
            location_id=self.location_ref,
            quantity_mg=Decimal(self.quantity_mg),
            actor_id=self.actor_ref,
            occurred_at=self.occurred_at,
            quantity_units=None if self.quantity_units is None else Decimal(self.quantity_units),
            quantity_containers=(
                None if self.quantity_containers is None else Decimal(self.quantity_containers)
            ),
            witness_id=self.witness_ref or None,
            administration_id=str(self.administration_id) if self.administration_id else None,
            patient_id=self.patient_ref or None,
            waste_source=ledger.WasteSource(self.waste_source) if self.waste_source else None,
            transfer_id=self.transfer_ref or None,
            lot_expires_at=self.lot_expires_at,
            document_ref=self.document_ref or None,
            reason=self.reason,
            approver_id=self.approver_ref or None,
            approver_role=self.approver_role or None,
        )

    def to_pure(self) -> ledger.LedgerRow:
        return ledger.LedgerRow(
            sequence=self.sequence,
            entry=self.to_entry(),
            balance_after_mg=Decimal(self.balance_after_mg),
            prev_hash=self.prev_hash,
            row_hash=self.hash,
        )


class Receipt(PublicIdModel):
    """The supplier's side of a receipt (clinical-reference §6, 1304.22(c))."""

    organization = models.ForeignKey(Organization, on_delete=models.PROTECT, related_name="+")
    row = models.OneToOneField(LedgerRow, on_delete=models.PROTECT, related_name="receipt")
    supplier_name = models.CharField(max_length=200)
    supplier_address = models.TextField()
    supplier_dea_number = models.CharField(max_length=20)
    invoice_reference = models.CharField(max_length=120)
    received_on = models.DateField()

    objects = ScopedManager(**SCOPED)


class DeaForm(PublicIdModel):
    """Data for a DEA Form 41 (destruction) or Form 106 (theft or significant loss)."""

    class Kind(models.TextChoices):
        FORM_41 = "41", "DEA Form 41 (destruction)"
        FORM_106 = "106", "DEA Form 106 (theft or loss)"

    organization = models.ForeignKey(Organization, on_delete=models.PROTECT, related_name="+")
    kind = models.CharField(max_length=4, choices=Kind.choices)
    row = models.OneToOneField(LedgerRow, on_delete=models.PROTECT, related_name="dea_form")
    data = models.JSONField(default=dict)
    discovered_at = models.DateTimeField(null=True, blank=True)
    due_by = models.DateTimeField(null=True, blank=True)
    due_rule = models.CharField(max_length=60, blank=True)
    filed_at = models.DateTimeField(null=True, blank=True)

    objects = ScopedManager(**SCOPED)

    class Meta:
        ordering = ["-created_at"]


class InventoryCount(PublicIdModel):
    """A physical count of one location against the ledger (shift, daily, initial, biennial)."""

    class Kind(models.TextChoices):
        SHIFT = "shift", "Shift count"
        DAILY = "daily", "Daily count"
        INITIAL = "initial", "Initial inventory"
        BIENNIAL = "biennial", "Biennial inventory"

    organization = models.ForeignKey(Organization, on_delete=models.PROTECT, related_name="+")
    location = models.ForeignKey(StorageLocation, on_delete=models.PROTECT, related_name="+")
    kind = models.CharField(max_length=10, choices=Kind.choices)
    taken_at = models.DateTimeField()
    opening_or_close = models.CharField(max_length=8, default="close")  # opening | close
    taken_by = models.ForeignKey(User, on_delete=models.PROTECT, related_name="+")
    as_of_sequence = models.BigIntegerField()  # the last ledger row the expectation includes
    # [{product, lot, sealed_containers, opened: [{remaining_mg, estimated}], expected_mg,
    #   counted_mg, ...product facts for the report}]
    lines = models.JSONField(default=list)
    balanced = models.BooleanField()
    rule = models.CharField(max_length=60)

    objects = ScopedManager(**SCOPED)

    class Meta:
        ordering = ["-taken_at"]


class DiscrepancyCase(PublicIdModel):
    """A count that did not match the books; open until a compliance user resolves it."""

    class Status(models.TextChoices):
        OPEN = "open", "Open"
        RESOLVED = "resolved", "Resolved"

    organization = models.ForeignKey(Organization, on_delete=models.PROTECT, related_name="+")
    count = models.ForeignKey(InventoryCount, on_delete=models.PROTECT, related_name="cases")
    code = models.CharField(max_length=32)
    product_ref = models.CharField(max_length=80)
    lot_ref = models.CharField(max_length=40)
    expected_mg = models.DecimalField(**MG)
    counted_mg = models.DecimalField(**MG)
    message = models.TextField()
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.OPEN)
    resolved_by = models.ForeignKey(
        User, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    resolved_at = models.DateTimeField(null=True, blank=True)
    resolution_note = models.TextField(blank=True)

    objects = ScopedManager(**SCOPED)

    class Meta:
        ordering = ["status", "-created_at"]
        indexes = [models.Index(fields=["organization", "status"], name="inv_case_status")]
