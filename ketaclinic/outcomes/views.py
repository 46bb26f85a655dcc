"""The clinic outcomes dashboard: pictures first, the numbers in tables below, every definition
shown. Aggregates only (no patient is named), so researchers see the same page."""

from __future__ import annotations

from typing import Any, Literal

from django.http import FileResponse, HttpResponse
from django.template.response import TemplateResponse

from ketaclinic.accounts.actor import ActorRequest
from ketaclinic.accounts.roles import Cap
from ketaclinic.core.decorators import staff_view
from ketaclinic.outcomes import charts, selectors
from ketaclinic.outcomes.filters import CohortFilters
from ketaclinic.outcomes.forms import CohortFilterForm
from ketaclinic.outcomes.rules import OutcomePolicy


def definitions(policy: OutcomePolicy) -> list[dict[str, str]]:
    """The rules the figures use, in words, with their sources (docs/sources/outcomes.md)."""
    rows = [
        {
            "term": "Response",
            "rule": f"a fall of at least {policy.response_reduction_percent}% from baseline "
            "(the last score at or before the first dose)",
            "source": "clinical reference 4.2, confirmed",
        }
    ]
    for instrument, rule in policy.remission_rules.items():
        rows.append(
            {
                "term": f"Remission ({instrument.upper()})",
                "rule": f"score {rule.describe()}",
                "source": rule.source.replace("clinical-reference §", "clinical reference "),
            }
        )
    for instrument, relapse in policy.relapse_rules.items():
        rows.append(
            {
                "term": f"Relapse ({instrument.upper()})",
                "rule": f"after a response, {relapse.consecutive} consecutive scores of "
                f"{relapse.threshold} or more, {relapse.min_days_apart}-"
                f"{relapse.max_days_apart} days apart",
                "source": "clinical reference 4.2, wording unconfirmed: a clinic setting",
            }
        )
    return rows


def _charts(report: selectors.CohortReport) -> dict[str, str]:
    summary = report.summary
    bars = [
        charts.RateBar(
            f"{label}, all",
            rate.rate,
            rate.ci_lower,
            rate.ci_upper,
            f"{rate.successes} of {rate.n}",
        )
        for label, rate in (("Response", summary.response), ("Remission", summary.remission))
    ]
    for name, (response, remission) in summary.by_group.items():
        bars.append(
            charts.RateBar(
                f"Response, {name}"[:24],
                response.rate,
                response.ci_lower,
                response.ci_upper,
                f"{response.successes} of {response.n}",
            )
        )
        bars.append(
            charts.RateBar(
                f"Remission, {name}"[:24],
                remission.rate,
                remission.ci_lower,
                remission.ci_upper,
                f"{remission.successes} of {remission.n}",
            )
        )
    weeks = [
        charts.BandPoint(w.week, w.mean, w.ci_lower, w.ci_upper, w.n)
        for w in summary.change_by_week
    ]
    dissociation = [
        charts.BandPoint(index + 1, row.mean, row.ci_lower, row.ci_upper, row.patients)
        for index, row in enumerate(report.dissociation)
        if row.mean is not None
    ]
    return {
        "dissociation": charts.mean_band_svg(
            chart_id="dissociation",
            title="Mean dissociation (CADSS) by response after induction",
            points=dissociation,
            x_label="1 responders, 2 non-responders",
            y_label="CADSS",
        )
        if len(dissociation) == 2
        else "",
        "rates": charts.rate_bars_svg(
            chart_id="rates", title="Response and remission after induction", bars=bars
        ),
        "change": charts.mean_band_svg(
            chart_id="change",
            title="Mean change from baseline by week since the first dose",
            points=weeks,
            x_label="week",
            y_label="points",
        ),
        "to_response": charts.km_svg(
            chart_id="to-response",
            title="Patients not yet responding, by days since the first dose",
            fits={"all": summary.to_first_response} if summary.to_first_response else {},
        ),
        "durability": charts.km_svg(
            chart_id="durability",
            title="Durability: responders without relapse, by days since response",
            fits=summary.durability,
        ),
        "maintenance": charts.km_svg(
            chart_id="maintenance",
            title="Durability by how often responders were dosed after responding",
            fits=summary.durability_by_maintenance,
        ),
    }


