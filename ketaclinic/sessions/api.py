"""JSON API for treatment sessions (mounted at /api/v1/). Same services as the UI and FHIR."""

from __future__ import annotations

import uuid
from datetime import date, datetime
from decimal import Decimal
from typing import Any

import orjson
from django.http import HttpResponse
from ninja import Field, Router, Schema, Status
from pydantic import BaseModel

from ketaclinic.accounts.actor import Actor, ActorRequest
from ketaclinic.accounts.audit import audit_record
from ketaclinic.accounts.roles import Cap
from ketaclinic.core.api import ERROR_RESPONSES
from ketaclinic.core.errors import NotFound
from ketaclinic.patients import selectors as patient_selectors
from ketaclinic.protocols import selectors as protocol_selectors
from ketaclinic.protocols import services as protocol_services
from ketaclinic.sessions import selectors, services
from ketaclinic.sessions.models import NoteAmendment, SessionNote

router = Router(tags=["sessions"])


def _actor(request: ActorRequest) -> Actor:
    return request.auth


class PlanIn(Schema):
    patient: uuid.UUID
    protocol_id: str = Field(..., max_length=80)
    start_date: date
    current_amount: Decimal | None = None
    infusion_minutes: int | None = Field(None, ge=1, le=600)
    concentration_mg_per_ml: Decimal | None = None
    diluent_volume_ml: Decimal = Decimal("0")
    plan_measures: list[str] = []
    childbearing_potential: bool = False


class PlanOut(Schema):
    id: uuid.UUID = Field(..., alias="public_id")
    protocol_key: str
    phase: str
    current_amount: Decimal
    status: str


class SessionIn(Schema):
    plan: uuid.UUID
    scheduled_at: datetime
    chair: int | None = Field(None, ge=1, le=100)


class SessionOut(Schema):
    id: uuid.UUID = Field(..., alias="public_id")
    patient: uuid.UUID = Field(..., alias="patient.public_id")
    protocol_key: str
    drug: str
    route: str
    state: str
    chair: int | None
    session_number: int
    policy_key: str
    dose_started_at: datetime | None
    discharged_at: datetime | None
    last_alert_severity: str
    frequency_override_reason: str


class RemsEnrollmentIn(Schema):
    patient: uuid.UUID
    enrolled_on: date
    rems_patient_id: str = Field("", max_length=40)


class RemsEnrollmentOut(Schema):
    id: uuid.UUID = Field(..., alias="public_id")
    patient: uuid.UUID = Field(..., alias="patient.public_id")
    enrolled_on: date
    rems_patient_id: str


class FrequencyOverrideIn(Schema):
    reason: str = Field(..., max_length=2000)


class PlanExtensionIn(Schema):
    extra_sessions: int
    reason: str = Field(..., max_length=2000)


class PlanExtensionOut(Schema):
    id: uuid.UUID = Field(..., alias="public_id")
    phase: str = Field(..., alias="from_value")
    extra_sessions: str = Field(..., alias="to_value")
    reason: str


class VitalsIn(BaseModel):
    """A plain pydantic model: ninja's Schema wraps every instance it validates in a getter for
    ORM objects, which a batch of 100 samples paid 100 times (issue 13)."""

    taken_at: datetime | None = None
    systolic: int | None = Field(None, ge=1, le=400)
    diastolic: int | None = Field(None, ge=1, le=300)
    heart_rate: int | None = Field(None, ge=1, le=400)
    spo2: int | None = Field(None, ge=1, le=100)
    respiratory_rate: int | None = Field(None, ge=1, le=100)


class PrecheckIn(Schema):
    checklist: dict[str, bool]
    vitals: VitalsIn
    override_reason: str = Field("", max_length=2000)


class PrecheckOut(Schema):
    id: uuid.UUID = Field(..., alias="public_id")
    passed: bool
    unmet: list[dict[str, Any]]
    gate: dict[str, Any]
    weight: dict[str, Any]


class VitalsBatchIn(Schema):
    samples: list[VitalsIn] = Field(..., min_length=1, max_length=100)


class VitalsOut(Schema):
    id: uuid.UUID = Field(..., alias="public_id")
    taken_at: datetime
    systolic: int | None
    diastolic: int | None
    heart_rate: int | None
    spo2: int | None
    respiratory_rate: int | None
    severity: str
    alerts: list[dict[str, Any]]


