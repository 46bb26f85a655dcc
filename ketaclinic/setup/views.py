"""The clinic admin's set-up screens. Views parse, call a service, render; a refused change comes
back on the same page with the service's message next to the field (status 400/403/409/422)."""

from __future__ import annotations

import base64
from collections.abc import Callable
from typing import Any

import qrcode
import qrcode.image.svg
from django import forms as django_forms
from django.contrib import messages
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect
from django.template.response import TemplateResponse
from django.views.decorators.http import require_POST

from ketaclinic.accounts import site_setup, staffing
from ketaclinic.accounts.actor import ActorRequest
from ketaclinic.accounts.chairs import CAPABILITY_LABELS, ChairCapability
from ketaclinic.accounts.models import Chair, Clinic, Membership, RoleChange
from ketaclinic.accounts.roles import Cap
from ketaclinic.core.decorators import staff_view
from ketaclinic.core.errors import DomainError, NotFound
from ketaclinic.core.forms import add_domain_errors
from ketaclinic.inventory import services as inventory
from ketaclinic.inventory.models import Product, StorageLocation
from ketaclinic.messaging.patient_pages import FIELDS as PATIENT_PAGES_FIELDS
from ketaclinic.messaging.patient_pages import (
    patient_pages_policy,
    patient_pages_policy_publish,
)
from ketaclinic.setup import forms, selectors, services


def _get(model: type[Any], public_id: Any, what: str) -> Any:
    found = model.objects.filter(public_id=public_id).first()
    if found is None:
        raise NotFound(f"No such {what}.")
    return found


def _submit(form: django_forms.Form, write: Callable[[dict[str, Any]], Any]) -> Any:
    """What `write` returns for a valid form; None when invalid or refused (errors on the form)."""
    if not form.is_valid():
        return None
    try:
        return write(form.cleaned_data)
    except DomainError as error:
        add_domain_errors(form, error)
        form.refusal_status = error.status  # type: ignore[attr-defined]
        return None


def _status(*bound: django_forms.Form | None) -> int:
    for form in bound:
        if form is not None and form.errors:
            return getattr(form, "refusal_status", 400)
    return 200


@staff_view(Cap.SETUP_MANAGE)
def index(request: ActorRequest) -> HttpResponse:
    actor = request.actor
    context = {"checklist": selectors.first_run_checklist(actor)}
    return TemplateResponse(request, "setup/index.html", context)


# --- clinics --------------------------------------------------------------------------------------


def _clinicians(request: ActorRequest) -> list[Membership]:
    return [m for m in selectors.staff(request.actor) if m.is_active]


def _clinics_page(
    request: ActorRequest, add_form: Any = None, edit_forms: dict[int, Any] | None = None
) -> HttpResponse:
    clinicians = _clinicians(request)
    edit_forms = edit_forms or {}
    rows = [
        (
            clinic,
            edit_forms.get(clinic.pk)
            or forms.ClinicForm(
                initial=forms.ClinicForm.initial_for(clinic),
                clinicians=clinicians,
                prefix=f"c{clinic.pk}",
            ),
        )
        for clinic in selectors.clinics()
    ]
    context = {
        "rows": rows,
        "add_form": add_form or forms.ClinicForm(clinicians=clinicians, prefix="new"),
    }
    status = _status(add_form, *edit_forms.values())
    return TemplateResponse(request, "setup/clinics.html", context, status=status)


@staff_view(Cap.SETUP_MANAGE)
def clinics(request: ActorRequest) -> HttpResponse:
    return _clinics_page(request)


@require_POST
@staff_view(Cap.SETUP_MANAGE)
def clinic_add(request: ActorRequest) -> HttpResponse:
    actor = request.actor
    form = forms.ClinicForm(request.POST, clinicians=_clinicians(request), prefix="new")
    clinic = _submit(form, lambda data: site_setup.clinic_create(actor=actor, data=data))
    if clinic is None:
        return _clinics_page(request, add_form=form)
    messages.success(request, f"{clinic.name} added.")
    return redirect("setup:clinics")


