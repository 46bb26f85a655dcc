"""Helpers shared by the mappers: emitting FHIR JSON, dates, identifiers, references."""

from __future__ import annotations

import hashlib
import re
from contextvars import ContextVar
from datetime import UTC, date, datetime, time, timedelta
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

import orjson
from django.conf import settings
from fhir.resources.R4B import get_fhir_model_class

from ketaclinic.accounts.actor import Actor
from ketaclinic.accounts.roles import Cap
from ketaclinic.fhir.outcome import FhirError
from ketaclinic.patients import selectors
from ketaclinic.patients.models import Patient

MRN_SYSTEM = "urn:ketaclinic:mrn"
MR_TYPE = {
    "coding": [
        {
            "system": "http://terminology.hl7.org/CodeSystem/v2-0203",
            "code": "MR",
            "display": "Medical Record Number",
        }
    ]
}


def emit(data: dict[str, Any]) -> dict[str, Any]:
    """The outgoing resource as it is sent: the mapper's dict without absent elements (None,
    empty arrays and objects).

    Built once, directly: validating every outgoing resource through its fhir.resources model was
    about half of a search's CPU (issue 13). With settings.FHIR_VALIDATE_OUTGOING (on in the
    test suite) each emitted resource is validated with its R4B model and must equal the model's
    own canonical JSON of it, so every shape the mappers build stays valid FHIR.
    """
    resource = _pruned(data)
    if settings.FHIR_VALIDATE_OUTGOING:
        check_outgoing(resource)
    return resource


def emit_as_built(data: dict[str, Any]) -> dict[str, Any]:
    """`emit` for a resource no one else holds or changes (bulk export writes each and drops
    it): the mapper's dict itself when it holds nothing to drop.

    Most resources hold nothing to drop, and finding that out from their JSON (orjson, then a
    search for `null`, `[]` and `{}`: nothing else writes those bytes outside a string) costs
    about a third of walking the dict in Python. A string that holds them only sends the
    resource the long way; so does anything orjson cannot write as it stands.
    """
    try:
        text = orjson.dumps(data)
    except TypeError:
        return emit(data)
    if b"null" in text or b"[]" in text or b"{}" in text:
        return emit(data)
    if settings.FHIR_VALIDATE_OUTGOING:
        check_outgoing(data)
    global _last_built
    _last_built = (data, text)
    return data


# The last resource emit_as_built passed as it stands, with its JSON: bulk export writes that
# resource next and takes the text from here instead of serializing it a second time. One pair,
# replaced whole (a thread reading it sees a consistent one), matched by identity.
_last_built: tuple[Any, bytes] = (None, b"")


def built_json(resource: dict[str, Any]) -> bytes:
    """The resource's JSON (orjson), reused when emit_as_built has just made it."""
    last, text = _last_built
    return text if last is resource else orjson.dumps(resource)


def _pruned(value: Any) -> Any:
    """Without None and empty arrays or objects: FHIR JSON has no nulls and no empty elements."""
    if isinstance(value, dict):
        return _pruned_object(value)
    if isinstance(value, list):
        return _pruned_array(value)
    return value


# One pass that descends only into containers, checking exact types first: bulk export emits
# millions of resources, and a call per scalar was most of this step's time.
_SCALARS = frozenset({str, int, float, bool})


def _pruned_object(value: dict[str, Any]) -> dict[str, Any]:
    out = {}
    for key, item in value.items():
        if item is None:
            continue
        kind = type(item)
        if kind not in _SCALARS:
            if kind is dict or isinstance(item, dict):
                item = _pruned_object(item)
                if not item:
                    continue
            elif kind is list or isinstance(item, list):
                item = _pruned_array(item)
                if not item:
                    continue
        out[key] = item
    return out


def _pruned_array(value: list[Any]) -> list[Any]:
    out = []
    for item in value:
        kind = type(item)
        if kind not in _SCALARS:
            if kind is dict or isinstance(item, dict):
                item = _pruned_object(item)
                if not item:
                    continue
            elif kind is list or isinstance(item, list):
                item = _pruned_array(item)
        out.append(item)
    return out


def check_outgoing(resource: dict[str, Any]) -> None:
    """Raise AssertionError unless `resource` is valid R4B JSON in its canonical form."""
    model = get_fhir_model_class(resource["resourceType"])
    canonical = model.model_validate(resource).model_dump(mode="json", exclude_none=True)
    sent = orjson.loads(orjson.dumps(resource))
    if sent != canonical:
        raise AssertionError(
            f"outgoing {resource['resourceType']} differs from its R4B canonical form:\n"
            f"sent      {sent}\ncanonical {canonical}"
        )


