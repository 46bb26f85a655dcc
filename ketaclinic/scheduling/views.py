"""The calendar: a day per clinic (a column per chair, one for rooms and telehealth) and a week,
with booking, moving, cancelling, no-show and check-in. Each POST has its JSON API twin
(scheduling/api.py) through the same service."""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from django.contrib import messages
from django.http import HttpRequest, HttpResponse
from django.middleware.csrf import get_token
from django.shortcuts import redirect
from django.template.response import TemplateResponse
from django.urls import reverse

from ketaclinic.accounts.actor import ActorRequest
from ketaclinic.accounts.models import Membership
from ketaclinic.accounts.roles import Cap
from ketaclinic.core import clock
from ketaclinic.core.decorators import staff_view
from ketaclinic.core.errors import DomainError, ValidationFailed
from ketaclinic.core.forms import add_domain_errors
from ketaclinic.patients.models import Patient
from ketaclinic.protocols.models import TreatmentPlan
from ketaclinic.scheduling import selectors, services
from ketaclinic.scheduling.availability import portal_policy_current
from ketaclinic.scheduling.forms import BookForm, MoveForm, ReasonForm, SeriesForm
from ketaclinic.scheduling.models import Appointment


def _day(request: HttpRequest, clinic: Any) -> date:
    try:
        return date.fromisoformat(request.GET.get("date", ""))
    except ValueError:
        return clock.now().astimezone(ZoneInfo(clinic.time_zone)).date()


def _day_url(day: date) -> str:
    return f"{reverse('scheduling:day')}?date={day.isoformat()}"


def _moving(request: HttpRequest, actor: Any, clinic: Any, day: date) -> dict[str, Any]:
    """Click to move: the visit chosen on the calendar (?move=<id>) and its free times on the
    shown day. Any time may still be typed in; the service refuses a conflict and says why."""
    move_id = request.GET.get("move")
    if not move_id or not actor.can(Cap.SCHEDULE_BOOK):
        return {}
    moving = selectors.appointment_get_for_actor(actor, move_id)
    if moving.status != Appointment.Status.BOOKED or moving.clinic_id != clinic.pk:
        return {}
    slots = selectors.free_slots(
        clinic, moving.appointment_type, day, clinician=moving.clinician, exclude=moving
    )
    return {
        "moving": moving,
        "move_slots": [(s, c) for s, c in slots if s != moving.starts_at],
        "move_form": MoveForm(initial={"day": day}),
    }


def _whose(actor: Any, clinician: Membership | None) -> dict[str, Any]:
    """The calendar per clinician: the filter's choices, the chosen one, and the query string
    that keeps the choice on the day and week links."""
    return {
        "clinicians": selectors.clinicians_for_filter(actor),
        "clinician": clinician,
        "keep": f"&clinician={clinician.user.public_id}" if clinician else "",
    }


@staff_view(Cap.SCHEDULE_VIEW)
def calendar_day(request: ActorRequest) -> HttpResponse:
    return _calendar_day_page(request)


def _calendar_day_page(
    request: ActorRequest, form: BookForm | None = None, **move: Any
) -> HttpResponse:
    actor = request.actor
    clinic = selectors.clinic_for_actor(actor, request.GET.get("clinic"))
    day = _day(request, clinic)
    clinician = selectors.clinician_by_user(actor, request.GET.get("clinician"))
    context = {
        **_moving(request, actor, clinic, day),
        **_whose(actor, clinician),
        **move,
        "clinic": clinic,
        "day": day,
        "day_iso": day.isoformat(),
        "previous": day - timedelta(days=1),
        "next": day + timedelta(days=1),
        "monday": day - timedelta(days=day.weekday()),
        "columns": selectors.day_columns(clinic, day, clinician),
        "form": form or BookForm(initial={"day": day}),
        "reason_form": ReasonForm(),
        # Computed once for the page: 200 visits must not mean 200 reversals and token renders.
        "can_book": actor.can(Cap.SCHEDULE_BOOK),
        "csrf": get_token(request),
    }
    return TemplateResponse(request, "scheduling/calendar_day.html", context)


