"""Encounter <-> TreatmentSession (one monitored ketamine or esketamine session).

Create schedules the session through `sessions.services.session_schedule`, so the treatment gate
(screening decision and consent for the route) applies exactly as in the UI and the JSON API: a
refusal is a 422 OperationOutcome naming what is missing. Update accepts two changes: status
`finished`, which is `session_discharge` with every discharge criterion evaluated again (the
minimum observation time included), and status `cancelled` before any dose, which is
`session_abort` with the reason from hospitalization.dischargeDisposition.text. The other steps
(check-in, pre-checks, dose order, an abort after the dose) go through the JSON API.

Mapping:
- status: scheduled -> planned; checked_in -> arrived; prechecks_passed, dosing, monitoring,
  ready_for_discharge -> in-progress; discharged -> finished; aborted -> cancelled when no drug
  was given, finished when the abort came after the dose started (the encounter did happen).
  statusHistory holds the earlier statuses from the session's transitions.
- class: AMB (ambulatory) for clinic sessions, HH (home health) for at-home sessions.
- period: start = check-in (the scheduled time while planned), end = discharge (or the abort).
- basedOn: the treatment plan, as a logical reference (identifier system
  urn:ketaclinic:treatment-plan): the plan is the prescriber's order for the course of sessions.
  On create it names the plan; without it the patient's one active plan is used.
- serviceType: the protocol version (urn:ketaclinic:protocol, e.g. iv-ketamine-induction@1).
- reasonReference: the depression Condition treated (see `ketaclinic.fhir.indication`).
"""

from __future__ import annotations

from typing import Any

from django.db.models import F, Prefetch, Q, QuerySet
from django.db.models.functions import Coalesce

from ketaclinic.accounts.actor import Actor
from ketaclinic.accounts.roles import Cap
from ketaclinic.core.errors import NotFound
from ketaclinic.fhir import indication
from ketaclinic.fhir.common import as_datetime, emit, instant, meta, reference_id, resolve_patient
from ketaclinic.fhir.outcome import FhirError
from ketaclinic.fhir.search import any_of, as_uuid, date_q, patient_ids, token
from ketaclinic.patients.models import Condition, Patient
from ketaclinic.protocols.models import TreatmentPlan
from ketaclinic.sessions import selectors, services
from ketaclinic.sessions.models import SessionTransition, TreatmentSession
from ketaclinic.sessions.workflow import SessionState

ACT_CODE = "http://terminology.hl7.org/CodeSystem/v3-ActCode"
PLAN_SYSTEM = "urn:ketaclinic:treatment-plan"
PROTOCOL_SYSTEM = "urn:ketaclinic:protocol"
CLASSES = {
    "clinic": {"system": ACT_CODE, "code": "AMB", "display": "ambulatory"},
    "home": {"system": ACT_CODE, "code": "HH", "display": "home health"},
}
IN_PROGRESS = (
    SessionState.PRECHECKS_PASSED,
    SessionState.DOSING,
    SessionState.MONITORING,
    SessionState.READY_FOR_DISCHARGE,
)
STATUS_OF_STATE = {
    SessionState.SCHEDULED: "planned",
    SessionState.CHECKED_IN: "arrived",
    **dict.fromkeys(IN_PROGRESS, "in-progress"),
    SessionState.DISCHARGED: "finished",
    SessionState.ABORTED: "cancelled",
}
STATUSES = ("planned", "arrived", "in-progress", "finished", "cancelled")

ABORT_PREFIX = "Session aborted: "


def encounter_status(state: str, *, dose_given: bool) -> str:
    if state == SessionState.ABORTED and dose_given:
        return "finished"
    return STATUS_OF_STATE[SessionState(state)]


def _status_q(status: str) -> Q:
    if status == "cancelled":
        return Q(state=SessionState.ABORTED, dose_started_at__isnull=True)
    if status == "finished":
        return Q(state=SessionState.DISCHARGED) | Q(
            state=SessionState.ABORTED, dose_started_at__isnull=False
        )
    states = [s for s, fhir in STATUS_OF_STATE.items() if fhir == status]
    return Q(state__in=states) if states else Q(pk__in=[])


# --- to FHIR --------------------------------------------------------------------------------