class VitalsRecordedOut(Schema):
    id: uuid.UUID
    severity: str = Field(..., description='"critical", "warning" or "" (in range)')


class OrderIn(Schema):
    prescribed_amount: Decimal | None = None
    concentration_mg_per_ml: Decimal | None = None
    infusion_minutes: int | None = Field(None, ge=1, le=600)
    diluent_volume_ml: Decimal | None = None


class OrderOut(Schema):
    id: uuid.UUID = Field(..., alias="public_id")
    dose_mg: Decimal
    device_count: int | None
    algorithm: str
    protocol_key: str
    policy_key: str
    result: dict[str, Any]


class AdministrationIn(Schema):
    dose_mg: Decimal
    lot_number: str = Field(..., min_length=1, max_length=40)
    started_at: datetime | None = None
    ended_at: datetime | None = None
    device_count: int | None = Field(None, ge=1, le=10)
    note: str = Field("", max_length=2000)


class AdministrationOut(Schema):
    id: uuid.UUID = Field(..., alias="public_id")
    dose_mg: Decimal
    device_count: int | None
    lot_number: str
    started_at: datetime
    ended_at: datetime | None


class CompleteIn(Schema):
    ended_at: datetime | None = None


class AdverseEventIn(Schema):
    event_code: str = Field(..., max_length=40)
    grade: int = Field(..., ge=1, le=5)
    serious: bool = False
    onset_at: datetime | None = None
    action_taken: str = Field("", max_length=2000)
    outcome: str = "ongoing"
    description: str = Field("", max_length=2000)


class AdverseEventOut(Schema):
    id: uuid.UUID = Field(..., alias="public_id")
    event_code: str
    grade: int
    serious: bool
    escalated: bool
    outcome: str


class DischargeIn(Schema):
    alert_and_oriented: bool = False
    sedation_resolved: bool = False
    dissociation_resolved: bool = False
    respiratory_depression_resolved: bool = False
    clinically_stable: bool = False
    escort_present: bool = False
    vitals_override_reason: str = Field("", max_length=2000)


class DischargeOut(Schema):
    ready: bool
    result: dict[str, Any]


class NoteIn(Schema):
    text: str = Field(..., max_length=50_000)


class AmendIn(Schema):
    text: str = Field(..., min_length=1, max_length=50_000)
    reason: str = Field(..., min_length=5, max_length=200)


class NoteOut(Schema):
    id: uuid.UUID = Field(..., alias="public_id")
    text: str
    signed_at: datetime | None
    content_hash: str


class AbortIn(Schema):
    reason: str = Field(..., min_length=1, max_length=2000)


R = {**ERROR_RESPONSES}


def _session(request: ActorRequest, session_id: uuid.UUID, cap: Cap = Cap.SESSION_VIEW) -> Any:
    return selectors.session_get(_actor(request), session_id, capability=cap)


@router.post("/plans", response={201: PlanOut, **R})
def plan_create(request: ActorRequest, payload: PlanIn) -> Any:
    actor = _actor(request)
    patient = patient_selectors.patient_get_for_actor(actor, payload.patient)
    protocol_services.protocol_catalog_seed(organization=actor.organization)
    protocol = protocol_selectors.protocol_published(payload.protocol_id)
    if protocol is None:
        from ketaclinic.core.errors import NotFound

        raise NotFound("No published protocol with that id.")
    data = payload.dict(exclude={"patient", "protocol_id"})
    return Status(
        201, protocol_services.plan_create(actor=actor, patient=patient, protocol=protocol, **data)
    )


@router.post("/plans/{plan_id}/extensions", response={201: PlanExtensionOut, **R})
def plan_extend(request: ActorRequest, plan_id: uuid.UUID, payload: PlanExtensionIn) -> Any:
    """More dosing sessions in the plan's current phase than it planned (prescriber, audited)."""
    actor = _actor(request)
    plan = protocol_selectors.plan_get(actor, plan_id)
    return Status(
        201,
        protocol_services.plan_sessions_extend(
            actor=actor, plan=plan, extra_sessions=payload.extra_sessions, reason=payload.reason
        ),
    )


