"""Staff screens for measures: enter a questionnaire, read a response, answer an alert, send a
one-time link (URL + QR code), add a schedule. The chart section and the dashboard panel are
template tags (templatetags/measures.py) so the patients and core views stay unaware of them."""

from __future__ import annotations

import qrcode
import qrcode.image.svg
from django.contrib import messages
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect
from django.template.response import TemplateResponse
from django.urls import reverse
from django.utils.safestring import mark_safe
from django.views.decorators.http import require_POST

from ketaclinic.accounts.actor import ActorRequest
from ketaclinic.accounts.roles import Cap
from ketaclinic.core.decorators import staff_view
from ketaclinic.core.errors import DomainError
from ketaclinic.core.forms import add_domain_errors
from ketaclinic.core.http import render_page_or_partial
from ketaclinic.measures import selectors, services
from ketaclinic.measures.definitions import current_instruments, get_instrument
from ketaclinic.measures.forms import (
    AcknowledgeForm,
    CorrectionForm,
    LinkForm,
    QuestionnaireForm,
    ScheduleForm,
)
from ketaclinic.patients.selectors import patient_chart_read, patient_get_for_actor


def _measures_url(patient_id: object) -> str:
    return reverse(
        "patients:chart-section", kwargs={"patient_id": patient_id, "section": "measures"}
    )


@staff_view(Cap.MEASURE_RECORD)
def response_new(request: ActorRequest, patient_id: str) -> HttpResponse:
    """Choose an instrument, then fill in the form generated from its definition."""
    actor = request.actor
    patient = patient_get_for_actor(actor, patient_id)
    instrument_id = request.GET.get("instrument", "")
    if not instrument_id:
        context = {"patient": patient, "instruments": current_instruments()}
        return TemplateResponse(request, "measures/response_choose.html", context)
    try:
        instrument = get_instrument(instrument_id)
    except KeyError:
        return TemplateResponse(
            request, "core/error.html", {"error": DomainError("Unknown instrument.")}, status=404
        )
    corrects = None
    if request.GET.get("corrects"):
        corrects = selectors.response_get_for_actor(actor, request.GET["corrects"])
    data = request.POST if request.method == "POST" else None
    form = QuestionnaireForm(
        instrument,
        "en",
        data,
        # A correction starts from the earlier answers.
        initial={f"item_{k}": v for k, v in corrects.answers.items()} if corrects else None,
    )
    correction_form = CorrectionForm(data) if corrects else None
    if (
        data is not None
        and form.is_valid()
        and (correction_form is None or correction_form.is_valid())
    ):
        try:
            response = services.response_record(
                actor=actor,
                patient=patient,
                instrument_id=instrument.id,
                answers=form.answers(),
                corrects=corrects,
                correction_reason=correction_form.cleaned_data["correction_reason"]
                if correction_form
                else "",
            )
        except DomainError as error:
            form.add_service_errors(error)
        else:
            alert = response.new_alert  # type: ignore[attr-defined]
            result = response.total if response.total is not None else response.risk_level
            if alert:
                messages.error(request, f"Safety alert raised: {alert.summary}")
            messages.success(request, f"{instrument.short_title} recorded: {result}.")
            return redirect(_measures_url(patient.public_id))
    context = {
        "patient": patient,
        "instrument": instrument,
        "form": form,
        "correction_form": correction_form,
        "corrects": corrects,
    }
    return TemplateResponse(
        request,
        "measures/response_form.html",
        context,
        status=400 if form.errors or (correction_form and correction_form.errors) else 200,
    )


@staff_view(Cap.MEASURE_VIEW)
def response_detail(request: ActorRequest, response_id: str) -> HttpResponse:
    actor = request.actor
    response = selectors.response_get_for_actor(actor, response_id)
    patient = patient_chart_read(
        actor, response.patient.public_id, action="measures.response.viewed"
    )
    instrument = get_instrument(response.instrument_id, response.instrument_version)
    rows = [
        (
            item,
            response.answers.get(item.link_id),
            next(
                (o.label() for o in item.options if o.value == response.answers.get(item.link_id)),
                "—",
            ),
        )
        for item in instrument.items
    ]
    context = {
        "patient": patient,
        "response": response,
        "instrument": instrument,
        "rows": rows,
        "alerts": list(response.alerts.all()),
        "language": RESPONSE_LANGUAGES.get(response.language, ""),
    }
    return TemplateResponse(request, "measures/response_detail.html", context)


# The languages an instrument is answered in (services.LANGUAGES), as a reader names them.
RESPONSE_LANGUAGES = {"en": "English", "es": "Spanish"}