def _history(session: TreatmentSession) -> list[dict[str, Any]]:
    """Earlier statuses, merged where several session states share one Encounter status."""
    dose_given = session.dose_started_at is not None
    steps = [("planned", session.created_at)]
    for transition in session.transitions.all():
        status = encounter_status(transition.to_state, dose_given=dose_given)
        if status != steps[-1][0]:
            steps.append((status, transition.at))
    return [
        {"status": status, "period": {"start": instant(start), "end": instant(steps[i + 1][1])}}
        for i, (status, start) in enumerate(steps[:-1])
    ]


def session_to_fhir(session: TreatmentSession, reason: Condition | None) -> dict[str, Any]:
    dose_given = session.dose_started_at is not None
    start = session.checked_in_at or session.scheduled_at
    period = {"start": instant(start)}
    end = session.discharged_at
    if session.state == SessionState.ABORTED:
        end = session.state_changed_at
    if end is not None and end >= start:
        period["end"] = instant(end)
    protocol = session.protocol
    place = session.clinic.name + (f", chair {session.chair}" if session.chair else "")
    data: dict[str, Any] = {
        "resourceType": "Encounter",
        "id": str(session.public_id),
        "meta": meta(session),
        "status": encounter_status(session.state, dose_given=dose_given),
        "class": CLASSES.get(session.setting, CLASSES["clinic"]),
        "serviceType": {
            "coding": [
                {"system": PROTOCOL_SYSTEM, "code": session.protocol_key, "display": protocol.title}
            ],
            "text": protocol.title,
        },
        "subject": {"reference": f"Patient/{session.patient.public_id}"},
        "basedOn": [
            {
                "identifier": {"system": PLAN_SYSTEM, "value": str(session.plan.public_id)},
                "display": f"Treatment plan: {protocol.title}",
            }
        ],
        "period": period,
        "location": [{"location": {"display": place}}],
    }
    history = _history(session)
    if history:
        data["statusHistory"] = history
    reasons = indication.reason_reference(reason)
    if reasons:
        data["reasonReference"] = reasons
    if session.state == SessionState.ABORTED and session.abort_reason:
        data["hospitalization"] = {
            "dischargeDisposition": {"text": f"{ABORT_PREFIX}{session.abort_reason}"}
        }
    return data


def to_fhir(session: TreatmentSession, reason: Condition | None = None) -> dict[str, Any]:
    return emit(session_to_fhir(session, reason))


def reasons_for(sessions: list[TreatmentSession]) -> dict[int, Condition]:
    return indication.treated_conditions(s.patient_id for s in sessions)


def one_to_fhir(session: TreatmentSession) -> dict[str, Any]:
    return to_fhir(session, reasons_for([session]).get(session.patient_id))


# --- read and search -----------------------------------------------------------------------


def _queryset() -> QuerySet:
    return TreatmentSession.objects.select_related(
        "patient", "plan", "protocol", "clinic"
    ).prefetch_related(
        Prefetch("transitions", queryset=SessionTransition.objects.order_by("at", "pk"))
    )


def read(actor: Actor, resource_id: str) -> TreatmentSession:
    actor.require(Cap.SESSION_VIEW)
    key = as_uuid(resource_id)
    session = _queryset().filter(public_id=key).first() if key else None
    if session is None:
        raise NotFound("No such Encounter.")
    return session


def search(actor: Actor, items: list[tuple[str, list[str]]], sort: str) -> QuerySet:
    actor.require(Cap.SESSION_VIEW)
    queryset = _queryset().annotate(start_at=Coalesce(F("checked_in_at"), F("scheduled_at")))
    for name, values in items:
        if name in ("patient", "subject"):
            queryset = queryset.filter(patient__public_id__in=patient_ids(values))
        elif name == "_id":
            queryset = queryset.filter(public_id__in=[k for v in values if (k := as_uuid(v))])
        elif name == "status":
            queryset = queryset.filter(any_of(values, lambda v: _status_q(token(v)[1])))
        elif name == "date":
            queryset = queryset.filter(any_of(values, lambda v: date_q("start_at", v)))
        else:
            raise FhirError(400, f"Unsupported search parameter {name!r}.")
    descending = (sort or "-date").startswith("-")
    prefix = "-" if descending else ""
    return queryset.order_by(f"{prefix}start_at", f"{prefix}pk")


# --- create and update ---------------------------------------------------------------------


