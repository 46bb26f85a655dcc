"""The clinic outcomes dashboard: pictures first, the numbers in tables below, every definition
shown. Aggregates only (no patient is named), so researchers see the same page."""

from __future__ import annotations

from typing import Any, Literal

from django.http import FileResponse, HttpResponse
from django.template.response import TemplateResponse

from ketaclinic.accounts.actor import ActorRequest
from ketaclinic.accounts.roles import Cap
from ketaclinic.core.decorators import staff_view
from ketaclinic.outcomes import clinic_report, selectors
from ketaclinic.outcomes.filters import CohortFilters
from ketaclinic.outcomes.forms import CohortFilterForm


@staff_view(Cap.OUTCOMES_ANALYZE)
def dashboard(request: ActorRequest) -> HttpResponse:
    # A bare ?format=pdf (an old link) is the default cohort, not a form sent empty.
    form = CohortFilterForm(request.GET if set(request.GET) - {"format"} else None)
    filters = form.filters() if form.is_bound and form.is_valid() else CohortFilters()
    if form.is_bound and not form.is_valid():
        return TemplateResponse(
            request, "outcomes/dashboard.html", {"form": form, "report": None}, status=400
        )
    report = selectors.cohort_report_for_actor(request.actor, filters=filters)
    context: dict[str, Any] = {
        "form": form,
        **clinic_report.context(report, filters),
        # the PDF is drawn by the worker (POST to outcomes:reports): the cohort goes with it
        "cohort_fields": filters.model_dump(mode="json", exclude_none=True),
    }
    return TemplateResponse(request, "outcomes/dashboard.html", context)


@staff_view(Cap.OUTCOMES_REPORT)
def progress_report(request: ActorRequest, patient_id: str) -> HttpResponse:
    """The patient's progress report on screen; its PDF is drawn by the worker (outcomes:reports),
    from the same body."""
    from ketaclinic.outcomes.report import progress_report_for_actor

    audience: Literal["patient", "clinician"] = (
        "clinician" if request.GET.get("audience") == "clinician" else "patient"
    )
    report = progress_report_for_actor(
        request.actor,
        str(patient_id),
        audience=audience,
    )
    return TemplateResponse(request, "outcomes/progress_report_page.html", {"report": report})


@staff_view(Cap.OUTCOMES_ANALYZE)
def reports(request: ActorRequest) -> HttpResponse:
    """Ask for a PDF report (POST: a patient's progress report, or the clinic outcomes report of
    the cohort sent with it), drawn in the background; and the reports one asked for lately."""
    from django.shortcuts import redirect

    from ketaclinic.core.errors import DomainError, FieldError
    from ketaclinic.outcomes import services

    errors: list[FieldError] = []
    if request.method == "POST":
        kind = request.POST.get("kind", "")
        filters = None
        if kind == "clinic":
            form = CohortFilterForm(request.POST)
            if form.is_valid():
                filters = form.filters()
            else:
                errors = [
                    FieldError(field, " ".join(str(m) for m in messages))
                    for field, messages in form.errors.items()
                ]
        if not errors:
            try:
                job = services.report_request(
                    actor=request.actor,
                    kind=kind,
                    patient_id=request.POST.get("patient") or None,
                    audience=request.POST.get("audience", "patient"),
                    filters=filters,
                )
            except DomainError as error:
                if error.status not in (400, 422):
                    raise
                errors = error.errors or [FieldError("kind", error.detail)]
            else:
                return redirect("outcomes:report", report_id=job.public_id)
    context = {"errors": errors, "jobs": selectors.reports_recent(request.actor)}
    return TemplateResponse(
        request, "outcomes/reports.html", context, status=400 if errors else 200
    )


@staff_view(Cap.OUTCOMES_ANALYZE)
def report_detail(request: ActorRequest, report_id: str) -> HttpResponse:
    """One report's progress (the bar polls every 2 s, naming the step) and then its PDF."""
    from ketaclinic.core.http import render_page_or_partial

    job = selectors.report_get_for_actor(request.actor, report_id)
    return render_page_or_partial(
        request, "outcomes/report_detail.html", "report-progress", {"job": job, **_kept(job)}
    )


@staff_view(Cap.OUTCOMES_ANALYZE)
def report_file(request: ActorRequest, report_id: str) -> FileResponse:
    """The finished report's PDF; each download is audited (a patient's under their name)."""
    from ketaclinic.outcomes import services

    job = selectors.report_get_for_actor(request.actor, report_id)
    path = services.report_download(actor=request.actor, job=job)
    return FileResponse(
        path.open("rb"), as_attachment=True, filename=path.name, content_type="application/pdf"
    )


@staff_view()
def exports(request: ActorRequest) -> HttpResponse:
    """Data exports: request a research export (a logged disclosure), and the log of exports:
    research exports to who may make them, identified FHIR bulk exports too to who keeps the
    accounting of disclosures (audit.view) or may run them."""
    from django.shortcuts import redirect

    from ketaclinic.core.errors import DomainError
    from ketaclinic.outcomes import services
    from ketaclinic.outcomes.forms import ResearchExportForm
    from ketaclinic.outcomes.models import DataExport

    actor = request.actor
    research = actor.can(Cap.RESEARCH_EXPORT)
    bulk = selectors.can_see_bulk_exports(actor)
    if not (research or bulk) or (request.method == "POST" and not research):
        actor.require(Cap.RESEARCH_EXPORT)  # refused and recorded
    form = ResearchExportForm(request.POST if request.method == "POST" else None)
    if request.method == "POST" and form.is_valid():
        try:
            export = services.research_export_request(
                actor=actor, filters=form.filters(), zip3_table=form.cleaned_data["zip3_table"]
            )
        except DomainError as error:
            for field_error in error.errors:
                form.add_error(
                    field_error.field if field_error.field in form.fields else None,
                    field_error.message,
                )
        else:
            return redirect("outcomes:export", export_id=export.public_id)
    kinds = [str(DataExport.Kind.RESEARCH)] * research + [str(DataExport.Kind.FHIR_BULK)] * bulk
    context = {"form": form if research else None, "log": selectors.exports_log(kinds=kinds)}
    return TemplateResponse(
        request, "outcomes/exports.html", context, status=400 if form.errors else 200
    )


