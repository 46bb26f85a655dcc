"""The patient's own visits in the portal: upcoming appointments, book a follow-up, cancel, and
move one to another free time, within the clinic's published portal rules
(scheduling.models.PortalPolicy: the change cutoff and how far ahead one may book)."""

from __future__ import annotations

from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from django.contrib import messages
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect
from django.template.response import TemplateResponse

from ketaclinic.consent.models import PortalAccount
from ketaclinic.core import clock
from ketaclinic.core.errors import DomainError, NotFound
from ketaclinic.portal.auth_views import portal_view
from ketaclinic.scheduling import selectors, services
from ketaclinic.scheduling.availability import portal_policy_current
from ketaclinic.scheduling.models import Appointment


def _own(account: PortalAccount, appointment_id: str) -> Appointment:
    appointment = (
        Appointment.objects.select_related("clinic", "appointment_type", "chair", "patient")
        .filter(public_id=appointment_id, patient=account.patient)
        .first()
    )
    if appointment is None:
        raise NotFound("No such appointment.")
    return appointment


@portal_view
def appointments(request: HttpRequest, account: PortalAccount) -> HttpResponse:
    upcoming = (
        Appointment.objects.filter(
            patient=account.patient, status="booked", starts_at__gte=clock.now()
        )
        .select_related("clinic", "appointment_type", "chair")
        .order_by("starts_at")
    )
    clinic = selectors.clinic_for_patient(account.patient)
    context = {
        "appointments": upcoming,
        "policy": portal_policy_current(clinic) if clinic else None,
        "can_book": bool(clinic and selectors.portal_types(account.organization)),
    }
    return TemplateResponse(request, "portal/appointments.html", context)


@portal_view
def appointment_book(request: HttpRequest, account: PortalAccount) -> HttpResponse:
    """Book a follow-up: the types the clinic offers online, at free times inside its rules."""
    clinic = selectors.clinic_for_patient(account.patient)
    offered = selectors.portal_types(account.organization) if clinic else []
    if clinic is None or not offered:
        raise NotFound("Nothing can be booked online here; please call the clinic.")
    wanted = request.POST.get("type") or request.GET.get("type") or offered[0].kind
    kind = next((t for t in offered if t.kind == wanted), offered[0])
    policy = portal_policy_current(clinic)
    error = None
    if request.method == "POST":
        try:
            start_text, _, clinician_id = request.POST.get("slot", "").partition("|")
            services.portal_appointment_book(
                patient=account.patient,
                appointment_type=kind,
                starts_at=datetime.fromisoformat(start_text),
                clinic=clinic,
                clinician=selectors.clinician_for_portal(account.organization, clinician_id),
            )
        except ValueError:
            error = "Choose one of the times shown."
        except DomainError as exc:
            error = exc.detail
        else:
            messages.success(request, "Your visit is booked. A confirmation is on its way.")
            return redirect("portal:appointments")
    now = clock.now()
    slots = selectors.online_slots(
        clinic,
        kind,
        first=now + timedelta(hours=policy.change_cutoff_hours),
        last=now + timedelta(days=policy.horizon_days),
    )
    context = {
        "clinic": clinic,
        "types": offered,
        "kind": kind,
        # Each time with the value its radio sends, so a refused choice stays chosen.
        "slots": [
            (
                start,
                clinician,
                f"{start.isoformat()}|{clinician.user.public_id if clinician else ''}",
            )
            for start, clinician in slots
        ],
        "chosen": request.POST.get("slot", "") if error else "",
        "policy": policy,
        "error": error,
    }
    return TemplateResponse(
        request, "portal/appointment_book.html", context, status=400 if error else 200
    )


@portal_view
def appointment_move(
    request: HttpRequest, account: PortalAccount, appointment_id: str
) -> HttpResponse:
    appointment = _own(account, appointment_id)
    error = None
    if request.method == "POST":
        try:
            start = datetime.fromisoformat(request.POST.get("starts_at", ""))
            services.portal_appointment_reschedule(
                patient=account.patient, appointment=appointment, starts_at=start
            )
        except ValueError:
            error = "Choose one of the times shown."
        except DomainError as exc:
            error = exc.detail
        else:
            messages.success(request, "Your visit is moved. A confirmation is on its way.")
            return redirect("portal:appointments")
    zone = ZoneInfo(appointment.clinic.time_zone)
    policy = portal_policy_current(appointment.clinic)
    now = clock.now()
    first_day = datetime.combine(
        now.astimezone(zone).date() + timedelta(days=1), datetime.min.time(), zone
    )
    options = [
        start
        for start, _ in selectors.online_slots(
            appointment.clinic,
            appointment.appointment_type,
            first=max(first_day, now + timedelta(hours=policy.change_cutoff_hours)),
            last=first_day + timedelta(days=policy.horizon_days, minutes=-1),
            clinicians=[appointment.clinician],
        )
    ]
    context = {"appointment": appointment, "options": options, "error": error, "policy": policy}
    return TemplateResponse(
        request, "portal/appointment_move.html", context, status=400 if error else 200
    )


@portal_view
def appointment_cancel(
    request: HttpRequest, account: PortalAccount, appointment_id: str
) -> HttpResponse:
    appointment = _own(account, appointment_id)
    if request.method == "POST":
        try:
            services.portal_appointment_cancel(
                patient=account.patient,
                appointment=appointment,
                reason=request.POST.get("reason", "").strip()[:300],
            )
        except DomainError as exc:
            messages.error(request, exc.detail)
        else:
            messages.success(request, "Your visit is cancelled.")
    return redirect("portal:appointments")
