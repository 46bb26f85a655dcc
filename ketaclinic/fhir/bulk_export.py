"""FHIR Bulk Data `$export` (HL7 Bulk Data Access IG, the asynchronous request pattern).

Kick-off: `GET [base]/$export` (system level) or `[base]/Patient/$export` (every patient's
compartment) with `Prefer: respond-async`, optional `_type` (comma-separated) and `_since` (an
instant). The answer is 202 with `Content-Location`, the status URL. Polling it answers 202 with
`X-Progress` while the background worker writes one NDJSON file per type, then 200 with the
manifest (`transactionTime`, `request`, `requiresAccessToken`, `output`, `error`). Files and
status answer only the organization that asked (another one's is a 404, like any record), behind
the same bearer token. `DELETE` on the status URL cancels and removes the files.
`Group/[id]/$export` exports the records of a Group's members (a saved outcomes cohort,
fhir/group.py), with the types of the patient level; its members are resolved when the job
runs.

The job walks the clinic's patients by key, PATIENTS_PER_CHUNK at a time, and appends each
chunk's resources of every requested type to that type's file (`fhir/bulk_sources.py`: plain
rows, a fixed number of queries per chunk, the types' own mappers), so memory holds one chunk
whatever the clinic's size and progress moves with the patients done. Every line is what a read
or search of that resource returns (kept JSON laid over, received resources included).
`_since` keeps resources whose version (`meta.versionId`: the last change) is at or after the
instant; a resource without a version is kept. The kick-off is audited, and so is each file
download; the job row is the disclosure log (`outcomes.models.DataExport`).
"""

from __future__ import annotations

import gc
import sys
from collections.abc import Callable, Iterable, Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from django.db import transaction
from django.db.models import Q
from django.http import FileResponse, HttpResponse
from django.urls import reverse
from django.utils.dateparse import parse_datetime

from ketaclinic.accounts.actor import Actor, ActorRequest
from ketaclinic.accounts.audit import audit_record
from ketaclinic.accounts.roles import Cap
from ketaclinic.core import clock
from ketaclinic.core.errors import DomainError, NotFound
from ketaclinic.fhir import bulk_sources, received
from ketaclinic.fhir.common import built_json, version_id
from ketaclinic.fhir.everything import compartment_handlers
from ketaclinic.fhir.outcome import FhirError
from ketaclinic.fhir.received_handlers import GenericHandler, MixedHandler
from ketaclinic.fhir.registry import HANDLERS, Handler
from ketaclinic.fhir.search import SearchRequest
from ketaclinic.fhir.views import fhir_view, respond
from ketaclinic.outcomes import groups
from ketaclinic.outcomes import selectors as outcome_selectors
from ketaclinic.outcomes import services as outcome_services
from ketaclinic.outcomes.export_files import (
    export_directory,
    files_deleted_message,
    open_export_file,
)
from ketaclinic.outcomes.models import DataExport, PatientGroup
from ketaclinic.patients.models import Patient

BULK_RULE = "fhir-bulk@1"
NDJSON = "application/fhir+ndjson"
OUTPUT_FORMATS = {NDJSON, "application/ndjson", "ndjson"}
PATIENTS_PER_CHUNK = 500
UNPAGED = sys.maxsize
RETRY_AFTER_SECONDS = "2"


def _types_for(level: str) -> list[str]:
    searchable = [
        name for name, h in HANDLERS.items() if "search-type" in h.interactions and h.patient_record
    ]
    if level in ("patient", "group"):
        return ["Patient", *(h.type for h in compartment_handlers())]
    return searchable


def _parse_types(level: str, raw: str) -> list[str]:
    allowed = _types_for(level)
    if not raw.strip():
        return allowed
    asked = [t.strip() for t in raw.split(",") if t.strip()]
    unknown = [t for t in asked if t not in allowed]
    if unknown:
        raise FhirError(
            400,
            f"_type: {', '.join(unknown)} cannot be exported at this level; "
            f"known: {', '.join(allowed)}.",
            expressions=[("_type", "")],
        )
    return list(dict.fromkeys(asked))


