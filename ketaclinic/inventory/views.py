"""Inventory screens: stock by location, receive, draw, waste (with witness), counts, cases,
reports (screen, CSV, PDF). Views parse, look up, call a service, render."""

from __future__ import annotations

import csv
from collections.abc import Callable
from datetime import UTC, datetime, time, timedelta
from decimal import Decimal
from typing import Any, TypeVar, overload
from zoneinfo import ZoneInfo

from django.contrib import messages
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect
from django.template.loader import render_to_string
from django.template.response import TemplateResponse

from ketaclinic.accounts.actor import ActorRequest
from ketaclinic.accounts.roles import Cap
from ketaclinic.core import clock
from ketaclinic.core.decorators import staff_view
from ketaclinic.core.errors import DomainError, FieldError
from ketaclinic.core.formatting import local_time, plain_number
from ketaclinic.core.forms import add_domain_errors
from ketaclinic.inventory import forms, selectors, services
from ketaclinic.inventory.models import DeaForm, DiscrepancyCase, InventoryCount, StorageLocation
from ketaclinic.patients.selectors import patient_get_for_actor

T = TypeVar("T")


@staff_view(Cap.INVENTORY_VIEW)
def stock(request: HttpRequest) -> HttpResponse:
    context = {
        "locations": selectors.stock_by_location(),
        "cases": list(selectors.cases_open()),
        "forms_106": list(selectors.form_106_pending()),
        "now": datetime.now(UTC),
    }
    return TemplateResponse(request, "inventory/stock_list.html", context)


def _posted(request: HttpRequest) -> Any:
    """The POST data to bind (an empty POST still binds, so required fields are reported)."""
    return request.POST if request.method == "POST" else None


def _linked(request: HttpRequest, *names: str) -> dict[str, str]:
    """The ids a link carries (the flowsheet's `?administration_id=...&patient_id=...`), to
    start the form with: a nurse never has to copy an id by hand."""
    return {name: request.GET[name] for name in names if request.GET.get(name)}


def _refused(form: Any) -> int:
    """400 for a posted form the rules refused (the page shows each field's reason), else 200."""
    return 400 if form.is_bound and form.errors else 200


def _entry_page(request: HttpRequest, form: Any, title: str, **extra: Any) -> HttpResponse:
    return TemplateResponse(
        request,
        "inventory/entry_form.html",
        {"form": form, "title": title, **extra},
        status=_refused(form),
    )


def _add_errors(form: Any, error: DomainError, prefix: str = "") -> None:
    """Put a service's field errors on the form; `form_41.telephone` lands on `telephone`."""
    if prefix:
        fields = [FieldError(e.field.removeprefix(prefix), e.message) for e in error.errors]
        error = type(error)(error.detail, fields)
    add_domain_errors(form, error)


def _submit(
    request: HttpRequest,
    form: Any,
    write: Callable[[dict[str, Any]], T],
    error_prefix: str = "",
) -> T | None:
    """What `write` returns for a valid posted form; None when nothing was posted, the form is
    invalid, or the service refused (its errors are then on the form)."""
    if request.method != "POST" or not form.is_valid():
        return None
    try:
        return write(form.cleaned_data)
    except DomainError as error:
        _add_errors(form, error, error_prefix)
        return None


@staff_view(Cap.INVENTORY_RECEIVE)
def receive(request: ActorRequest) -> HttpResponse:
    form = forms.ReceiveForm(request.POST or None)

    def write(data: dict[str, Any]) -> Any:
        location = data["location"]
        tz = ZoneInfo(location.clinic.time_zone)
        return services.stock_receive(
            actor=request.actor,
            product=data["product"],
            location=location,
            lot_number=data["lot_number"],
            # A lot is usable through the last day of its expiry month/date, clinic time.
            expires_at=datetime.combine(data["expires_on"], time.max, tzinfo=tz),
            containers=data["containers"],
            supplier_name=data["supplier_name"],
            supplier_address=data["supplier_address"],
            supplier_dea_number=data["supplier_dea_number"],
            invoice_reference=data["invoice_reference"],
            received_on=data["received_on"],
        )

    if _submit(request, form, write) is not None:
        messages.success(request, "Receipt recorded.")
        return redirect("inventory:stock")
    return _entry_page(request, form, "Receive stock")


