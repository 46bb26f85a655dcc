"""Generated files do not outlive their use: report PDFs and export files are deleted
GENERATED_FILES_KEEP_HOURS after they were made (docs/sources/security.md, "Generated files").

A progress report or a FHIR bulk export is identified health information sitting on disk outside
the database, its encryption at rest and its backups. It is made to be downloaded, usually within
minutes; kept for ever, every past report and export would be one more copy to lose. So the
worker, every hour:

- marks each finished export and report older than the keep period `expired` and deletes its
  directory; the row stays (who asked, when, for whom, which files with how many rows: the
  accounting of disclosures needs it), and one audit event per organization lists what went;
- deletes the directories no live job owns: a failed or cancelled job's partial files, and
  whatever a crash left between the database and the disk.

A download after that answers "deleted": the requester asks for a new one.
"""

from __future__ import annotations

import logging
import shutil
import uuid
from collections.abc import Callable
from datetime import datetime, timedelta
from pathlib import Path

from django.conf import settings
from django.db import transaction
from django_scopes import scopes_disabled

from ketaclinic.accounts.audit import audit_record
from ketaclinic.accounts.models import Organization
from ketaclinic.core import clock
from ketaclinic.outcomes.export_files import exports_root
from ketaclinic.outcomes.models import DataExport, JobStatus, ReportJob
from ketaclinic.outcomes.services import reports_root

log = logging.getLogger(__name__)

# Each kind of job with files, and the folder holding one directory per job of that kind.
_KINDS: tuple[tuple[type[DataExport] | type[ReportJob], Callable[[], Path]], ...] = (
    (DataExport, exports_root),
    (ReportJob, reports_root),
)
# A directory is kept while its job may still write to it or hand it out.
_LIVE = (JobStatus.QUEUED, JobStatus.RUNNING, JobStatus.DONE)


def keep_period() -> timedelta:
    return timedelta(hours=settings.GENERATED_FILES_KEEP_HOURS)


def files_deleted_at(job: DataExport | ReportJob) -> datetime | None:
    """When a finished job's files will be (or were) deleted; None while it has none to keep."""
    if job.status not in (JobStatus.DONE, JobStatus.EXPIRED) or job.finished_at is None:
        return None
    return job.finished_at + keep_period()


def generated_files_expire(*, now: datetime | None = None) -> int:
    """Expire what is past the keep period and sweep what no live job owns; returns how many
    job directories were deleted. Idempotent: every worker of a network may run it."""
    cutoff = (now or clock.now()) - keep_period()
    deleted = 0
    with scopes_disabled():
        for model, root in _KINDS:
            deleted += _expire(model, root(), cutoff)
            deleted += _sweep(model, root(), cutoff)
    return deleted


def _expire(model: type[DataExport] | type[ReportJob], root: Path, cutoff: datetime) -> int:
    due = list(
        model.objects.filter(status=JobStatus.DONE, finished_at__lt=cutoff).values_list(
            "pk", "public_id", "organization_id"
        )
    )
    if not due:
        return 0
    by_organization: dict[int, list[str]] = {}
    for _, public_id, organization_id in due:
        by_organization.setdefault(organization_id, []).append(str(public_id))
    organizations = Organization.objects.in_bulk(list(by_organization))
    with transaction.atomic():
        # status=DONE again: a second worker that got here first has already recorded these.
        expired = model.objects.filter(
            pk__in=[pk for pk, _, _ in due], status=JobStatus.DONE
        ).update(status=JobStatus.EXPIRED)
        if expired:
            for organization_id, public_ids in by_organization.items():
                audit_record(
                    actor=None,
                    organization=organizations[organization_id],
                    channel="task",
                    action="outcomes.generated_files.deleted",
                    detail={
                        "kind": model._meta.model_name,
                        "jobs": sorted(public_ids),
                        "keep_hours": settings.GENERATED_FILES_KEEP_HOURS,
                    },
                )
    # The files go once the rows say so: a crash in between leaves files no live job owns,
    # which the sweep deletes, never a "done" job without its files.
    return sum(_remove(root / str(public_id)) for _, public_id, _ in due)


def _sweep(model: type[DataExport] | type[ReportJob], root: Path, cutoff: datetime) -> int:
    """Delete the directories of jobs that ended without files to keep (failed, cancelled,
    expired), and, once older than the keep period, those of no job in this database (a
    crash's leftovers; younger ones may belong to another installation sharing the folder)."""
    if not root.is_dir():
        return 0
    on_disk: dict[uuid.UUID, Path] = {}
    for path in root.iterdir():
        try:
            on_disk[uuid.UUID(path.name)] = path
        except ValueError:
            continue  # not a job's directory: not ours to delete
    if not on_disk:
        return 0
    statuses = dict(
        model.objects.filter(public_id__in=list(on_disk)).values_list("public_id", "status")
    )
    oldest = cutoff.timestamp()
    return sum(
        _remove(path)
        for key, path in on_disk.items()
        if (statuses[key] not in _LIVE if key in statuses else _modified(path) < oldest)
    )


def _modified(path: Path) -> float:
    try:
        return path.stat().st_mtime
    except OSError:
        return float("inf")  # gone already


def _remove(path: Path) -> int:
    if not path.exists():
        return 0
    shutil.rmtree(path, ignore_errors=True)
    if path.exists():
        log.warning("could not delete the generated files in %s", path)
        return 0
    return 1