def _plan(patient: Patient, resource: Any) -> TreatmentPlan:
    named = [
        ref.identifier.value
        for ref in resource.basedOn or []
        if ref.identifier is not None and ref.identifier.system == PLAN_SYSTEM
    ]
    if named:
        key = as_uuid(named[0] or "")
        plan = (
            TreatmentPlan.objects.select_related("protocol").filter(public_id=key).first()
            if key
            else None
        )
        if plan is None or plan.patient_id != patient.pk:
            raise FhirError(
                422,
                f"Encounter.basedOn: {named[0]!r} is not a treatment plan of this patient.",
                expressions=[("Encounter.basedOn", "unknown treatment plan")],
            )
        return plan
    plans = selectors.schedulable_plans(patient)
    if len(plans) == 1:
        return plans[0]
    why = (
        "The patient has no active treatment plan: a prescriber creates one first."
        if not plans
        else "The patient has several active treatment plans: name one in basedOn "
        f"(identifier system {PLAN_SYSTEM})."
    )
    raise FhirError(422, why, expressions=[("Encounter.basedOn", "treatment plan required")])


def create(actor: Actor, resource: Any) -> TreatmentSession:
    """Schedule a session: status planned, the patient, the plan (basedOn) and period.start."""
    if resource.status != "planned":
        raise FhirError(
            422,
            f"A new session is created as planned, not {resource.status!r}; the later steps "
            "follow the session workflow.",
            expressions=[("Encounter.status", "must be planned")],
        )
    patient = resolve_patient(actor, resource.subject, "Encounter.subject")
    plan = _plan(patient, resource)
    expected = CLASSES.get(plan.protocol.setting, CLASSES["clinic"])["code"]
    given = resource.class_fhir.code if resource.class_fhir else None
    if given and given != expected:
        raise FhirError(
            422,
            f"The plan's protocol is given as {expected}, not {given}.",
            expressions=[("Encounter.class", f"must be {expected}")],
        )
    start = resource.period.start if resource.period else None
    scheduled_at = as_datetime(start, "Encounter.period.start")
    if scheduled_at is None:
        raise FhirError(
            400,
            "Encounter.period.start (the scheduled time) is required.",
            expressions=[("Encounter.period.start", "required")],
        )
    return services.session_schedule(actor=actor, plan=plan, scheduled_at=scheduled_at)


def update(actor: Actor, resource_id: str, resource: Any) -> TreatmentSession:
    """Only status `finished` moves the session (discharge); anything else is refused."""
    session = selectors.session_get(actor, resource_id, capability=Cap.SESSION_RUN)
    subject = resource.subject.reference if resource.subject else None
    if subject is not None and reference_id(subject, "Patient") != str(session.patient.public_id):
        raise FhirError(
            422,
            "An update cannot move a session to another patient.",
            expressions=[("Encounter.subject", "must be the session's patient")],
        )
    current = encounter_status(session.state, dose_given=session.dose_started_at is not None)
    if resource.status == current:
        return session
    if resource.status == "cancelled":
        return _cancel(actor, session, resource)
    if resource.status != "finished":
        raise FhirError(
            422,
            f"Only status finished (discharge) or cancelled (abort before the dose) can be set "
            f"through FHIR, not {resource.status!r}; check-in, pre-checks and dose orders go "
            "through the JSON API.",
            expressions=[("Encounter.status", "only finished or cancelled is accepted")],
        )
    return services.session_discharge(actor=actor, session=session)


def _cancel(actor: Actor, session: TreatmentSession, resource: Any) -> TreatmentSession:
    """Abort a session before any drug was given, with the reason the clinician states.

    R4 Encounter has no element for why it was cancelled; the reason travels where this server
    emits it, hospitalization.dischargeDisposition.text. Once a dose started, the encounter did
    happen (it reads as finished), and the abort is recorded on the flowsheet or the JSON API.
    """
    if session.dose_started_at is not None:
        raise FhirError(
            422,
            "A dose was started in this session, so it cannot be cancelled: abort it on the "
            "flowsheet or through the JSON API (POST /api/v1/sessions/{id}/abort).",
            expressions=[("Encounter.status", "a dose was started")],
        )
    disposition = (
        resource.hospitalization.dischargeDisposition if resource.hospitalization else None
    )
    text = (disposition.text or "") if disposition else ""
    reason = text.removeprefix(ABORT_PREFIX).strip()
    if not reason:
        raise FhirError(
            400,
            "Say why the session is cancelled in Encounter.hospitalization.dischargeDisposition"
            ".text.",
            expressions=[("Encounter.hospitalization.dischargeDisposition.text", "required")],
        )
    return services.session_abort(actor=actor, session=session, reason=reason)
