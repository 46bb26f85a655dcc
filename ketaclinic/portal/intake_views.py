"""The patient's intake history in the portal: the staff intake's questions in plain words,
saved through the screening service (so a changed answer invalidates a screening decision exactly
as a change on the staff page does)."""

from __future__ import annotations

from django.contrib import messages
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect
from django.template.response import TemplateResponse

from ketaclinic.consent.models import PortalAccount
from ketaclinic.core.errors import DomainError
from ketaclinic.core.forms import add_domain_errors
from ketaclinic.core.http import client_address
from ketaclinic.messaging.patient_pages import crisis_lines
from ketaclinic.portal.auth_views import portal_view
from ketaclinic.portal.forms import PortalIntakeForm
from ketaclinic.screening import selectors, services

CRISIS_MESSAGE = (
    "You told us you have thought about ending your life and have a plan or intend to act. "
    "Your care team has been alerted. {crisis}"
)


@portal_view
def portal_intake(request: HttpRequest, account: PortalAccount) -> HttpResponse:
    patient = account.patient
    form = PortalIntakeForm(request.POST or None, intake=selectors.intake_current(patient))
    if request.method == "POST" and form.is_valid():
        try:
            intake = services.intake_record_portal(
                account=account,
                data=form.service_data(),
                medication_changes=form.cleaned_data["medication_changes"],
                client_address=client_address(request),
            )
        except DomainError as error:
            add_domain_errors(form, error)
        else:
            messages.success(request, "Thank you. Your health history was sent to your care team.")
            if intake.safety_alert is not None:  # type: ignore[attr-defined]
                # The answer raised a clinician alert; the patient must not wait for the call.
                crisis = crisis_lines(account.organization).sentence()
                messages.warning(request, CRISIS_MESSAGE.format(crisis=crisis))
            return redirect("portal:home")
    # The medicines on file, so the patient reports only what is missing or changed.
    medications = selectors.intake_medications(patient)
    context = {
        "form": form,
        "patient": patient,
        "medications": medications,
        "crisis_sentence": crisis_lines(account.organization).sentence(),
    }
    status = 400 if form.errors else 200
    return TemplateResponse(request, "portal/intake_form.html", context, status=status)
