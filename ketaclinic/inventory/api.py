"""JSON API for the controlled-substance ledger (mounted at /api/v1/): the same services as the
screens."""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any, Literal

from ninja import Field, Router, Schema, Status
from pydantic import ValidationInfo, field_validator

from ketaclinic.accounts.actor import Actor, ActorRequest
from ketaclinic.accounts.roles import Cap
from ketaclinic.core import clock
from ketaclinic.core.api import ERROR_RESPONSES
from ketaclinic.core.errors import NotFound
from ketaclinic.inventory import selectors, services
from ketaclinic.inventory.models import (
    Container,
    DeaForm,
    DiscrepancyCase,
    LedgerRow,
    Lot,
    Product,
)
from ketaclinic.inventory.models import StorageLocation as Location
from ketaclinic.patients.selectors import patient_get_for_actor

router = Router(tags=["inventory"])


def _actor(request: ActorRequest) -> Actor:
    return request.auth


class RowOut(Schema):
    id: uuid.UUID
    sequence: int
    kind: str
    occurred_at: datetime
    product: str
    lot: str
    location: uuid.UUID
    container: uuid.UUID | None
    quantity_mg: Decimal
    quantity_units: Decimal | None
    balance_after_mg: Decimal
    administration_id: uuid.UUID | None
    patient: uuid.UUID | None
    witness: str | None
    hash: str


def _row(row: LedgerRow) -> dict[str, Any]:
    return {
        "id": row.public_id,
        "sequence": row.sequence,
        "kind": row.kind,
        "occurred_at": row.occurred_at,
        "product": row.product_ref,
        "lot": row.lot_ref,
        "location": uuid.UUID(row.location_ref),
        "container": row.container.public_id if row.container else None,
        "quantity_mg": row.quantity_mg,
        "quantity_units": row.quantity_units,
        "balance_after_mg": row.balance_after_mg,
        "administration_id": row.administration_id,
        "patient": uuid.UUID(row.patient_ref) if row.patient_ref else None,
        "witness": row.witness.username if row.witness else None,
        "hash": row.hash,
    }


class ContainerOut(Schema):
    id: uuid.UUID
    label: str
    product: str
    lot: str
    lot_expires_at: datetime
    location: uuid.UUID
    location_name: str
    status: str
    remaining_mg: Decimal


@router.get("/inventory/containers", response={200: list[ContainerOut], **ERROR_RESPONSES})
def container_list(request: ActorRequest) -> Any:
    _actor(request).require(Cap.INVENTORY_VIEW)
    return [
        {
            "id": c.public_id,
            "label": c.label,
            "product": c.lot.product.code,
            "lot": c.lot.lot_number,
            "lot_expires_at": c.lot.expires_at,
            "location": c.location.public_id,
            "location_name": c.location.name,
            "status": c.status,
            "remaining_mg": c.remaining_mg,
        }
        for c in selectors.containers_in_stock()
    ]


class ReceiptIn(Schema):
    product: str = Field(..., description="Product code, e.g. ketamine-hcl-50mg-per-ml-10ml-vial")
    location: uuid.UUID
    lot_number: str = Field(..., max_length=40)
    expires_at: datetime
    containers: int = Field(..., ge=1, le=1000)
    supplier_name: str
    supplier_address: str
    supplier_dea_number: str
    invoice_reference: str
    received_on: date | None = None


@router.post("/inventory/receipts", response={201: RowOut, **ERROR_RESPONSES})
def receipt_create(request: ActorRequest, payload: ReceiptIn) -> Any:
    actor = _actor(request)
    actor.require(Cap.INVENTORY_RECEIVE)
    product = Product.objects.filter(code=payload.product).first()
    if product is None:
        product = services.product_register(actor=actor, code=payload.product)
    location = selectors.get_for_actor(
        actor, Location, payload.location, capability=Cap.INVENTORY_RECEIVE
    )
    data = payload.model_dump(exclude={"product", "location"})
    row = services.stock_receive(actor=actor, product=product, location=location, **data)
    return Status(201, _row(row))


class DrawIn(Schema):
    container: uuid.UUID
    quantity_mg: Decimal = Field(..., gt=0, decimal_places=1)
    administration_id: uuid.UUID
    patient: uuid.UUID


@router.post("/inventory/draws", response={201: RowOut, **ERROR_RESPONSES})
def draw_create(request: ActorRequest, payload: DrawIn) -> Any:
    actor = _actor(request)
    container = selectors.get_for_actor(
        actor, Container, payload.container, capability=Cap.INVENTORY_DRAW
    )
    patient = patient_get_for_actor(actor, payload.patient)
    row = services.inventory_draw_for_administration(
        actor=actor,
        container=container,
        quantity_mg=payload.quantity_mg,
        administration_public_id=payload.administration_id,
        patient=patient,
    )
    return Status(201, _row(row))


