"""FHIR Bulk Data `$export` (HL7 Bulk Data Access IG, the asynchronous request pattern).

Kick-off: `GET [base]/$export` (system level) or `[base]/Patient/$export` (every patient's
compartment) with `Prefer: respond-async`, optional `_type` (comma-separated) and `_since` (an
instant). The answer is 202 with `Content-Location`, the status URL. Polling it answers 202 with
`X-Progress` while the background worker writes one NDJSON file per type, then 200 with the
manifest (`transactionTime`, `request`, `requiresAccessToken`, `output`, `error`). Files and
status answer only the organization that asked (another one's is a 404, like any record), behind
the same bearer token. `DELETE` on the status URL cancels and removes the files. Groups do not
exist here, so `Group/[id]/$export` is a 404.

Each type is written by its registry handler's own search (the same mapping, permission and
filters as `<type>?patient=...`), a chunk of patients at a time: memory holds one chunk, never
the whole export. `_since` keeps resources whose version (`meta.versionId`: the last change) is
at or after the instant; a resource without a version is kept. The kick-off is audited, and so is
each file download; the job row is the disclosure log (`outcomes.models.DataExport`).
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import orjson
from django.conf import settings
from django.db import transaction
from django.http import FileResponse, HttpRequest, HttpResponse
from django.urls import reverse
from django.utils.dateparse import parse_datetime

from ketaclinic.accounts.actor import Actor, ActorRequest
from ketaclinic.accounts.audit import audit_record
from ketaclinic.accounts.models import Membership
from ketaclinic.accounts.roles import Cap
from ketaclinic.core import clock
from ketaclinic.core.errors import DomainError
from ketaclinic.fhir.common import version_id
from ketaclinic.fhir.everything import compartment_handlers
from ketaclinic.fhir.outcome import FhirError
from ketaclinic.fhir.registry import HANDLERS, Handler
from ketaclinic.fhir.search import SearchRequest
from ketaclinic.fhir.views import fhir_view, respond
from ketaclinic.outcomes import selectors as outcome_selectors
from ketaclinic.outcomes import services as outcome_services
from ketaclinic.outcomes.models import DataExport
from ketaclinic.patients.models import Patient

BULK_RULE = "fhir-bulk@1"
NDJSON = "application/fhir+ndjson"
OUTPUT_FORMATS = {NDJSON, "application/ndjson", "ndjson"}
PATIENTS_PER_CHUNK = 200
UNPAGED = sys.maxsize
RETRY_AFTER_SECONDS = "2"


def _types_for(level: str) -> list[str]:
    searchable = [
        name for name, h in HANDLERS.items() if "search-type" in h.interactions and h.patient_record
    ]
    if level == "patient":
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
                "types": resource_types,
                "since": since_at.isoformat() if since_at else None,
                "request": request_url,
            },
            cohort_described=f"{level}-level $export of {', '.join(resource_types)}"
            + (f" since {since_at.isoformat()}" if since_at else ""),
            rule_version=BULK_RULE,
        )
        audit_record(
            actor=actor,
            action="fhir.bulk_export.requested",
            obj=export,
            detail={"level": level, "types": resource_types, "since": since or None},
        )
        if run_in_background:
            outcome_services._enqueue_on_commit(export)
    return export


def export_directory(export: DataExport) -> Path:
    return Path(settings.VAR_DIR) / "exports" / str(export.public_id)


def _actor_of(export: DataExport) -> Actor:
    membership = (
        Membership.objects.select_related("user", "organization")
        .filter(user=export.requested_by, organization=export.organization, is_active=True)
        .first()
    )
    if membership is None:
        raise PermissionError("the requester is no longer a member of the organization")
    return Actor(membership=membership, channel=export.channel, client_address="")


def _patient_chunks() -> Iterator[list[str]]:
    """Patients' public ids, a chunk at a time by key (keyset paging: one small query per chunk,
    nothing held between chunks)."""
    last = 0
    while True:
        rows = list(
            Patient.objects.filter(pk__gt=last)
            .order_by("pk")
            .values_list("pk", "public_id")[:PATIENTS_PER_CHUNK]
        )
        if not rows:
            return
        last = rows[-1][0]
        yield [str(public_id) for _, public_id in rows]


def _resources(actor: Actor, handler: Handler) -> Iterator[dict[str, Any]]:
    """Every resource of the type, a chunk of patients at a time (flat memory)."""
    if handler.type == "Patient":
        for chunk in _patient_chunks():
            yield from handler.search(
                actor, SearchRequest(params={"_id": [chunk]}, count=UNPAGED)
            ).resources
    elif "patient" in handler.search_params:
        for chunk in _patient_chunks():
            yield from handler.search(
                actor, SearchRequest(params={"patient": [chunk]}, count=UNPAGED)
            ).resources
    else:  # definitions (Questionnaire): few, not in any patient's compartment
        yield from handler.search(actor, SearchRequest(count=UNPAGED)).resources


def build_bulk_export(
    export: DataExport, *, progress: Callable[[int], None]
) -> tuple[int, list[dict[str, Any]]]:
    actor = _actor_of(export)
    actor.require(Cap.BULK_EXPORT)
    types: list[str] = export.parameters["types"]
    since = export.parameters.get("since")
    since_version = version_id(datetime.fromisoformat(since)) if since else None
    directory = export_directory(export)
    directory.mkdir(parents=True, exist_ok=True)
    files = []
    for index, resource_type in enumerate(types):
        path = directory / f"{resource_type}.ndjson"
        count = 0
        with path.open("wb") as handle:
            for resource in _resources(actor, HANDLERS[resource_type]):
                version = resource.get("meta", {}).get("versionId")
                if since_version and version and int(version) < int(since_version):
                    continue
                handle.write(orjson.dumps(resource))
                handle.write(b"\n")
                count += 1
        files.append(
            {"name": path.name, "type": resource_type, "rows": count, "bytes": path.stat().st_size}
        )
        progress(round(100 * (index + 1) / len(types)))
    patients = Patient.objects.count()
    return patients, files


# --- HTTP ---------------------------------------------------------------------------------------


def _kick_off(request: ActorRequest, level: str) -> HttpResponse:
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
def group_export(request: HttpRequest, group_id: str) -> HttpResponse:
    raise FhirError(404, "This server has no Group resources; use Patient/$export or $export.")


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
    if export.status != DataExport.Status.DONE or name not in {f["name"] for f in export.files}:
        raise FhirError(404, "No such file in this export.")
    audit_record(
        actor=request.actor,
        action="fhir.bulk_export.downloaded",
        obj=export,
        detail={"file": name},
    )
    return FileResponse((export_directory(export) / name).open("rb"), content_type=NDJSON)
