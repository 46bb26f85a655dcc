"""Resources as received (models.StoredResource): kept beside the clinical row they feed, or as
the only record for the types the clinic keeps without reasoning about them.

- `keep_beside`: after a clinical write through a handler, the received JSON is kept at the
  clinical row's new version; `overlay` then returns it (server additions: id, meta, and keys
  the server adds that the client did not send) while the row stays at that version.
- Generic types (`GENERIC`): Practitioner, Organization, MedicationRequest, historical
  Encounters, letters (DocumentReference), Observations the clinic does not chart, Provenance, and
  the other types an EHR or Synthea export sends. Stored whole, versioned, searchable by the few
  columns below; no clinical rule reads them.

Writes here are services: permission, then the row, then one audit event (or none when the
caller audits a whole batch, as the importer does with its per-Bundle event).
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import orjson
from django.db.models import Q, QuerySet

from ketaclinic.accounts.actor import Actor
from ketaclinic.accounts.audit import audit_record
from ketaclinic.accounts.roles import Cap
from ketaclinic.core import bulk, clock, rows, shapes
from ketaclinic.core.errors import NotFound
from ketaclinic.fhir.common import (
    as_datetime,
    instant,
    raw_identifier_key,
    resolve_patient,
    version_id,
)
from ketaclinic.fhir.models import StoredResource
from ketaclinic.fhir.outcome import FhirError
from ketaclinic.fhir.search import SearchRequest, any_of, as_uuid, date_q, patient_ids, token
from ketaclinic.patients.models import Patient


@dataclass(frozen=True)
class Spec:
    """Where a generic type keeps its patient, main code, category and clinically relevant time."""

    patient: str | None = None
    code: str | None = None
    category: str | None = None
    dates: tuple[str, ...] = ()
    patient_required: bool = False
    # The element holding the references the `target` search parameter follows.
    targets: str | None = None
    # The element the `status` search parameter reads (None: the type has no status; Practitioner,
    # PractitionerRole and Organization have `active`, Provenance nothing).
    status: str | None = "status"
    # False where the type has no identifier (Provenance).
    identifier: bool = True


GENERIC: dict[str, Spec] = {
    "Practitioner": Spec(status=None),
    "PractitionerRole": Spec(code="code", dates=("period.start",), status=None),
    "Organization": Spec(code="type", status=None),
    "Location": Spec(code="type"),
    "Medication": Spec(code="code"),
    "MedicationRequest": Spec(
        patient="subject",
        code="medicationCodeableConcept",
        category="category",
        dates=("authoredOn",),
        patient_required=True,
    ),
    "Encounter": Spec(patient="subject", code="type", category="class", dates=("period.start",)),
    "Observation": Spec(
        patient="subject",
        code="code",
        category="category",
        dates=("effectiveDateTime", "effectivePeriod.start", "effectiveInstant", "issued"),
        patient_required=True,
    ),
    "DocumentReference": Spec(patient="subject", code="type", category="category", dates=("date",)),
    "Provenance": Spec(
        code="activity", dates=("recorded",), targets="target", status=None, identifier=False
    ),
    "Procedure": Spec(
        patient="subject",
        code="code",
        category="category",
        dates=("performedDateTime", "performedPeriod.start"),
        patient_required=True,
    ),
    "Immunization": Spec(
        patient="patient", code="vaccineCode", dates=("occurrenceDateTime",), patient_required=True
    ),
    "DiagnosticReport": Spec(
        patient="subject",
        code="code",
        category="category",
        dates=("effectiveDateTime", "effectivePeriod.start", "issued"),
    ),
    "CarePlan": Spec(
        patient="subject", category="category", dates=("period.start",), patient_required=True
    ),
    "CareTeam": Spec(patient="subject", category="category", dates=("period.start",)),
    "Goal": Spec(
        patient="subject",
        code="description",
        dates=("startDate",),
        patient_required=True,
        status="lifecycleStatus",
    ),
    "Claim": Spec(patient="patient", code="type", dates=("created",), patient_required=True),
    "ExplanationOfBenefit": Spec(
        patient="patient", code="type", dates=("created",), patient_required=True
    ),
    "ImagingStudy": Spec(patient="subject", dates=("started",), patient_required=True),
    "Device": Spec(patient="patient", code="type"),
    "SupplyDelivery": Spec(patient="patient", code="type", dates=("occurrenceDateTime",)),
    "MedicationAdministration": Spec(
        patient="subject",
        code="medicationCodeableConcept",
        dates=("effectiveDateTime", "effectivePeriod.start"),
        patient_required=True,
    ),
}


# The clinic's own types whose received JSON is kept beside the clinical row: the chart's, and
# the workflow resources the server drives (treatment-session Encounters, Appointment, Consent,
# MedicationAdministration, AdverseEvent), whose received elements must also agree with what the
# row records (`check_agrees`).
WORKFLOW = frozenset(
    {"Encounter", "Appointment", "MedicationAdministration", "AdverseEvent", "Consent"}
)
KEEP_BESIDE = frozenset(
    {
        "Patient",
        "Condition",
        "MedicationStatement",
        "AllergyIntolerance",
        "Observation",
        "QuestionnaireResponse",
        *WORKFLOW,
    }
)
# Profiles this server can stand behind when it keeps a resource as received: the base
# specification's and US Core's. A resource claiming another profile (whose constraints this
# server cannot check) is refused rather than stored as if it conformed.
KNOWN_PROFILE_BASES = (
    "http://hl7.org/fhir/StructureDefinition/",
    "http://hl7.org/fhir/us/core/StructureDefinition/",
)


def check_profiles(raw: dict[str, Any], resource_type: str) -> None:
    profiles = (raw.get("meta") or {}).get("profile") or []
    unknown = [p for p in profiles if not str(p).startswith(KNOWN_PROFILE_BASES)]
    if unknown:
        raise FhirError(
            422,
            f"{resource_type}.meta.profile: this server cannot check the profile "
            f"{unknown[0]!r}; send the resource without it or with a base FHIR or US Core profile.",
            expressions=[(f"{resource_type}.meta.profile", "profile not supported")],
        )


# --- the columns a generic resource is searched by ------------------------------------------------


def _get(raw: Any, path: str) -> Any:
    node = raw
    for part in path.split("."):
        if isinstance(node, list):
            node = node[0] if node else None
        if not isinstance(node, dict):
            return None
        node = node.get(part)
    return node


def _tokens(value: Any) -> str:
    """' system|code ' for every coding of a CodeableConcept (or list of them, or a Coding)."""
    concepts = value if isinstance(value, list) else [value]
    out = []
    for concept in concepts:
        if not isinstance(concept, dict):
            continue
        codings = concept.get("coding") if "coding" in concept else [concept]
        for coding in codings or []:
            if isinstance(coding, dict) and coding.get("code"):
                out.append(f"{coding.get('system') or ''}|{coding['code']}")
    return (" " + " ".join(out) + " ") if out else ""


def _effective(raw: dict[str, Any], spec: Spec, resource_type: str) -> Any:
    for path in spec.dates:
        value = _get(raw, path)
        if isinstance(value, str) and value:
            try:
                if "T" in value:
                    from datetime import datetime

                    return datetime.fromisoformat(value.replace("Z", "+00:00"))
                return as_datetime(value, f"{resource_type}.{path}")
            except (ValueError, FhirError):
                raise FhirError(
                    400,
                    f"{resource_type}.{path}: {value!r} is not a FHIR date or dateTime.",
                    expressions=[(f"{resource_type}.{path}", "not a date")],
                ) from None
    return None


def _patient_of(actor: Actor, resource: Any, raw: dict[str, Any], spec: Spec) -> Patient | None:
    if spec.patient is None:
        return None
    ref = getattr(resource, spec.patient, None)
    where = f"{raw.get('resourceType')}.{spec.patient}"
    if ref is None:
        if spec.patient_required:
            raise FhirError(422, f"{where} is required.", expressions=[(where, "required")])
        return None
    reference = ref.reference or ""
    if reference and not reference.split("?")[0].rstrip("/").split("/")[-2:-1] == ["Patient"]:
        if spec.patient_required:
            raise FhirError(
                422,
                f"{where} must reference a Patient of this server, not {reference!r}.",
                expressions=[(where, "not a Patient reference")],
            )
        return None
    return resolve_patient(actor, ref, where)


def _columns(
    actor: Actor, resource_type: str, resource: Any, raw: dict[str, Any]
) -> dict[str, Any]:
    spec = GENERIC[resource_type]
    check_profiles(raw, resource_type)
    status = raw.get(spec.status) or "" if spec.status else ""
    return {
        "patient": _patient_of(actor, resource, raw, spec),
        "identifier_key": raw_identifier_key(raw),
        "codes": _tokens(_get(raw, spec.code)) if spec.code else "",
        "categories": _tokens(raw.get(spec.category)) if spec.category else "",
        "status": status[:40] if isinstance(status, str) else "",
        "effective": _effective(raw, spec, resource_type),
        "targets": target_tokens(raw.get(spec.targets)) if spec.targets else "",
    }


def target_tokens(value: Any) -> str:
    """' Type/id ' for every literal reference in a Reference (or a list of them), absolute URLs
    and version suffixes reduced to Type/id, so `target=Patient/x` finds them all."""
    refs = value if isinstance(value, list) else [value]
    out = []
    for ref in refs:
        key = reference_key((ref or {}).get("reference") if isinstance(ref, dict) else None)
        if key:
            out.append(key)
    return (" " + " ".join(out) + " ") if out else ""


def reference_key(reference: str | None) -> str:
    """'Type/id' of a literal reference ('Type/id', 'http://host/fhir/Type/id', with or without
    '/_history/v'); '' for a urn:uuid, a contained or a search reference."""
    if not reference or reference.startswith(("#", "urn:")) or "?" in reference:
        return ""
    parts = reference.rstrip("/").split("/")
    if len(parts) >= 4 and parts[-2] == "_history":
        parts = parts[:-2]
    if len(parts) < 2 or not parts[-2][:1].isupper():
        return ""
    return f"{parts[-2]}/{parts[-1]}"


def clean(raw: dict[str, Any]) -> dict[str, Any]:
    """The received JSON without what the server sets (id, meta's version and time)."""
    data = {k: v for k, v in raw.items() if k != "id"}
    meta = {
        k: v for k, v in (raw.get("meta") or {}).items() if k not in ("versionId", "lastUpdated")
    }
    if meta:
        data["meta"] = meta
    else:
        data.pop("meta", None)
    return data


# --- services: generic resources --------------------------------------------------------------


def generic_create(
    actor: Actor,
    resource_type: str,
    resource: Any,
    raw: dict[str, Any],
    *,
    source: str = StoredResource.Source.API,
    audit: bool = True,
) -> StoredResource:
    actor.require(Cap.CLINICAL_EDIT)
    row = generic_build(actor, resource_type, resource, raw, source=source)
    row.save(force_insert=True)
    if audit:
        _audit(actor, row, "create")
    return row


def generic_build(
    actor: Actor,
    resource_type: str,
    resource: Any,
    raw: dict[str, Any],
    *,
    source: str = StoredResource.Source.IMPORT,
) -> StoredResource:
    """An unsaved row (saved by `generic_create`)."""
    row = StoredResource(
        organization=actor.organization,
        resource_type=resource_type,
        resource_id=str(uuid.uuid4()),
        resource=clean(raw),
        generic=True,
        source=source,
        recorded_by=actor.user,
        **_columns(actor, resource_type, resource, raw),
    )
    _stamp(row)
    return row


def generic_values(
    actor: Actor, resource_type: str, resource: Any, raw: dict[str, Any], *, resource_id: str
) -> dict[str, Any]:
    """The column values of a new imported row, for `core.bulk.insert_rows` (no model instance:
    the importer inserts thousands at once): the same checks and columns as `generic_build`."""
    columns = _columns(actor, resource_type, resource, raw)
    patient = columns.pop("patient")
    recorded_at = clock.now()
    return {
        "organization_id": actor.organization.pk,
        "resource_type": resource_type,
        "resource_id": resource_id,
        "version_id": version_id(recorded_at),
        "patient_id": patient.pk if patient is not None else None,
        "resource": clean(raw),
        "current": True,
        "deleted": False,
        "generic": True,
        "source": StoredResource.Source.IMPORT,
        "source_key": "",
        "recorded_at": recorded_at,
        "recorded_by_id": actor.user.pk,
        **columns,
    }


def _stamp(row: StoredResource) -> None:
    row.recorded_at = clock.now()
    row.version_id = version_id(row.recorded_at)


def generic_get(actor: Actor, resource_type: str, resource_id: str) -> StoredResource:
    row = (
        StoredResource.objects.select_related("patient")
        .filter(resource_type=resource_type, resource_id=resource_id, current=True, generic=True)
        .first()
    )
    if row is None:
        raise NotFound(f"No such {resource_type}.")
    if row.deleted:
        raise FhirError(410, f"{resource_type}/{resource_id} was deleted.")
    return row


def generic_update(
    actor: Actor, resource_type: str, resource_id: str, resource: Any, raw: dict[str, Any]
) -> StoredResource:
    actor.require(Cap.CLINICAL_EDIT)
    previous = generic_get(actor, resource_type, resource_id)
    columns = _columns(actor, resource_type, resource, raw)
    if previous.patient_id and (
        columns["patient"] is None or columns["patient"].pk != previous.patient_id
    ):
        raise FhirError(422, "An update cannot move a record to another patient.")
    row = _next_version(previous, resource=clean(raw), **columns)
    _audit(actor, row, "update")
    return row


def generic_delete(actor: Actor, resource_type: str, resource_id: str) -> None:
    actor.require(Cap.CLINICAL_EDIT)
    previous = generic_get(actor, resource_type, resource_id)
    row = _next_version(previous, deleted=True)
    _audit(actor, row, "delete")


def _next_version(previous: StoredResource, **changes: Any) -> StoredResource:
    StoredResource.objects.filter(pk=previous.pk).update(current=False)
    row = StoredResource(
        **{
            f.attname: getattr(previous, f.attname)
            for f in StoredResource._meta.concrete_fields
            if f.attname != "id"
        }
    )
    for name, value in changes.items():
        setattr(row, name, value)
    row.current = True
    _stamp(row)
    if row.version_id == previous.version_id:  # the same microsecond: keep versions distinct
        row.version_id = str(int(previous.version_id) + 1)
    row.save(force_insert=True)
    return row


def _audit(actor: Actor, row: StoredResource, verb: str) -> None:
    audit_record(
        actor=actor,
        action=f"fhir.{row.resource_type.lower()}.{verb}",
        patient_id=row.patient.public_id if row.patient is not None else None,
        detail={"resource": f"{row.resource_type}/{row.resource_id}", "version": row.version_id},
    )


def generic_to_fhir(row: StoredResource) -> dict[str, Any]:
    data: dict[str, Any] = {"resourceType": row.resource_type, "id": row.resource_id}
    data.update({k: v for k, v in row.resource.items() if k not in ("resourceType", "id")})
    data["meta"] = {
        **(row.resource.get("meta") or {}),
        "versionId": row.version_id,
        "lastUpdated": instant(row.recorded_at),
    }
    return data


def generic_queryset(
    actor: Actor, resource_type: str, search: SearchRequest
) -> QuerySet[StoredResource] | None:
    """The current, undeleted resources of this type the search matches, newest first (or
    oldest first on _sort=date); None when no generic resource can match."""
    actor.require(Cap.CLINICAL_VIEW)
    queryset = StoredResource.objects.select_related("patient").filter(
        resource_type=resource_type, current=True, deleted=False, generic=True
    )
    for name, values in search.items():
        q = generic_filter(name, values)
        if q is None:
            return None
        queryset = queryset.filter(q)
    descending = (search.sort or "-date").startswith("-")
    return queryset.order_by(*(("-effective", "-pk") if descending else ("effective", "pk")))


def generic_search(
    actor: Actor, resource_type: str, search: SearchRequest, *, offset: int, count: int
) -> tuple[int, list[StoredResource]]:
    queryset = generic_queryset(actor, resource_type, search)
    if queryset is None:
        return 0, []
    total = queryset.count()
    return total, (list(queryset[offset : offset + count]) if count > 0 and total > offset else [])


def generic_for_patient(patient: Patient) -> list[dict[str, Any]]:
    rows = StoredResource.objects.filter(
        patient=patient, current=True, deleted=False, generic=True
    ).order_by("resource_type", "effective", "pk")
    return [generic_to_fhir(row) for row in rows]


GENERIC_PARAMS = {
    "_id": "token",
    "_lastUpdated": "date",
    "identifier": "token",
    "patient": "reference",
    "subject": "reference",
    "code": "token",
    "category": "token",
    "date": "date",
    "status": "token",
    "target": "reference",
}


def generic_filter(name: str, values: list[str]) -> Q | None:
    """The filter for one search parameter; None when generic resources cannot match it."""
    if name == "_id":
        return Q(resource_id__in=[v for v in values if as_uuid(v)])
    if name == "identifier":

        def one(value: str) -> Q:
            system, code = token(value)
            if system is None:
                return Q(identifier_key__endswith=f"|{code}")
            return Q(identifier_key=f"{system}|{code}")

        return any_of(values, one)
    if name in ("patient", "subject"):
        return Q(patient__public_id__in=patient_ids(values))
    if name in ("code", "category"):
        column = "codes" if name == "code" else "categories"

        def coded(value: str) -> Q:
            system, code = token(value)
            if system is None:
                return Q(**{f"{column}__contains": f"|{code} "})
            if not code:
                return Q(**{f"{column}__contains": f" {system}|"})
            return Q(**{f"{column}__contains": f" {system}|{code} "})

        return any_of(values, coded)
    if name == "date":
        return any_of(values, lambda v: date_q("effective", v))
    if name == "_lastUpdated":
        return any_of(values, lambda v: date_q("recorded_at", v))
    if name == "status":
        return Q(status__in=[token(v)[1] for v in values])
    if name == "target":

        def target(value: str) -> Q:
            key = reference_key(value)
            if key:
                return Q(targets__contains=f" {key} ")
            return Q(targets__contains=f"/{value} ") if value else Q(pk__in=[])

        return any_of(values, target)
    return None


# --- beside the clinical row --------------------------------------------------------------------


# The columns of a received resource kept beside a clinical row that only generic ones use (the
# importer's batch INSERT uses them too, with its own source).
BESIDE_DEFAULTS = {
    "current": True,
    "deleted": False,
    "generic": False,
    "identifier_key": "",
    "codes": "",
    "categories": "",
    "status": "",
    "targets": "",
    "effective": None,
    "source": StoredResource.Source.API,
    "source_key": "",
}


def keep_beside(
    actor: Actor,
    data: dict[str, Any],
    raw: dict[str, Any],
    patient: Patient | None,
    *,
    touch: Callable[[], dict[str, Any]] | None = None,
    fresh: bool = False,
) -> dict[str, Any]:
    """Keep the received JSON at the clinical row's version `data` (as just emitted); return what
    a read will return: the received resource with the server's additions. When another
    received resource is kept at that version already (an update the row did not change),
    `touch` moves the row to a new version first (the one kept stays that version's).
    `fresh`: the row was just created under a new id, so nothing is kept for it yet."""
    version = (data.get("meta") or {}).get("versionId")
    if not version or not isinstance(raw, dict):
        return data
    kept: dict[str, Any] = {
        "patient": patient,
        "resource": clean(raw),
        "recorded_at": clock.now(),
        "recorded_by": actor.user,
        "current": True,
    }
    if fresh or (
        rows.one(StoredResource, resource_type=data["resourceType"], resource_id=data["id"]) is None
    ):
        # A resource just created (the usual case): nothing to demote or replace, one INSERT,
        # from plain values (core.bulk: no model instance, the JSON written by orjson).
        bulk.insert_one(
            StoredResource,
            {
                **BESIDE_DEFAULTS,
                "organization_id": actor.organization.pk,
                "resource_type": data["resourceType"],
                "resource_id": data["id"],
                "version_id": version,
                "patient_id": patient.pk if patient is not None else None,
                "resource": kept["resource"],
                "recorded_at": kept["recorded_at"],
                "recorded_by_id": actor.user.pk,
            },
        )
        return merge(data, kept["resource"])
    if touch is not None:
        same = (
            StoredResource.objects.filter(
                resource_type=data["resourceType"],
                resource_id=data["id"],
                current=True,
                version_id=version,
            )
            .values_list("resource", flat=True)
            .first()
        )
        if same is not None and same != kept["resource"]:
            data = touch()
            version = data["meta"]["versionId"]
    StoredResource.objects.filter(
        resource_type=data["resourceType"], resource_id=data["id"], current=True
    ).exclude(version_id=version).update(current=False)
    StoredResource.objects.update_or_create(
        organization=actor.organization,
        resource_type=data["resourceType"],
        resource_id=data["id"],
        version_id=version,
        defaults=kept,
    )
    return merge(data, kept["resource"])


def merge(generated: dict[str, Any], received: dict[str, Any]) -> dict[str, Any]:
    """The received resource, the server's id and meta, and keys only the server added (never a
    second type of a choice element the client sent, e.g. medicationReference beside
    medicationCodeableConcept, nor contained resources nothing returned refers to)."""
    out = {"resourceType": generated["resourceType"], "id": generated["id"]}
    out.update({k: v for k, v in received.items() if k not in ("resourceType", "id", "meta")})
    server_meta = generated.get("meta") or {}
    meta = {
        **server_meta,
        **(received.get("meta") or {}),
        **{k: server_meta[k] for k in ("versionId", "lastUpdated") if k in server_meta},
    }
    if meta:
        out["meta"] = meta
    sent_choices = {base for key in received if (base := choice_base(key))}
    for key, value in generated.items():
        if key not in out and key != "contained" and choice_base(key) not in sent_choices:
            out[key] = value
    if generated["resourceType"] in WORKFLOW:
        # What the workflow adds inside an element the client sent (the consent's meaning and
        # codes in its provision, the dose's route): added keys only, never a changed value.
        for key, value in generated.items():
            if key in received and key not in ("resourceType", "id", "meta", "contained"):
                out[key] = _added(received[key], value)
    if "contained" in generated and "contained" not in received:
        text = orjson.dumps(out).decode()
        used = [c for c in generated["contained"] if f'"#{c.get("id")}"' in text]
        if used:
            out["contained"] = used
    return out


def _added(sent: Any, made: Any) -> Any:
    """`sent` with the keys only `made` has, at every depth (list items paired by position when
    both lists are as long and agree item by item)."""
    if isinstance(sent, dict) and isinstance(made, dict):
        choices = {base for key in sent if (base := choice_base(key))}
        out = {k: _added(v, made[k]) if k in made else v for k, v in sent.items()}
        if isinstance(sent.get("coding"), list) and isinstance(made.get("coding"), list):
            # The codings the clinic adds in other systems (the CTCAE grade's mild/moderate/
            # severe, an outcome's other code): after the client's, which stay as sent.
            systems = {c.get("system") for c in sent["coding"] if isinstance(c, dict)}
            out["coding"] = sent["coding"] + [
                c for c in made["coding"] if isinstance(c, dict) and c.get("system") not in systems
            ]
        for key, value in made.items():
            if key not in out and choice_base(key) not in choices:
                out[key] = value
        return out
    if _extensions(sent) and _extensions(made):
        # Extensions the clinic adds (an adverse event's escalation): after the client's.
        urls = {e["url"] for e in sent}
        return sent + [e for e in made if e["url"] not in urls]
    if (
        isinstance(sent, list)
        and isinstance(made, list)
        and len(sent) == len(made)
        and all(
            isinstance(a, dict) and isinstance(b, dict) and _disagreement(a, b, "") is None
            for a, b in zip(sent, made, strict=True)
        )
    ):
        return [_added(a, b) for a, b in zip(sent, made, strict=True)]
    return sent


def _extensions(value: Any) -> bool:
    return isinstance(value, list) and all(isinstance(e, dict) and "url" in e for e in value)


# The data types a choice element's name ends in (effectiveDateTime, medicationReference...).
CHOICE_TYPES = (
    "DateTime", "Period", "Instant", "CodeableConcept", "Reference", "Quantity", "String",
    "Boolean", "Integer", "Range", "Ratio", "Timing", "Age", "Date", "Time", "Duration",
    "Attachment", "Coding", "Decimal", "Uri", "Canonical", "SampledData", "Identifier",
)  # fmt: skip


def choice_base(key: str) -> str | None:
    """'effective' for effectiveDateTime; None for a key that is not a choice element's."""
    try:
        return _choice_bases[key]
    except KeyError:
        pass
    found = None
    for suffix in CHOICE_TYPES:
        if key.endswith(suffix) and len(key) > len(suffix) and key[0].islower():
            found = key[: -len(suffix)]
            break
    if len(_choice_bases) < 10_000:  # element names: a few hundred; a client's junk keys stop
        _choice_bases[key] = found
    return found


# Every merge asks for each key of the resource (23 suffixes each): asked once per name.
_choice_bases: dict[str, str | None] = {}


# --- workflow resources: what the client sent must be what the row records --------------------

# Keys that carry no clinical meaning of their own (names for people, units beside UCUM codes).
_HUMAN = frozenset({"display", "text", "unit", "id", "extension", "modifierExtension", "div"})
_NOT_COMPARED = frozenset(
    {"resourceType", "id", "meta", "text", "contained", "extension", "modifierExtension"}
)
# When the sending system wrote its record: kept as sent; the clinic's own time stays readable
# (meta.lastUpdated, and Consent's provision.period.start / sourceAttachment.creation).
SENDERS_TIMES = {
    "Appointment": frozenset({"created"}),
    "AdverseEvent": frozenset({"recordedDate"}),
    "Consent": frozenset({"dateTime"}),
}


def check_agrees(resource_type: str, generated: dict[str, Any], raw: dict[str, Any]) -> None:
    """Refuse (422, naming the element) a received element of a workflow resource that the
    clinical row records otherwise: a status the workflow did not reach, another code than the
    one recorded, another time, dose or reference. Elements the row does not record are kept as
    sent; representation may differ (a time with its offset, a coding without display)."""
    skipped = _NOT_COMPARED | SENDERS_TIMES.get(resource_type, frozenset())
    pairs = [(k, raw[k], generated[k]) for k in raw if k in generated and k not in skipped]
    sent_med, made_med = _medication(raw), _medication(generated)
    if sent_med is not None and made_med is not None:
        pairs.append(("medication[x]", sent_med, made_med))
    for key, sent, made in pairs:
        where = _disagreement(sent, made, f"{resource_type}.{key}")
        if where is not None:
            raise FhirError(
                422,
                f"{where}: the clinic records {_shown(made)}, not {_shown(sent)}: send what is "
                "recorded (or leave the element out); it changes through the clinic's workflow.",
                expressions=[(where, "differs from what the clinic records")],
            )


def _shown(value: Any) -> str:
    text = orjson.dumps(value).decode()
    return text if len(text) <= 200 else text[:197] + "..."


def _medication(resource: dict[str, Any]) -> Any:
    """medication[x] as a CodeableConcept: the one sent, or the contained Medication's code."""
    if "medicationCodeableConcept" in resource:
        return resource["medicationCodeableConcept"]
    reference = (resource.get("medicationReference") or {}).get("reference") or ""
    if reference.startswith("#"):
        for contained in resource.get("contained") or []:
            if isinstance(contained, dict) and contained.get("id") == reference[1:]:
                return contained.get("code")
    return None


def _codes(value: Any) -> dict[str, set[str]] | None:
    """{system: codes} of a CodeableConcept, a Coding or a list of them; None for other values."""
    if isinstance(value, list):
        parts = [_codes(v) for v in value]
        if not parts or any(p is None for p in parts):
            return None
        merged: dict[str, set[str]] = {}
        for part in parts:
            for system, codes in (part or {}).items():
                merged.setdefault(system, set()).update(codes)
        return merged
    if not isinstance(value, dict):
        return None
    if "coding" in value:
        codings = value["coding"] if isinstance(value["coding"], list) else []
    elif "code" in value and "system" in value and "value" not in value:
        codings = [value]
    else:
        return None
    out: dict[str, set[str]] = {}
    for coding in codings:
        if isinstance(coding, dict) and coding.get("system") and coding.get("code"):
            out.setdefault(str(coding["system"]), set()).add(str(coding["code"]))
    return out


def _disagreement(sent: Any, made: Any, path: str) -> str | None:
    """The path of the first element where `sent` says otherwise than `made`; None if none."""
    sent_codes, made_codes = _codes(sent), _codes(made)
    if sent_codes is not None and made_codes is not None:
        for system in sent_codes.keys() & made_codes.keys():
            if not sent_codes[system] & made_codes[system]:
                return path
        return None
    if isinstance(sent, dict) and isinstance(made, dict):
        for key in sent.keys() & made.keys() - _HUMAN:
            if key == "reference":
                local = str(sent[key]).startswith("#") or str(made[key]).startswith("#")
                if not local and _reference(sent[key]) != _reference(made[key]):
                    return f"{path}.reference"
                continue
            found = _disagreement(sent[key], made[key], f"{path}.{key}")
            if found is not None:
                return found
        return None
    if isinstance(sent, bool) or isinstance(made, bool):
        return None if sent == made else path
    if isinstance(sent, int | float) and isinstance(made, int | float):
        return None if float(sent) == float(made) else path
    if isinstance(sent, str) and isinstance(made, str):
        return None if _same_text(sent, made) else path
    return None  # lists other than codings, and mixed shapes: kept as sent


def _reference(value: Any) -> str:
    text = str(value or "")
    return reference_key(text) or text


def _same_text(sent: str, made: str) -> bool:
    if sent == made:
        return True
    if "T" in sent and "T" in made and sent[:2].isdigit() and made[:2].isdigit():
        from datetime import datetime

        try:
            a = datetime.fromisoformat(sent.replace("Z", "+00:00"))
            b = datetime.fromisoformat(made.replace("Z", "+00:00"))
        except ValueError:
            return False
        if a.tzinfo is None or b.tzinfo is None:
            return False
        if "." not in made:
            # The clinic shows whole seconds: a client's fraction of a second is the same moment.
            a = a.replace(microsecond=0)
        return a == b
    if len(sent) < len(made) and made[:4].isdigit() and "T" in made and "T" not in sent:
        # A date (or month, or year) where a time is recorded: the same day within a day's
        # offset, else the same month or year.
        if len(sent) == 10:
            from datetime import date

            try:
                day = date.fromisoformat(sent)
                moment = date.fromisoformat(made[:10])
            except ValueError:
                return False
            return abs((moment - day).days) <= 1
        return made.startswith(sent)
    return False


def overlay(resources: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Each emitted clinical resource as received, where the received JSON is kept at the row's
    current version (one query for the lot)."""
    wanted = {
        (r.get("resourceType"), r.get("id")): (r.get("meta") or {}).get("versionId")
        for r in resources
        if isinstance(r, dict)
        and r.get("resourceType") in KEEP_BESIDE
        and r.get("id")
        and (r.get("meta") or {}).get("versionId")
    }
    if not wanted:
        return resources
    types = {str(t) for t, _ in wanted}
    ids = [i for _, i in wanted]
    kind = tuple(sorted(types))
    kept = {
        (row.resource_type, row.resource_id): row.resource
        for row in shapes.rows_in(
            ("received-current", kind),
            lambda: StoredResource.objects.filter(
                resource_type__in=kind, generic=False, current=True
            ).only("resource_type", "resource_id", "version_id", "resource"),
            "resource_id",
            ids,
        )
        if wanted.get((row.resource_type, row.resource_id)) == row.version_id
    }
    if not kept:
        return resources
    return [
        merge(r, kept[(r["resourceType"], r["id"])])
        if isinstance(r, dict) and (r.get("resourceType"), r.get("id")) in kept
        else r
        for r in resources
    ]


def _replace(value: Any, refs: dict[str, str]) -> Any:
    if isinstance(value, dict):
        return {
            k: (refs.get(v, v) if k == "reference" and isinstance(v, str) else _replace(v, refs))
            for k, v in value.items()
        }
    if isinstance(value, list):
        return [_replace(v, refs) for v in value]
    return value


def resolve_late_references(
    resources: list[dict[str, Any]], refs: dict[str, str]
) -> list[dict[str, Any]]:
    """After a transaction: references to entries created later than the one holding them
    (a Patient's generalPractitioner, processed before the Practitioner) now point at this
    server, in the stored JSON and in the response."""
    out = []
    for resource in resources:
        fixed = _replace(resource, refs)
        if fixed != resource:
            row = StoredResource.objects.filter(
                resource_type=resource["resourceType"], resource_id=resource["id"], current=True
            ).first()
            if row is not None:
                row.resource = _replace(row.resource, refs)
                spec = GENERIC.get(row.resource_type)
                if row.generic and spec is not None and spec.targets:
                    row.targets = target_tokens(row.resource.get(spec.targets))
                row.save(update_fields=["resource", "targets"])
        out.append(fixed)
    return out