class ReturnIn(Schema):
    administration_id: uuid.UUID
    quantity_mg: Decimal = Field(..., gt=0, decimal_places=1)


@router.post("/inventory/returns", response={201: RowOut, **ERROR_RESPONSES})
def return_create(request: ActorRequest, payload: ReturnIn) -> Any:
    row = services.stock_return(
        actor=_actor(request),
        administration_public_id=payload.administration_id,
        quantity_mg=payload.quantity_mg,
    )
    return Status(201, _row(row))


class WasteIn(Schema):
    source: Literal["drawn_dose", "container_remainder"]
    administration_id: uuid.UUID
    quantity_mg: Decimal | None = Field(None, gt=0, decimal_places=1)
    method: str = Field(..., max_length=200)
    witness_username: str
    witness_code: str


@router.post("/inventory/wastes", response={201: RowOut, **ERROR_RESPONSES})
def waste_create(request: ActorRequest, payload: WasteIn) -> Any:
    row = services.stock_waste(
        actor=_actor(request),
        source=payload.source,
        administration_public_id=payload.administration_id,
        quantity_mg=payload.quantity_mg,
        method=payload.method,
        witness_username=payload.witness_username,
        witness_code=payload.witness_code,
    )
    return Status(201, _row(row))


class ReconciliationOut(Schema):
    administration_id: str
    drawn_mg: Decimal
    administered_mg: Decimal
    wasted_mg: Decimal
    returned_mg: Decimal
    container_remainder_wasted_mg: Decimal
    difference_mg: Decimal
    balanced: bool
    rule: str


@router.get(
    "/inventory/administrations/{administration_id}/reconciliation",
    response={200: ReconciliationOut, **ERROR_RESPONSES},
)
def administration_reconciliation(
    request: ActorRequest, administration_id: uuid.UUID, administered_mg: Decimal | None = None
) -> Any:
    _actor(request).require(Cap.INVENTORY_VIEW)
    if not selectors.administration_known(administration_id):
        # Never a balanced zero for an id this organization does not have.
        raise NotFound("No such administration.")
    result = selectors.administration_reconciliation(
        administration_id, administered_mg=administered_mg
    )
    return {
        "administration_id": result.administration_id,
        "drawn_mg": result.drawn_mg,
        "administered_mg": result.administered_mg,
        "wasted_mg": result.wasted_mg,
        "returned_mg": result.returned_mg,
        "container_remainder_wasted_mg": result.container_remainder_wasted_mg,
        "difference_mg": result.difference_mg,
        "balanced": result.balanced,
        "rule": result.rule,
    }


class OpenedIn(Schema):
    remaining_mg: Decimal = Field(..., ge=0)
    estimated: bool = False


class CountLineIn(Schema):
    product: str
    lot: str
    sealed_containers: int = Field(..., ge=0)
    opened: list[OpenedIn] = []


class CountIn(Schema):
    location: uuid.UUID
    kind: Literal["shift", "daily", "initial", "biennial"]
    opening_or_close: Literal["opening", "close"] = "close"
    lines: list[CountLineIn]


class CaseOut(Schema):
    id: uuid.UUID
    code: str
    product: str
    lot: str
    expected_mg: Decimal
    counted_mg: Decimal
    message: str
    status: str


class CountOut(Schema):
    id: uuid.UUID
    balanced: bool
    rule: str
    cases: list[CaseOut]


def _case(case: DiscrepancyCase) -> dict[str, Any]:
    return {
        "id": case.public_id,
        "code": case.code,
        "product": case.product_ref,
        "lot": case.lot_ref,
        "expected_mg": case.expected_mg,
        "counted_mg": case.counted_mg,
        "message": case.message,
        "status": case.status,
    }


@router.post("/inventory/counts", response={201: CountOut, **ERROR_RESPONSES})
def count_create(request: ActorRequest, payload: CountIn) -> Any:
    actor = _actor(request)
    location = selectors.get_for_actor(
        actor, Location, payload.location, capability=Cap.INVENTORY_COUNT
    )
    count = services.count_record(
        actor=actor,
        location=location,
        kind=payload.kind,
        opening_or_close=payload.opening_or_close,
        lines=[line.model_dump() for line in payload.lines],
    )
    return Status(
        201,
        {
            "id": count.public_id,
            "balanced": count.balanced,
            "rule": count.rule,
            "cases": [_case(c) for c in count.cases.all()],
        },
    )


class ResolveIn(Schema):
    note: str = Field(..., min_length=1, max_length=4000)