def instant(value: datetime) -> str:
    """The moment in UTC to the second, e.g. 2026-01-05T14:30:00Z. Formatted with %: half the
    CPU of isoformat(), and bulk export writes millions of them."""
    at = value if value.tzinfo is UTC else value.astimezone(UTC)
    return "%04d-%02d-%02dT%02d:%02d:%02dZ" % (  # noqa: UP031 - the faster formatting
        at.year,
        at.month,
        at.day,
        at.hour,
        at.minute,
        at.second,
    )


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def version_id(updated_at: datetime) -> str:
    """The resource's version: its last change, in whole microseconds since 1970.

    Every write through a service stamps `updated_at`, and writes to one row are serialized, so
    two versions of a row never share an instant. Integer arithmetic: a float would round.
    """
    return str((updated_at - _EPOCH) // timedelta(microseconds=1))


def meta(obj: Any) -> dict[str, Any]:
    return {"versionId": version_id(obj.updated_at), "lastUpdated": instant(obj.updated_at)}


def as_date(value: Any, field: str) -> date | None:
    """A FHIR date or dateTime (possibly partial, '2012' or '2012-05') as a date."""
    if value is None:
        return None
    if isinstance(value, datetime):
        return value.date()
    if isinstance(value, date):
        return value
    match = re.fullmatch(r"(\d{4})(?:-(\d{2}))?(?:-(\d{2}))?", str(value))
    if not match:
        raise FhirError(
            400, f"{field}: {value!r} is not a FHIR date.", expressions=[(field, "not a date")]
        )
    year, month, day = match.groups()
    return date(int(year), int(month or 1), int(day or 1))


def as_datetime(value: Any, field: str) -> datetime | None:
    """A FHIR dateTime as an aware datetime; a bare date means midnight UTC."""
    if value is None:
        return None
    if isinstance(value, datetime):
        return value
    day = as_date(value, field)
    return datetime.combine(day, time(0), tzinfo=UTC) if day else None


def bounded(text: str, max_length: int, expression: str) -> str:
    """`text` if it fits the field that stores it; a 422 naming the element otherwise.

    Never truncate: a shortened name or code is a different, wrong record.
    """
    if len(text) > max_length:
        raise FhirError(
            422,
            f"{expression} is {len(text):,} characters long; this server stores at most "
            f"{max_length}.",
            expressions=[(expression, f"at most {max_length} characters")],
        )
    return text


def decimal2(value: Any) -> Decimal:
    return Decimal(str(value)).quantize(Decimal("0.01"), rounding=ROUND_HALF_UP)


def derived_mrn(system: str | None, value: str) -> str:
    """The MRN a patient gets from an outside identifier: ours as is, others by a stable hash."""
    if system in (None, "", MRN_SYSTEM) and len(value) <= 32:
        return value
    digest = hashlib.sha256(f"{system or ''}|{value}".encode()).hexdigest()[:20].upper()
    return f"X{digest}"


def external_key(system: str | None, value: str) -> str:
    return f"{system or ''}|{value}"


def identifier_from_external(external_id: str) -> list[dict[str, str]]:
    if "|" not in external_id:
        return []
    system, value = external_id.split("|", 1)
    item = {"value": value}
    if system:
        item["system"] = system
    return [item]


def first_identifier_key(resource: Any) -> str:
    for identifier in getattr(resource, "identifier", None) or []:
        if identifier.value:
            key = external_key(identifier.system, identifier.value)
            if len(key) > 200:
                raise FhirError(400, "The identifier is longer than 200 characters.")
            return key
    return ""


def raw_identifier_key(raw: dict[str, Any]) -> str:
    """`first_identifier_key` for a resource still as JSON: "system|value" of its first
    identifier with a value (cut to the column's 200 characters), "" without one."""
    identifiers = raw.get("identifier")
    if isinstance(identifiers, dict):
        identifiers = [identifiers]
    for identifier in identifiers or []:
        if isinstance(identifier, dict) and identifier.get("value"):
            return f"{identifier.get('system') or ''}|{identifier['value']}"[:200]
    return ""


def reference_id(reference: str | None, resource_type: str) -> str | None:
    """The id in 'Patient/123' or 'http://host/fhir/Patient/123'; None for other references."""
    if not reference:
        return None
    parts = reference.rstrip("/").split("/")
    if len(parts) >= 2 and parts[-2] == resource_type:
        return parts[-1]
    if len(parts) >= 4 and parts[-4] == resource_type and parts[-2] == "_history":
        return parts[-3]
    return None


# An import resolves each patient once per run: the patients it has already resolved, by id.
resolved_patients: ContextVar[dict[str, Patient] | None] = ContextVar(
    "fhir_resolved_patients", default=None
)


def resolve_patient(actor: Actor, ref: Any, field: str, *, only: tuple[str, ...] = ()) -> Patient:
    """The patient a Reference points to: by 'Patient/<id>' or by a logical identifier (MRN).
    `only`: the fields the caller reads, for a lookup by id outside a Bundle (whose patients
    are kept for the Bundle's other entries, which may read any field)."""
    if ref is None:
        raise FhirError(400, f"{field} is required.", expressions=[(field, "required")])
    if ref.reference:
        patient_id = reference_id(ref.reference, "Patient")
        if patient_id is None:
            raise FhirError(
                422,
                f"{field} must reference a Patient of this server, not {ref.reference!r}.",
                expressions=[(field, "unresolvable reference")],
            )
        cache = resolved_patients.get()
        if cache is not None and patient_id in cache:
            actor.require(Cap.CLINICAL_VIEW)
            return cache[patient_id]
        patient = selectors.patient_get_for_actor(
            actor, patient_id, capability=Cap.CLINICAL_VIEW, only=only if cache is None else ()
        )
        if cache is not None:
            cache[patient_id] = patient
        return patient
    if ref.identifier and ref.identifier.value:
        mrn = derived_mrn(ref.identifier.system, ref.identifier.value)
        found = Patient.objects.filter(mrn=mrn).first()
        if found is not None:
            actor.require(Cap.CLINICAL_VIEW)
            return found
        raise FhirError(
            422,
            f"{field}: no patient has the identifier {ref.identifier.value!r}.",
            expressions=[(field, "unresolvable identifier")],
        )
    raise FhirError(
        400, f"{field} needs a reference or an identifier.", expressions=[(field, "empty")]
    )


def text_of(concept: Any) -> str:
    if concept is None:
        return ""
    if concept.text:
        return concept.text
    for coding in concept.coding or []:
        if coding.display:
            return coding.display
        if coding.code:
            return coding.code
    return ""


def status_code(concept: Any) -> str:
    if concept is None:
        return ""
    for coding in concept.coding or []:
        if coding.code:
            return coding.code
    return ""


def notes(resource: Any) -> str:
    return "\n".join(n.text for n in (resource.note or []) if n.text)
