"""The patient's own visits in the portal: upcoming appointments, cancel, and move one to another
free time, within the clinic's rules (scheduling.services.PORTAL_CHANGE_CUTOFF)."""

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
from ketaclinic.scheduling.models import Appointment

DAYS_OFFERED = 14


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
    return TemplateResponse(request, "portal/appointments.html", {"appointments": upcoming})


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
    today = clock.now().astimezone(zone).date()
    cutoff = clock.now() + services.PORTAL_CHANGE_CUTOFF
    options = []
    for offset in range(1, DAYS_OFFERED + 1):
        day = today + timedelta(days=offset)
        slots = selectors.free_slots(
            appointment.clinic, appointment.appointment_type, day, clinician=appointment.clinician
        )
        options += [s for s, _ in slots if s >= cutoff and s.minute == 0][:4]
    context = {"appointment": appointment, "options": options, "error": error}
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
