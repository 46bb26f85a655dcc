"""Staff screens for messaging: record a patient's answer on contact, and the clinic's contact
policy. The patient's panel itself is a template tag on the chart."""

from __future__ import annotations

from django.contrib import messages
from django.http import HttpResponse
from django.shortcuts import redirect
from django.template.response import TemplateResponse

from ketaclinic.accounts.actor import ActorRequest
from ketaclinic.accounts.roles import Cap
from ketaclinic.core.decorators import staff_view
from ketaclinic.core.errors import DomainError
from ketaclinic.messaging import selectors, services
from ketaclinic.patients.selectors import patient_get_for_actor


@staff_view(Cap.CONTACT_EDIT)
def contact_set(request: ActorRequest, patient_id: str) -> HttpResponse:
    actor = request.actor
    patient = patient_get_for_actor(actor, patient_id)
    if request.method != "POST":
        return redirect("patients:chart", patient_id=patient.public_id)
    services.contact_preference_set(
        actor=actor,
        patient=patient,
        channel=request.POST.get("channel", ""),
        allowed=request.POST.get("allowed") == "yes",
    )
    messages.success(request, "The patient's answer on contact is recorded.")
    return redirect("patients:chart", patient_id=patient.public_id)


@staff_view(Cap.MESSAGING_POLICY_EDIT)
def policy_edit(request: ActorRequest) -> HttpResponse:
    actor = request.actor
    policy = selectors.contact_policy(actor.organization)
    error = None
    if request.method == "POST":
        try:
            services.contact_policy_set(
                actor=actor,
                email_allowed_by_default=request.POST.get("email_allowed_by_default") == "on",
                sms_allowed_by_default=request.POST.get("sms_allowed_by_default") == "on",
                on_call_email=request.POST.get("on_call_email", ""),
                on_call_phone=request.POST.get("on_call_phone", ""),
            )
        except DomainError as exc:
            error = exc
        else:
            messages.success(request, "The contact policy is saved.")
            return redirect("messaging:policy")
    # A refused change shows what was typed, beside the reason, not the stored policy.
    shown = (
        {
            "email_allowed_by_default": request.POST.get("email_allowed_by_default") == "on",
            "sms_allowed_by_default": request.POST.get("sms_allowed_by_default") == "on",
            "on_call_email": request.POST.get("on_call_email", ""),
            "on_call_phone": request.POST.get("on_call_phone", ""),
        }
        if error
        else policy
    )
    context = {
        "policy": shown,
        "error": error,
        "errors": {e.field: e.message for e in error.errors} if error else {},
        "configured": selectors.channels_configured(),
    }
    status = error.status if error else 200
    return TemplateResponse(request, "messaging/policy_form.html", context, status=status)