@router.post("/inventory/cases/{case_id}/resolve", response={200: CaseOut, **ERROR_RESPONSES})
def case_resolve(request: ActorRequest, case_id: uuid.UUID, payload: ResolveIn) -> Any:
    actor = _actor(request)
    case = selectors.get_for_actor(
        actor, DiscrepancyCase, case_id, capability=Cap.INVENTORY_ADJUST_APPROVE
    )
    return _case(services.case_resolve(actor=actor, case=case, note=payload.note))


@router.get("/inventory/cases", response={200: list[CaseOut], **ERROR_RESPONSES})
def case_list(request: ActorRequest) -> Any:
    """Open discrepancy cases (the dashboard's list)."""
    _actor(request).require(Cap.INVENTORY_VIEW)
    return [_case(c) for c in selectors.cases_open()]


# --- Transfer, destruction, loss, DEA forms, adjustment ---------------------------------------


class TransferIn(Schema):
    container: uuid.UUID
    to_location: uuid.UUID


class TransferOut(Schema):
    transfer_out: RowOut
    transfer_in: RowOut


@router.post("/inventory/transfers", response={201: TransferOut, **ERROR_RESPONSES})
def transfer_create(request: ActorRequest, payload: TransferIn) -> Any:
    """Move one container, with what it holds, to another location of the organization."""
    actor = _actor(request)
    container = selectors.get_for_actor(
        actor, Container, payload.container, capability=Cap.INVENTORY_RECEIVE
    )
    to_location = selectors.get_for_actor(
        actor, Location, payload.to_location, capability=Cap.INVENTORY_RECEIVE
    )
    out_row, in_row = services.stock_transfer(
        actor=actor, container=container, to_location=to_location
    )
    return Status(201, {"transfer_out": _row(out_row), "transfer_in": _row(in_row)})


class DeaFormOut(Schema):
    id: uuid.UUID
    kind: str
    row: uuid.UUID
    entry_kind: str
    product: str
    lot: str
    location: uuid.UUID
    quantity_mg: Decimal
    discovered_at: datetime | None
    due_by: datetime | None
    due_rule: str
    overdue: bool
    filed_at: datetime | None
    data: dict[str, Any]


def _utc(moment: datetime | None) -> datetime | None:
    return moment.astimezone(UTC) if moment else None


def _dea_form(form: DeaForm) -> dict[str, Any]:
    row = form.row
    return {
        "id": form.public_id,
        "kind": form.kind,
        "row": row.public_id,
        "entry_kind": row.kind,
        "product": row.product_ref,
        "lot": row.lot_ref,
        "location": uuid.UUID(row.location_ref),
        "quantity_mg": row.quantity_mg,
        "discovered_at": _utc(form.discovered_at),
        "due_by": _utc(form.due_by),
        "due_rule": form.due_rule,
        "overdue": bool(form.due_by and not form.filed_at and form.due_by < clock.now()),
        "filed_at": _utc(form.filed_at),
        "data": form.data,
    }


class RowWithFormOut(Schema):
    row: RowOut
    form: DeaFormOut


class DestructionIn(Schema):
    container: uuid.UUID
    disposal: Literal["on_site", "reverse_distributor"]
    document_ref: str = Field(..., min_length=1, max_length=120)
    form_41: dict[str, Any] = Field(
        default_factory=dict,
        description="DEA Form 41 (on site) or reverse-distributor fields; the registrant's "
        "details, destruction date, Form 41 witnesses and items default from the records.",
    )
    witness_username: str
    witness_code: str


@router.post("/inventory/destructions", response={201: RowWithFormOut, **ERROR_RESPONSES})
def destruction_create(request: ActorRequest, payload: DestructionIn) -> Any:
    actor = _actor(request)
    container = selectors.get_for_actor(
        actor, Container, payload.container, capability=Cap.INVENTORY_COUNT
    )
    row = services.stock_destroy(
        actor=actor,
        container=container,
        disposal=payload.disposal,
        document_ref=payload.document_ref,
        form_41=payload.form_41,
        witness_username=payload.witness_username,
        witness_code=payload.witness_code,
    )
    return Status(201, {"row": _row(row), "form": _dea_form(row.dea_form)})


class Form106In(Schema):
    theft_or_loss_date: date
    theft_or_loss_type: str = Field("", max_length=120)
    principal_business: str = Field(..., min_length=1, max_length=120)
    county: str = Field(..., min_length=1, max_length=120)
    reported_to_police: bool
    police_department: str = Field("", max_length=200)
    thefts_or_losses_past_24_months: int = Field(..., ge=0)
    registrant_name: str = Field("", max_length=200)
    registrant_address: str = Field("", max_length=400)
    telephone: str = Field("", max_length=40)
    dea_registration_number: str = Field("", max_length=20)

    @field_validator("police_department")
    @classmethod
    def _police_named_when_told(cls, value: str, info: ValidationInfo) -> str:
        if info.data.get("reported_to_police") and not value.strip():
            raise ValueError("Name the police department told.")
        return value


