"""Staff screens for therapy: the therapist's worklist and inbox, a patient's therapy page
(visits, team, measures, risk flag, messages), a visit's note, and compliance's break-glass
report. Each POST calls the same service as its JSON API route (therapy/api.py)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any
from zoneinfo import ZoneInfo

from django import forms as django_forms
from django.contrib import messages
from django.http import HttpResponse
from django.shortcuts import redirect
from django.template.response import TemplateResponse
from django.urls import reverse
from django.views.decorators.http import require_POST

from ketaclinic.accounts.actor import ActorRequest
from ketaclinic.accounts.models import Clinic
from ketaclinic.accounts.roles import Cap
from ketaclinic.core.decorators import staff_view
from ketaclinic.core.errors import DomainError
from ketaclinic.core.forms import add_domain_errors
from ketaclinic.measures.definitions import current_instruments
from ketaclinic.patients.selectors import patient_chart_read, patient_get_for_actor
from ketaclinic.protocols.selectors import plans_for_patient
from ketaclinic.sessions.models import TreatmentSession
from ketaclinic.therapy import forms, selectors, services


def _zone(actor: Any) -> ZoneInfo:
    clinic = actor.membership.home_clinic or Clinic.objects.order_by("pk").first()
    return ZoneInfo(clinic.time_zone if clinic else "UTC")


def _local(value: Any, zone: ZoneInfo) -> Any:
    return value.replace(tzinfo=zone) if value is not None else None


def _sessions(patient: Any) -> list[Any]:
    return list(
        TreatmentSession.objects.filter(patient=patient, checked_in_at__isnull=False)
        .select_related("plan")
        .order_by("-scheduled_at")[:10]
    )


def _page_forms(actor: Any, patient: Any, data: Any = None) -> dict[str, Any]:
    plans = [p for p in plans_for_patient(patient) if p.status == "active"]
    return {
        "visit_form": forms.VisitForm(sessions=_sessions(patient)),
        "assign_form": forms.AssignForm(
            therapists=selectors.therapists(actor.organization), plans=plans
        ),
        "risk_form": forms.RiskFlagForm(),
        "message_form": forms.MessageForm(
            members=selectors.team_members(actor.organization), me=actor.user
        ),
        "measure_form": forms.MeasurePlanForm(instruments=list(current_instruments())),
        "plans": plans,
    }


def _patient_page(
    request: ActorRequest, patient: Any, status: int = 200, **replaced: Any
) -> HttpResponse:
    actor = request.actor
    context = {
        "patient": patient,
        "zone": _zone(actor),
        "visits": selectors.visits_for_patient(patient),
        "team": selectors.team_for_patient(patient),
        "measure_plans": selectors.measures_with_status(patient),
        "appointments": selectors.booked_therapy_appointments(patient),
        **_page_forms(actor, patient),
        **replaced,
    }
    return TemplateResponse(request, "therapy/patient_page.html", context, status=status)


def _patient_url(patient: Any) -> str:
    return reverse("therapy:patient", args=[patient.public_id])


def _submit(
    request: ActorRequest,
    patient: Any,
    form: django_forms.Form,
    form_name: str,
    write: Callable[[dict[str, Any]], Any],
    done: str,
) -> HttpResponse:
    """Validate, call the service, and come back to the page (with errors beside the fields)."""
    status = 400
    if form.is_valid():
        try:
            result = write(form.cleaned_data)
        except DomainError as error:
            add_domain_errors(form, error)
            status = error.status
        else:
            messages.success(request, done)
            return redirect(result if isinstance(result, str) else _patient_url(patient))
    return _patient_page(request, patient, status=status, **{form_name: form})


@staff_view(Cap.THERAPY_VIEW)
def home(request: ActorRequest) -> HttpResponse:
    actor = request.actor
    context = {
        "patients": selectors.my_patients(actor),
        "inbox": selectors.inbox(actor),
        "zone": _zone(actor),
    }
    return TemplateResponse(request, "therapy/home.html", context)


@staff_view(Cap.THERAPY_VIEW)
def patient_page(request: ActorRequest, patient_id: str) -> HttpResponse:
    actor = request.actor
    patient = patient_chart_read(actor, patient_id, action="therapy.patient.viewed")
    return _patient_page(request, patient)


@staff_view(Cap.THERAPY_RECORD)
@require_POST
def visit_new(request: ActorRequest, patient_id: str) -> HttpResponse:
    actor = request.actor
    patient = patient_get_for_actor(actor, patient_id)
    form = forms.VisitForm(request.POST, sessions=_sessions(patient))

    def write(data: dict[str, Any]) -> str:
        visit = services.visit_create(
            actor=actor,
            patient=patient,
            kind=data["kind"],
            visit_format=data["format"],
            group_size=data["group_size"],
            modality=data["modality"],
            with_em=data["with_em"],
            session=form.sessions.get(data["session"] or ""),
            appointment=selectors.appointment_get(actor, data["appointment"])
            if data["appointment"]
            else None,
            started_at=_local(data["started_at"], _zone(actor)),
        )
        return reverse("therapy:visit", args=[visit.public_id])

    return _submit(request, patient, form, "visit_form", write, "Visit opened.")


@staff_view(Cap.THERAPY_TEAM_ASSIGN)
@require_POST
def assign(request: ActorRequest, patient_id: str) -> HttpResponse:
    actor = request.actor
    patient = patient_get_for_actor(actor, patient_id)
    plans = [p for p in plans_for_patient(patient) if p.status == "active"]
    form = forms.AssignForm(
        request.POST, therapists=selectors.therapists(actor.organization), plans=plans
    )

    def write(data: dict[str, Any]) -> Any:
        return services.team_assign(
            actor=actor, therapist=form.therapists[data["therapist"]], plan=form.plans[data["plan"]]
        )

    return _submit(request, patient, form, "assign_form", write, "Therapist assigned.")


@staff_view(Cap.THERAPY_TEAM_ASSIGN)
@require_POST
def unassign(request: ActorRequest, assignment_id: str) -> HttpResponse:
    actor = request.actor
    row = selectors.assignment_get(actor, assignment_id)
    services.team_unassign(actor=actor, assignment=row)
    messages.success(request, "Therapist taken off the team.")
    return redirect(_patient_url(row.patient))


@staff_view(Cap.THERAPY_RECORD)
@require_POST
def risk_flag(request: ActorRequest, patient_id: str) -> HttpResponse:
    actor = request.actor
    patient = patient_get_for_actor(actor, patient_id)
    form = forms.RiskFlagForm(request.POST)

    def write(data: dict[str, Any]) -> Any:
        return services.risk_flag_raise(
            actor=actor, patient=patient, level=data["level"], reason=data["reason"]
        )

    done = "Risk flagged: a safety alert went to the prescriber."
    return _submit(request, patient, form, "risk_form", write, done)


@staff_view(Cap.TEAM_MESSAGE)
@require_POST
def message_new(request: ActorRequest, patient_id: str) -> HttpResponse:
    actor = request.actor
    patient = patient_get_for_actor(actor, patient_id)
    form = forms.MessageForm(
        request.POST, members=selectors.team_members(actor.organization), me=actor.user
    )

    def write(data: dict[str, Any]) -> Any:
        return services.message_send(
            actor=actor,
            recipient=form.recipients[data["recipient"]],
            subject=data["subject"],
            body=data["body"],
            patient=patient,
        )

    return _submit(request, patient, form, "message_form", write, "Message sent.")


@staff_view(Cap.THERAPY_RECORD)
@require_POST
def measure_plan_new(request: ActorRequest, patient_id: str) -> HttpResponse:
    actor = request.actor
    patient = patient_get_for_actor(actor, patient_id)
    form = forms.MeasurePlanForm(request.POST, instruments=list(current_instruments()))
    plans = [p for p in plans_for_patient(patient) if p.status == "active"]

    def write(data: dict[str, Any]) -> Any:
        if not plans:
            raise DomainError("The patient has no active treatment plan.")
        return services.measure_plan_add(
            actor=actor, plan=plans[0], instrument_id=data["instrument_id"], timing=data["timing"]
        )

    return _submit(request, patient, form, "measure_form", write, "Measure added to the plan.")


@staff_view(Cap.TEAM_MESSAGE)
@require_POST
def message_read(request: ActorRequest, message_id: str) -> HttpResponse:
    actor = request.actor
    services.message_mark_read(actor=actor, message=selectors.message_get(actor, message_id))
    return redirect("therapy:home")


@staff_view(Cap.AUDIT_VIEW)
def break_glass_report(request: ActorRequest) -> HttpResponse:
    actor = request.actor
    context = {"reads": selectors.break_glass_reads(actor), "zone": _zone(actor)}
    return TemplateResponse(request, "therapy/break_glass_report.html", context)


@staff_view(Cap.AUDIT_VIEW)
@require_POST
def break_glass_review(request: ActorRequest, read_id: str) -> HttpResponse:
    actor = request.actor
    read = selectors.break_glass_read_get(actor, read_id)
    try:
        services.break_glass_review(actor=actor, read=read, note=request.POST.get("note", ""))
    except DomainError as error:
        messages.error(request, error.detail)
    else:
        messages.success(request, "Review recorded.")
    return redirect("therapy:break-glass-report")
