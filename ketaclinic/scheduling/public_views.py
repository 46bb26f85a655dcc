"""The clinic's public page (no login): services, and a consultation request with a short
pre-screen. CSRF-protected like every form; a honeypot field and per-address limits keep scripts
out (leads.py). Works on a phone: one column, native inputs."""

from __future__ import annotations

from typing import Any

from django.http import HttpRequest, HttpResponse
from django.template.response import TemplateResponse
from django_scopes import scope, scopes_disabled

from ketaclinic.accounts.models import Clinic
from ketaclinic.core.errors import DomainError
from ketaclinic.core.http import client_address
from ketaclinic.scheduling import frontdoor, leads
from ketaclinic.scheduling.models import AppointmentType

HONEYPOT = "website"


def _clinic(clinic_id: Any) -> Clinic | None:
    with scopes_disabled():
        return Clinic.objects.select_related("organization").filter(public_id=clinic_id).first()


def front_door(request: HttpRequest, clinic_id: str) -> HttpResponse:
    clinic = _clinic(clinic_id)
    if clinic is None:
        return TemplateResponse(request, "scheduling/public_missing.html", {}, status=404)
    with scope(organization=clinic.organization):
        errors: dict[str, str] = {}
        detail = ""
        status = 200
        if request.method == "POST":
            if request.POST.get(HONEYPOT):
                # A bot filled the hidden field: answer as if all went well, keep nothing.
                return TemplateResponse(
                    request, "scheduling/public_thanks.html", {"clinic": clinic}
                )
            data = leads.LeadInput(
                given_name=request.POST.get("given_name", ""),
                family_name=request.POST.get("family_name", ""),
                birth_date=request.POST.get("birth_date", ""),
                sex_at_birth=request.POST.get("sex_at_birth", ""),
                email=request.POST.get("email", ""),
                phone=request.POST.get("phone", ""),
                reason=request.POST.get("reason", ""),
                answers={key: request.POST.get(key) == "yes" for key in frontdoor.QUESTIONS},
                slot=request.POST.get("slot", ""),
            )
            try:
                lead = leads.lead_submit(
                    clinic=clinic, data=data, client_address=client_address(request)
                )
            except DomainError as error:
                detail = error.detail
                errors = {e.field: e.message for e in error.errors}
                status = error.status
            else:
                thanks = {"clinic": clinic, "lead": lead}
                return TemplateResponse(request, "scheduling/public_thanks.html", thanks)
        services = list(
            AppointmentType.objects.filter(
                organization=clinic.organization, is_active=True
            ).order_by("name")
        )
        context: dict[str, Any] = {
            "clinic": clinic,
            "services": services,
            # Shown only where the clinic publishes one (docs/sources/scheduling.md, "Prices").
            "any_price": any(s.public_price is not None for s in services),
            "questions": [(key, text) for key, (text, _) in frontdoor.QUESTIONS.items()],
            # Each time with the value its radio sends, so a refused request keeps the choice.
            "slots": [
                (start, clinician, f"{start.isoformat()}|{clinician.pk}")
                for start, clinician in leads.consult_slots(clinic)
            ],
            "errors": errors,
            "detail": detail,
            "values": request.POST if request.method == "POST" else {},
        }
        return TemplateResponse(
            request, "scheduling/public_front_door.html", context, status=status
        )