@staff_view(Cap.INVENTORY_DRAW)
def draw(request: ActorRequest) -> HttpResponse:
    form = forms.DrawForm(
        request.POST or None, initial=_linked(request, "administration_id", "patient_id")
    )
    actor = request.actor

    def write(data: dict[str, Any]) -> Any:
        return services.inventory_draw_for_administration(
            actor=actor,
            container=data["container"],
            quantity_mg=data["quantity_mg"],
            administration_public_id=data["administration_id"],
            patient=patient_get_for_actor(actor, data["patient_id"]),
        )

    row = _submit(request, form, write)
    if row is not None:
        messages.success(request, f"Drew {plain_number(row.quantity_mg)} mg from {row.lot_ref}.")
        return redirect("inventory:stock")
    return _entry_page(request, form, "Draw a dose")


@staff_view(Cap.INVENTORY_DRAW)
def waste(request: ActorRequest) -> HttpResponse:
    form = forms.WasteForm(request.POST or None, initial=_linked(request, "administration_id"))

    def write(data: dict[str, Any]) -> Any:
        return services.stock_waste(
            actor=request.actor,
            source=data["source"],
            administration_public_id=data["administration_id"],
            quantity_mg=data["quantity_mg"],
            method=data["method"],
            witness_username=data["witness_username"],
            witness_code=data["witness_code"],
        )

    if _submit(request, form, write) is not None:
        messages.success(request, "Witnessed waste recorded.")
        return redirect("inventory:stock")
    return _entry_page(request, form, "Record witnessed waste")


@overload
def _clinic_time(value: datetime, location: StorageLocation) -> datetime: ...
@overload
def _clinic_time(value: None, location: StorageLocation) -> None: ...
def _clinic_time(value: datetime | None, location: StorageLocation) -> datetime | None:
    """A datetime-local input means the clinic's wall clock, not the server's."""
    if value is None:
        return None
    return value.replace(tzinfo=None).replace(tzinfo=ZoneInfo(location.clinic.time_zone))


@staff_view(Cap.INVENTORY_RECEIVE)
def transfer(request: ActorRequest) -> HttpResponse:
    """Move one container, with what it holds, to another location (out and in rows)."""
    form = forms.TransferForm(_posted(request))

    def write(data: dict[str, Any]) -> Any:
        return services.stock_transfer(
            actor=request.actor,
            container=data["container"],
            to_location=data["to_location"],
        )

    rows = _submit(request, form, write)
    if rows is not None:
        out_row, _ = rows
        messages.success(
            request,
            f"Moved {plain_number(out_row.quantity_mg)} mg of lot {out_row.lot_ref} to "
            f"{form.cleaned_data['to_location'].name}.",
        )
        return redirect("inventory:stock")
    return _entry_page(request, form, "Transfer between locations")


@staff_view(Cap.INVENTORY_DRAW)
def stock_return(request: ActorRequest) -> HttpResponse:
    form = forms.ReturnForm(_posted(request))

    def write(data: dict[str, Any]) -> Any:
        return services.stock_return(
            actor=request.actor,
            administration_public_id=data["administration_id"],
            quantity_mg=data["quantity_mg"],
        )

    row = _submit(request, form, write)
    if row is not None:
        messages.success(
            request, f"Returned {plain_number(row.quantity_mg)} mg to lot {row.lot_ref}."
        )
        return redirect("inventory:stock")
    return _entry_page(request, form, "Return an undrawn dose")


@staff_view(Cap.INVENTORY_COUNT)
def destroy(request: ActorRequest) -> HttpResponse:
    """Destruction of inventory on site (Form 41) or to a reverse distributor, witnessed."""
    form = forms.DestroyForm(_posted(request))

    def write(data: dict[str, Any]) -> Any:
        return services.stock_destroy(
            actor=request.actor,
            container=data["container"],
            disposal=data["disposal"],
            document_ref=data["document_ref"],
            form_41=form.record_data(),
            witness_username=data["witness_username"],
            witness_code=data["witness_code"],
        )

    row = _submit(request, form, write, "form_41.")
    if row is not None:
        messages.success(request, f"Destruction of {plain_number(row.quantity_mg)} mg recorded.")
        return redirect("inventory:dea-form", form_id=row.dea_form.public_id)
    intro = (
        "The whole container leaves stock. A second staff member witnesses by typing their own "
        "password. Registrant details left blank come from the clinic's records."
    )
    return _entry_page(request, form, "Destroy inventory", intro=intro)


FORM_106_RULE_TEXT = (
    "Report to the DEA within one business day of discovery (21 CFR 1301.76(b)); business days "
    "skip weekends and US federal holidays."
)