@require_POST
@staff_view(Cap.SETUP_MANAGE)
def clinic_edit(request: ActorRequest, clinic_id: Any) -> HttpResponse:
    actor = request.actor
    clinic = _get(Clinic, clinic_id, "clinic")
    form = forms.ClinicForm(request.POST, clinicians=_clinicians(request), prefix=f"c{clinic.pk}")
    saved = _submit(
        form, lambda data: site_setup.clinic_update(actor=actor, clinic=clinic, data=data)
    )
    if saved is None:
        return _clinics_page(request, edit_forms={clinic.pk: form})
    messages.success(request, f"{saved.name} saved.")
    return redirect("setup:clinics")


# --- chairs ---------------------------------------------------------------------------------------


def _chairs_page(
    request: HttpRequest, add_form: Any = None, edit_forms: dict[int, Any] | None = None
) -> HttpResponse:
    edit_forms = edit_forms or {}
    rows = [
        (
            chair,
            [CAPABILITY_LABELS[ChairCapability(c)] for c in chair.capabilities],
            edit_forms.get(chair.pk)
            or forms.ChairEditForm(
                initial={"name": chair.name, "capabilities": chair.capabilities},
                prefix=f"ch{chair.pk}",
            ),
        )
        for chair in selectors.chairs()
    ]
    context = {"rows": rows, "add_form": add_form or forms.ChairForm(prefix="new")}
    status = _status(add_form, *edit_forms.values())
    return TemplateResponse(request, "setup/chairs.html", context, status=status)


@staff_view(Cap.SETUP_MANAGE)
def chairs(request: HttpRequest) -> HttpResponse:
    return _chairs_page(request)


@require_POST
@staff_view(Cap.SETUP_MANAGE)
def chair_add(request: ActorRequest) -> HttpResponse:
    actor = request.actor
    form = forms.ChairForm(request.POST, prefix="new")
    chair = _submit(
        form,
        lambda data: site_setup.chair_create(
            actor=actor,
            clinic=data["clinic"],
            number=data["number"],
            name=data["name"],
            capabilities=data["capabilities"],
        ),
    )
    if chair is None:
        return _chairs_page(request, add_form=form)
    messages.success(request, f"{chair.label} added to {chair.clinic.name}.")
    return redirect("setup:chairs")


@require_POST
@staff_view(Cap.SETUP_MANAGE)
def chair_edit(request: ActorRequest, chair_id: Any) -> HttpResponse:
    actor = request.actor
    chair = _get(Chair, chair_id, "chair")
    form = forms.ChairEditForm(request.POST, prefix=f"ch{chair.pk}")
    saved = _submit(
        form,
        lambda data: site_setup.chair_update(
            actor=actor, chair=chair, name=data["name"], capabilities=data["capabilities"]
        ),
    )
    if saved is None:
        return _chairs_page(request, edit_forms={chair.pk: form})
    messages.success(request, f"{saved.label} saved.")
    return redirect("setup:chairs")


@require_POST
@staff_view(Cap.SETUP_MANAGE)
def chair_active(request: ActorRequest, chair_id: Any) -> HttpResponse:
    actor = request.actor
    chair = _get(Chair, chair_id, "chair")
    active = request.POST.get("is_active") == "1"
    chair = site_setup.chair_update(actor=actor, chair=chair, is_active=active)
    messages.success(request, f"{chair.label} {'back in service' if active else 'out of service'}.")
    return redirect("setup:chairs")


# --- products and storage locations -------------------------------------------------------------


def _products_page(request: HttpRequest, add_form: Any = None) -> HttpResponse:
    context = {
        "products": list(selectors.products()),
        "add_form": add_form or forms.ProductForm(),
    }
    status = _status(add_form)
    return TemplateResponse(request, "setup/products.html", context, status=status)


@staff_view(Cap.SETUP_MANAGE)
def products(request: HttpRequest) -> HttpResponse:
    return _products_page(request)


@require_POST
@staff_view(Cap.SETUP_MANAGE)
def product_add(request: ActorRequest) -> HttpResponse:
    actor = request.actor
    form = forms.ProductForm(request.POST)
    product = _submit(form, lambda data: inventory.product_define(actor=actor, **data))
    if product is None:
        return _products_page(request, add_form=form)
    messages.success(request, f"{product.display_name} added to the stock list.")
    return redirect("setup:products")


