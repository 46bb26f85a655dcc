"""The visit page: the progress note (draft, sign, amend), the author's psychotherapy note and
the break-glass read. Same services as the JSON API's visit routes."""

from __future__ import annotations

from typing import Any

from django.contrib import messages
from django.http import HttpResponse
from django.shortcuts import redirect
from django.template.response import TemplateResponse
from django.views.decorators.http import require_POST

from ketaclinic.accounts.actor import ActorRequest
from ketaclinic.accounts.audit import audit_record
from ketaclinic.accounts.roles import Cap
from ketaclinic.core.decorators import staff_view
from ketaclinic.core.errors import DomainError
from ketaclinic.core.forms import add_domain_errors
from ketaclinic.therapy import forms, notes, selectors, services
from ketaclinic.therapy.views import _local, _zone


def _page(request: ActorRequest, visit: Any, status: int = 200, **replaced: Any) -> HttpResponse:
    actor = request.actor
    zone = _zone(actor)
    is_author = visit.therapist_id == actor.user.pk
    process_note = None
    if is_author and actor.can(Cap.THERAPY_PROCESS_NOTE):
        process_note = services.process_note_read(actor=actor, visit=visit)
    context = {
        "visit": visit,
        "patient": visit.patient,
        "zone": zone,
        "is_author": is_author,
        "template_fields": notes.template_for(visit.kind),
        "mental_status_fields": notes.MENTAL_STATUS,
        "checklist": dict(notes.POST_SESSION_CHECKLIST),
        "note_form": forms.NoteForm(
            kind=visit.kind, initial=forms.NoteForm.initial_for(visit, zone)
        ),
        "amend_form": forms.AmendForm(),
        "process_note": process_note,
        "process_form": forms.ProcessNoteForm(
            initial={"text": process_note.text} if process_note else None
        ),
        "break_glass_form": forms.BreakGlassForm(),
        "revealed": None,
        **replaced,
    }
    return TemplateResponse(request, "therapy/visit_page.html", context, status=status)


@staff_view(Cap.THERAPY_VIEW)
def visit_page(request: ActorRequest, visit_id: str) -> HttpResponse:
    actor = request.actor
    visit = selectors.visit_get(actor, visit_id)
    audit_record(
        actor=actor, action="therapy.visit.read", patient_id=visit.patient.public_id, obj=visit
    )
    return _page(request, visit)


@staff_view(Cap.THERAPY_RECORD)
@require_POST
def note_save(request: ActorRequest, visit_id: str) -> HttpResponse:
    """Save the draft; with "sign", save and sign it in one step."""
    actor = request.actor
    visit = selectors.visit_get(actor, visit_id)
    form = forms.NoteForm(request.POST, kind=visit.kind)
    status = 400
    if form.is_valid():
        signing = "sign" in request.POST
        ended_at = _local(form.cleaned_data["ended_at"], _zone(actor))
        try:
            visit = services.visit_save(
                actor=actor, visit=visit, ended_at=ended_at, **form.note_values()
            )
            if signing and visit.ended_at is None:
                from ketaclinic.core import clock

                visit = services.visit_save(actor=actor, visit=visit, ended_at=clock.now())
            if signing:
                services.visit_sign(actor=actor, visit=visit)
        except DomainError as error:
            add_domain_errors(form, error)
            status = error.status
        else:
            messages.success(request, "Note signed." if signing else "Draft saved.")
            return redirect("therapy:visit", visit_id=visit.public_id)
    visit = selectors.visit_get(actor, visit_id)
    return _page(request, visit, status=status, note_form=form)


@staff_view(Cap.THERAPY_RECORD)
@require_POST
def note_amend(request: ActorRequest, visit_id: str) -> HttpResponse:
    actor = request.actor
    visit = selectors.visit_get(actor, visit_id)
    form = forms.AmendForm(request.POST)
    status = 400
    if form.is_valid():
        try:
            services.visit_amend(actor=actor, visit=visit, **form.cleaned_data)
        except DomainError as error:
            add_domain_errors(form, error)
            status = error.status
        else:
            messages.success(request, "Amendment added.")
            return redirect("therapy:visit", visit_id=visit.public_id)
    return _page(request, visit, status=status, amend_form=form)


@staff_view(Cap.THERAPY_PROCESS_NOTE)
@require_POST
def process_note(request: ActorRequest, visit_id: str) -> HttpResponse:
    actor = request.actor
    visit = selectors.visit_get(actor, visit_id)
    form = forms.ProcessNoteForm(request.POST)
    status = 400
    if form.is_valid():
        try:
            services.process_note_write(actor=actor, visit=visit, text=form.cleaned_data["text"])
        except DomainError as error:
            add_domain_errors(form, error)
            status = error.status
        else:
            messages.success(request, "Psychotherapy note saved (only you can read it).")
            return redirect("therapy:visit", visit_id=visit.public_id)
    return _page(request, visit, status=status, process_form=form)


@staff_view(Cap.THERAPY_BREAK_GLASS)
@require_POST
def break_glass(request: ActorRequest, visit_id: str) -> HttpResponse:
    actor = request.actor
    visit = selectors.visit_get(actor, visit_id)
    form = forms.BreakGlassForm(request.POST)
    status = 400
    if form.is_valid():
        try:
            note = services.process_note_break_glass(
                actor=actor, visit=visit, reason=form.cleaned_data["reason"]
            )
        except DomainError as error:
            add_domain_errors(form, error)
            status = error.status
        else:
            # Shown once, in this response; never stored in the page's URL or a redirect.
            return _page(request, visit, revealed=note)
    return _page(request, visit, status=status, break_glass_form=form)
