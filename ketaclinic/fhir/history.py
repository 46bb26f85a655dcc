"""Versions and sync: every write through /fhir/r4/ keeps the version it served, so clients can
vread it, page through `_history` (instance, type and system level, newest first, `_since`), and
learn that a deleted resource is gone (410) while the chart keeps its entered-in-error row.

Writes made outside FHIR (the clinic's screens) change the clinical row without a stored version:
the instance history then ends with the row's current version as the server reads it now.
"""

from __future__ import annotations

import base64
import uuid
from datetime import UTC, datetime
from email.utils import format_datetime
from typing import Any

import orjson
from django.db.models import Q

from ketaclinic.accounts.actor import Actor
from ketaclinic.accounts.audit import audit_record
from ketaclinic.accounts.roles import Cap
from ketaclinic.core import bulk, clock, rows
from ketaclinic.core.errors import NotFound
from ketaclinic.fhir.common import instant, version_id
from ketaclinic.fhir.history_models import ResourceVersion
from ketaclinic.fhir.outcome import FhirError
from ketaclinic.fhir.search import DEFAULT_COUNT, MAX_COUNT, date_range

Method = ResourceVersion.Method
HISTORY_PARAMS = ("_count", "_since", "_at", "_cursor", "_format")


# --- recording ------------------------------------------------------------------------------------


def written(actor: Actor, handler: Any, obj: Any, raw: Any, method: str) -> dict[str, Any]:
    """What a create or update through `handler` serves, kept: the received JSON beside the
    row it wrote and the version (call inside the write's transaction)."""
    fresh = method == Method.CREATE and handler.fresh(obj)
    data = handler.keep_received(actor, obj, handler.to_fhir(obj), raw, fresh=fresh)
    record(actor, data, method, fresh=fresh)
    return data


def record(actor: Actor, data: dict[str, Any], method: str, *, fresh: bool = False) -> None:
    """Keep the version a create or update served (call inside the write's transaction).
    `fresh`: the resource was just created under a new id (no version of it exists yet).

    One INSERT from plain values (core.bulk: no model instance, the JSON written by orjson):
    building the row as a model and its JSON with the standard library was a tenth of a FHIR
    create's CPU (issue 13)."""
    meta = data.get("meta") or {}
    vid = meta.get("versionId")
    if not vid:
        return
    latest = None if fresh else _latest(data["resourceType"], data["id"])
    if latest is not None and latest.version_id == vid:
        return  # an update that changed nothing keeps its version
    updated = meta.get("lastUpdated")
    row = {
        "organization_id": actor.organization.pk,
        "resource_type": data["resourceType"],
        "resource_id": data["id"],
        "resource_uuid": _as_uuid(data["id"]),
        "version_id": vid,
        "method": method,
        "recorded_at": datetime.fromisoformat(updated) if updated else clock.now(),
        "resource": data,
    }
    bulk.insert_one(ResourceVersion, row)


def record_delete(actor: Actor, resource_type: str, resource_id: str) -> ResourceVersion:
    now = clock.now()
    latest = _latest(resource_type, resource_id)
    vid = version_id(now)
    if latest is not None and int(latest.version_id) >= int(vid):
        vid = str(int(latest.version_id) + 1)
    return ResourceVersion.objects.create(
        organization=actor.organization,
        resource_type=resource_type,
        resource_id=resource_id,
        resource_uuid=_as_uuid(resource_id),
        version_id=vid,
        method=Method.DELETE,
        recorded_at=now,
        resource=None,
    )


def _latest(resource_type: str, resource_id: str) -> ResourceVersion | None:
    # Every write asks this: the query is built once (core.rows), not compiled per request.
    return rows.one(
        ResourceVersion, newest_by="id", resource_type=resource_type, resource_id=resource_id
    )


# --- deleted resources ----------------------------------------------------------------------------


def is_deleted(resource_type: str, resource_id: str) -> bool:
    latest = _latest(resource_type, resource_id)
    return latest is not None and latest.method == Method.DELETE


def gone(resource_type: str, resource_id: str) -> FhirError:
    return FhirError(410, f"{resource_type}/{resource_id} was deleted.")