@staff_view(Cap.MEASURE_VIEW)
def alert_detail(request: ActorRequest, alert_id: str) -> HttpResponse:
    """An alert, with the acknowledge form. POST (htmx or not) acknowledges it."""
    actor = request.actor
    capability = Cap.ALERT_ACKNOWLEDGE if request.method == "POST" else Cap.MEASURE_VIEW
    alert = selectors.alert_get_for_actor(actor, alert_id, capability=capability)
    form = AcknowledgeForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            alert = services.alert_acknowledge(
                actor=actor, alert=alert, note=form.cleaned_data["note"]
            )
        except DomainError as error:
            add_domain_errors(form, error)
        else:
            if not getattr(request, "htmx", False):
                messages.success(request, "Alert acknowledged.")
                return redirect(request.POST.get("next") or "core:dashboard")
    context = {"alert": alert, "form": form}
    if request.method == "POST" and not form.errors:
        # The panel's "N open" badge follows the acknowledgement (htmx out-of-band swap).
        context["open_count"] = selectors.alerts_open_count()
    status = 400 if form.errors else 200
    return render_page_or_partial(
        request, "measures/alert_detail.html", "alert-item", context, status
    )


@staff_view(Cap.MEASURE_VIEW)
def alerts_panel(request: HttpRequest) -> HttpResponse:
    """The dashboard's alert panel on its own (htmx refresh) or as a page."""
    context = {"alerts": selectors.alerts_open()}
    return render_page_or_partial(request, "measures/alerts_page.html", "alerts-panel", context)


def _qr_svg(url: str) -> str:
    image = qrcode.make(url, image_factory=qrcode.image.svg.SvgPathImage, box_size=8)
    return image.to_string(encoding="unicode")


@staff_view(Cap.MEASURE_RECORD)
def link_new(request: ActorRequest, patient_id: str) -> HttpResponse:
    """Create a one-time link; its URL and QR code are shown once (only a hash is kept)."""
    actor = request.actor
    patient = patient_get_for_actor(actor, patient_id)
    instruments = [i for i in current_instruments() if i.respondent == "self"]
    form = LinkForm(instruments, request.POST or None)
    context = {"patient": patient, "form": form}
    if request.method == "POST" and form.is_valid():
        try:
            issued = services.measure_link_create(actor=actor, patient=patient, **form.cleaned_data)
        except DomainError as error:
            add_domain_errors(form, error)
        else:
            url = request.build_absolute_uri(
                reverse("portal:measure", kwargs={"token": issued.token})
            )
            context.update(link=issued.link, url=url, qr_svg=mark_safe(_qr_svg(url)))  # noqa: S308
    status = 400 if form.errors else 200
    return TemplateResponse(request, "measures/link_new.html", context, status=status)


@staff_view(Cap.MEASURE_RECORD)
def schedule_new(request: ActorRequest, patient_id: str) -> HttpResponse:
    actor = request.actor
    patient = patient_get_for_actor(actor, patient_id)
    instruments = [i for i in current_instruments() if i.respondent == "self"]
    form = ScheduleForm(instruments, request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            services.schedule_create(actor=actor, patient=patient, **form.cleaned_data)
        except DomainError as error:
            add_domain_errors(form, error)
        else:
            messages.success(request, "Schedule added; links are created when due.")
            return redirect(_measures_url(patient.public_id))
    context = {"patient": patient, "form": form, "title": "Add a measure schedule"}
    return TemplateResponse(
        request, "patients/entry_form.html", context, status=400 if form.errors else 200
    )


@require_POST
@staff_view(Cap.MEASURE_LINK_RESEND)
def link_resend(request: ActorRequest, link_id: str) -> HttpResponse:
    """Send an unanswered questionnaire again (the front desk's forms pending): a fresh link goes
    out by the patient's allowed channel and is shown once here, to hand over if none is."""
    actor = request.actor
    link = selectors.link_get_for_actor(actor, link_id)
    patient = patient_get_for_actor(actor, link.target_id)
    try:
        issued = services.measure_link_resend(actor=actor, link=link)
    except DomainError as error:
        messages.error(request, error.detail)
        return redirect("core:dashboard")
    url = request.build_absolute_uri(reverse("portal:measure", kwargs={"token": issued.token}))
    context = {
        "patient": patient,
        "title": selectors.link_title(issued.link),
        "link": issued.link,
        "url": url,
        "qr_svg": mark_safe(_qr_svg(url)),  # noqa: S308
    }
    return TemplateResponse(request, "measures/link_resent.html", context)
