"""JSON API for outcomes (mounted at /api/v1/): ad-hoc and cohort survival statistics.

Aggregates only: nothing here names a patient. Figures are those of `outcomes.stats`, computed as
R's survival package computes them by default (docs/sources/outcomes.md section 2).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from django.http import FileResponse
from django.urls import reverse
from ninja import Field, Query, Router, Schema, Status

from ketaclinic.accounts.actor import ActorRequest
from ketaclinic.accounts.roles import Cap
from ketaclinic.core.api import ERROR_RESPONSES
from ketaclinic.core.errors import FieldError, ValidationFailed
from ketaclinic.outcomes import selectors, services
from ketaclinic.outcomes.deid import DEFAULT_ZIP3_TABLE
from ketaclinic.outcomes.file_retention import files_deleted_at
from ketaclinic.outcomes.filters import CohortFilters
from ketaclinic.outcomes.models import DataExport, ReportJob, SummaryRecompute
from ketaclinic.outcomes.presenters import survival_payload
from ketaclinic.outcomes.stats import kaplan_meier, logrank

router = Router(tags=["outcomes"])
MAX_OBSERVATIONS = 200_000  # a researcher's own cohort, well above any one clinic network


class ObservationIn(Schema):
    time: float = Field(..., ge=0, allow_inf_nan=False, description="Follow-up time, any unit")
    event: bool = Field(..., description="true: the event (relapse) happened at `time`")


class SurvivalIn(Schema):
    groups: dict[str, list[ObservationIn]] = Field(
        ...,
        description="One list of observations per group name",
        examples=[{"ketamine-iv": [{"time": 30, "event": True}, {"time": 45, "event": False}]}],
    )


class CurvePointOut(Schema):
    time: float
    survival: float
    at_risk: int
    ci_lower: float | None
    ci_upper: float | None


class GroupOut(Schema):
    n: int
    events: int
    median: float | None
    median_ci_lower: float | None
    median_ci_upper: float | None
    quartiles: dict[str, float | None]
    curve: list[CurvePointOut]


class LogRankOut(Schema):
    chisq: float
    df: int
    p: float | None


class SurvivalOut(Schema):
    groups: dict[str, GroupOut]
    logrank: LogRankOut | None
    rule: str


class CohortGroupOut(GroupOut):
    times: list[float]
    event_flags: list[bool] = Field(..., description="Per observation: relapse (true) or censored")


class DurabilityOut(Schema):
    groups: dict[str, CohortGroupOut]
    logrank: LogRankOut | None
    rule: str
    time_unit: str
    group_by: str
    not_evaluable: int = Field(..., description="Responders whose relapse cannot be judged")
    by_maintenance: SurvivalOut = Field(
        ...,
        description="The same responders' durability by how often they were dosed after "
        "responding: weekly, every 2 weeks, less often, no dose after (median gap between doses)",
    )


def _validated_groups(payload: SurvivalIn) -> dict[str, tuple[list[float], list[bool]]]:
    errors = []
    if not payload.groups:
        errors.append(FieldError("groups", "Give at least one group of observations."))
    total = 0
    for name, observations in payload.groups.items():
        if not name.strip():
            errors.append(FieldError("groups", "A group name may not be blank."))
        if not observations:
            errors.append(FieldError(f"groups.{name}", "A group needs at least one observation."))
        total += len(observations)
    if total > MAX_OBSERVATIONS:
        errors.append(FieldError("groups", f"At most {MAX_OBSERVATIONS} observations in all."))
    if errors:
        raise ValidationFailed("The survival data are not valid.", errors)
    return {
        name: ([o.time for o in observations], [o.event for o in observations])
        for name, observations in payload.groups.items()
    }


@router.post(
    "/outcomes/survival", response={200: SurvivalOut, **ERROR_RESPONSES}, url_name="survival"
)
def survival(request: ActorRequest, payload: SurvivalIn) -> Any:
    """Kaplan-Meier per group (R survfit defaults) and, for two or more groups, the log-rank
    test (R survdiff). Times and events are yours: nothing is read from the clinic's records."""
    request.auth.require(Cap.OUTCOMES_ANALYZE)
    groups = _validated_groups(payload)
    fits = {name: kaplan_meier(times, events) for name, (times, events) in groups.items()}
    test = logrank(groups) if len(groups) >= 2 else None
    return survival_payload(fits, test)


@router.get(
    "/outcomes/durability",
    response={200: DurabilityOut, **ERROR_RESPONSES},
    url_name="durability",
)
def durability(request: ActorRequest, filters: Query[CohortFilters]) -> Any:
    """Time from first response to relapse in this clinic's cohort (censored at the last
    measure), one curve per route or protocol, with the log-rank test between them."""
    result = selectors.durability_for_actor(request.auth, filters=filters)
    body = survival_payload(result.fits, result.logrank)
    for name, group in body["groups"].items():
        times, events = result.observations[name]
        group["times"] = times
        group["event_flags"] = events
    body.update(
        time_unit="days",
        group_by=filters.group_by,
        not_evaluable=result.not_evaluable,
        by_maintenance=survival_payload(result.by_maintenance, result.maintenance_logrank),
    )
    return body