@staff_view(Cap.INVENTORY_COUNT)
def loss(request: ActorRequest) -> HttpResponse:
    """A theft or significant loss: the ledger row and the DEA Form 106 data, with its deadline."""
    form = forms.LossForm(_posted(request))

    def write(data: dict[str, Any]) -> Any:
        return services.stock_loss_report(
            actor=request.actor,
            kind=data["kind"],
            lot=data["lot"],
            location=data["location"],
            container=data["container"],
            quantity_mg=data["quantity_mg"],
            reason=data["reason"],
            discovered_at=_clinic_time(data["discovered_at"], data["location"]),
            form_106=form.form_106(),
        )

    reported = _submit(request, form, write, "form_106.")
    if reported is not None:
        row, dea_form = reported
        due = _local(dea_form.due_by, row.location)
        messages.warning(request, f"DEA Form 106 due by {due}.")
        return redirect("inventory:dea-form", form_id=dea_form.public_id)
    return _entry_page(request, form, "Report theft or significant loss", intro=FORM_106_RULE_TEXT)


@staff_view(Cap.INVENTORY_VIEW)
def dea_form(request: ActorRequest, form_id: str) -> HttpResponse:
    """One DEA form record: its data, its deadline, and marking it filed."""
    actor = request.actor
    record = selectors.get_for_actor(actor, DeaForm, form_id, capability=Cap.INVENTORY_VIEW)
    record = selectors.dea_forms().get(pk=record.pk)
    form = forms.MarkFiledForm(_posted(request))
    if request.method == "POST":
        actor.require(Cap.INVENTORY_COUNT)

    def write(data: dict[str, Any]) -> Any:
        return services.dea_form_mark_filed(
            actor=actor,
            form=record,
            filed_at=_clinic_time(data["filed_at"], record.row.location),
        )

    if _submit(request, form, write) is not None:
        messages.success(request, f"{record.get_kind_display()} marked filed.")
        return redirect("inventory:stock")
    location = record.row.location
    context = {
        "record": record,
        "form": form,
        "rule_text": FORM_106_RULE_TEXT,
        "due_local": _local(record.due_by, location) if record.due_by else "",
        "discovered_local": _local(record.discovered_at, location) if record.discovered_at else "",
        "filed_local": _local(record.filed_at, location) if record.filed_at else "",
        "overdue": bool(record.due_by and not record.filed_at and record.due_by < clock.now()),
        "fields": sorted((k, v) for k, v in record.data.items() if k != "items"),
    }
    return TemplateResponse(request, "inventory/dea_form.html", context, status=_refused(form))


@staff_view(Cap.INVENTORY_COUNT)
def adjust(request: ActorRequest) -> HttpResponse:
    """A correction of a lot's balance, approved on the spot by a compliance user."""
    form = forms.AdjustForm(_posted(request))

    def write(data: dict[str, Any]) -> Any:
        return services.stock_adjust(
            actor=request.actor,
            lot=data["lot"],
            location=data["location"],
            quantity_mg=data["quantity_mg"],
            reason=data["reason"],
            approver_username=data["approver_username"],
            approver_code=data["approver_code"],
        )

    row = _submit(request, form, write)
    if row is not None:
        messages.success(
            request, f"Adjusted lot {row.lot_ref} by {plain_number(row.quantity_mg)} mg."
        )
        return redirect("inventory:stock")
    intro = "A compliance user approves by typing their own password here."
    return _entry_page(request, form, "Adjust a balance", intro=intro)


@staff_view(Cap.INVENTORY_COUNT)
def count(request: ActorRequest, location_id: str) -> HttpResponse:
    """One line per lot the ledger holds here; opened contents may be estimated (CIII)."""
    actor = request.actor
    location = selectors.get_for_actor(
        actor, StorageLocation, location_id, capability=Cap.INVENTORY_COUNT
    )
    expected = [
        (key, mg) for key, mg in sorted(selectors.balances_at_location(location).items()) if mg
    ]
    error = None
    if request.method == "POST":
        lines = []
        for index, (key, _mg) in enumerate(expected):
            opened = (request.POST.get(f"opened-{index}") or "").strip()
            lines.append(
                {
                    "product": key.product_id,
                    "lot": key.lot,
                    "sealed_containers": request.POST.get(f"sealed-{index}") or 0,
                    "opened": [
                        {
                            "remaining_mg": opened,
                            "estimated": request.POST.get(f"estimated-{index}") == "on",
                        }
                    ]
                    if opened
                    else [],
                }
            )
        try:
            result = services.count_record(
                actor=actor,
                location=location,
                kind=request.POST.get("kind", "shift"),
                opening_or_close=request.POST.get("opening_or_close", "close"),
                lines=lines,
            )
        except DomainError as exc:
            error = exc
        else:
            if result.balanced:
                messages.success(request, "Count matches the ledger.")
            else:
                messages.warning(request, "Count differs: a discrepancy case is open.")
            return redirect("inventory:stock")
    context = {
        "location": location,
        "expected": expected,
        "kinds": InventoryCount.Kind.choices,
        "error": error,
    }
    return TemplateResponse(
        request, "inventory/count_form.html", context, status=400 if error else 200
    )


