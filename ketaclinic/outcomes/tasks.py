"""Background work for outcomes (django-tasks), run by `ketaclinic worker`: data exports,
rewriting a clinic's course summaries, and drawing PDF reports."""

from __future__ import annotations

from django_scopes import scopes_disabled
from django_tasks import task

from ketaclinic.outcomes import services
from ketaclinic.outcomes.models import DataExport, ReportJob, SummaryRecompute


@task()
def data_export_task(export_public_id: str) -> str:
    with scopes_disabled():
        export = DataExport.objects.select_related("organization", "requested_by").get(
            public_id=export_public_id
        )
    return services.data_export_run(export=export).status


@task()
def course_summaries_recompute_task(job_public_id: str) -> str:
    with scopes_disabled():
        job = SummaryRecompute.objects.select_related("organization", "requested_by").get(
            public_id=job_public_id
        )
    return services.summary_recompute_run(job=job).status


@task()
def report_task(job_public_id: str) -> str:
    with scopes_disabled():
        job = ReportJob.objects.select_related("organization", "requested_by", "patient").get(
            public_id=job_public_id
        )
    return services.report_run(job=job).status