@router.post("/rems-enrollments", response={201: RemsEnrollmentOut, **R})
def rems_enroll(request: ActorRequest, payload: RemsEnrollmentIn) -> Any:
    """Record a patient's enrollment in the Spravato REMS (needed before any esketamine dose)."""
    actor = _actor(request)
    patient = patient_selectors.patient_get_for_actor(actor, payload.patient)
    return Status(
        201,
        services.rems_enroll(
            actor=actor,
            patient=patient,
            enrolled_on=payload.enrolled_on,
            rems_patient_id=payload.rems_patient_id,
        ),
    )


@router.post("/sessions", response={201: SessionOut, **R})
def session_schedule(request: ActorRequest, payload: SessionIn) -> Any:
    actor = _actor(request)
    plan = protocol_selectors.plan_get(actor, payload.plan)
    return Status(
        201,
        services.session_schedule(
            actor=actor, plan=plan, scheduled_at=payload.scheduled_at, chair=payload.chair
        ),
    )


@router.get("/sessions/{session_id}", response={200: SessionOut, **R})
def session_read(request: ActorRequest, session_id: uuid.UUID) -> Any:
    return _session(request, session_id)


@router.post("/sessions/{session_id}/check-in", response={200: SessionOut, **R})
def session_check_in(request: ActorRequest, session_id: uuid.UUID) -> Any:
    return services.session_check_in(actor=_actor(request), session=_session(request, session_id))


@router.post("/sessions/{session_id}/frequency-override", response={200: SessionOut, **R})
def frequency_override(
    request: ActorRequest, session_id: uuid.UUID, payload: FrequencyOverrideIn
) -> Any:
    """A prescriber allows this dose outside the gap or weekly limit, with a justification."""
    return services.session_frequency_override(
        actor=_actor(request), session=_session(request, session_id), reason=payload.reason
    )


@router.post("/sessions/{session_id}/prechecks", response={201: PrecheckOut, **R})
def precheck(request: ActorRequest, session_id: uuid.UUID, payload: PrecheckIn) -> Any:
    return Status(
        201,
        services.precheck_record(
            actor=_actor(request),
            session=_session(request, session_id),
            checklist=payload.checklist,
            vitals=payload.vitals.model_dump(exclude={"taken_at"}),
            taken_at=payload.vitals.taken_at,
            override_reason=payload.override_reason,
        ),
    )


@router.post("/sessions/{session_id}/dose-orders", response={201: OrderOut, **R})
def dose_order(request: ActorRequest, session_id: uuid.UUID, payload: OrderIn) -> Any:
    return Status(
        201,
        services.dose_order_sign(
            actor=_actor(request), session=_session(request, session_id), **payload.dict()
        ),
    )


@router.post("/sessions/{session_id}/administrations", response={201: AdministrationOut, **R})
def administer(request: ActorRequest, session_id: uuid.UUID, payload: AdministrationIn) -> Any:
    return Status(
        201,
        services.dose_administer(
            actor=_actor(request), session=_session(request, session_id), **payload.dict()
        ),
    )


@router.post("/sessions/{session_id}/dose-complete", response={200: SessionOut, **R})
def dose_complete(request: ActorRequest, session_id: uuid.UUID, payload: CompleteIn) -> Any:
    return services.dose_complete(
        actor=_actor(request), session=_session(request, session_id), ended_at=payload.ended_at
    )


@router.post("/sessions/{session_id}/vitals", response={201: list[VitalsRecordedOut], **R})
def vitals(request: ActorRequest, session_id: uuid.UUID, payload: VitalsBatchIn) -> Any:
    """A batch of up to 100 samples in one transaction. The answer is each row's id and severity
    in the order sent; GET returns the rows with their alerts. The answer is written directly
    (orjson): validating 100 rows of two fields the service just made cost more than storing them
    (issue 13); tests hold it to VitalsRecordedOut."""
    actor = _actor(request)
    session = selectors.session_ref(actor, session_id, related=services.VITALS_RELATED)
    # One dump of the whole batch (pydantic's own loop) instead of one call per sample.
    samples = payload.model_dump()["samples"]
    rows = services.vitals_record(actor=actor, session=session, samples=samples)
    body = orjson.dumps([{"id": str(row.public_id), "severity": row.severity} for row in rows])
    return HttpResponse(body, status=201, content_type="application/json")