def _parse_since(raw: str) -> datetime | None:
    if not raw:
        return None
    moment = parse_datetime(raw.replace(" ", "+"))
    if moment is None or moment.tzinfo is None:
        raise FhirError(
            400, "_since must be an instant with a time zone, e.g. 2026-01-01T00:00:00Z."
        )
    return moment


def bulk_export_request(
    *,
    actor: Actor,
    level: str,
    types: str = "",
    since: str = "",
    request_url: str = "",
    run_in_background: bool = True,
    group: PatientGroup | None = None,
) -> DataExport:
    """Check the request and the actor's right to read every type, then queue the job."""
    actor.require(Cap.BULK_EXPORT)
    resource_types = _parse_types(level, types)
    since_at = _parse_since(since)
    for resource_type in resource_types:
        # A zero-row search asks the handler itself whether this actor may read the type, so
        # an export never leaves part of the record out unsaid.
        HANDLERS[resource_type].search(actor, SearchRequest(count=0))
    with transaction.atomic():
        export = DataExport.objects.create(
            organization=actor.organization,
            kind=DataExport.Kind.FHIR_BULK,
            requested_by=actor.user,
            requester_role=actor.role,
            channel=actor.channel,
            parameters={
                "level": level,
                "group": str(group.public_id) if group else None,
                "types": resource_types,
                "since": since_at.isoformat() if since_at else None,
                "request": request_url,
            },
            cohort_described=(f"Group {group.name!r}: " if group else "")
            + f"{level}-level $export of {', '.join(resource_types)}"
            + (f" since {since_at.isoformat()}" if since_at else ""),
            rule_version=BULK_RULE,
        )
        audit_record(
            actor=actor,
            action="fhir.bulk_export.requested",
            obj=export,
            detail={
                "level": level,
                "types": resource_types,
                "since": since or None,
                "group": str(group.public_id) if group else None,
            },
        )
        if run_in_background:
            outcome_services._enqueue_on_commit(export)
    return export


def _range_chunks(export: bulk_sources.Export) -> Iterator[bulk_sources.Chunk]:
    """The clinic's patients by key, PATIENTS_PER_CHUNK at a time (keyset paging: one query per
    chunk reads them, nothing is held between chunks)."""
    last = 0
    while True:
        rows = list(
            bulk_sources.LEAN_PATIENT.rows(
                Patient.objects.filter(pk__gt=last).order_by("pk"), limit=PATIENTS_PER_CHUNK
            )
        )
        if not rows:
            return
        low, last = last, rows[-1].id

        def where(path: str, low: int = low, high: int = last) -> Q:
            return Q(**{f"{path}__gt": low, f"{path}__lte": high})

        yield bulk_sources.Chunk(export, rows, where)


def _member_chunks(export: bulk_sources.Export, keys: list[int]) -> Iterator[bulk_sources.Chunk]:
    """A Group's members, PATIENTS_PER_CHUNK at a time by key."""
    for start in range(0, len(keys), PATIENTS_PER_CHUNK):
        part = keys[start : start + PATIENTS_PER_CHUNK]

        def where(path: str, part: list[int] = part) -> Q:
            return Q(**{f"{path}__in": part})

        rows = list(bulk_sources.LEAN_PATIENT.rows(Patient.objects.filter(pk__in=part)))
        yield bulk_sources.Chunk(export, rows, where)


def _fallback(handler: Handler) -> Callable[[bulk_sources.Chunk], Iterator[dict[str, Any]]]:
    """A type with no source of its own: its handler's search by the chunk's patient ids."""

    def source(chunk: bulk_sources.Chunk) -> Iterator[dict[str, Any]]:
        search = SearchRequest(params={"patient": [chunk.public_ids]}, count=UNPAGED)
        yield from handler.search(chunk.export.actor, search).resources

    return source


def sources_for(resource_type: str) -> list[Callable[[bulk_sources.Chunk], Iterator[Any]]]:
    handler = HANDLERS[resource_type]
    if resource_type in bulk_sources.SOURCES:
        found = list(bulk_sources.SOURCES[resource_type])
    elif isinstance(handler, GenericHandler) and not isinstance(handler, MixedHandler):
        found = []
    else:
        found = [_fallback(handler)]
    spec = received.GENERIC.get(resource_type)
    if isinstance(handler, GenericHandler) and spec is not None and spec.patient:
        found.append(bulk_sources.generic_source(resource_type))  # kept as received
    return found