@require_POST
@staff_view(Cap.SETUP_MANAGE)
def product_active(request: ActorRequest, product_id: Any) -> HttpResponse:
    actor = request.actor
    product = _get(Product, product_id, "product")
    active = request.POST.get("is_active") == "1"
    inventory.product_set_active(actor=actor, product=product, is_active=active)
    done = "back on the stock list" if active else "taken off the stock list"
    messages.success(request, f"{product.display_name} {done}.")
    return redirect("setup:products")


def _locations_page(request: HttpRequest, add_form: Any = None) -> HttpResponse:
    context = {
        "locations": list(selectors.locations()),
        "add_form": add_form or forms.LocationForm(),
    }
    return TemplateResponse(request, "setup/locations.html", context, status=_status(add_form))


@staff_view(Cap.SETUP_MANAGE)
def locations(request: HttpRequest) -> HttpResponse:
    return _locations_page(request)


@require_POST
@staff_view(Cap.SETUP_MANAGE)
def location_add(request: ActorRequest) -> HttpResponse:
    actor = request.actor
    form = forms.LocationForm(request.POST)
    location = _submit(form, lambda data: inventory.location_create(actor=actor, **data))
    if location is None:
        return _locations_page(request, add_form=form)
    messages.success(request, f"{location.name} added.")
    return redirect("setup:locations")


@require_POST
@staff_view(Cap.SETUP_MANAGE)
def location_active(request: ActorRequest, location_id: Any) -> HttpResponse:
    actor = request.actor
    location = _get(StorageLocation, location_id, "storage location")
    active = request.POST.get("is_active") == "1"
    try:
        inventory.location_set_active(actor=actor, location=location, is_active=active)
    except DomainError as error:
        messages.error(request, error.detail)
        return redirect("setup:locations")
    messages.success(request, f"{location.name} {'back in use' if active else 'retired'}.")
    return redirect("setup:locations")


# --- staff ------------------------------------------------------------------------------------------


def _staff_page(
    request: ActorRequest,
    add_form: Any = None,
    role_forms: dict[int, Any] | None = None,
    status: int | None = None,
) -> HttpResponse:
    actor = request.actor
    role_forms = role_forms or {}
    members = list(selectors.staff(actor))
    pending = list(selectors.role_changes_pending())
    pending_by_member = {change.membership_id: change for change in pending}
    rows = [
        (
            member,
            pending_by_member.get(member.pk),
            role_forms.get(member.pk)
            or forms.RoleForm(initial={"role": member.role}, prefix=f"m{member.pk}"),
        )
        for member in members
    ]
    context = {
        "rows": rows,
        "pending": pending,
        "add_form": add_form or forms.StaffForm(prefix="new"),
    }
    status = status or _status(add_form, *role_forms.values())
    return TemplateResponse(request, "setup/staff.html", context, status=status)


@staff_view(Cap.STAFF_MANAGE)
def staff(request: ActorRequest) -> HttpResponse:
    return _staff_page(request)


def _qr_svg(url: str) -> str:
    image = qrcode.make(url, image_factory=qrcode.image.svg.SvgPathImage, box_size=8)
    return image.to_string(encoding="unicode")


@require_POST
@staff_view(Cap.STAFF_MANAGE)
def staff_add(request: ActorRequest) -> HttpResponse:
    actor = request.actor
    form = forms.StaffForm(request.POST, prefix="new")
    created = _submit(form, lambda data: staffing.staff_create(actor=actor, **data))
    if created is None:
        return _staff_page(request, add_form=form)
    # The secrets are on this one response only; it must not be cached or replayed.
    context = {
        "created": created,
        "qr_svg": _qr_svg(created.totp_url),
        "qr_data_uri": "data:image/svg+xml;base64,"
        + base64.b64encode(_qr_svg(created.totp_url).encode()).decode(),
    }
    response = TemplateResponse(request, "setup/staff_created.html", context, status=201)
    response["Cache-Control"] = "no-store"
    return response