@router.get("/sessions/{session_id}/vitals", response={200: list[VitalsOut], **R})
def vitals_list(request: ActorRequest, session_id: uuid.UUID) -> Any:
    return selectors.flowsheet(_session(request, session_id)).vitals


@router.post("/sessions/{session_id}/adverse-events", response={201: AdverseEventOut, **R})
def adverse_event(request: ActorRequest, session_id: uuid.UUID, payload: AdverseEventIn) -> Any:
    return Status(
        201,
        services.adverse_event_record(
            actor=_actor(request), session=_session(request, session_id), **payload.dict()
        ),
    )


@router.post("/sessions/{session_id}/discharge-checks", response={201: DischargeOut, **R})
def discharge_check(request: ActorRequest, session_id: uuid.UUID, payload: DischargeIn) -> Any:
    data = payload.dict()
    reason = data.pop("vitals_override_reason")
    return Status(
        201,
        services.discharge_check(
            actor=_actor(request),
            session=_session(request, session_id),
            assessment=data,
            vitals_override_reason=reason,
        ),
    )


@router.post("/sessions/{session_id}/discharge", response={200: SessionOut, **R})
def discharge(request: ActorRequest, session_id: uuid.UUID) -> Any:
    return services.session_discharge(actor=_actor(request), session=_session(request, session_id))


@router.post("/sessions/{session_id}/abort", response={200: SessionOut, **R})
def abort(request: ActorRequest, session_id: uuid.UUID, payload: AbortIn) -> Any:
    return services.session_abort(
        actor=_actor(request), session=_session(request, session_id), reason=payload.reason
    )


@router.put("/sessions/{session_id}/note", response={200: NoteOut, **R})
def note_save(request: ActorRequest, session_id: uuid.UUID, payload: NoteIn) -> Any:
    return services.note_save(
        actor=_actor(request), session=_session(request, session_id), text=payload.text
    )


@router.post("/sessions/{session_id}/note/sign", response={200: NoteOut, **R})
def note_sign(request: ActorRequest, session_id: uuid.UUID) -> Any:
    return services.note_sign(actor=_actor(request), session=_session(request, session_id))


@router.post("/sessions/{session_id}/note/amendments", response={201: dict[str, Any], **R})
def note_amend(request: ActorRequest, session_id: uuid.UUID, payload: AmendIn) -> Any:
    row = services.note_amend(
        actor=_actor(request),
        session=_session(request, session_id),
        text=payload.text,
        reason=payload.reason,
    )
    return Status(201, {"id": str(row.public_id), "signed_at": row.signed_at.isoformat()})


# --- the note as a reader sees it ---------------------------------------------------------


class AmendmentOut(Schema):
    id: uuid.UUID = Field(..., alias="public_id")
    text: str
    reason: str
    signed_at: datetime
    signed_by: str

    @staticmethod
    def resolve_signed_by(obj: NoteAmendment) -> str:
        return obj.recorded_by.username


class NoteReadOut(Schema):
    id: uuid.UUID = Field(..., alias="public_id")
    session: uuid.UUID = Field(..., alias="session.public_id")
    patient: uuid.UUID = Field(..., alias="session.patient.public_id")
    text: str
    signed_at: datetime | None
    signed_by: str | None
    content_hash: str
    amendments: list[AmendmentOut]

    @staticmethod
    def resolve_signed_by(obj: SessionNote) -> str | None:
        return obj.signed_by.username if obj.signed_by else None

    @staticmethod
    def resolve_amendments(obj: SessionNote) -> list[NoteAmendment]:
        return list(obj.amendments.all())


@router.get("/sessions/{session_id}/note", response={200: NoteReadOut, **R})
def note_read(request: ActorRequest, session_id: uuid.UUID) -> Any:
    """The note as signed (never rewritten) and every amendment after it, oldest first."""
    actor = request.auth
    session = selectors.session_get(actor, session_id)
    note = (
        SessionNote.objects.filter(session=session)
        .select_related("signed_by")
        .prefetch_related("amendments__recorded_by")
        .first()
    )
    if note is None:
        raise NotFound("This session has no note yet.")
    note.session = session
    audit_record(
        actor=actor,
        action="sessions.note.read",
        patient_id=session.patient.public_id,
        obj=note,
        detail={"session": str(session.public_id), "amendments": len(note.amendments.all())},
    )
    return note
