"""Staff screens for what was API-only: the clinic's scheduling rules (monitoring ratio, portal
rules, appointment types with their published prices) and the waitlist. Each POST has its JSON
API twin (scheduling/api.py) through the same service (tests/test_api_parity.py)."""

from __future__ import annotations

from typing import Any

from django.contrib import messages
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect
from django.template.response import TemplateResponse

from ketaclinic.accounts.actor import ActorRequest
from ketaclinic.accounts.roles import Cap
from ketaclinic.core import clock
from ketaclinic.core.decorators import staff_view
from ketaclinic.core.errors import DomainError, ValidationFailed
from ketaclinic.core.formatting import zone_abbreviation
from ketaclinic.core.forms import add_domain_errors
from ketaclinic.patients.models import Patient
from ketaclinic.scheduling import selectors, services
from ketaclinic.scheduling.availability import capacity_policy_current, portal_policy_current
from ketaclinic.scheduling.forms import (
    WEEKDAY_NAMES,
    CapacityForm,
    PortalPolicyForm,
    TypeForm,
    WaitlistBookForm,
    WaitlistForm,
    WeeklyHoursForm,
)
from ketaclinic.scheduling.models import AppointmentType, WaitlistEntry


def _type_form(appointment_type: AppointmentType, data: Any = None) -> TypeForm:
    return TypeForm(
        data,
        prefix=appointment_type.kind,
        initial={
            "duration_minutes": appointment_type.duration_minutes,
            "bookable_online": appointment_type.bookable_online,
            "is_active": appointment_type.is_active,
            "public_price": appointment_type.public_price,
        },
    )


def _settings_page(request: ActorRequest, status: int = 200, **forms: Any) -> HttpResponse:
    actor = request.actor
    clinic = selectors.clinic_for_actor(actor)
    services.appointment_types_seed(organization=actor.organization)
    capacity = capacity_policy_current(clinic)
    portal = portal_policy_current(clinic)
    kinds = list(AppointmentType.objects.filter(organization=actor.organization))
    context = {
        "clinic": clinic,
        "capacity": capacity,
        "portal": portal,
        "capacity_form": forms.get("capacity_form")
        or CapacityForm(initial={"patients_per_nurse": capacity.patients_per_nurse}),
        "portal_form": forms.get("portal_form")
        or PortalPolicyForm(
            initial={
                "change_cutoff_hours": portal.change_cutoff_hours,
                "horizon_days": portal.horizon_days,
            }
        ),
        "rows": [
            (t, forms["type_form"] if forms.get("type_kind") == t.kind else _type_form(t))
            for t in kinds
        ],
        "can_manage": actor.can(Cap.SCHEDULE_MANAGE),
    }
    return TemplateResponse(request, "scheduling/settings.html", context, status=status)


@staff_view(Cap.SCHEDULE_VIEW)
def settings_page(request: ActorRequest) -> HttpResponse:
    return _settings_page(request)


@staff_view(Cap.SCHEDULE_MANAGE)
def capacity_publish(request: ActorRequest) -> HttpResponse:
    actor = request.actor
    if request.method != "POST":
        return redirect("scheduling:settings")
    form = CapacityForm(request.POST)
    if form.is_valid():
        try:
            policy = services.capacity_policy_publish(
                actor=actor, clinic=selectors.clinic_for_actor(actor), **form.cleaned_data
            )
        except DomainError as error:
            add_domain_errors(form, error)
        else:
            messages.success(
                request,
                f"Monitoring ratio version {policy.version}: "
                f"{policy.patients_per_nurse} per nurse.",
            )
            return redirect("scheduling:settings")
    return _settings_page(request, 400, capacity_form=form)


@staff_view(Cap.SCHEDULE_MANAGE)
def portal_policy_publish(request: ActorRequest) -> HttpResponse:
    actor = request.actor
    if request.method != "POST":
        return redirect("scheduling:settings")
    form = PortalPolicyForm(request.POST)
    if form.is_valid():
        try:
            policy = services.portal_policy_publish(
                actor=actor, clinic=selectors.clinic_for_actor(actor), **form.cleaned_data
            )
        except DomainError as error:
            add_domain_errors(form, error)
        else:
            messages.success(request, f"Portal rules version {policy.version} published.")
            return redirect("scheduling:settings")
    return _settings_page(request, 400, portal_form=form)