@staff_view(Cap.SCHEDULE_VIEW)
def calendar_week(request: ActorRequest) -> HttpResponse:
    actor = request.actor
    clinic = selectors.clinic_for_actor(actor, request.GET.get("clinic"))
    day = _day(request, clinic)
    monday = day - timedelta(days=day.weekday())
    clinician = selectors.clinician_by_user(actor, request.GET.get("clinician"))
    context = {
        **_whose(actor, clinician),
        "clinic": clinic,
        "monday": monday,
        "previous": monday - timedelta(days=7),
        "next": monday + timedelta(days=7),
        "days": selectors.week_days(clinic, monday, clinician),
    }
    return TemplateResponse(request, "scheduling/calendar_week.html", context)


@staff_view(Cap.SCHEDULE_BOOK)
def book(request: ActorRequest) -> HttpResponse:
    actor = request.actor
    if request.method != "POST":
        return redirect("scheduling:day")
    clinic = selectors.clinic_for_actor(actor)
    form = BookForm(request.POST)
    if form.is_valid():
        try:
            patient = Patient.objects.filter(mrn=form.cleaned_data["mrn"].strip()).first()
            if patient is None:
                raise ValidationFailed.for_field("mrn", "No patient has this MRN.")
            clinician = None
            if form.cleaned_data["clinician"]:
                clinician = Membership.objects.filter(
                    organization=actor.organization,
                    user__username=form.cleaned_data["clinician"].strip(),
                ).first()
                if clinician is None:
                    raise ValidationFailed.for_field("clinician", "No such staff member.")
            appointment = services.appointment_book(
                actor=actor,
                patient=patient,
                appointment_type=selectors.appointment_type_by_kind(
                    actor, form.cleaned_data["appointment_type"]
                ),
                starts_at=form.starts_at(clinic.time_zone),
                clinic=clinic,
                chair=selectors.chair_by_number(clinic, form.cleaned_data["chair"]),
                clinician=clinician,
            )
        except DomainError as error:
            add_domain_errors(form, error)
        else:
            messages.success(request, f"Booked for {patient.full_name}.")
            local = appointment.starts_at.astimezone(ZoneInfo(clinic.time_zone))
            return redirect(_day_url(local.date()))
    query = request.GET.copy()
    query["date"] = request.POST.get("day", "")
    request.GET = query  # type: ignore[assignment]  # the day view reads its date from GET
    response = _calendar_day_page(request, form=form)
    response.status_code = 400
    return response


@staff_view(Cap.SCHEDULE_VIEW)
def appointment_detail(request: ActorRequest, appointment_id: str) -> HttpResponse:
    actor = request.actor
    appointment = selectors.appointment_get_for_actor(actor, appointment_id)
    return _detail(request, appointment)


def _detail(
    request: HttpRequest, appointment: Appointment, status: int = 200, **forms: Any
) -> HttpResponse:
    zone = ZoneInfo(appointment.clinic.time_zone)
    local = appointment.starts_at.astimezone(zone)
    policy = portal_policy_current(appointment.clinic)
    context = {
        "appointment": appointment,
        # The clinic's notice window, shown beside cancel and no-show (docs/sources/scheduling.md).
        "policy": policy,
        "late_notice": appointment.starts_at - clock.now()
        < timedelta(hours=policy.change_cutoff_hours),
        "move_form": forms.get("move_form")
        or MoveForm(initial={"day": local.date(), "time": local.time().replace(second=0)}),
        "cancel_form": forms.get("cancel_form") or ReasonForm(prefix="cancel"),
        "no_show_form": forms.get("no_show_form") or ReasonForm(prefix="noshow"),
        "error": forms.get("error"),
    }
    return TemplateResponse(request, "scheduling/appointment_detail.html", context, status=status)


