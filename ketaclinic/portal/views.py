"""Patient-facing pages. No account: a one-time link is the credential, and every query after it
runs in the link's organization. The portal has no models; it calls the measures services."""

from __future__ import annotations

from typing import Any

from django.http import HttpRequest, HttpResponse
from django.template.response import TemplateResponse
from django.views.decorators.cache import never_cache
from django_scopes import scope

from ketaclinic.core import clock
from ketaclinic.core.errors import DomainError
from ketaclinic.core.links import LinkRefused, link_resolve
from ketaclinic.measures.definitions import get_instrument
from ketaclinic.measures.forms import QuestionnaireForm
from ketaclinic.measures.services import LINK_PURPOSE, response_record
from ketaclinic.messaging.patient_pages import crisis_lines
from ketaclinic.patients.models import Patient

# The portal's own words, in each language a measure may be offered in. The crisis sentence
# ("safety") is the clinic's own (messaging.patient_pages), added per request.
TEXT: dict[str, dict[str, str]] = {
    "en": {
        "intro": "Please answer every question. Your answers go to your care team at",
        "submit": "Send my answers",
        "review": "Review my answers",
        "review_title": "Check your answers before sending",
        "review_intro": "Nothing is sent yet. Check each answer; change any that is not right.",
        "change": "Change my answers",
        "safety_item": "Please check this answer carefully: your care team acts on it.",
        "thanks": "Thank you. Your answers were sent to your care team.",
        "flagged": "Your care team has been alerted and will contact you.",
        "refused": "This link cannot be used",
        "other_language": "Español",
    },
    "es": {
        "intro": "Por favor, conteste todas las preguntas. Sus respuestas van a su equipo de "
        "atención en",
        "submit": "Enviar mis respuestas",
        "review": "Revisar mis respuestas",
        "review_title": "Revise sus respuestas antes de enviarlas",
        "review_intro": "Todavía no se ha enviado nada. Revise cada respuesta; cambie la que no "
        "sea correcta.",
        "change": "Cambiar mis respuestas",
        "safety_item": "Revise esta respuesta con cuidado: su equipo de atención actúa según ella.",
        "thanks": "Gracias. Sus respuestas se enviaron a su equipo de atención.",
        "flagged": "Su equipo de atención ha sido avisado y se pondrá en contacto con usted.",
        "refused": "Este enlace no se puede usar",
        "other_language": "English",
    },
}


def _language(request: HttpRequest, instrument: Any, default: str) -> str:
    wanted = request.GET.get("lang") or request.POST.get("lang") or default
    lang = instrument.language(wanted)
    return wanted if lang is not None and lang.available and wanted in TEXT else "en"


@never_cache
def measure(request: HttpRequest, token: str) -> HttpResponse:
    """Show the questionnaire for a one-time link; on submit, record it (which uses the link)."""
    try:
        link = link_resolve(token, purpose=LINK_PURPOSE, now=clock.now())
    except LinkRefused as refused:
        return _refused(request, refused)
    instrument = get_instrument(link.payload["instrument_id"])
    language = _language(request, instrument, link.payload.get("language", "en"))
    form = QuestionnaireForm(instrument, language, request.POST or None)
    context: dict[str, Any] = {
        "instrument": instrument,
        "form": form,
        "language": language,
        "text": {**TEXT[language], "safety": crisis_lines(link.organization).sentence(language)},
        "clinic": link.organization.name,
        "organization": link.organization,
        "other_language": next(
            (
                code
                for code in TEXT
                if code != language and (lang := instrument.language(code)) and lang.available
            ),
            None,
        ),
    }
    step = request.POST.get("step", "send")
    if request.method == "POST" and form.is_valid() and step == "review":
        # Nothing is recorded yet: the patient checks every answer, the safety item highlighted.
        context["review"] = form.review()
        context["flagged"] = any(row["flagged"] for row in context["review"])
        return TemplateResponse(request, "portal/measure_review.html", context)
    if request.method == "POST" and form.is_valid() and step == "send":
        with scope(organization=link.organization):
            patient = Patient.objects.get(public_id=link.target_id)
            try:
                response = response_record(
                    link=link,
                    patient=patient,
                    instrument_id=instrument.id,
                    answers=form.answers(),
                    language=language,
                )
            except LinkRefused as refused:
                return _refused(request, refused)
            except DomainError as error:
                form.add_service_errors(error)
            else:
                context["flagged"] = response.new_alert is not None  # type: ignore[attr-defined]
                return TemplateResponse(request, "portal/measure_done.html", context)
    status = 400 if form.errors else 200
    return TemplateResponse(request, "portal/measure_form.html", context, status=status)


def _refused(request: HttpRequest, refused: LinkRefused) -> HttpResponse:
    context = {
        "reason": refused.reason,
        "detail": refused.detail,
        "text": TEXT["en"],
        "language": "en",
    }
    return TemplateResponse(request, "portal/link_refused.html", context, status=refused.status)