class ResearchExportIn(CohortFilters):
    zip3_table: str = Field(DEFAULT_ZIP3_TABLE, description="Versioned ZIP3 population table")


class ExportFileOut(Schema):
    name: str
    table: str
    format: str
    rows: int
    bytes: int
    url: str


class ResearchExportOut(Schema):
    id: str
    status: str
    progress: int
    cohort: str
    rule: str
    zip3_table: str
    patients: int
    requested_by: str
    requested_at: str
    finished_at: str | None
    files: list[ExportFileOut]
    files_deleted_at: str | None = Field(
        ...,
        description="When the files are (or were) deleted: GENERATED_FILES_KEEP_HOURS after"
        " the export finished; the status is then expired",
    )
    error: str


def _export_body(export: DataExport) -> dict[str, Any]:
    done = export.status == DataExport.Status.DONE
    return {
        "id": str(export.public_id),
        "status": export.status,
        "progress": export.progress,
        "cohort": export.cohort_described,
        "rule": export.rule_version,
        "zip3_table": export.zip3_table,
        "patients": export.patients,
        "requested_by": export.requested_by.username,
        "requested_at": export.created_at.isoformat(),
        "finished_at": export.finished_at.isoformat() if export.finished_at else None,
        "files": [
            {
                **f,
                "url": reverse("api:research-export-file", args=[export.public_id, f["name"]]),
            }
            for f in (export.files if done else [])
        ],
        "files_deleted_at": _iso(files_deleted_at(export)),
        "error": export.error,
    }


@router.post(
    "/research/exports",
    response={202: ResearchExportOut, **ERROR_RESPONSES},
    url_name="research-exports",
)
def research_export_create(request: ActorRequest, payload: ResearchExportIn) -> Any:
    """Queue a de-identified (HIPAA Safe Harbor) export of a cohort: 202 and the job; poll it."""
    data = payload.model_dump()
    zip3_table = data.pop("zip3_table")
    export = services.research_export_request(
        actor=request.auth, filters=CohortFilters(**data), zip3_table=zip3_table
    )
    export.refresh_from_db()
    return Status(202, _export_body(export))


@router.get(
    "/research/exports/{export_id}",
    response={200: ResearchExportOut, **ERROR_RESPONSES},
    url_name="research-export",
)
def research_export_status(request: ActorRequest, export_id: str) -> Any:
    """Status and progress; the file links once done."""
    export = selectors.export_get_for_actor(request.auth, export_id, kind=DataExport.Kind.RESEARCH)
    return _export_body(export)


@router.get(
    "/research/exports/{export_id}/files/{name}",
    response={200: None, **ERROR_RESPONSES},
    url_name="research-export-file",
)
def research_export_file(request: ActorRequest, export_id: str, name: str) -> Any:
    """One file of a finished export; each download is written to the audit trail."""
    from ketaclinic.outcomes.export_files import open_export_file

    export = selectors.export_get_for_actor(request.auth, export_id, kind=DataExport.Kind.RESEARCH)
    handle = open_export_file(
        request.auth, export, name, action="outcomes.research_export.downloaded"
    )
    content_type = "text/csv" if name.endswith(".csv") else "application/vnd.apache.parquet"
    return FileResponse(
        handle,
        as_attachment=True,
        filename=name,
        content_type=content_type,
    )


class RecomputeOut(Schema):
    id: str
    status: str = Field(..., description="queued, running, done or failed")
    progress: int = Field(..., description="Percent of the clinic's patients rewritten")
    rows: int = Field(..., description="Course summaries written (when done)")
    requested_by: str
    requested_at: str
    started_at: str | None
    finished_at: str | None
    error: str


def _recompute_body(job: SummaryRecompute) -> dict[str, Any]:
    return {
        "id": str(job.public_id),
        "status": job.status,
        "progress": job.progress,
        "rows": job.rows,
        "requested_by": job.requested_by.username,
        "requested_at": job.created_at.isoformat(),
        "started_at": job.started_at.isoformat() if job.started_at else None,
        "finished_at": job.finished_at.isoformat() if job.finished_at else None,
        "error": job.error,
    }


@router.post(
    "/outcomes/recomputes",
    response={202: RecomputeOut, **ERROR_RESPONSES},
    url_name="outcomes-recomputes",
)
def recompute_create(request: ActorRequest) -> Any:
    """Rewrite the clinic's course summaries in the background worker (after a bulk import or
    a change of the outcome rules): 202 and the job, whose status and progress you poll. While
    one is queued or running, that one is answered."""
    job = services.summary_recompute_request(actor=request.auth)
    job.refresh_from_db()
    return Status(202, _recompute_body(job))


@router.get(
    "/outcomes/recomputes/{job_id}",
    response={200: RecomputeOut, **ERROR_RESPONSES},
    url_name="outcomes-recompute",
)
def recompute_status(request: ActorRequest, job_id: str) -> Any:
    """A recompute's status and progress (percent of the clinic's patients rewritten)."""
    return _recompute_body(selectors.summary_recompute_get_for_actor(request.auth, job_id))