def _member(request: ActorRequest, user_id: Any) -> Membership:
    actor = request.actor
    membership = (
        Membership.objects.select_related("user")
        .filter(organization=actor.organization, user__public_id=user_id)
        .first()
    )
    if membership is None:
        raise NotFound("No such staff member.")
    return membership


@require_POST
@staff_view(Cap.STAFF_MANAGE)
def staff_role(request: ActorRequest, user_id: Any) -> HttpResponse:
    actor = request.actor
    membership = _member(request, user_id)
    form = forms.RoleForm(request.POST, prefix=f"m{membership.pk}")
    change = _submit(
        form,
        lambda data: staffing.staff_role_change(
            actor=actor, membership=membership, role=data["role"], reason=data["reason"]
        ),
    )
    if change is None:
        for message in form.non_field_errors():  # e.g. a refused change of one's own role
            messages.error(request, str(message))
        return _staff_page(request, role_forms={membership.pk: form})
    if change.status == RoleChange.Status.PENDING:
        messages.success(
            request,
            f"{membership.user.display_name} becomes {change.get_to_role_display()} once "
            "another clinic admin approves.",
        )
    else:
        messages.success(
            request, f"{membership.user.display_name} is now {change.get_to_role_display()}."
        )
    return redirect("setup:staff")


@require_POST
@staff_view(Cap.STAFF_MANAGE)
def staff_deactivate(request: ActorRequest, user_id: Any) -> HttpResponse:
    actor = request.actor
    membership = _member(request, user_id)
    try:
        staffing.staff_deactivate(
            actor=actor, membership=membership, reason=request.POST.get("reason", "")
        )
    except DomainError as error:
        messages.error(request, error.detail)
        return _staff_page(request, status=error.status)
    messages.success(request, f"{membership.user.display_name} can no longer log in.")
    return redirect("setup:staff")


@require_POST
@staff_view(Cap.STAFF_MANAGE)
def role_change_decide(request: ActorRequest, change_id: Any) -> HttpResponse:
    actor = request.actor
    change = _get(RoleChange, change_id, "role change")
    approve = request.POST.get("decision") == "approve"
    try:
        change = staffing.role_change_decide(actor=actor, change=change, approve=approve)
    except DomainError as error:
        messages.error(request, error.detail)
        return _staff_page(request, status=error.status)
    name = change.membership.user.display_name
    if approve:
        messages.success(request, f"{name} is now {change.get_to_role_display()}.")
    else:
        messages.success(request, f"The change for {name} was rejected.")
    return redirect("setup:staff")


# --- escalation -------------------------------------------------------------------------------------


@staff_view(Cap.SETUP_MANAGE)
def escalation(request: ActorRequest) -> HttpResponse:
    actor = request.actor
    current = services.escalation_current(actor)
    initial = {
        "escalation_minutes": current.escalation_minutes,
        "escalation_role": current.escalation_role,
    }
    form = forms.EscalationForm(request.POST or None, initial=initial)
    if request.method == "POST":
        policy = _submit(form, lambda data: services.escalation_update(actor=actor, **data))
        if policy is not None:
            messages.success(
                request, f"Escalation settings saved (policy version {policy.version})."
            )
            return redirect("setup:escalation")
    context = {"form": form, "current": current, "clinics": list(selectors.clinics())}
    return TemplateResponse(request, "setup/escalation.html", context, status=_status(form))


# --- patient portal: sign-in links and crisis numbers ------------------------------------------------


@staff_view(Cap.SETUP_MANAGE)
def patient_pages(request: ActorRequest) -> HttpResponse:
    actor = request.actor
    current = patient_pages_policy(actor.organization)
    initial = {field: getattr(current, field) for field in PATIENT_PAGES_FIELDS}
    form = forms.PatientPagesForm(request.POST or None, initial=initial)
    if request.method == "POST":
        policy = _submit(form, lambda data: patient_pages_policy_publish(actor=actor, **data))
        if policy is not None:
            messages.success(request, f"Patient portal settings saved (version {policy.version}).")
            return redirect("setup:patient-pages")
    context = {"form": form, "current": current, "lines": current.crisis_lines}
    return TemplateResponse(request, "setup/patient_pages.html", context, status=_status(form))