@staff_view(Cap.RESEARCH_EXPORT)
def export_detail(request: ActorRequest, export_id: str) -> HttpResponse:
    """One export's progress (the bar polls every 2 s until done) and its files."""
    from ketaclinic.core.http import render_page_or_partial
    from ketaclinic.outcomes.models import DataExport

    export = selectors.export_get_for_actor(
        request.actor,
        export_id,
        kind=DataExport.Kind.RESEARCH,
    )
    return render_page_or_partial(
        request,
        "outcomes/export_detail.html",
        "export-progress",
        {"export": export, **_kept(export)},
    )


@staff_view(Cap.RESEARCH_EXPORT)
def export_file(request: ActorRequest, export_id: str, name: str) -> FileResponse:
    from ketaclinic.outcomes.export_files import open_export_file
    from ketaclinic.outcomes.models import DataExport

    actor = request.actor
    export = selectors.export_get_for_actor(actor, export_id, kind=DataExport.Kind.RESEARCH)
    handle = open_export_file(actor, export, name, action="outcomes.research_export.downloaded")
    return FileResponse(handle, as_attachment=True, filename=name)


@staff_view()
def bulk_export_detail(request: ActorRequest, export_id: str) -> HttpResponse:
    """A FHIR bulk export's page: who asked, when, what (_type, _since, level), its progress
    (the bar polls every 2 s) and its files; the NDJSON files open only to who may export."""
    from django.utils.dateparse import parse_datetime

    from ketaclinic.core.http import render_page_or_partial

    export = selectors.bulk_export_get_for_staff(request.actor, export_id)
    context = {
        "export": export,
        **_kept(export),
        "may_download": request.actor.can(Cap.BULK_EXPORT),
        "types": export.parameters.get("types") or [],
        "since": parse_datetime(export.parameters.get("since") or ""),
    }
    return render_page_or_partial(
        request, "outcomes/bulk_export_detail.html", "bulk-export-progress", context
    )


@staff_view(Cap.BULK_EXPORT)
def bulk_export_file(request: ActorRequest, export_id: str, name: str) -> FileResponse:
    """One NDJSON file of a finished FHIR bulk export (identified records), audited."""
    from ketaclinic.fhir.bulk_export import NDJSON
    from ketaclinic.outcomes.export_files import open_export_file
    from ketaclinic.outcomes.models import DataExport

    actor = request.actor
    export = selectors.export_get_for_actor(actor, export_id, kind=DataExport.Kind.FHIR_BULK)
    handle = open_export_file(actor, export, name, action="fhir.bulk_export.downloaded")
    return FileResponse(
        handle,
        as_attachment=True,
        filename=name,
        content_type=NDJSON,
    )


@staff_view(Cap.AUDIT_VIEW)
def disclosures(request: ActorRequest, patient_id: str) -> HttpResponse:
    """The accounting of a patient's disclosures on screen, or (format=csv) as a download."""
    import csv
    import io

    from ketaclinic.core import localtime
    from ketaclinic.outcomes.disclosures import disclosures_read

    form = "csv" if request.GET.get("format") == "csv" else "screen"
    accounting = disclosures_read(request.actor, patient_id, form=form)
    if form == "csv":
        buffer = io.StringIO()
        writer = csv.writer(buffer)
        writer.writerow(["when", "kind", "who", "role", "channel", "what", "outcome"])
        for row in accounting.rows:
            writer.writerow(
                [
                    localtime.stamp_seconds(row.at),
                    row.kind,
                    row.who,
                    row.role,
                    row.channel,
                    row.what,
                    row.outcome,
                ]
            )
        response = HttpResponse(buffer.getvalue(), content_type="text/csv")
        response["Content-Disposition"] = 'attachment; filename="accounting-of-disclosures.csv"'
        return response
    return TemplateResponse(request, "outcomes/disclosures.html", {"accounting": accounting})


@staff_view(Cap.SETUP_MANAGE)
def summaries(request: ActorRequest) -> HttpResponse:
    """Rewrite the dashboard's course summaries in the background (after a bulk import or a rule
    change), and the recent rewrites."""
    from django.shortcuts import redirect

    from ketaclinic.outcomes import services

    if request.method == "POST":
        job = services.summary_recompute_request(actor=request.actor)
        return redirect("outcomes:summaries-job", job_id=job.public_id)
    return TemplateResponse(
        request, "outcomes/summaries.html", {"jobs": selectors.summary_recomputes_recent()}
    )


@staff_view(Cap.SETUP_MANAGE)
def summaries_job(request: ActorRequest, job_id: str) -> HttpResponse:
    """One recompute's progress (the bar polls every 2 s until done)."""
    from ketaclinic.core.http import render_page_or_partial

    job = selectors.summary_recompute_get_for_actor(request.actor, job_id)
    return render_page_or_partial(
        request, "outcomes/summaries_job.html", "recompute-progress", {"job": job}
    )


def _kept(job: Any) -> dict[str, Any]:
    """When a finished job's files go (or went), and the keep period, for its page."""
    from django.conf import settings

    from ketaclinic.outcomes.file_retention import files_deleted_at

    return {
        "files_deleted_at": files_deleted_at(job),
        "keep_hours": settings.GENERATED_FILES_KEEP_HOURS,
    }