@staff_view(Cap.SCHEDULE_MANAGE)
def type_edit(request: ActorRequest, kind: str) -> HttpResponse:
    """One row of the types table; with htmx only that row comes back (partial `type-row`)."""
    actor = request.actor
    appointment_type = selectors.appointment_type_by_kind(actor, kind)
    if request.method != "POST":
        return redirect("scheduling:settings")
    form = _type_form(appointment_type, request.POST)
    saved = False
    if form.is_valid():
        try:
            services.appointment_type_update(
                actor=actor, appointment_type=appointment_type, **form.cleaned_data
            )
        except DomainError as error:
            add_domain_errors(form, error)
        else:
            saved = True
    if request.htmx:  # type: ignore[attr-defined]
        appointment_type.refresh_from_db()
        context = {
            "t": appointment_type,
            "form": _type_form(appointment_type) if saved else form,
            "saved": saved,
            "can_manage": True,
        }
        return TemplateResponse(
            request, "scheduling/settings.html#type-row", context, status=200 if saved else 400
        )
    if saved:
        messages.success(request, f"{appointment_type.name} saved.")
        return redirect("scheduling:settings")
    return _settings_page(request, 400, type_form=form, type_kind=kind)


# --- waitlist -----------------------------------------------------------------------------------


def _waitlist_page(request: HttpRequest, status: int = 200, **forms: Any) -> HttpResponse:
    entries = list(
        WaitlistEntry.objects.filter(status=WaitlistEntry.Status.WAITING)
        .select_related("patient", "appointment_type", "clinic")
        .order_by("created_at", "pk")[:200]
    )
    failed = forms.get("failed_entry")
    rows = [
        (e, forms["book_form"] if failed == e.pk else WaitlistBookForm(prefix=f"w{e.pk}"))
        for e in entries
    ]
    context = {"rows": rows, "form": forms.get("form") or WaitlistForm()}
    return TemplateResponse(request, "scheduling/waitlist.html", context, status=status)


@staff_view(Cap.SCHEDULE_VIEW)
def waitlist(request: ActorRequest) -> HttpResponse:
    actor = request.actor
    if request.method != "POST":
        return _waitlist_page(request)
    actor.require(Cap.SCHEDULE_BOOK)
    form = WaitlistForm(request.POST)
    if form.is_valid():
        try:
            patient = Patient.objects.filter(mrn=form.cleaned_data["mrn"].strip()).first()
            if patient is None:
                raise ValidationFailed.for_field("mrn", "No patient has this MRN.")
            services.waitlist_add(
                actor=actor,
                patient=patient,
                appointment_type=selectors.appointment_type_by_kind(
                    actor, form.cleaned_data["appointment_type"]
                ),
                earliest=form.cleaned_data["earliest"],
                latest=form.cleaned_data["latest"],
                clinic=selectors.clinic_for_actor(actor),
                note=form.cleaned_data["note"],
            )
        except DomainError as error:
            add_domain_errors(form, error)
        else:
            messages.success(request, f"{patient.full_name} is on the waitlist.")
            return redirect("scheduling:waitlist")
    return _waitlist_page(request, 400, form=form)


@staff_view(Cap.SCHEDULE_BOOK)
def waitlist_book(request: ActorRequest, entry_id: str) -> HttpResponse:
    actor = request.actor
    entry = selectors.waitlist_get_for_actor(actor, entry_id)
    if request.method != "POST":
        return redirect("scheduling:waitlist")
    form = WaitlistBookForm(request.POST, prefix=f"w{entry.pk}")
    if form.is_valid():
        try:
            services.waitlist_book(
                actor=actor,
                entry=entry,
                starts_at=form.starts_at(entry.clinic.time_zone),
                chair=selectors.chair_by_number(entry.clinic, form.cleaned_data["chair"]),
            )
        except DomainError as error:
            add_domain_errors(form, error)
        else:
            messages.success(request, f"Booked for {entry.patient.full_name}.")
            return redirect("scheduling:waitlist")
    return _waitlist_page(request, 400, book_form=form, failed_entry=entry.pk)


