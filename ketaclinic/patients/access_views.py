"""Screens for break-glass access (patients.access): the form a clinician outside the care team
fills in, and compliance's list to review."""

from __future__ import annotations

from django import forms
from django.contrib import messages
from django.http import HttpResponse
from django.shortcuts import redirect
from django.template.response import TemplateResponse
from django.views.decorators.http import require_POST

from ketaclinic.accounts.actor import ActorRequest
from ketaclinic.accounts.roles import Cap
from ketaclinic.core.decorators import staff_view
from ketaclinic.core.errors import DomainError
from ketaclinic.core.forms import add_domain_errors
from ketaclinic.patients import access


class BreakGlassForm(forms.Form):
    reason = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 3}),
        max_length=2000,
        help_text=f"Why you need this chart now (at least {access.MIN_REASON} characters).",
    )
    minutes = forms.IntegerField(
        label="For how long (minutes)",
        min_value=1,
        max_value=access.MAX_MINUTES,
        initial=access.DEFAULT_MINUTES,
    )


@staff_view(Cap.PATIENT_BREAK_GLASS)
def break_glass(request: ActorRequest, patient_id: str) -> HttpResponse:
    actor = request.actor
    access._patient(patient_id)  # 404 for an id the organization does not have
    form = BreakGlassForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            access.break_glass_open(
                actor=actor,
                patient_id=patient_id,
                reason=form.cleaned_data["reason"],
                minutes=form.cleaned_data["minutes"],
            )
        except DomainError as error:
            add_domain_errors(form, error)
        else:
            messages.warning(request, "You broke the glass; compliance will review this access.")
            return redirect("patients:chart", patient_id=patient_id)
    status = 400 if form.errors else 200
    return TemplateResponse(request, "patients/break_glass.html", {"form": form}, status=status)


@staff_view(Cap.BREAK_GLASS_REVIEW)
def break_glass_list(request: ActorRequest) -> HttpResponse:
    accesses = access.break_glass_list(request.actor)
    return TemplateResponse(request, "patients/break_glass_list.html", {"accesses": accesses})


@require_POST
@staff_view(Cap.BREAK_GLASS_REVIEW)
def break_glass_review(request: ActorRequest, access_id: str) -> HttpResponse:
    access.break_glass_review(
        actor=request.actor,
        access_id=access_id,
        note=request.POST.get("note", ""),
    )
    messages.success(request, "Marked reviewed.")
    return redirect("patients:break-glass-list")