class LossIn(Schema):
    kind: Literal["loss", "theft"]
    lot: uuid.UUID
    location: uuid.UUID
    container: uuid.UUID | None = None
    quantity_mg: Decimal = Field(..., gt=0, max_digits=10, decimal_places=1)
    reason: str = Field(..., min_length=1, max_length=2000)
    discovered_at: datetime
    form_106: Form106In


@router.post("/inventory/losses", response={201: RowWithFormOut, **ERROR_RESPONSES})
def loss_create(request: ActorRequest, payload: LossIn) -> Any:
    """Theft or significant loss: the ledger row and DEA Form 106 data, due one business day
    after discovery (`form.due_by`)."""
    actor = _actor(request)
    capability = Cap.INVENTORY_COUNT
    lot = selectors.get_for_actor(actor, Lot, payload.lot, capability=capability)
    location = selectors.get_for_actor(actor, Location, payload.location, capability=capability)
    container = (
        selectors.get_for_actor(actor, Container, payload.container, capability=capability)
        if payload.container
        else None
    )
    form_106 = {k: v for k, v in payload.form_106.model_dump().items() if v != ""}
    form_106["theft_or_loss_date"] = payload.form_106.theft_or_loss_date.isoformat()
    row, form = services.stock_loss_report(
        actor=actor,
        kind=payload.kind,
        lot=lot,
        location=location,
        container=container,
        quantity_mg=payload.quantity_mg,
        reason=payload.reason,
        discovered_at=payload.discovered_at,
        form_106=form_106,
    )
    return Status(201, {"row": _row(row), "form": _dea_form(form)})


@router.get("/inventory/dea-forms", response={200: list[DeaFormOut], **ERROR_RESPONSES})
def dea_form_list(request: ActorRequest, pending: bool = False) -> Any:
    """DEA Form 41 and 106 records; `pending=true`: only Form 106s not yet filed."""
    _actor(request).require(Cap.INVENTORY_VIEW)
    forms = selectors.form_106_pending() if pending else selectors.dea_forms()
    return [_dea_form(f) for f in forms]


@router.get("/inventory/dea-forms/{form_id}", response={200: DeaFormOut, **ERROR_RESPONSES})
def dea_form_get(request: ActorRequest, form_id: uuid.UUID) -> Any:
    actor = _actor(request)
    form = selectors.get_for_actor(actor, DeaForm, form_id, capability=Cap.INVENTORY_VIEW)
    return _dea_form(selectors.dea_forms().get(pk=form.pk))


class FiledIn(Schema):
    filed_at: datetime | None = None


@router.post("/inventory/dea-forms/{form_id}/filed", response={200: DeaFormOut, **ERROR_RESPONSES})
def dea_form_filed(request: ActorRequest, form_id: uuid.UUID, payload: FiledIn) -> Any:
    actor = _actor(request)
    form = selectors.get_for_actor(actor, DeaForm, form_id, capability=Cap.INVENTORY_COUNT)
    form = services.dea_form_mark_filed(actor=actor, form=form, filed_at=payload.filed_at)
    return _dea_form(selectors.dea_forms().get(pk=form.pk))


class AdjustmentIn(Schema):
    lot: uuid.UUID
    location: uuid.UUID
    quantity_mg: Decimal = Field(
        ..., max_digits=10, decimal_places=1, description="Signed: negative takes away"
    )
    reason: str = Field(..., min_length=1, max_length=2000)
    approver_username: str
    approver_code: str


@router.post("/inventory/adjustments", response={201: RowOut, **ERROR_RESPONSES})
def adjustment_create(request: ActorRequest, payload: AdjustmentIn) -> Any:
    """A correction approved on the spot by a compliance user re-entering their password."""
    actor = _actor(request)
    lot = selectors.get_for_actor(actor, Lot, payload.lot, capability=Cap.INVENTORY_COUNT)
    location = selectors.get_for_actor(
        actor, Location, payload.location, capability=Cap.INVENTORY_COUNT
    )
    row = services.stock_adjust(
        actor=actor,
        lot=lot,
        location=location,
        quantity_mg=payload.quantity_mg,
        reason=payload.reason,
        approver_username=payload.approver_username,
        approver_code=payload.approver_code,
    )
    return Status(201, _row(row))
