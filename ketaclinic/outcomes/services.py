"""Writes for outcomes: data exports (research and FHIR bulk), each one a logged disclosure;
PDF reports and course summary rewrites, drawn in the background worker.

A request is one transaction (the job row, its audit event) and the work runs after commit in
the background worker; `data_export_run` is also what the CLI calls to run a job in the terminal.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

from django.conf import settings
from django.db import transaction
from django_scopes import scope

from ketaclinic.accounts.actor import Actor
from ketaclinic.accounts.audit import audit_record
from ketaclinic.accounts.roles import Cap
from ketaclinic.core import clock
from ketaclinic.core.errors import DomainError, ValidationFailed
from ketaclinic.outcomes.deid import DEFAULT_ZIP3_TABLE, SAFE_HARBOR_RULE, ZIP3_TABLES
from ketaclinic.outcomes.filters import CohortFilters
from ketaclinic.outcomes.models import DataExport, ReportJob, SummaryRecompute

log = logging.getLogger(__name__)
Runner = Callable[[DataExport, Callable[[int], None]], tuple[int, list[dict[str, Any]]]]


def research_export_request(
    *,
    actor: Actor,
    filters: CohortFilters,
    zip3_table: str = DEFAULT_ZIP3_TABLE,
    run_in_background: bool = True,
) -> DataExport:
    """Queue a de-identified export of a cohort; the disclosure is logged from this moment."""
    actor.require(Cap.RESEARCH_EXPORT)
    if zip3_table not in ZIP3_TABLES:
        raise ValidationFailed.for_field(
            "zip3_table", f"Unknown ZIP3 table; known: {sorted(ZIP3_TABLES)}."
        )
    with transaction.atomic():
        export = DataExport.objects.create(
            organization=actor.organization,
            kind=DataExport.Kind.RESEARCH,
            requested_by=actor.user,
            requester_role=actor.role,
            channel=actor.channel,
            parameters=filters.model_dump(mode="json"),
            cohort_described=", ".join(filters.described()),
            rule_version=SAFE_HARBOR_RULE,
            zip3_table=zip3_table,
        )
        audit_record(
            actor=actor,
            action="outcomes.research_export.requested",
            obj=export,
            detail={
                "cohort": export.cohort_described,
                "rule": SAFE_HARBOR_RULE,
                "zip3": zip3_table,
            },
        )
        if run_in_background:
            _enqueue_on_commit(export)
    return export


def _enqueue_on_commit(export: DataExport) -> None:
    from ketaclinic.outcomes.tasks import data_export_task

    public_id = str(export.public_id)
    transaction.on_commit(lambda: data_export_task.enqueue(public_id))


def _runner(kind: str) -> Runner:
    if kind == DataExport.Kind.RESEARCH:
        from ketaclinic.outcomes.research_export import build_research_export

        return lambda export, progress: build_research_export(export, progress=progress)
    from ketaclinic.fhir.bulk_export import build_bulk_export

    return lambda export, progress: build_bulk_export(export, progress=progress)


def data_export_run(
    *, export: DataExport, on_progress: Callable[[int], None] | None = None
) -> DataExport:
    """Run a queued export (idempotent: a finished job is left as it is)."""
    if export.ended:
        return export
    with scope(organization=export.organization):
        DataExport.objects.filter(pk=export.pk).update(
            status=DataExport.Status.RUNNING, started_at=clock.now(), progress=0
        )
        last = [0]

        def progress(percent: int) -> None:
            # Progress is written outside any transaction so a poller sees it move.
            if percent != last[0]:
                last[0] = percent
                DataExport.objects.filter(pk=export.pk).update(progress=percent)
            if on_progress:
                on_progress(percent)

        try:
            patients, files = _runner(export.kind)(export, progress)
        except Exception as error:
            log.exception("export %s failed", export.public_id)
            DataExport.objects.filter(pk=export.pk).update(
                status=DataExport.Status.FAILED, error=str(error)[:2000], finished_at=clock.now()
            )
            export.refresh_from_db()
            return export
        with transaction.atomic():
            DataExport.objects.filter(pk=export.pk).update(
                status=DataExport.Status.DONE,
                progress=100,
                patients=patients,
                files=files,
                finished_at=clock.now(),
            )
            export.refresh_from_db()
            audit_record(
                actor=None,
                organization=export.organization,
                user=export.requested_by,
                channel=export.channel,
                action=f"outcomes.{export.kind.replace('-', '_')}_export.completed",
                obj=export,
                detail={
                    "cohort": export.cohort_described,
                    "rule": export.rule_version,
                    "zip3": export.zip3_table,
                    "patients": patients,
                    "files": [f["name"] for f in files],
                },
            )
    return export


def summary_recompute_request(*, actor: Actor, run_in_background: bool = True) -> SummaryRecompute:
    """Queue a rewrite of the clinic's course summaries (after a bulk import or a rule change).
    One at a time per clinic: while one is queued or running, that one is returned."""
    actor.require(Cap.SETUP_MANAGE)
    with scope(organization=actor.organization), transaction.atomic():
        active = (
            SummaryRecompute.objects.select_for_update()
            .filter(status__in=[SummaryRecompute.Status.QUEUED, SummaryRecompute.Status.RUNNING])
            .first()
        )
        if active is not None:
            return active
        job = SummaryRecompute.objects.create(
            organization=actor.organization, requested_by=actor.user, channel=actor.channel
        )
        audit_record(actor=actor, action="outcomes.summaries.recompute_requested", obj=job)
        if run_in_background:
            from ketaclinic.outcomes.tasks import course_summaries_recompute_task

            public_id = str(job.public_id)
            transaction.on_commit(lambda: course_summaries_recompute_task.enqueue(public_id))
    return job


def summary_recompute_run(
    *,
    job: SummaryRecompute,
    on_progress: Callable[[int], None] | None = None,
    size: int | None = None,
) -> SummaryRecompute:
    """Run a queued recompute (a finished one is left as it is), writing its progress as it
    goes, outside the rewrite's transactions, so the page and the API see it move."""
    from ketaclinic.outcomes.summary import RANGE, recompute_course_summaries

    if job.ended:
        return job
    with scope(organization=job.organization):
        rows = SummaryRecompute.objects.filter(pk=job.pk)
        rows.update(status=SummaryRecompute.Status.RUNNING, started_at=clock.now(), progress=0)
        last = [0]

        def progress(done: int, total: int) -> None:
            percent = min(99, 100 * done // total) if total else 99  # 100 once written
            if percent != last[0]:
                last[0] = percent
                rows.update(progress=percent)
            if on_progress:
                on_progress(percent)

        try:
            written = recompute_course_summaries(
                job.organization, progress=progress, size=size or RANGE
            )
        except Exception as error:
            log.exception("course summary recompute %s failed", job.public_id)
            rows.update(
                status=SummaryRecompute.Status.FAILED,
                error=str(error)[:2000],
                finished_at=clock.now(),
            )
        else:
            with transaction.atomic():
                rows.update(
                    status=SummaryRecompute.Status.DONE,
                    progress=100,
                    rows=written,
                    finished_at=clock.now(),
                )
                audit_record(
                    actor=None,
                    organization=job.organization,
                    user=job.requested_by,
                    channel=job.channel,
                    action="outcomes.summaries.recomputed",
                    obj=job,
                    detail={"rows": written},
                )
        job.refresh_from_db()
    return job


def requester_actor(job: DataExport | ReportJob) -> Actor:
    """The person who asked for a job, as the worker acts for them: with the role they hold now
    (a job asked for before a role was taken away is refused when it runs)."""
    from ketaclinic.accounts.models import Membership

    membership = (
        Membership.objects.select_related("user", "organization")
        .filter(user=job.requested_by, organization=job.organization, is_active=True)
        .first()
    )
    if membership is None:
        raise PermissionError("the requester is no longer a member of the organization")
    return Actor(membership=membership, channel=job.channel, client_address="")


def report_request(
    *,
    actor: Actor,
    kind: str,
    patient_id: str | None = None,
    audience: str = "patient",
    filters: CohortFilters | None = None,
    run_in_background: bool = True,
) -> ReportJob:
    """Queue a PDF report: a patient's progress report (identified: the prescriber's
    capabilities, and the patient within the actor's reach) or the clinic's outcomes report of a
    cohort (aggregates: whoever may see the dashboard). Checked before anything is written."""
    from ketaclinic.patients.selectors import patient_get_for_actor

    patient = None
    if kind == ReportJob.Kind.PROGRESS:
        actor.require(Cap.OUTCOMES_REPORT)
        actor.require(Cap.CLINICAL_VIEW)
        if audience not in ReportJob.Audience.values:
            raise ValidationFailed.for_field(
                "audience", f"Who the report is for: one of {', '.join(ReportJob.Audience.values)}."
            )
        if not patient_id:
            raise ValidationFailed.for_field("patient", "Name the patient the report is about.")
        patient = patient_get_for_actor(actor, patient_id, capability=Cap.OUTCOMES_REPORT)
        described = ""
    elif kind == ReportJob.Kind.CLINIC:
        actor.require(Cap.OUTCOMES_ANALYZE)
        filters = filters or CohortFilters()
        audience = ""
        described = ", ".join(filters.described())
    else:
        raise ValidationFailed.for_field(
            "kind", f"The kind of report: one of {', '.join(ReportJob.Kind.values)}."
        )
    with transaction.atomic():
        job = ReportJob.objects.create(
            organization=actor.organization,
            kind=kind,
            requested_by=actor.user,
            requester_role=actor.role,
            channel=actor.channel,
            patient=patient,
            audience=audience,
            parameters=filters.model_dump(mode="json") if filters else {},
            cohort_described=described,
        )
        audit_record(
            actor=actor,
            action=f"outcomes.{kind}_report.requested",
            obj=job,
            patient_id=patient.public_id if patient else None,
            detail={"audience": audience} if patient else {"cohort": described},
        )
        if run_in_background:
            from ketaclinic.outcomes.tasks import report_task

            public_id = str(job.public_id)
            transaction.on_commit(lambda: report_task.enqueue(public_id))
    return job


def reports_root() -> Path:
    """Where every report keeps its PDF, one folder per report named by its public id."""
    return Path(settings.VAR_DIR) / "reports"


def report_directory(job: ReportJob) -> Path:
    return reports_root() / str(job.public_id)


def _draw_report(job: ReportJob, on_step: Callable[[str], None]) -> tuple[str, bytes, int]:
    """(file name, PDF, pages) of a report, drawn for its requester with today's rights."""
    from django.template.loader import render_to_string

    from ketaclinic.outcomes import clinic_report, selectors
    from ketaclinic.outcomes.report import pdf_pages, progress_report_for_actor, progress_report_pdf

    actor = requester_actor(job)
    on_step("gather")
    if job.kind == ReportJob.Kind.PROGRESS:
        assert job.patient is not None  # noqa: S101 - the table's check constraint says so
        report = progress_report_for_actor(
            actor,
            str(job.patient.public_id),
            audience="clinician" if job.audience == "clinician" else "patient",
            on_step=on_step,
        )
        pdf, pages = progress_report_pdf(report, on_step=on_step)
        return f"progress-report-{job.audience}.pdf", pdf, pages
    filters = CohortFilters(**job.parameters)
    cohort = selectors.cohort_report_for_actor(actor, filters=filters)
    on_step("charts")
    pictures = clinic_report.draw_charts(cohort)
    context = clinic_report.context(cohort, filters, pictures=pictures)
    context["organization"] = job.organization.name
    pdf, pages = pdf_pages(
        render_to_string("outcomes/dashboard_pdf.html", context), on_step=on_step
    )
    return "outcomes-report.pdf", pdf, pages


def report_run(
    *, job: ReportJob, on_progress: Callable[[int, str], None] | None = None
) -> ReportJob:
    """Draw a queued report (a finished one is left as it is). Each step is written as it starts,
    outside any transaction, so the page, the API and the terminal see it move."""
    from ketaclinic.outcomes.report import STEPS

    if job.ended:
        return job
    with scope(organization=job.organization):
        rows = ReportJob.objects.filter(pk=job.pk)
        rows.update(status=ReportJob.Status.RUNNING, started_at=clock.now(), progress=0)

        def on_step(step: str) -> None:
            words, percent = STEPS[step]
            rows.update(step=words, progress=percent)
            if on_progress:
                on_progress(percent, words)

        try:
            name, pdf, pages = _draw_report(job, on_step)
            directory = report_directory(job)
            directory.mkdir(parents=True, exist_ok=True)
            (directory / name).write_bytes(pdf)
        except Exception as error:
            log.exception("report %s failed", job.public_id)
            detail = error.detail if isinstance(error, DomainError) else str(error)
            rows.update(
                status=ReportJob.Status.FAILED, error=detail[:2000], finished_at=clock.now()
            )
        else:
            with transaction.atomic():
                rows.update(
                    status=ReportJob.Status.DONE,
                    progress=100,
                    step="",
                    file_name=name,
                    pages=pages,
                    bytes=len(pdf),
                    finished_at=clock.now(),
                )
                audit_record(
                    actor=None,
                    organization=job.organization,
                    user=job.requested_by,
                    channel=job.channel,
                    action=f"outcomes.{job.kind}_report.drawn",
                    obj=job,
                    patient_id=job.patient.public_id if job.patient else None,
                    detail={"pages": pages, "bytes": len(pdf)},
                )
            if on_progress:
                on_progress(100, "Done")
        job.refresh_from_db()
    return job


def report_download(*, actor: Actor, job: ReportJob) -> Path:
    """The finished report's file, with the audit event of handing it out. A patient's report
    is handed out only while that patient is still within the actor's reach (care team)."""
    from ketaclinic.core.errors import NotFound
    from ketaclinic.outcomes.export_files import files_deleted_message
    from ketaclinic.patients.access import assignment_check

    if job.status == ReportJob.Status.EXPIRED:
        raise NotFound(files_deleted_message("report"))
    if job.status != ReportJob.Status.DONE or not job.file_name:
        raise NotFound("The report is not ready.")
    if job.patient is not None:
        assignment_check(actor, job.patient)
    audit_record(
        actor=actor,
        action=f"outcomes.{job.kind}_report.downloaded",
        obj=job,
        patient_id=job.patient.public_id if job.patient else None,
        detail={"file": job.file_name},
    )
    return report_directory(job) / job.file_name
