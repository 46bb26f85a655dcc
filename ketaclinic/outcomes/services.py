"""Writes for outcomes: data exports (research and FHIR bulk), each one a logged disclosure.

A request is one transaction (the job row, its audit event) and the work runs after commit in
the background worker; `data_export_run` is also what the CLI calls to run a job in the terminal.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from django.db import transaction
from django_scopes import scope

from ketaclinic.accounts.actor import Actor
from ketaclinic.accounts.audit import audit_record
from ketaclinic.accounts.roles import Cap
from ketaclinic.core import clock
from ketaclinic.core.errors import ValidationFailed
from ketaclinic.outcomes.deid import DEFAULT_ZIP3_TABLE, SAFE_HARBOR_RULE, ZIP3_TABLES
from ketaclinic.outcomes.filters import CohortFilters
from ketaclinic.outcomes.models import DataExport, SummaryRecompute

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
    if export.status in (DataExport.Status.DONE, DataExport.Status.FAILED):
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

    if job.status in (SummaryRecompute.Status.DONE, SummaryRecompute.Status.FAILED):
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
