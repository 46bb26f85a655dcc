"""The audit trail for compliance: filter on screen, export as CSV. Read-only by construction."""

from __future__ import annotations

import csv
from datetime import datetime, time

from django import forms
from django.core.paginator import Paginator
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse, StreamingHttpResponse
from django.template.response import TemplateResponse
from django.utils import timezone

from ketaclinic.accounts.audit import audit_record
from ketaclinic.accounts.models import AuditEvent
from ketaclinic.accounts.roles import Cap
from ketaclinic.core.decorators import staff_view

CSV_COLUMNS = (
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


def audit_events_filtered(organization_id: int, form: AuditFilterForm) -> QuerySet[AuditEvent]:
    events = AuditEvent.objects.filter(organization_id=organization_id)
    if form.is_valid():
        data = form.cleaned_data
        if data["start"]:
            events = events.filter(
                occurred_at__gte=timezone.make_aware(datetime.combine(data["start"], time.min))
            )
        if data["end"]:
            events = events.filter(
                occurred_at__lte=timezone.make_aware(datetime.combine(data["end"], time.max))
            )
        if data["actor"]:
            events = events.filter(actor_username=data["actor"])
        if data["action"]:
            events = events.filter(action__startswith=data["action"])
        if data["patient"]:
            events = events.filter(patient_id=data["patient"])
        if data["outcome"]:
            events = events.filter(outcome=data["outcome"])
    return events.order_by("-occurred_at", "-seq")


@staff_view(Cap.AUDIT_VIEW)
def audit_list(request: HttpRequest) -> HttpResponse:
    actor = request.actor  # type: ignore[attr-defined]
    form = AuditFilterForm(request.GET or None)
    events = audit_events_filtered(actor.organization.pk, form)
    page = Paginator(events, 50).get_page(request.GET.get("page"))
    return TemplateResponse(request, "accounts/audit_list.html", {"form": form, "page": page})


class _Echo:
    def write(self, value: str) -> str:
        return value


@staff_view(Cap.AUDIT_EXPORT)
def audit_export(request: HttpRequest) -> HttpResponse:
    actor = request.actor  # type: ignore[attr-defined]
    form = AuditFilterForm(request.GET or None)
    events = audit_events_filtered(actor.organization.pk, form)
    audit_record(actor=actor, action="audit.exported", detail={"filters": request.GET.dict()})
    writer = csv.writer(_Echo())

    def rows():  # type: ignore[no-untyped-def]
        yield writer.writerow(CSV_COLUMNS)
        for event in events.iterator(chunk_size=2000):
            yield writer.writerow([getattr(event, c) for c in CSV_COLUMNS])

    response = StreamingHttpResponse(rows(), content_type="text/csv")
    response["Content-Disposition"] = 'attachment; filename="audit-trail.csv"'
    return response
