"""The audit trail for compliance: filter on screen, export as CSV. Read-only by construction."""

from __future__ import annotations

import csv
from collections.abc import Iterator
from typing import Any

from django import forms
from django.apps import apps
from django.core.paginator import Paginator
from django.http import HttpResponse, StreamingHttpResponse
from django.template.response import TemplateResponse

from ketaclinic.accounts.actor import ActorRequest
from ketaclinic.accounts.audit import audit_record
from ketaclinic.accounts.audit_query import AuditFilter, audit_events_filtered
from ketaclinic.accounts.models import AuditEvent
from ketaclinic.accounts.roles import Cap
from ketaclinic.core.decorators import staff_view

CSV_COLUMNS = (
    "id",
    "seq",
    "occurred_at",
    "actor_username",
    "role",
    "action",
    "outcome",
    "patient_id",
    "object_type",
    "object_id",
    "client_address",
    "channel",
    "hash",
)


class AuditFilterForm(forms.Form):
    start = forms.DateField(required=False, widget=forms.DateInput(attrs={"type": "date"}))
    end = forms.DateField(required=False, widget=forms.DateInput(attrs={"type": "date"}))
    actor = forms.CharField(required=False, label="User name")
    action = forms.CharField(required=False, help_text="Prefix, e.g. patients.chart")
    patient = forms.UUIDField(required=False, label="Patient id")
    outcome = forms.ChoiceField(required=False, choices=[("", "Any"), *AuditEvent.Outcome.choices])


def _filters(form: AuditFilterForm) -> AuditFilter:
    if not form.is_valid():
        return AuditFilter()
    data = form.cleaned_data
    return AuditFilter(
        start=data["start"],
        end=data["end"],
        username=data["actor"],
        action=data["action"],
        patient=data["patient"],
        outcome=data["outcome"],
    )


@staff_view(Cap.AUDIT_VIEW)
def audit_list(request: ActorRequest) -> HttpResponse:
    actor = request.actor
    form = AuditFilterForm(request.GET or None)
    events = audit_events_filtered(actor.organization, _filters(form))
    page = Paginator(events, 50).get_page(request.GET.get("page"))
    context = {"form": form, "page": page, "patients": _patient_names(page)}
    return TemplateResponse(request, "accounts/audit_list.html", context)


def _patient_names(page: Any) -> dict[str, str]:
    """Patients named as people read them ("Lovelace, Ada (MRN 1001)"), one query per page; the
    id stays in the row's details disclosure. accounts sits below patients, hence get_model."""
    ids = {str(e.patient_id) for e in page if e.patient_id}
    if not ids:
        return {}
    patient = apps.get_model("patients", "Patient")
    rows = patient.objects.filter(public_id__in=ids).values_list(
        "public_id", "family_name", "given_name", "mrn"
    )
    return {str(pid): f"{family}, {given} (MRN {mrn})" for pid, family, given, mrn in rows}


class _Echo:
    def write(self, value: str) -> str:
        return value


@staff_view(Cap.AUDIT_EXPORT)
def audit_export(request: ActorRequest) -> StreamingHttpResponse:
    actor = request.actor
    form = AuditFilterForm(request.GET or None)
    events = audit_events_filtered(actor.organization, _filters(form))
    audit_record(actor=actor, action="audit.exported", detail={"filters": request.GET.dict()})
    writer = csv.writer(_Echo())

    def rows() -> Iterator[str]:
        yield writer.writerow(CSV_COLUMNS)
        for event in events.iterator(chunk_size=2000):
            yield writer.writerow([getattr(event, c) for c in CSV_COLUMNS])

    response = StreamingHttpResponse(rows(), content_type="text/csv")
    response["Content-Disposition"] = 'attachment; filename="audit-trail.csv"'
    return response