@staff_view(Cap.INVENTORY_ADJUST_APPROVE)
def case_resolve(request: ActorRequest, case_id: str) -> HttpResponse:
    actor = request.actor
    case = selectors.get_for_actor(
        actor, DiscrepancyCase, case_id, capability=Cap.INVENTORY_ADJUST_APPROVE
    )
    form = forms.CaseResolveForm(request.POST or None)

    def write(data: dict[str, Any]) -> Any:
        return services.case_resolve(actor=actor, case=case, note=data["note"])

    if _submit(request, form, write) is not None:
        messages.success(request, "Case resolved.")
        return redirect("inventory:stock")
    return TemplateResponse(
        request, "inventory/case_resolve.html", {"form": form, "case": case}, status=_refused(form)
    )


# --- Reports ----------------------------------------------------------------------------------

REPORTS = {
    "administration-log": "Dispensing / administration log",
    "receipts": "Receipts",
    "waste-log": "Waste log",
    "destruction-loss": "Destruction, loss and theft",
}


def _local(moment: datetime, location: StorageLocation) -> str:
    return local_time(moment, location.clinic.time_zone, with_date=True)


def _name(user: Any) -> str:
    return user.display_name if user else ""


def report_table(kind: str, start: datetime, end: datetime) -> tuple[list[str], list[list[Any]]]:
    """Header and rows of one report: the same table on screen, in CSV and in the PDF."""
    if kind == "administration-log":
        head = [
            "Date",
            "Location",
            "Substance",
            "Finished form",
            "Container size",
            "Lot",
            "Quantity administered",
            "mg",
            "Patient name",
            "Patient address",
            "Administered by",
            "Administration",
        ]
        rows = []
        for line in selectors.administration_log(start, end):
            draw = line.first_draw
            rows.append(
                [
                    _local(draw.occurred_at, draw.location),
                    str(draw.location),
                    draw.product.substance,
                    draw.product.strength_label,
                    draw.product.container_description,
                    draw.lot_ref,
                    line.administered_units,
                    line.administered_mg,
                    draw.patient.full_name if draw.patient else "",
                    draw.patient.address if draw.patient else "",
                    _name(draw.actor),
                    line.administration_id,
                ]
            )
        return head, rows
    if kind == "receipts":
        head = [
            "Date received",
            "Location",
            "Substance",
            "Finished form",
            "Container size",
            "Lot",
            "Lot expiry",
            "Containers",
            "mg",
            "Supplier",
            "Supplier address",
            "Supplier DEA number",
            "Invoice",
            "Received by",
        ]
        return head, [
            [
                r.receipt.received_on,
                str(r.location),
                r.product.substance,
                r.product.strength_label,
                r.product.container_description,
                r.lot_ref,
                r.lot.expiry_date(r.location.clinic.time_zone),
                "" if r.quantity_containers is None else plain_number(r.quantity_containers),
                r.quantity_mg,
                r.receipt.supplier_name,
                r.receipt.supplier_address,
                r.receipt.supplier_dea_number,
                r.receipt.invoice_reference,
                _name(r.actor),
            ]
            for r in selectors.receipts(start, end)
        ]
    if kind == "waste-log":
        head = [
            "Date",
            "Location",
            "Substance",
            "Strength",
            "Dosage form",
            "Lot",
            "Quantity wasted (mg)",
            "Source",
            "Patient",
            "Wasted by",
            "Witness",
            "Rendered non-retrievable by",
        ]
        return head, [
            [
                _local(r.occurred_at, r.location),
                str(r.location),
                r.product.substance,
                r.product.strength_label,
                r.product.dosage_form,
                r.lot_ref,
                r.quantity_mg,
                r.get_waste_source_display(),
                r.patient.full_name if r.patient else "",
                _name(r.actor),
                _name(r.witness),
                r.reason,
            ]
            for r in selectors.waste_log(start, end)
        ]
    if kind == "destruction-loss":
        head = [
            "Date",
            "Kind",
            "Location",
            "Substance",
            "Lot",
            "mg",
            "Reason / method",
            "Document",
            "Witness",
            "DEA form",
            "Due by",
            "Filed",
        ]
        rows = []
        for r in selectors.destruction_and_loss(start, end):
            form = getattr(r, "dea_form", None)
            rows.append(
                [
                    _local(r.occurred_at, r.location),
                    r.kind,
                    str(r.location),
                    r.product.substance,
                    r.lot_ref,
                    r.quantity_mg,
                    r.reason,
                    r.document_ref,
                    _name(r.witness),
                    form.get_kind_display() if form else "",
                    _local(form.due_by, r.location) if form and form.due_by else "",
                    "yes" if form and form.filed_at else "",
                ]
            )
        return head, rows
    raise Http404("No such report.")


