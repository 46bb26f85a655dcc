"""Staff screens for consent: author and publish templates, sign on a clinic tablet, download the
signed PDF, revoke, and invite the patient to the portal."""

from __future__ import annotations

from django.contrib import messages
from django.http import HttpResponse
from django.shortcuts import redirect
from django.template.response import TemplateResponse
from django.views.decorators.http import require_POST

from ketaclinic.accounts.actor import ActorRequest
from ketaclinic.accounts.audit import audit_record
from ketaclinic.accounts.roles import Cap
from ketaclinic.consent import selectors, services
from ketaclinic.consent.forms import RevokeForm, SignForm, TemplateForm
from ketaclinic.core.decorators import staff_view
from ketaclinic.core.errors import DomainError
from ketaclinic.core.forms import add_domain_errors
from ketaclinic.core.http import client_address
from ketaclinic.patients.selectors import patient_get_for_actor


@staff_view(Cap.CONSENT_TEMPLATE_MANAGE)
def template_list(request: ActorRequest) -> HttpResponse:
    actor = request.actor
    if request.method == "POST":
        published = services.consent_templates_seed_defaults(
            organization=actor.organization, actor=actor
        )
        messages.success(request, f"{len(published)} default template(s) created and published.")
        return redirect("consent:templates")
    rows = selectors.templates_with_versions()
    return TemplateResponse(request, "consent/template_list.html", {"rows": rows})


@staff_view(Cap.CONSENT_TEMPLATE_MANAGE)
def template_edit(request: ActorRequest, template_id: str) -> HttpResponse:
    actor = request.actor
    template = selectors.template_get(actor, template_id)
    form = TemplateForm(request.POST or None, initial=TemplateForm.initial_from(template))
    if request.method == "POST" and form.is_valid():
        try:
            services.consent_template_update(actor=actor, template=template, data=form.cleaned_data)
            if "publish" in request.POST:
                version = services.consent_template_publish(actor=actor, template=template)
                messages.success(request, f"Version {version.version} published.")
            else:
                messages.success(request, "Draft saved (not yet published).")
        except DomainError as error:
            add_domain_errors(form, error)
        else:
            return redirect("consent:templates")
    context = {"form": form, "template": template, "latest": selectors.version_latest(template)}
    return TemplateResponse(
        request, "consent/template_form.html", context, status=400 if form.errors else 200
    )


@staff_view(Cap.CONSENT_RECORD)
def sign_in_clinic(request: ActorRequest, patient_id: str, version_id: str) -> HttpResponse:
    """A clinic tablet: the patient reads and signs; the staff member witnesses."""
    actor = request.actor
    patient = patient_get_for_actor(actor, patient_id)
    version = selectors.version_get(version_id)
    form = SignForm(request.POST or None, version=version, witness_required=True)
    if request.method == "POST" and form.is_valid():
        try:
            services.consent_sign(
                actor=actor,
                patient=patient,
                template_version=version,
                witness=actor.user,
                signature=services.SignatureInput(
                    printed_name=form.cleaned_data["printed_name"],
                    acknowledged=form.acknowledged(),
                    drawn_signature=form.cleaned_data["drawn_signature"],
                    client_address=client_address(request),
                    user_agent=request.headers.get("User-Agent", ""),
                ),
            )
        except DomainError as error:
            add_domain_errors(form, error)
        else:
            messages.success(request, f"Consent signed: {version.title}.")
            return redirect(
                "patients:chart-section", patient_id=patient.public_id, section="consent"
            )
    context = {"form": form, "version": version, "patient": patient, "base": "base.html"}
    return TemplateResponse(
        request, "consent/sign_page.html", context, status=400 if form.errors else 200
    )


@staff_view(Cap.CONSENT_VIEW)
def signature_pdf(request: ActorRequest, signature_id: str) -> HttpResponse:
    actor = request.actor
    signature = selectors.signature_get(signature_id)
    audit_record(
        actor=actor,
        action="consent.pdf.downloaded",
        patient_id=signature.patient.public_id,
        obj=signature,
    )
    return pdf_response(signature)


def pdf_response(signature: object) -> HttpResponse:
    response = HttpResponse(bytes(signature.pdf), content_type="application/pdf")  # type: ignore[attr-defined]
    name = f"consent-{signature.public_id}.pdf"  # type: ignore[attr-defined]
    response["Content-Disposition"] = f'attachment; filename="{name}"'
    return response


@require_POST
@staff_view(Cap.CONSENT_RECORD)
def revoke(request: ActorRequest, signature_id: str) -> HttpResponse:
    actor = request.actor
    signature = selectors.signature_get(signature_id)
    form = RevokeForm(request.POST)
    form.is_valid()
    try:
        services.consent_revoke(
            actor=actor, signature=signature, reason=form.cleaned_data.get("reason", "")
        )
    except DomainError as error:
        messages.error(request, error.detail)
    else:
        messages.success(request, "Consent revoked.")
    return redirect(
        "patients:chart-section", patient_id=signature.patient.public_id, section="consent"
    )


@require_POST
@staff_view(Cap.CONSENT_RECORD)
def portal_invite(request: ActorRequest, patient_id: str) -> HttpResponse:
    actor = request.actor
    patient = patient_get_for_actor(actor, patient_id)
    account = selectors.portal_account_for_patient(patient)
    if account is None:
        account, token = services.portal_invite(actor=actor, patient=patient)
    else:
        token = services.portal_reinvite(actor=actor, account=account)
    link = request.build_absolute_uri(f"/portal/invite/{token}/")
    context = {"patient": patient, "account": account, "link": link}
    return TemplateResponse(request, "consent/portal_invite.html", context)