@staff_view(Cap.OUTCOMES_ANALYZE)
def dashboard(request: ActorRequest) -> HttpResponse:
    # A bare ?format=pdf is the default cohort, not a form sent empty.
    form = CohortFilterForm(request.GET if set(request.GET) - {"format"} else None)
    filters = form.filters() if form.is_bound and form.is_valid() else CohortFilters()
    if form.is_bound and not form.is_valid():
        return TemplateResponse(
            request, "outcomes/dashboard.html", {"form": form, "report": None}, status=400
        )
    report = selectors.cohort_report_for_actor(request.actor, filters=filters)
    context: dict[str, Any] = {
        "form": form,
        "report": report,
        "summary": report.summary,
        "charts": _charts(report),
        "definitions": definitions(OutcomePolicy()),
        "described": ", ".join(filters.described()),
        "bp": [
            {
                "severity": severity,
                "sessions": count,
                "per_100": report.safety.bp_per_100_sessions(severity),
            }
            for severity, count in report.safety.bp_excursions.items()
        ],
        "grades": [
            {"grade": grade, "count": count, "per_100": report.safety.per_100_sessions(grade)}
            for grade, count in report.safety.adverse_events_by_grade.items()
        ],
    }
    if request.GET.get("format") == "pdf":
        from django.template.loader import render_to_string
        from weasyprint import HTML

        context["organization"] = request.actor.organization.name
        pdf = HTML(string=render_to_string("outcomes/dashboard_pdf.html", context)).write_pdf()
        response = HttpResponse(pdf, content_type="application/pdf")
        response["Content-Disposition"] = 'attachment; filename="outcomes-report.pdf"'
        return response
    return TemplateResponse(request, "outcomes/dashboard.html", context)


@staff_view(Cap.OUTCOMES_REPORT)
def progress_report(request: ActorRequest, patient_id: str) -> HttpResponse:
    """The patient's progress report on screen, or (format=pdf) as a PDF from the same body."""
    from ketaclinic.outcomes.report import progress_report_for_actor, progress_report_pdf

    audience: Literal["patient", "clinician"] = (
        "clinician" if request.GET.get("audience") == "clinician" else "patient"
    )
    report = progress_report_for_actor(
        request.actor,
        str(patient_id),
        audience=audience,
    )
    if request.GET.get("format") == "pdf":
        response = HttpResponse(progress_report_pdf(report), content_type="application/pdf")
        response["Content-Disposition"] = 'attachment; filename="progress-report.pdf"'
        return response
    return TemplateResponse(request, "outcomes/progress_report_page.html", {"report": report})


@staff_view(Cap.RESEARCH_EXPORT)
def exports(request: ActorRequest) -> HttpResponse:
    """The research exports: request one (a logged disclosure) and the log of every export."""
    from django.shortcuts import redirect

    from ketaclinic.core.errors import DomainError
    from ketaclinic.outcomes import services
    from ketaclinic.outcomes.forms import ResearchExportForm

    actor = request.actor
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
    context = {"form": form, "log": selectors.exports_log()}
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
        request, "outcomes/export_detail.html", "export-progress", {"export": export}
    )


@staff_view(Cap.RESEARCH_EXPORT)
def export_file(request: ActorRequest, export_id: str, name: str) -> FileResponse:
    from django.http import Http404

    from ketaclinic.accounts.audit import audit_record
    from ketaclinic.outcomes.models import DataExport
    from ketaclinic.outcomes.research_export import export_directory

    actor = request.actor
    export = selectors.export_get_for_actor(actor, export_id, kind=DataExport.Kind.RESEARCH)
    if export.status != DataExport.Status.DONE or name not in {f["name"] for f in export.files}:
        raise Http404("No such file in this export.")
    audit_record(
        actor=actor, action="outcomes.research_export.downloaded", obj=export, detail={"file": name}
    )
    return FileResponse(
        (export_directory(export) / name).open("rb"), as_attachment=True, filename=name
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