def _period(request: HttpRequest) -> tuple[forms.PeriodForm, datetime, datetime]:
    today = datetime.now(UTC).date()
    form = forms.PeriodForm(request.GET or {"start": today - timedelta(days=30), "end": today})
    if form.is_valid():
        start_day, end_day = form.cleaned_data["start"], form.cleaned_data["end"]
    else:
        start_day, end_day = today - timedelta(days=30), today
    start = datetime.combine(start_day, time.min, tzinfo=UTC)
    end = datetime.combine(end_day + timedelta(days=1), time.min, tzinfo=UTC)
    return form, start, end


def pdf_response(html: str, filename: str) -> HttpResponse:
    from weasyprint import HTML

    pdf = HTML(string=html).write_pdf()
    response = HttpResponse(pdf, content_type="application/pdf")
    response["Content-Disposition"] = f'attachment; filename="{filename}"'
    return response


@staff_view(Cap.INVENTORY_REPORT)
def reports(request: HttpRequest) -> HttpResponse:
    context = {
        "reports": REPORTS,
        "inventories": list(selectors.inventories()),
        "retention_years": selectors.retention_years(),
    }
    return TemplateResponse(request, "inventory/report_index.html", context)


@staff_view(Cap.INVENTORY_REPORT)
def report(request: ActorRequest, kind: str) -> HttpResponse:
    if kind not in REPORTS:
        raise Http404("No such report.")
    form, start, end = _period(request)
    head, rows = report_table(kind, start, end)
    actor = request.actor
    context = {
        "title": REPORTS[kind],
        "kind": kind,
        "head": head,
        "rows": rows,
        "form": form,
        "start": start.date(),
        "end": (end - timedelta(days=1)).date(),
        "organization": actor.organization,
        "retention_years": selectors.retention_years(),
        "generated_at": datetime.now(UTC),
        "generated_by": actor.user.display_name,
    }
    output = request.GET.get("format", "")
    if output == "csv":
        response = HttpResponse(content_type="text/csv")
        response["Content-Disposition"] = f'attachment; filename="{kind}.csv"'
        writer = csv.writer(response)
        writer.writerow(head)
        writer.writerows(rows)
        return response
    if output == "pdf":
        return pdf_response(render_to_string("inventory/report_pdf.html", context), f"{kind}.pdf")
    return TemplateResponse(request, "inventory/report.html", context)


@staff_view(Cap.INVENTORY_REPORT)
def inventory_snapshot(request: ActorRequest, count_id: str) -> HttpResponse:
    """The initial or biennial inventory as taken (1304.11), on screen or as PDF."""
    actor = request.actor
    count = selectors.get_for_actor(
        actor, InventoryCount, count_id, capability=Cap.INVENTORY_REPORT
    )
    previous = selectors.previous_inventory(count)
    context = {
        "count": count,
        "previous": previous,
        "organization": actor.organization,
        "taken_local": _local(count.taken_at, count.location),
        "total_mg": sum((Decimal(line["counted_mg"]) for line in count.lines), Decimal(0)),
        "retention_years": selectors.retention_years(),
    }
    if request.GET.get("format") == "pdf":
        html = render_to_string("inventory/inventory_pdf.html", context)
        return pdf_response(html, f"inventory-{count.taken_at:%Y-%m-%d}.pdf")
    return TemplateResponse(request, "inventory/inventory_snapshot.html", context)