def _group_members(export: DataExport) -> list[int] | None:
    """The keys of a Group export's patients (None: every patient of the clinic)."""
    if export.parameters.get("level") != "group":
        return None
    group = PatientGroup.objects.get(public_id=export.parameters["group"])
    return groups.group_member_keys(group)


def _chunk_resources(
    chunk: bulk_sources.Chunk, resource_type: str, sources: list[Any]
) -> Iterator[dict[str, Any]]:
    for source in sources:
        resources = source(chunk)
        if resource_type in received.KEEP_BESIDE:
            resources = bulk_sources.overlay(chunk, resource_type, resources)
        yield from resources


class _Output:
    """One NDJSON file per type, written as the chunks come."""

    def __init__(self, directory: Path, types: list[str], since: str | None) -> None:
        self.paths = {t: directory / f"{t}.ndjson" for t in types}
        self.handles = {t: path.open("wb", buffering=1 << 20) for t, path in self.paths.items()}
        self.counts = dict.fromkeys(types, 0)
        self.since = int(since) if since else None

    def write(self, resource_type: str, resources: Iterable[dict[str, Any]]) -> None:
        handle, since, count = self.handles[resource_type], self.since, 0
        for resource in resources:
            if since is not None:
                version = resource.get("meta", {}).get("versionId")
                if version and int(version) < since:
                    continue
            handle.write(built_json(resource))  # serialized once (fhir.common.emit_as_built)
            handle.write(b"\n")
            count += 1
        self.counts[resource_type] += count

    def close(self) -> list[dict[str, Any]]:
        for handle in self.handles.values():
            handle.close()
        return [
            {"name": path.name, "type": t, "rows": self.counts[t], "bytes": path.stat().st_size}
            for t, path in self.paths.items()
        ]