def not_deleted_q(resource_type: str, field_name: str = "public_id") -> Q:
    """Rows of this type a FHIR client has not deleted (a subquery: no extra round trip)."""
    deleted = ResourceVersion.objects.filter(
        resource_type=resource_type, method=Method.DELETE, resource_uuid__isnull=False
    ).values("resource_uuid")
    return ~Q(**{f"{field_name}__in": deleted})


def _as_uuid(raw: str) -> uuid.UUID | None:
    try:
        return uuid.UUID(raw)
    except ValueError:
        return None


# --- reading ----------------------------------------------------------------------------------


def vread(
    actor: Actor, handler: Any, resource_id: str, vid: str
) -> tuple[dict[str, Any], ResourceVersion | None]:
    """One version, unchanged: the stored one, or the current one when it is that version."""
    stored = ResourceVersion.objects.filter(
        resource_type=handler.type, resource_id=resource_id, version_id=vid
    ).first()
    if stored is not None:
        actor.require(Cap.CLINICAL_VIEW)
        if stored.method == Method.DELETE:
            raise FhirError(410, f"{handler.type}/{resource_id} version {vid} is a deletion.")
        _audit(actor, "fhir.history.vread", handler.type, resource_id, stored.resource)
        return dict(stored.resource or {}), stored
    if is_deleted(handler.type, resource_id):
        raise FhirError(404, f"{handler.type}/{resource_id} has no version {vid}.")
    current = handler.read(actor, resource_id)
    if (current.get("meta") or {}).get("versionId") != vid:
        raise FhirError(404, f"{handler.type}/{resource_id} has no version {vid}.")
    return current, None


def _audit(actor: Actor, action: str, resource_type: str, resource_id: str, data: Any) -> None:
    patient = _patient_of(resource_type, resource_id, data)
    audit_record(
        actor=actor,
        action=action,
        patient_id=patient,
        detail={"resource": f"{resource_type}/{resource_id}"},
    )


def _patient_of(resource_type: str, resource_id: str, data: Any) -> uuid.UUID | None:
    raw = None
    if resource_type == "Patient":
        raw = resource_id
    elif isinstance(data, dict):
        for key in ("subject", "patient"):
            ref = (data.get(key) or {}).get("reference", "")
            if ref.startswith("Patient/"):
                raw = ref.split("/", 1)[1]
    try:
        return uuid.UUID(raw) if raw else None
    except ValueError:
        return None


def _since(raw: str | None) -> datetime | None:
    if not raw:
        return None
    start, _ = date_range(raw)
    return start


def _count(raw: str | None) -> int:
    if raw in (None, ""):
        return DEFAULT_COUNT
    try:
        value = int(raw)
    except ValueError:
        raise FhirError(400, "_count must be an integer.") from None
    if not 0 <= value <= MAX_COUNT:
        raise FhirError(400, f"_count must be between 0 and {MAX_COUNT}.")
    return value


def _cursor(raw: str | None) -> int | None:
    if not raw:
        return None
    try:
        return int(orjson.loads(base64.urlsafe_b64decode(raw.encode() + b"==")))
    except (ValueError, TypeError, orjson.JSONDecodeError):
        raise FhirError(400, "_cursor is not one this server sent.") from None


def _encode_cursor(row_id: int) -> str:
    return base64.urlsafe_b64encode(orjson.dumps(row_id)).decode().rstrip("=")


