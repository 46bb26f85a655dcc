"""AdverseEvent <-> sessions AdverseEvent (an event during a treatment session).

Created only through `sessions.services.adverse_event_record`, so validation and escalation are
the service's: grade >= 3, a serious event, or an event type escalated at any grade (loss of
consciousness, respiratory depression, suicidal thoughts) notifies a prescriber on commit.

Mapping (R4B has no CTCAE grade or action-taken element):
- event: the ketamine adverse-event list (`sessions.adverse_events`), code system EVENT_SYSTEM;
  event.text carries the description ("other" requires one).
- severity: the CTCAE grade 1-5 as a GRADE_SYSTEM coding (required on create); grades 1-3 also
  carry the equivalent adverse-event-severity code mild / moderate / severe (§9.1 [C] #155, #156
  define grades 1-3 as mild, moderate, severe). Grades 4 and 5 have no R4 equivalent and carry
  the grade coding only.
- seriousness: adverse-event-seriousness Serious / Non-serious (absent: non-serious).
- outcome: adverse-event-outcome (recovering <-> resolving); "transferred to emergency care" has
  no R4 code: it is sent as `ongoing` with a second coding of OUTCOME_SYSTEM, which create also
  accepts for every outcome.
- extensions: action taken (valueString) and whether the event was escalated (valueBoolean,
  read-only: the rule decides it).
- suspectEntity: the session's MedicationAdministrations (the ketamine or esketamine given).
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any

from django.db.models import QuerySet

from ketaclinic.accounts.actor import Actor
from ketaclinic.accounts.roles import Cap
from ketaclinic.core.errors import NotFound
from ketaclinic.fhir.common import as_datetime, emit, instant, meta, reference_id
from ketaclinic.fhir.outcome import FhirError
from ketaclinic.fhir.search import any_of, as_uuid, date_q, patient_ids
from ketaclinic.sessions import selectors, services
from ketaclinic.sessions.adverse_events import ADVERSE_EVENTS_BY_CODE, GRADE_DEFINITIONS, CtcaeGrade
from ketaclinic.sessions.models import AdverseEvent, DoseAdministration

BASE = "https://ketaclinic.org/fhir/"
EVENT_SYSTEM = BASE + "CodeSystem/ketamine-adverse-event"
GRADE_SYSTEM = BASE + "CodeSystem/ctcae-grade"
OUTCOME_SYSTEM = BASE + "CodeSystem/adverse-event-outcome"
EXT_ACTION = BASE + "StructureDefinition/adverse-event-action-taken"
EXT_ESCALATED = BASE + "StructureDefinition/adverse-event-escalated"
SEVERITY = "http://terminology.hl7.org/CodeSystem/adverse-event-severity"
SERIOUSNESS = "http://terminology.hl7.org/CodeSystem/adverse-event-seriousness"
OUTCOME = "http://terminology.hl7.org/CodeSystem/adverse-event-outcome"
SEVERITY_OF_GRADE = {1: ("mild", "Mild"), 2: ("moderate", "Moderate"), 3: ("severe", "Severe")}
# ours -> (R4 code, R4 display)
OUTCOME_TO_FHIR = {
    "resolved": ("resolved", "Resolved"),
    "resolving": ("recovering", "Recovering"),
    "ongoing": ("ongoing", "Ongoing"),
    "transferred": ("ongoing", "Ongoing"),
    "fatal": ("fatal", "Fatal"),
    "unknown": ("unknown", "Unknown"),
}
OUTCOME_FROM_FHIR = {
    fhir: ours for ours, (fhir, _) in OUTCOME_TO_FHIR.items() if ours != "transferred"
}


def _coding(concept: Any, system: str) -> str | None:
    for coding in (concept.coding or []) if concept is not None else []:
        if coding.system == system and coding.code:
            return str(coding.code)
    return None


# --- to FHIR --------------------------------------------------------------------------------


def event_to_fhir(row: AdverseEvent, administrations: list[DoseAdministration]) -> dict[str, Any]:
    kind = ADVERSE_EVENTS_BY_CODE.get(row.event_code)
    label = kind.label if kind else row.event_code
    grade = CtcaeGrade(row.grade)
    severity = [
        {
            "system": GRADE_SYSTEM,
            "code": str(row.grade),
            "display": f"Grade {row.grade}",
        }
    ]
    if row.grade in SEVERITY_OF_GRADE:
        code, display = SEVERITY_OF_GRADE[row.grade]
        severity.insert(0, {"system": SEVERITY, "code": code, "display": display})
    outcome_code, outcome_display = OUTCOME_TO_FHIR[row.outcome]
    serious = ("Serious", "Serious") if row.serious else ("Non-serious", "Non-serious")
    extension: list[dict[str, Any]] = [{"url": EXT_ESCALATED, "valueBoolean": row.escalated}]
    if row.action_taken:
        extension.insert(0, {"url": EXT_ACTION, "valueString": row.action_taken})
    data: dict[str, Any] = {
        "resourceType": "AdverseEvent",
        "id": str(row.public_id),
        "meta": meta(row),
        "extension": extension,
        "actuality": "actual",
        "event": {
            "coding": [{"system": EVENT_SYSTEM, "code": row.event_code, "display": label}],
            "text": row.description or label,
        },
        "subject": {"reference": f"Patient/{row.patient.public_id}"},
        "encounter": {"reference": f"Encounter/{row.session.public_id}"},
        "date": instant(row.onset_at),
        "recordedDate": instant(row.created_at),
        "seriousness": {
            "coding": [{"system": SERIOUSNESS, "code": serious[0], "display": serious[1]}]
        },
        "severity": {
            "coding": severity,
            "text": f"CTCAE grade {row.grade}: {GRADE_DEFINITIONS[grade]}",
        },
        "outcome": {
            "coding": [
                {"system": OUTCOME, "code": outcome_code, "display": outcome_display},
                {
                    "system": OUTCOME_SYSTEM,
                    "code": row.outcome,
                    "display": row.get_outcome_display(),
                },
            ],
            "text": row.get_outcome_display(),
        },
        "recorder": {"display": row.recorded_by.display_name},
    }
    suspects = [
        {"instance": {"reference": f"MedicationAdministration/{a.public_id}"}}
        for a in administrations
    ]
    if suspects:
        data["suspectEntity"] = suspects
    return data


def administrations_by_session(rows: list[AdverseEvent]) -> dict[int, list[DoseAdministration]]:
    found: dict[int, list[DoseAdministration]] = defaultdict(list)
    session_ids = {r.session_id for r in rows}
    if session_ids:
        for administration in (
            DoseAdministration.objects.filter(session_id__in=session_ids)
            .only("pk", "public_id", "session_id")
            .order_by("started_at", "pk")
        ):
            found[administration.session_id].append(administration)
    return found


def to_fhir(row: AdverseEvent, administrations: list[DoseAdministration]) -> dict[str, Any]:
    return emit(event_to_fhir(row, administrations))


def one_to_fhir(row: AdverseEvent) -> dict[str, Any]:
    return to_fhir(row, administrations_by_session([row]).get(row.session_id, []))


# --- read and search -----------------------------------------------------------------------


def _queryset() -> QuerySet:
    return AdverseEvent.objects.select_related("patient", "session", "recorded_by")


def read(actor: Actor, resource_id: str) -> AdverseEvent:
    actor.require(Cap.SESSION_VIEW)
    key = as_uuid(resource_id)
    row = _queryset().filter(public_id=key).first() if key else None
    if row is None:
        raise NotFound("No such AdverseEvent.")
    return row


def search(actor: Actor, items: list[tuple[str, list[str]]], sort: str) -> QuerySet:
    actor.require(Cap.SESSION_VIEW)
    queryset = _queryset()
    for name, values in items:
        if name in ("patient", "subject"):
            queryset = queryset.filter(patient__public_id__in=patient_ids(values))
        elif name == "_id":
            queryset = queryset.filter(public_id__in=[k for v in values if (k := as_uuid(v))])
        elif name == "date":
            queryset = queryset.filter(any_of(values, lambda v: date_q("onset_at", v)))
        elif name == "encounter":
            ids = [k for v in values if (k := as_uuid(reference_id(v, "Encounter") or v))]
            queryset = queryset.filter(session__public_id__in=ids)
        else:
            raise FhirError(400, f"Unsupported search parameter {name!r}.")
    prefix = "-" if (sort or "-date").startswith("-") else ""
    return queryset.order_by(f"{prefix}onset_at", f"{prefix}pk")


# --- create --------------------------------------------------------------------------------


def _event_code(resource: Any) -> tuple[str, str]:
    code = _coding(resource.event, EVENT_SYSTEM)
    if code not in ADVERSE_EVENTS_BY_CODE:
        raise FhirError(
            422,
            f"AdverseEvent.event must be coded from {EVENT_SYSTEM}: "
            + ", ".join(ADVERSE_EVENTS_BY_CODE),
            expressions=[("AdverseEvent.event", "unsupported event code")],
        )
    text = (resource.event.text or "").strip()
    label = ADVERSE_EVENTS_BY_CODE[code].label
    return code, text if text != label else ""


def _grade(resource: Any) -> int:
    code = _coding(resource.severity, GRADE_SYSTEM)
    if code not in {str(g.value) for g in CtcaeGrade}:
        raise FhirError(
            422,
            f"AdverseEvent.severity needs the CTCAE grade 1-5 (a coding of {GRADE_SYSTEM}).",
            expressions=[("AdverseEvent.severity", "CTCAE grade required")],
        )
    return int(code)


def _serious(resource: Any) -> bool:
    code = _coding(resource.seriousness, SERIOUSNESS)
    if code in (None, "Non-serious"):
        return False
    if code == "Serious":
        return True
    raise FhirError(
        422,
        f"AdverseEvent.seriousness: use Serious or Non-serious ({SERIOUSNESS}), not {code!r}.",
        expressions=[("AdverseEvent.seriousness", "Serious or Non-serious")],
    )


def _outcome(resource: Any) -> str:
    ours = _coding(resource.outcome, OUTCOME_SYSTEM)
    if ours is not None:
        return ours  # the service refuses an unknown one
    code = _coding(resource.outcome, OUTCOME)
    if code is None:
        return AdverseEvent.Outcome.ONGOING
    if code not in OUTCOME_FROM_FHIR:
        raise FhirError(
            422,
            f"AdverseEvent.outcome {code!r} is not recorded here; use one of "
            + ", ".join(OUTCOME_FROM_FHIR),
            expressions=[("AdverseEvent.outcome", "unsupported outcome")],
        )
    return OUTCOME_FROM_FHIR[code]


def create(actor: Actor, resource: Any) -> AdverseEvent:
    """Record the event in its session through adverse_event_record."""
    if resource.actuality != "actual":
        raise FhirError(
            422,
            "Only actual adverse events are recorded (actuality actual).",
            expressions=[("AdverseEvent.actuality", "must be actual")],
        )
    session_id = reference_id(
        resource.encounter.reference if resource.encounter else None, "Encounter"
    )
    if session_id is None:
        raise FhirError(
            422,
            "AdverseEvent.encounter must reference the session's Encounter.",
            expressions=[("AdverseEvent.encounter", "Encounter reference required")],
        )
    session = selectors.session_get(actor, session_id, capability=Cap.SESSION_RUN)
    subject = reference_id(resource.subject.reference, "Patient")
    if subject != str(session.patient.public_id):
        raise FhirError(
            422,
            "AdverseEvent.subject must be the patient of the session.",
            expressions=[("AdverseEvent.subject", "not the session's patient")],
        )
    event_code, description = _event_code(resource)
    action = next((e.valueString for e in resource.extension or [] if e.url == EXT_ACTION), "")
    return services.adverse_event_record(
        actor=actor,
        session=session,
        event_code=event_code,
        grade=_grade(resource),
        serious=_serious(resource),
        onset_at=as_datetime(resource.date, "AdverseEvent.date"),
        action_taken=action or "",
        outcome=_outcome(resource),
        description=description,
    )