def build_bulk_export(
    export: DataExport, *, progress: Callable[[int], None]
) -> tuple[int, list[dict[str, Any]]]:
    """Write the export chunk by chunk: each chunk of patients is read once per type and its
    lines appended to every type's file, so memory holds one chunk whatever the clinic's size,
    and progress moves with the patients done."""
    actor = outcome_services.requester_actor(export)
    actor.require(Cap.BULK_EXPORT)
    types: list[str] = export.parameters["types"]
    since = export.parameters.get("since")
    directory = export_directory(export)
    directory.mkdir(parents=True, exist_ok=True)
    output = _Output(directory, types, version_id(datetime.fromisoformat(since)) if since else None)
    shared = bulk_sources.Export.start(actor)
    keys = _group_members(export)
    total = len(keys) if keys is not None else Patient.objects.count()
    chunks = _member_chunks(shared, keys) if keys is not None else _range_chunks(shared)
    per_patient = [t for t in types if t != "Questionnaire"]
    sources = {t: sources_for(t) for t in per_patient}
    done = 0
    # The objects alive before the export (Django's, the app's: hundreds of thousands) are set
    # aside from the cyclic garbage collector while it runs, so its full collections scan only
    # what the export allocates; given back to it at the end (4-8% of the export's CPU at
    # 10,000 patients). The export's own rows form no cycles: memory stays flat either way.
    gc.freeze()
    try:
        for chunk in chunks:
            for resource_type in per_patient:
                output.write(
                    resource_type, _chunk_resources(chunk, resource_type, sources[resource_type])
                )
            done += len(chunk.patient_rows)
            progress(min(99, 100 * done // max(total, 1)))
        if "Questionnaire" in types:  # definitions: in no patient's compartment
            definitions = HANDLERS["Questionnaire"].search(actor, SearchRequest(count=UNPAGED))
            output.write("Questionnaire", definitions.resources)
    finally:
        gc.unfreeze()
        files = output.close()
    progress(100)
    return done, files


# --- HTTP ---------------------------------------------------------------------------------------


def _kick_off(request: ActorRequest, level: str, group: PatientGroup | None = None) -> HttpResponse:
    if request.method != "GET":
        raise FhirError(405, "Start an export with GET.")
    if "respond-async" not in request.headers.get("Prefer", ""):
        raise FhirError(400, "Bulk export is asynchronous: send the header Prefer: respond-async.")
    output_format = request.GET.get("_outputFormat", NDJSON)
    if output_format not in OUTPUT_FORMATS:
        raise FhirError(400, f"_outputFormat {output_format!r} is not supported; use {NDJSON}.")
    unknown = set(request.GET) - {"_type", "_since", "_outputFormat"}
    if unknown:
        raise FhirError(400, f"Unsupported parameter(s): {', '.join(sorted(unknown))}.")
    export = bulk_export_request(
        actor=request.actor,
        level=level,
        types=request.GET.get("_type", ""),
        since=request.GET.get("_since", ""),
        request_url=request.build_absolute_uri(),
        group=group,
    )
    status_url = request.build_absolute_uri(reverse("fhir:bulk-status", args=[export.public_id]))
    return respond(None, 202, Content_Location=status_url)


@fhir_view()
def system_export(request: ActorRequest) -> HttpResponse:
    return _kick_off(request, "system")


@fhir_view()
def patient_export(request: ActorRequest) -> HttpResponse:
    return _kick_off(request, "patient")


@fhir_view()
def group_export(request: ActorRequest, group_id: str) -> HttpResponse:
    """The records of a Group's members (a saved outcomes cohort, fhir/group.py)."""
    try:
        group = groups.group_get(request.actor, group_id)
    except DomainError as error:
        if error.status == 404:
            raise FhirError(404, f"No Group {group_id!r}.") from None
        raise
    return _kick_off(request, "group", group)


def _export_for(request: ActorRequest, export_id: str) -> DataExport:
    try:
        return outcome_selectors.export_get_for_actor(
            request.actor,
            export_id,
            kind=DataExport.Kind.FHIR_BULK,
        )
    except DomainError as error:
        if error.status == 404:
            raise FhirError(404, "No such export job.") from None
        raise


@fhir_view()
def export_status(request: ActorRequest, export_id: str) -> HttpResponse:
    export = _export_for(request, export_id)
    if request.method == "DELETE":
        for path in export_directory(export).glob("*.ndjson"):
            path.unlink()
        DataExport.objects.filter(pk=export.pk).update(
            status=DataExport.Status.FAILED, error="cancelled by the client", files=[]
        )
        audit_record(actor=request.actor, action="fhir.bulk_export.cancelled", obj=export)
        return respond(None, 202)
    if request.method != "GET":
        raise FhirError(405, "Poll with GET or cancel with DELETE.")
    if export.status in (DataExport.Status.QUEUED, DataExport.Status.RUNNING):
        return respond(
            None, 202, X_Progress=f"{export.progress}% done", Retry_After=RETRY_AFTER_SECONDS
        )
    if export.status == DataExport.Status.FAILED:
        raise FhirError(500, f"The export failed: {export.error or 'unknown error'}.")
    if export.status == DataExport.Status.EXPIRED:
        raise FhirError(404, files_deleted_message("export"))
    return respond(
        {
            "transactionTime": (export.started_at or export.created_at).isoformat(),
            "request": export.parameters.get("request", ""),
            "requiresAccessToken": True,
            "output": [
                {
                    "type": f["type"],
                    "url": request.build_absolute_uri(
                        reverse("fhir:bulk-file", args=[export.public_id, f["name"]])
                    ),
                    "count": f["rows"],
                }
                for f in export.files
            ],
            "error": [],
        },
        200,
        Expires=(clock.now() + timedelta(days=7)).strftime("%a, %d %b %Y %H:%M:%S GMT"),
    )


@fhir_view()
def export_file(request: ActorRequest, export_id: str, name: str) -> FileResponse:
    export = _export_for(request, export_id)
    try:
        handle = open_export_file(request.actor, export, name, action="fhir.bulk_export.downloaded")
    except NotFound as missing:
        raise FhirError(404, missing.detail) from None
    return FileResponse(handle, content_type=NDJSON)