def history_bundle(
    actor: Actor,
    base_url: str,
    query: Any,
    *,
    handler: Any = None,
    resource_id: str | None = None,
    types: list[str] | None = None,
) -> dict[str, Any]:
    """The history Bundle of one instance, one type or the whole system, newest first.

    Paged by key (`_cursor`), so versions written while a client pages never shift a page.
    """
    for name in query:
        if name not in HISTORY_PARAMS:
            raise FhirError(400, f"Unsupported _history parameter {name!r}.")
    actor.require(Cap.CLINICAL_VIEW)
    count = _count(query.get("_count"))
    since = _since(query.get("_since"))
    cursor = _cursor(query.get("_cursor"))
    rows = ResourceVersion.objects.all()
    current: dict[str, Any] | None = None
    if handler is not None and resource_id is not None:
        rows = rows.filter(resource_type=handler.type, resource_id=resource_id)
        if not is_deleted(handler.type, resource_id):
            try:
                current = handler.read(actor, resource_id)  # permission, tenancy, audit
            except NotFound:
                if not rows.exists():
                    raise
    elif handler is not None:
        rows = rows.filter(resource_type=handler.type)
    elif types is not None:
        rows = rows.filter(resource_type__in=types)
    if since is not None:
        rows = rows.filter(recorded_at__gte=since)
    at = query.get("_at")
    if at:
        rows = rows.filter(recorded_at__lt=date_range(at)[1])
    versions: list[ResourceVersion] = []
    unsaved: ResourceVersion | None = None
    if current is not None and cursor is None:
        vid = current["meta"]["versionId"]
        if not rows.filter(version_id=vid).exists():
            updated = datetime.fromisoformat(current["meta"]["lastUpdated"])
            if since is None or updated >= since:
                unsaved = ResourceVersion(
                    resource_type=handler.type,
                    resource_id=str(resource_id),
                    version_id=vid,
                    method=Method.UPDATE,
                    recorded_at=updated,
                    resource=current,
                )
    page_rows = rows.order_by("-id")
    if cursor is not None:
        page_rows = page_rows.filter(id__lt=cursor)
    limit = count - (1 if unsaved is not None else 0)
    fetched = list(page_rows[: max(limit, 0) + 1]) if count else []
    more = len(fetched) > max(limit, 0)
    fetched = fetched[: max(limit, 0)]
    versions = ([unsaved] if unsaved is not None and count else []) + fetched
    total = rows.count() + (1 if unsaved is not None else 0)
    if handler is None or resource_id is None:
        audit_record(
            actor=actor,
            action="fhir.history.searched",
            detail={
                "level": "type" if handler is not None else "system",
                "type": handler.type if handler is not None else "",
                "total": total,
            },
        )
    if handler is not None and resource_id is not None:
        path = f"{handler.type}/{resource_id}/_history"
    elif handler is not None:
        path = f"{handler.type}/_history"
    else:
        path = "_history"

    def link(relation: str, cursor_value: int | None) -> dict[str, str]:
        from urllib.parse import urlencode

        params = [(k, v) for k in query for v in query.getlist(k) if k not in ("_cursor", "_count")]
        params.append(("_count", str(count)))
        if cursor_value is not None:
            params.append(("_cursor", _encode_cursor(cursor_value)))
        return {"relation": relation, "url": f"{base_url}{path}?{urlencode(params)}"}

    links = [link("self", cursor), link("first", None)]
    if more and fetched:
        links.append(link("next", fetched[-1].id))
    return {
        "resourceType": "Bundle",
        "type": "history",
        "total": total,
        "link": links,
        "entry": [_entry(base_url, v) for v in versions],
    }


def _entry(base_url: str, version: ResourceVersion) -> dict[str, Any]:
    url = f"{version.resource_type}/{version.resource_id}"
    entry: dict[str, Any] = {"fullUrl": base_url + url}
    if version.resource is not None:
        entry["resource"] = version.resource
    status = {"POST": "201 Created", "PUT": "200 OK", "DELETE": "204"}
    entry["request"] = {
        "method": version.method,
        "url": url if version.method != Method.CREATE else version.resource_type,
    }
    entry["response"] = {
        "status": status.get(str(version.method), "200 OK"),
        "etag": f'W/"{version.version_id}"',
        "lastModified": instant(version.recorded_at),
    }
    return entry


# --- headers --------------------------------------------------------------------------------------


def version_headers(
    base_url: str, data: dict[str, Any], *, location: bool = False
) -> dict[str, str]:
    """ETag, Last-Modified and Content-Location (or Location on a create) of a served version."""
    meta = data.get("meta") or {}
    headers: dict[str, str] = {}
    vid = meta.get("versionId")
    url = f"{base_url}{data['resourceType']}/{data['id']}"
    if vid:
        headers["ETag"] = f'W/"{vid}"'
        url += f"/_history/{vid}"
        headers["Content_Location"] = url
    if location:
        headers["Location"] = url
    updated = meta.get("lastUpdated")
    if updated:
        moment = datetime.fromisoformat(updated).astimezone(UTC)
        headers["Last_Modified"] = format_datetime(moment, usegmt=True)
    return headers
