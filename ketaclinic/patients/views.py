"""Staff screens for the patient chart: search, register, chart, and the chart's entry forms."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from django import forms
from django.contrib import messages
from django.core.paginator import Paginator
from django.forms.models import model_to_dict
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect
from django.template.response import TemplateResponse

from ketaclinic.accounts.actor import ActorRequest
from ketaclinic.accounts.roles import Cap
from ketaclinic.core.decorators import staff_view
from ketaclinic.core.errors import DomainError, NotFound
from ketaclinic.core.formatting import plain_number, quantity
from ketaclinic.core.forms import add_domain_errors
from ketaclinic.core.http import render_page_or_partial
from ketaclinic.core.localtime import stamp
from ketaclinic.patients import selectors, services
from ketaclinic.patients.forms import (
    AllergyForm,
    BloodPressureForm,
    ConditionForm,
    EnteredInErrorForm,
    HeightForm,
    MedicationForm,
    PatientForm,
    PatientSearchForm,
    WeightForm,
)
from ketaclinic.patients.models import BodyHeight, BodyWeight, ChartEntry, VitalSign
from ketaclinic.patients.services import PATIENT_FIELDS

PAGE_SIZE = 25
CHART_SECTIONS = (
    "summary",
    "history",
    "measures",
    "plan",
    "sessions",
    "therapy",
    "consent",
    "messages",
    "documents",
)


@staff_view(Cap.PATIENT_LIST)
def patient_list(request: HttpRequest) -> HttpResponse:
    form = PatientSearchForm(request.GET or None)
    patients = selectors.patient_search()
    if form.is_valid():
        patients = selectors.patient_search(
            query=form.cleaned_data["q"], birth_date=form.cleaned_data["birth_date"]
        )
    page = Paginator(patients, PAGE_SIZE).get_page(request.GET.get("page"))
    context = {"form": form, "page": page}
    return render_page_or_partial(request, "patients/patient_list.html", "results", context)


@staff_view(Cap.PATIENT_CREATE)
def patient_create(request: ActorRequest) -> HttpResponse:
    form = PatientForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            patient = services.patient_create(actor=request.actor, data=form.cleaned_data)
        except DomainError as error:
            add_domain_errors(form, error)
        else:
            messages.success(request, f"{patient.full_name} registered (MRN {patient.mrn}).")
            return redirect("patients:chart", patient_id=patient.public_id)
    status = 400 if form.errors else 200
    return TemplateResponse(request, "patients/patient_form.html", {"form": form}, status=status)


@staff_view(Cap.PATIENT_VIEW)
def patient_chart(request: ActorRequest, patient_id: str, section: str = "summary") -> HttpResponse:
    if section not in CHART_SECTIONS:
        section = "summary"
    actor = request.actor
    patient = selectors.patient_chart_read(actor, patient_id, action="patients.chart.viewed")
    summary = selectors.chart_summary(patient) if actor.can(Cap.CLINICAL_VIEW) else None
    context = {
        "patient": patient,
        "summary": summary,
        "section": section,
        "sections": CHART_SECTIONS,
        "weight_form": WeightForm(),
        "height_form": HeightForm(),
    }
    return render_page_or_partial(request, "patients/patient_chart.html", "chart-section", context)


@staff_view(Cap.PATIENT_EDIT_DEMOGRAPHICS)
def patient_edit(request: ActorRequest, patient_id: str) -> HttpResponse:
    actor = request.actor
    patient = selectors.patient_get_for_actor(actor, patient_id)
    # The form gets a copy of the values, not the instance: the service compares old and new.
    form = PatientForm(request.POST or None, initial=model_to_dict(patient, PATIENT_FIELDS))
    if request.method == "POST" and form.is_valid():
        try:
            services.patient_update(actor=actor, patient=patient, data=form.cleaned_data)
        except DomainError as error:
            add_domain_errors(form, error)
        else:
            messages.success(request, "Demographics saved.")
            return redirect("patients:chart", patient_id=patient.public_id)
    context = {"form": form, "patient": patient}
    return TemplateResponse(
        request, "patients/patient_form.html", context, status=400 if form.errors else 200
    )


def _chart_entry_view(
    form_class: type[forms.BaseForm],
    save: Callable[[Any, Any, dict[str, Any]], Any],
    title: str,
    done_message: str,
) -> Callable[..., HttpResponse]:
    """A page (or htmx fragment) that adds one entry to the chart through a service."""

    def view(request: ActorRequest, patient_id: str) -> HttpResponse:
        actor = request.actor
        patient = selectors.patient_get_for_actor(actor, patient_id)
        form = form_class(request.POST or None)
        if request.method == "POST" and form.is_valid():
            try:
                save(actor, patient, form.cleaned_data)
            except DomainError as error:
                add_domain_errors(form, error)
            else:
                messages.success(request, done_message)
                response: HttpResponse = redirect("patients:chart", patient_id=patient.public_id)
                if getattr(request, "htmx", False):
                    response = HttpResponse(status=204)
                    response["HX-Redirect"] = response_url(patient)
                return response
        context = {"form": form, "patient": patient, "title": title}
        status = 400 if form.errors else 200
        return render_page_or_partial(
            request, "patients/entry_form.html", "entry-form", context, status
        )

    return view


def response_url(patient: Any) -> str:
    from django.urls import reverse

    return reverse("patients:chart", kwargs={"patient_id": patient.public_id})


weight_add = staff_view(Cap.MEASUREMENT_RECORD)(
    _chart_entry_view(
        WeightForm,
        lambda actor, patient, data: services.weight_record(
            actor=actor, patient=patient, value=data["value"], unit=data["unit"]
        ),
        "Record weight",
        "Weight recorded.",
    )
)
height_add = staff_view(Cap.MEASUREMENT_RECORD)(
    _chart_entry_view(
        HeightForm,
        lambda actor, patient, data: services.height_record(
            actor=actor, patient=patient, value=data["value"], unit=data["unit"]
        ),
        "Record height",
        "Height recorded.",
    )
)
blood_pressure_add = staff_view(Cap.MEASUREMENT_RECORD)(
    _chart_entry_view(
        BloodPressureForm,
        lambda actor, patient, data: services.resting_blood_pressure_record(
            actor=actor, patient=patient, systolic=data["systolic"], diastolic=data["diastolic"]
        ),
        "Record resting blood pressure",
        "Blood pressure recorded.",
    )
)
condition_add = staff_view(Cap.CLINICAL_EDIT)(
    _chart_entry_view(
        ConditionForm,
        lambda actor, patient, data: services.condition_add(
            actor=actor, patient=patient, data=data
        ),
        "Add condition",
        "Condition added.",
    )
)
medication_add = staff_view(Cap.CLINICAL_EDIT)(
    _chart_entry_view(
        MedicationForm,
        lambda actor, patient, data: services.medication_add(
            actor=actor, patient=patient, data=data
        ),
        "Add medication",
        "Medication added.",
    )
)
allergy_add = staff_view(Cap.CLINICAL_EDIT)(
    _chart_entry_view(
        AllergyForm,
        lambda actor, patient, data: services.allergy_add(actor=actor, patient=patient, data=data),
        "Add allergy",
        "Allergy added.",
    )
)


def _measurement_text(entry: Any) -> str:
    """What the confirm page names, "82 kg of 2026-03-02 14:05 CST", timed as the chart shows it."""
    if isinstance(entry, BodyWeight):
        value = quantity(entry.weight_kg, "kg")
    elif isinstance(entry, BodyHeight):
        value = quantity(entry.height_cm, "cm")
    else:
        diastolic = (
            f"/{plain_number(entry.value_diastolic)}" if entry.value_diastolic is not None else ""
        )
        value = f"{plain_number(entry.value)}{diastolic} {entry.unit}"
    return f"{value} of {stamp(entry.measured_at)}"


def _entered_in_error_view(model: type[ChartEntry], what: str) -> Callable[..., HttpResponse]:
    """A confirm page (or htmx fragment) that marks one measurement of the chart entered-in-error.

    The row is kept for the record; the chart, dosing and screening stop using it. A second
    marking is a 409 (Conflict) page; another organization's patient or entry is a 404.
    """

    def view(request: ActorRequest, patient_id: str, entry_id: str) -> HttpResponse:
        actor = request.actor
        patient = selectors.patient_get_for_actor(actor, patient_id)
        entry = selectors.entry_get_for_actor(actor, model, entry_id, capability=Cap.CLINICAL_EDIT)
        if entry.patient_id != patient.pk:
            raise NotFound(f"No such {model._meta.verbose_name}.")
        form = EnteredInErrorForm(request.POST or None)
        if request.method == "POST" and form.is_valid():
            services.entry_mark_entered_in_error(
                actor=actor, entry=entry, reason=form.cleaned_data["reason"]
            )
            messages.success(request, f"The {what} was marked entered in error.")
            if getattr(request, "htmx", False):
                response = HttpResponse(status=204)
                response["HX-Redirect"] = response_url(patient)
                return response
            return redirect("patients:chart", patient_id=patient.public_id)
        context = {
            "form": form,
            "patient": patient,
            "title": f"Mark {what} {_measurement_text(entry)} entered in error",
            "submit_label": "Mark entered in error",
        }
        status = 400 if form.errors else 200
        return render_page_or_partial(
            request, "patients/entry_form.html", "entry-form", context, status
        )

    return view


weight_entered_in_error = staff_view(Cap.CLINICAL_EDIT)(
    _entered_in_error_view(BodyWeight, "weight")
)
height_entered_in_error = staff_view(Cap.CLINICAL_EDIT)(
    _entered_in_error_view(BodyHeight, "height")
)
vital_entered_in_error = staff_view(Cap.CLINICAL_EDIT)(
    _entered_in_error_view(VitalSign, "vital sign")
)
