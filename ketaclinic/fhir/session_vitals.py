"""Vital-sign Observations of a treatment session's flowsheet (VitalsEntry rows).

A flowsheet row holds up to four vital signs; each is one Observation, derived from the row (as
survey Observations are derived from questionnaire responses), with `encounter` the session's
Encounter. Ids are "<row id>.<part>", part one of bp, hr, spo2, rr. Nothing is copied to the
chart's VitalSign table: a blood pressure measured during dosing must not read as a new resting
blood pressure (the screening decision would be invalidated by it).

A vital-sign Observation POSTed with an `encounter` that is a session of this server is recorded
through `sessions.services.vitals_record`, so alerts are classified against the clinic's policy
exactly as for the flowsheet; each alert is the Observation's `interpretation` (H/L warning,
HH/LL critical) and, with Prefer: return=OperationOutcome, a warning issue. A reading taken
before dosing starts is a pre-dose reading: the dose is refused if it is above the gate.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from django.db.models import CharField, F, Q, QuerySet, Value

from ketaclinic.accounts.actor import Actor
from ketaclinic.accounts.roles import Cap
from ketaclinic.core import clock, shapes
from ketaclinic.core.errors import NotFound
from ketaclinic.fhir import observations
from ketaclinic.fhir.common import as_datetime, emit, instant, meta, reference_id, resolve_patient
from ketaclinic.fhir.outcome import FhirError
from ketaclinic.fhir.search import SearchRequest, any_of, as_uuid, date_q, session_keys, token
from ketaclinic.sessions import selectors, services
from ketaclinic.sessions.models import TreatmentSession, VitalsEntry

LOINC = observations.LOINC
UCUM = observations.UCUM
INTERPRETATION = "http://terminology.hl7.org/CodeSystem/v3-ObservationInterpretation"
SRC_PREFIX = "s:"


@dataclass(frozen=True)
class Part:
    name: str
    codes: tuple[tuple[str, str], ...]  # LOINC (code, display), the first the profile's
    profile: str
    unit: str
    units: tuple[str, ...]  # UCUM codes accepted on input
    fields: tuple[str, ...]  # VitalsEntry fields (and alert measures)


PARTS: dict[str, Part] = {
    "bp": Part(
        "bp",
        (("85354-9", "Blood pressure panel with all children optional"),),
        "bp",
        "mm[Hg]",
        ("mm[Hg]",),
        ("systolic", "diastolic"),
    ),
    "hr": Part(
        "hr",
        (("8867-4", "Heart rate"),),
        "heartrate",
        "/min",
        ("/min", "{beats}/min"),
        ("heart_rate",),
    ),
    "spo2": Part(
        "spo2",
        (
            ("2708-6", "Oxygen saturation in Arterial blood"),
            ("59408-5", "Oxygen saturation in Arterial blood by Pulse oximetry"),
        ),
        "oxygensat",
        "%",
        ("%",),
        ("spo2",),
    ),
    "rr": Part(
        "rr",
        (("9279-1", "Respiratory rate"),),
        "resprate",
        "/min",
        ("/min", "{breaths}/min"),
        ("respiratory_rate",),
    ),
}
PART_OF_CODE = {code: part.name for part in PARTS.values() for code, _ in part.codes} | {
    alias: "bp" for alias, target in observations.ALIASES.items() if target == "85354-9"
}
COMPONENTS = {"systolic": observations.SYSTOLIC, "diastolic": observations.DIASTOLIC}


@dataclass
class SessionVital:
    entry: VitalsEntry
    part: str
    fhir_issues: list[dict[str, Any]] = field(default_factory=list)

    @property
    def patient(self) -> Any:
        return self.entry.session.patient


def observation_id(entry: VitalsEntry, part: str) -> str:
    return f"{entry.public_id}.{part}"


def is_session_id(resource_id: str) -> bool:
    key, _, part = resource_id.partition(".")
    return part in PARTS and as_uuid(key) is not None


def _has(entry: VitalsEntry, part: str) -> bool:
    return all(getattr(entry, name) is not None for name in PARTS[part].fields)


def session_reference(resource: Any) -> str | None:
    """The session id when the Observation's encounter is "Encounter/<uuid>" (ours), else None:
    other encounter references (an imported record's) keep the chart behaviour."""
    reference = resource.encounter.reference if resource.encounter else None
    session_id = reference_id(reference, "Encounter")
    return session_id if session_id and as_uuid(session_id) else None


# --- to FHIR --------------------------------------------------------------------------------


def _quantity(value: Any, unit: str) -> dict[str, Any]:
    return {"value": float(value), "unit": unit, "system": UCUM, "code": unit}


def _interpretations(entry: VitalsEntry, fields: tuple[str, ...]) -> list[dict[str, Any]]:
    found = []
    for alert in entry.alerts or []:
        if alert.get("measure") not in fields:
            continue
        critical = alert.get("severity") == "critical"
        if alert.get("direction") == "above":
            code, display = ("HH", "Critical high") if critical else ("H", "High")
        else:
            code, display = ("LL", "Critical low") if critical else ("L", "Low")
        found.append(
            {
                "coding": [{"system": INTERPRETATION, "code": code, "display": display}],
                "text": alert.get("message", ""),
            }
        )
    return found


def vital_to_fhir(vital: SessionVital) -> dict[str, Any]:
    entry, part = vital.entry, PARTS[vital.part]
    session = entry.session
    data: dict[str, Any] = {
        "resourceType": "Observation",
        "id": observation_id(entry, part.name),
        "meta": {
            **meta(entry),
            "profile": [f"http://hl7.org/fhir/StructureDefinition/{part.profile}"],
        },
        "status": "final",
        "category": [observations.VITAL_SIGNS],
        "code": {
            "coding": [{"system": LOINC, "code": c, "display": d} for c, d in part.codes],
            "text": part.codes[0][1],
        },
        "subject": {"reference": f"Patient/{session.patient.public_id}"},
        "encounter": {"reference": f"Encounter/{session.public_id}"},
        "effectiveDateTime": instant(entry.taken_at),
        "performer": [{"display": entry.recorded_by.display_name}],
    }
    interpretations = _interpretations(entry, part.fields)
    if interpretations:
        data["interpretation"] = interpretations
    if entry.predose:
        data["note"] = [{"text": "Pre-dose reading."}]
    if part.name == "bp":
        data["component"] = [
            {
                "code": {
                    "coding": [
                        {
                            "system": LOINC,
                            "code": COMPONENTS[name],
                            "display": f"{name.capitalize()} blood pressure",
                        }
                    ]
                },
                "valueQuantity": _quantity(getattr(entry, name), part.unit),
                **(
                    {"interpretation": found} if (found := _interpretations(entry, (name,))) else {}
                ),
            }
            for name in ("systolic", "diastolic")
        ]
    else:
        data["valueQuantity"] = _quantity(getattr(entry, part.fields[0]), part.unit)
    return data


# --- read and search -----------------------------------------------------------------------


def _entries() -> QuerySet:
    return VitalsEntry.objects.select_related("session", "session__patient", "recorded_by")


def read(actor: Actor, resource_id: str) -> SessionVital | None:
    """The session vital with this id, or None when no flowsheet row has it."""
    actor.require(Cap.SESSION_VIEW)
    key, _, part = resource_id.partition(".")
    entry = _entries().filter(public_id=as_uuid(key)).first()
    if entry is None:
        return None
    if not _has(entry, part):
        raise NotFound("No such Observation.")
    return SessionVital(entry, part)


def _wanted(search: SearchRequest) -> set[str]:
    wanted = set(PARTS)
    for name, values in search.items():
        if name == "category" and not any(token(v)[1] == "vital-signs" for v in values):
            return set()
        if name == "identifier":
            return set()  # derived Observations carry no identifier
        if name == "code":
            codes = {token(v)[1] for v in values if token(v)[0] in (None, "", LOINC)}
            wanted &= {PART_OF_CODE[c] for c in codes if c in PART_OF_CODE}
    return wanted


def union_parts(actor: Actor, search: SearchRequest) -> list[QuerySet]:
    """Values querysets (measured_at, src, pk) for the search's session vitals, one per part."""
    if not actor.can(Cap.SESSION_VIEW):
        return []
    if any(name == "value-quantity" for name, _ in search.items()):
        return []  # quantity search covers the chart's vital signs (fhir/quantity.py)
    wanted = _wanted(search)
    common = Q()
    ids: dict[str, list[Any]] | None = None
    for name, values in search.items():
        if name in ("patient", "subject"):
            # from the patient's own sessions (vitals_session_time), not the clinic's flowsheet
            common &= Q(session_id__in=session_keys(search, values))
        elif name == "date":
            common &= any_of(values, lambda v: date_q("taken_at", v))
        elif name == "_lastUpdated":
            common &= any_of(values, lambda v: date_q("updated_at", v))
        elif name == "encounter":
            keys = [k for v in values if (k := as_uuid(reference_id(v, "Encounter") or v))]
            common &= Q(session__public_id__in=keys)
        elif name == "_id":
            ids = {}
            for value in values:
                key, _, part = value.partition(".")
                if (uuid := as_uuid(key)) and part in PARTS:
                    ids.setdefault(part, []).append(uuid)
    parts = []
    base = VitalsEntry.objects.filter(common).order_by()  # filtered once, then cloned
    for part in sorted(wanted):
        q = Q(**{f"{name}__isnull": False for name in PARTS[part].fields})
        if ids is not None:
            if part not in ids:
                continue
            q &= Q(public_id__in=ids[part])
        parts.append(
            base.filter(q)
            .annotate(
                measured_at=F("taken_at"), src=Value(SRC_PREFIX + part, output_field=CharField())
            )
            .values_list("measured_at", "src", "pk")
        )
    return parts


# What a search page's readings need of the session, its patient and the recorder: the rest of
# those rows (a session has 30 columns, JSON among them) cost more to load than the page's
# readings themselves (issue 13, FHIR search at 100,000 patients).
_PAGE_RELATED = (
    "session__public_id",
    "session__patient__public_id",
    "recorded_by__username",
    "recorded_by__first_name",
    "recorded_by__last_name",
)


def load(keys: list[tuple[Any, str, int]]) -> dict[tuple[str, int], SessionVital]:
    pks = {pk for _, src, pk in keys if src.startswith(SRC_PREFIX)}
    if not pks:
        return {}
    own = [f.name for f in VitalsEntry._meta.concrete_fields]
    rows = shapes.rows_in(
        "session-vital-page", lambda: _entries().only(*own, *_PAGE_RELATED), "pk", pks
    )
    entries = {e.pk: e for e in rows}
    return {
        (src, pk): SessionVital(entries[pk], src.removeprefix(SRC_PREFIX))
        for _, src, pk in keys
        if src.startswith(SRC_PREFIX) and pk in entries
    }


# --- create --------------------------------------------------------------------------------


def _whole(quantity: Any, part: Part, expression: str) -> int:
    if quantity is None or quantity.value is None:
        raise FhirError(
            400, f"{expression} is required.", expressions=[(expression, "value required")]
        )
    if quantity.system and quantity.system != UCUM:
        raise FhirError(422, f"{expression} must use UCUM units.", expressions=[(expression, UCUM)])
    unit = quantity.code or quantity.unit or ""
    if unit not in part.units:
        raise FhirError(
            422,
            f"{expression}: the flowsheet records this in {' or '.join(part.units)}, not "
            f"{unit or 'no unit'}.",
            expressions=[(expression, f"unit {part.units[0]} required")],
        )
    value = Decimal(str(quantity.value))
    if value != value.to_integral_value():
        raise FhirError(
            422,
            f"{expression}: the flowsheet records whole numbers, not {value}.",
            expressions=[(expression, "whole number required")],
        )
    return int(value)


def _values(resource: Any, part: Part) -> dict[str, int]:
    if part.name != "bp":
        return {part.fields[0]: _whole(resource.valueQuantity, part, "Observation.valueQuantity")}
    values = {}
    for component in resource.component or []:
        for coding in component.code.coding or []:
            for name, code in COMPONENTS.items():
                if coding.system == LOINC and coding.code == code:
                    values[name] = _whole(
                        component.valueQuantity, part, f"Observation.component[{code}]"
                    )
    missing = [COMPONENTS[n] for n in ("systolic", "diastolic") if n not in values]
    if missing:
        raise FhirError(
            422,
            "A blood-pressure panel needs systolic (8480-6) and diastolic (8462-4) components.",
            expressions=[("Observation.component", f"missing {', '.join(missing)}")],
        )
    return values


def record(actor: Actor, resource: Any, session_id: str) -> SessionVital:
    """Record the Observation as one flowsheet row of the session (vitals_record)."""
    session: TreatmentSession = selectors.session_get(actor, session_id, capability=Cap.SESSION_RUN)
    vital = observations.vital_code_of(resource)
    part_name = PART_OF_CODE.get(vital.code)
    if part_name is None:
        raise FhirError(
            422,
            "The session flowsheet records blood pressure, heart rate, SpO2 and respiratory rate "
            f"({', '.join(PART_OF_CODE)}); record {vital.display.lower()} on the chart, without "
            "an encounter.",
            expressions=[("Observation.code", "not a flowsheet vital sign")],
        )
    if resource.status not in ("final", "amended", "corrected"):
        raise FhirError(
            422,
            f"Only final results are recorded (status {resource.status!r}).",
            expressions=[("Observation.status", "use final, amended or corrected")],
        )
    if resource.subject is not None:
        patient = resolve_patient(actor, resource.subject, "Observation.subject")
        if patient.pk != session.patient_id:
            raise FhirError(
                422,
                "Observation.subject must be the patient of the session.",
                expressions=[("Observation.subject", "not the session's patient")],
            )
    effective = resource.effectiveDateTime or resource.effectiveInstant
    if effective is None and resource.effectivePeriod is not None:
        effective = resource.effectivePeriod.start
    taken_at = as_datetime(effective, "Observation.effectiveDateTime")
    if taken_at is None:
        raise FhirError(
            400,
            "A vital sign needs its time (effectiveDateTime).",
            expressions=[("Observation.effective", "required")],
        )
    part = PARTS[part_name]
    [row] = services.vitals_record(
        actor=actor,
        session=session,
        samples=[{"taken_at": taken_at, **_values(resource, part)}],
    )
    entry = row.as_entry(session, actor, at=clock.now())
    issues = [
        {
            "severity": "warning",
            "code": "business-rule",
            "diagnostics": f"{alert['severity'].capitalize()} alert: {alert['message']}.",
        }
        for alert in entry.alerts
    ]
    return SessionVital(entry, part_name, issues)


def to_fhir(vital: SessionVital) -> dict[str, Any]:
    return emit(vital_to_fhir(vital))