@staff_view(Cap.SCHEDULE_BOOK)
def appointment_action(request: ActorRequest, appointment_id: str, action: str) -> HttpResponse:
    actor = request.actor
    appointment = selectors.appointment_get_for_actor(actor, appointment_id)
    if request.method != "POST":
        return redirect("scheduling:appointment", appointment_id=appointment.public_id)
    forms: dict[str, Any] = {}
    try:
        if action == "check-in":
            done = services.appointment_check_in(actor=actor, appointment=appointment)
            if done.session_public_id:
                return redirect("sessions:flowsheet", session_id=done.session_public_id)
            messages.success(request, f"{appointment.patient.full_name} is checked in.")
            if request.POST.get("back") == "today":  # checked in from the Today page's list
                return redirect("core:dashboard")
        elif action == "move":
            form = forms["move_form"] = MoveForm(request.POST)
            if not form.is_valid():
                return _back(request, appointment, 400, forms)
            moved = services.appointment_reschedule(
                actor=actor,
                appointment=appointment,
                starts_at=form.starts_at(appointment.clinic.time_zone),
                chair=selectors.chair_by_number(appointment.clinic, form.cleaned_data["chair"]),
                reason=form.cleaned_data["reason"],
            )
            messages.success(request, "Moved; the earlier time is kept in the history.")
            if request.POST.get("back") == "day":
                local = moved.starts_at.astimezone(ZoneInfo(moved.clinic.time_zone))
                return redirect(_day_url(local.date()))
            return redirect("scheduling:appointment", appointment_id=moved.public_id)
        elif action in ("cancel", "no-show"):
            key, prefix = (
                ("cancel_form", "cancel") if action == "cancel" else ("no_show_form", "noshow")
            )
            reason_form = forms[key] = ReasonForm(request.POST, prefix=prefix)
            if not reason_form.is_valid():
                return _detail(request, appointment, 400, **forms)
            service = (
                services.appointment_cancel if action == "cancel" else services.appointment_no_show
            )
            service(actor=actor, appointment=appointment, reason=reason_form.cleaned_data["reason"])
            messages.success(request, "Recorded.")
        else:
            return redirect("scheduling:appointment", appointment_id=appointment.public_id)
    except DomainError as error:
        failed = forms.get("move_form") or forms.get("cancel_form") or forms.get("no_show_form")
        if failed is not None:
            add_domain_errors(failed, error)
        if action == "move":
            return _back(request, appointment, error.status, forms, error)
        return _detail(request, appointment, error.status, error=error, **forms)
    return redirect("scheduling:appointment", appointment_id=appointment.public_id)


def _back(
    request: ActorRequest,
    appointment: Appointment,
    status: int,
    forms: dict[str, Any],
    error: DomainError | None = None,
) -> HttpResponse:
    """A refused move goes back where it was asked: the calendar day (click to move), with the
    service's reasons beside the form, or the visit's own page."""
    if request.POST.get("back") != "day":
        return _detail(request, appointment, status, error=error, **forms)
    query = request.GET.copy()
    query["date"] = request.POST.get("day", "")
    query["move"] = str(appointment.public_id)
    request.GET = query  # type: ignore[assignment]  # the day view reads its date from GET
    response = _calendar_day_page(request, move_form=forms["move_form"], move_error=error)
    response.status_code = status
    return response