@staff_view(Cap.SCHEDULE_BOOK)
def waitlist_remove(request: ActorRequest, entry_id: str) -> HttpResponse:
    actor = request.actor
    entry = selectors.waitlist_get_for_actor(actor, entry_id)
    if request.method != "POST":
        return redirect("scheduling:waitlist")
    try:
        services.waitlist_remove(actor=actor, entry=entry, reason=request.POST.get("reason", ""))
    except DomainError as error:
        messages.error(request, f"{entry.patient.full_name}: {error.detail}")
    else:
        messages.success(request, f"{entry.patient.full_name} is off the waitlist.")
    return redirect("scheduling:waitlist")


def _zone(clinic: Any) -> str:
    """The clinic zone's abbreviation today (CST or CDT): weekly hours are wall-clock times."""
    return zone_abbreviation(clock.now(), clinic.time_zone)


def _week_text(rows: list[Any], zone: str) -> str:
    """The week in clinic time: 'Monday 09:00–17:00 CST; Tuesday 09:00–12:00 CST, 13:00–17:00 CST'."""
    days: dict[int, list[str]] = {}
    for row in rows:
        days.setdefault(row.weekday, []).append(
            f"{row.start_time:%H:%M}–{row.end_time:%H:%M} {zone}"
        )
    return "; ".join(f"{WEEKDAY_NAMES[d]} {', '.join(spans)}" for d, spans in sorted(days.items()))


@staff_view(Cap.SCHEDULE_VIEW)
def hours_list(request: ActorRequest) -> HttpResponse:
    """Who works when at this clinic: the hours free-slot search and the monitoring ratio use."""
    actor = request.actor
    clinic = selectors.clinic_for_actor(actor)
    staff = selectors.clinicians_for_filter(actor)
    hours = selectors.weekly_hours(clinic, staff)
    context = {
        "clinic": clinic,
        "rows": [(member, _week_text(hours[member.pk], _zone(clinic))) for member in staff],
        "zone": _zone(clinic),
        "can_manage": actor.can(Cap.SCHEDULE_MANAGE),
    }
    return TemplateResponse(request, "scheduling/hours_list.html", context)


@staff_view(Cap.SCHEDULE_VIEW)
def hours_edit(request: ActorRequest, user_id: str) -> HttpResponse:
    """One staff member's week; POST replaces it (the JSON API's PUT /scheduling/hours)."""
    actor = request.actor
    clinic = selectors.clinic_for_actor(actor)
    member = selectors.staff_member_by_user(actor, user_id)
    current = selectors.weekly_hours(clinic, [member])[member.pk]
    initial = WeeklyHoursForm.initial_from(current)
    if request.method == "POST":
        actor.require(Cap.SCHEDULE_MANAGE)
        form = WeeklyHoursForm(request.POST)
        if form.is_valid():
            try:
                services.staff_hours_set(
                    actor=actor, membership=member, clinic=clinic, hours=form.spans()
                )
            except DomainError as error:
                add_domain_errors(form, error)
            else:
                messages.success(request, f"Working hours of {member.user.display_name} saved.")
                return redirect("scheduling:hours")
    else:
        form = WeeklyHoursForm(initial=initial)
    context = {
        "clinic": clinic,
        "member": member,
        "form": form,
        "zone": _zone(clinic),
        # Spans beyond the form's two a day (set through the API): saving here replaces them.
        "hidden_spans": len(current) - len(initial) // 2,
        "can_manage": actor.can(Cap.SCHEDULE_MANAGE),
    }
    status = 400 if form.is_bound and form.errors else 200
    return TemplateResponse(request, "scheduling/hours_edit.html", context, status=status)