class ReportIn(Schema):
    kind: Literal["progress", "clinic"] = Field(
        ..., description="progress: a patient's progress report; clinic: the outcomes report"
    )
    patient: str | None = Field(None, description="progress: the patient's id")
    audience: Literal["patient", "clinician"] = Field(
        "patient", description="progress: for the patient or for a referring clinician"
    )
    cohort: CohortFilters | None = Field(
        None, description="clinic: the cohort (the dashboard's filters; default every patient)"
    )


class ReportOut(Schema):
    id: str
    kind: str
    status: str = Field(
        ..., description="queued, running, done, failed or expired (the PDF was deleted)"
    )
    progress: int = Field(..., description="Percent done")
    step: str = Field(..., description="The step running now, in words")
    patient: str | None = Field(..., description="progress: the patient's id")
    audience: str
    cohort: str
    requested_by: str
    requested_at: str
    started_at: str | None
    finished_at: str | None
    pages: int
    bytes: int
    pdf: str | None = Field(..., description="The PDF's link, once done")
    files_deleted_at: str | None = Field(
        ...,
        description="When the PDF is (or was) deleted: GENERATED_FILES_KEEP_HOURS after it"
        " was drawn",
    )
    error: str


def _report_body(job: ReportJob) -> dict[str, Any]:
    return {
        "id": str(job.public_id),
        "kind": job.kind,
        "status": job.status,
        "progress": job.progress,
        "step": job.step,
        "patient": str(job.patient.public_id) if job.patient else None,
        "audience": job.audience,
        "cohort": job.cohort_described,
        "requested_by": job.requested_by.username,
        "requested_at": job.created_at.isoformat(),
        "started_at": job.started_at.isoformat() if job.started_at else None,
        "finished_at": job.finished_at.isoformat() if job.finished_at else None,
        "pages": job.pages,
        "bytes": job.bytes,
        "pdf": reverse("api:outcomes-report-pdf", args=[job.public_id])
        if job.status == ReportJob.Status.DONE
        else None,
        "files_deleted_at": _iso(files_deleted_at(job)),
        "error": job.error,
    }


@router.post(
    "/outcomes/reports",
    response={202: ReportOut, **ERROR_RESPONSES},
    url_name="outcomes-reports",
)
def report_create(request: ActorRequest, payload: ReportIn) -> Any:
    """Draw a PDF report in the background worker: a patient's progress report (identified:
    outcomes.report and clinical.view) or the clinic outcomes report of a cohort (aggregates:
    outcomes.analyze). 202 and the job; poll it, then fetch `pdf`."""
    job = services.report_request(
        actor=request.auth,
        kind=payload.kind,
        patient_id=payload.patient,
        audience=payload.audience,
        filters=payload.cohort,
    )
    return Status(202, _report_body(selectors.report_get_for_actor(request.auth, job.public_id)))


@router.get(
    "/outcomes/reports/{report_id}",
    response={200: ReportOut, **ERROR_RESPONSES},
    url_name="outcomes-report",
)
def report_status(request: ActorRequest, report_id: str) -> Any:
    """A report's status, progress and step; its PDF link once done. Only who asked sees it."""
    return _report_body(selectors.report_get_for_actor(request.auth, report_id))


@router.get(
    "/outcomes/reports/{report_id}/pdf",
    response={200: None, **ERROR_RESPONSES},
    url_name="outcomes-report-pdf",
)
def report_pdf(request: ActorRequest, report_id: str) -> Any:
    """The finished report's PDF; each download is written to the audit trail."""
    job = selectors.report_get_for_actor(request.auth, report_id)
    path = services.report_download(actor=request.auth, job=job)
    return FileResponse(
        path.open("rb"), as_attachment=True, filename=path.name, content_type="application/pdf"
    )


class DisclosureOut(Schema):
    at: datetime = Field(..., description="When (UTC)")
    kind: str = Field(..., description="access, change, refused, break-glass, export or message")
    who: str
    role: str
    channel: str = Field(..., description="ui, api, fhir, cli, email, sms...")
    what: str
    outcome: str


class DisclosuresOut(Schema):
    patient: str
    truncated: bool
    items: list[DisclosureOut]


@router.get("/patients/{patient_id}/disclosures", response={200: DisclosuresOut, **ERROR_RESPONSES})
def patient_disclosures(request: ActorRequest, patient_id: str) -> Any:
    """Accounting of disclosures (compliance, audit.view): who saw, changed or received the
    patient's record and when: the audit trail, identified bulk exports, messages sent."""
    from ketaclinic.outcomes.disclosures import as_dict, disclosures_read

    accounting = disclosures_read(request.auth, patient_id, form="api")
    return {
        "patient": str(accounting.patient.public_id),
        "truncated": accounting.truncated,
        "items": [as_dict(row) for row in accounting.rows],
    }


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value else None