@staff_view(Cap.SCHEDULE_BOOK)
def series_new(request: ActorRequest, plan_id: str) -> HttpResponse:
    actor = request.actor
    plan = TreatmentPlan.objects.filter(public_id=plan_id).select_related("patient").first()
    if plan is None:
        return TemplateResponse(
            request, "core/error.html", {"error": DomainError("No such plan.")}, status=404
        )
    form = SeriesForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            proposal = services.series_propose(
                actor=actor,
                plan=plan,
                appointment_type=selectors.appointment_type_by_kind(
                    actor, form.cleaned_data["appointment_type"]
                ),
                first_day=form.cleaned_data["first_day"],
                wall_time=form.cleaned_data["wall_time"],
            )
        except DomainError as error:
            add_domain_errors(form, error)
        else:
            return redirect("scheduling:series", series_id=proposal.public_id)
    return TemplateResponse(
        request,
        "scheduling/series_new.html",
        {"plan": plan, "form": form},
        status=400 if form.errors else 200,
    )


@staff_view(Cap.SCHEDULE_VIEW)
def series_detail(request: ActorRequest, series_id: str) -> HttpResponse:
    actor = request.actor
    proposal = selectors.series_get_for_actor(actor, series_id)
    refused: dict[int, list[Any]] = {}
    if request.method == "POST":
        actor.require(Cap.SCHEDULE_BOOK)
        result = services.series_confirm(actor=actor, proposal=proposal)
        refused = {a.pk: reasons for a, reasons in result.refused}
        messages.success(request, f"{len(result.booked)} visit(s) booked.")
    visits = [
        (visit, refused.get(visit.pk, []))
        for visit in proposal.appointments.select_related(
            "chair", "appointment_type", "clinic"
        ).order_by("starts_at")
    ]
    context = {"proposal": proposal, "visits": visits, "patient": proposal.patient}
    return TemplateResponse(request, "scheduling/series_detail.html", context)


@staff_view(Cap.SCHEDULE_VIEW)
def lead_list(request: HttpRequest) -> HttpResponse:
    from ketaclinic.scheduling.models import Lead

    pending = Lead.objects.filter(status=Lead.Status.NEW).select_related(
        "clinic", "requested_clinician__user"
    )[:200]
    return TemplateResponse(request, "scheduling/lead_list.html", {"leads": pending})


@staff_view(Cap.SCHEDULE_BOOK)
def lead_convert(request: ActorRequest, lead_id: str) -> HttpResponse:
    from ketaclinic.scheduling import leads
    from ketaclinic.scheduling.models import Lead

    actor = request.actor
    lead = Lead.objects.filter(public_id=lead_id).first()
    if lead is None or request.method != "POST":
        return redirect("scheduling:leads")
    try:
        done = leads.lead_convert(actor=actor, lead=lead)
    except DomainError as error:
        messages.error(request, error.detail)
        return redirect("scheduling:leads")
    messages.success(request, f"{done.given_name} {done.family_name} is registered.")
    if done.patient is None:  # lead_convert links the patient it registered; never None here
        return redirect("scheduling:leads")
    return redirect("patients:chart", patient_id=done.patient.public_id)


def calendar_feed(request: HttpRequest, token: str) -> HttpResponse:
    """The clinician's ICS feed: no login (calendar apps cannot log in); the token is the key."""
    from ketaclinic.core.errors import NotFound
    from ketaclinic.scheduling.feeds import calendar_feed_ics

    try:
        body = calendar_feed_ics(token)
    except NotFound:
        return HttpResponse("No such calendar feed.", status=404, content_type="text/plain")
    return HttpResponse(body, content_type="text/calendar; charset=utf-8")


@staff_view(Cap.SCHEDULE_VIEW)
def calendar_feed_manage(request: ActorRequest) -> HttpResponse:
    from ketaclinic.scheduling.feeds import calendar_feed_issue, calendar_feed_revoke

    actor = request.actor
    url = ""
    if request.method == "POST":
        if request.POST.get("action") == "revoke":
            calendar_feed_revoke(actor=actor)
            messages.success(request, "Your calendar feed is revoked.")
        else:
            token = calendar_feed_issue(actor=actor)
            url = request.build_absolute_uri(reverse("scheduling:feed", kwargs={"token": token}))
    return TemplateResponse(request, "scheduling/feed_manage.html", {"url": url})
