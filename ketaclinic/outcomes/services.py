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
from ketaclinic.outcomes.models import DataExport

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
