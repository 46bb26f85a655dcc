"""JSON API for therapy (mounted at /api/v1/). Same services as the UI.

Psychotherapy (process) notes have their own routes: the author reads and writes theirs; anyone
else gets 404 unless they break the glass with a reason. No other route returns one.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from ninja import Field, Router, Schema, Status

from ketaclinic.accounts.actor import Actor, ActorRequest
from ketaclinic.accounts.roles import Cap
from ketaclinic.core.api import ERROR_RESPONSES
from ketaclinic.core.errors import NotFound
from ketaclinic.patients import selectors as patient_selectors
from ketaclinic.protocols import selectors as protocol_selectors
from ketaclinic.sessions import selectors as session_selectors
from ketaclinic.therapy import selectors, services

router = Router(tags=["therapy"])
R = ERROR_RESPONSES


def _actor(request: ActorRequest) -> Actor:
    return request.auth


class VisitIn(Schema):
    patient: uuid.UUID
    kind: str = Field(..., max_length=20)
    format: str = Field("individual", max_length=12)
    modality: str = Field("in_person", max_length=12)
    with_em: bool = False
    group_size: int | None = Field(None, ge=2, le=50)
    session: uuid.UUID | None = None
    plan: uuid.UUID | None = None
    appointment: uuid.UUID | None = None
    started_at: datetime | None = None
    ended_at: datetime | None = None


class VisitNoteIn(Schema):
    content: dict[str, Any] | None = None
    mental_status: dict[str, str] | None = None
    risk_level: str | None = Field(None, max_length=10)
    risk_notes: str | None = Field(None, max_length=4000)
    narrative: str | None = Field(None, max_length=20000)
    started_at: datetime | None = None
    ended_at: datetime | None = None


class AmendmentOut(Schema):
    id: uuid.UUID = Field(..., alias="public_id")
    text: str
    reason: str
    signed_at: datetime


class VisitOut(Schema):
    id: uuid.UUID = Field(..., alias="public_id")
    patient: uuid.UUID = Field(..., alias="patient.public_id")
    therapist: uuid.UUID = Field(..., alias="therapist.public_id")
    kind: str
    format: str
    group_size: int | None
    modality: str
    with_em: bool
    session: uuid.UUID | None = Field(None, alias="session.public_id")
    appointment: uuid.UUID | None = Field(None, alias="appointment_public_id")
    started_at: datetime
    ended_at: datetime | None
    content: dict[str, Any]
    mental_status: dict[str, Any]
    risk_level: str
    risk_notes: str
    narrative: str
    rule: str
    billing: dict[str, Any]
    signed_at: datetime | None
    content_hash: str
    amendments: list[AmendmentOut]

    @staticmethod
    def resolve_amendments(obj: Any) -> list[Any]:
        return list(obj.amendments.all())


class AmendIn(Schema):
    text: str = Field(..., max_length=20000)
    reason: str = Field(..., max_length=200)


class RiskFlagIn(Schema):
    patient: uuid.UUID
    level: str = Field(..., max_length=10)
    reason: str = Field(..., max_length=4000)
    visit: uuid.UUID | None = None


class RiskFlagOut(Schema):
    id: uuid.UUID = Field(..., alias="public_id")
    level: str
    reason: str
    rule: str


class ProcessNoteIn(Schema):
    text: str = Field(..., max_length=20000)


class ProcessNoteOut(Schema):
    id: uuid.UUID = Field(..., alias="public_id")
    visit: uuid.UUID = Field(..., alias="visit.public_id")
    text: str
    updated_at: datetime


class BreakGlassIn(Schema):
    reason: str = Field(..., max_length=2000)


class AssignIn(Schema):
    therapist: uuid.UUID
    plan: uuid.UUID | None = None
    session: uuid.UUID | None = None


class AssignmentOut(Schema):
    id: uuid.UUID = Field(..., alias="public_id")
    patient: uuid.UUID = Field(..., alias="patient.public_id")
    therapist: uuid.UUID = Field(..., alias="therapist.public_id")
    plan: uuid.UUID | None = Field(None, alias="plan.public_id")
    session: uuid.UUID | None = Field(None, alias="session.public_id")
    ended_at: datetime | None


class MessageIn(Schema):
    recipient: uuid.UUID
    subject: str = Field(..., max_length=200)
    body: str = Field(..., max_length=4000)
    patient: uuid.UUID | None = None


class MessageOut(Schema):
    id: uuid.UUID = Field(..., alias="public_id")
    sender: uuid.UUID | None = Field(None, alias="sender.public_id")
    recipient: uuid.UUID = Field(..., alias="recipient.public_id")
    patient: uuid.UUID | None = Field(None, alias="patient.public_id")
    subject: str
    body: str
    created_at: datetime
    read_at: datetime | None


class MeasurePlanIn(Schema):
    instrument_id: str = Field(..., max_length=32)
    timing: str = Field(..., max_length=24)


class MeasurePlanOut(Schema):
    id: uuid.UUID = Field(..., alias="public_id")
    instrument_id: str
    timing: str


def _visit(request: ActorRequest, visit_id: uuid.UUID) -> Any:
    return selectors.visit_get(_actor(request), visit_id)


def _reload(request: ActorRequest, visit: Any) -> Any:
    return selectors.visit_get(_actor(request), visit.public_id)


@router.post("/therapy/visits", response={201: VisitOut, **R})
def visit_create(request: ActorRequest, payload: VisitIn) -> Any:
    actor = _actor(request)
    actor.require(Cap.THERAPY_RECORD)
    patient = patient_selectors.patient_get_for_actor(actor, payload.patient)
    session = session_selectors.session_get(actor, payload.session) if payload.session else None
    plan = protocol_selectors.plan_get(actor, payload.plan) if payload.plan else None
    appointment = (
        selectors.appointment_get(actor, payload.appointment) if payload.appointment else None
    )
    visit = services.visit_create(
        actor=actor,
        patient=patient,
        kind=payload.kind,
        visit_format=payload.format,
        modality=payload.modality,
        with_em=payload.with_em,
        group_size=payload.group_size,
        session=session,
        plan=plan,
        appointment=appointment,
        started_at=payload.started_at,
        ended_at=payload.ended_at,
    )
    return Status(201, _reload(request, visit))


@router.get("/therapy/visits/{visit_id}", response={200: VisitOut, **R})
def visit_read(request: ActorRequest, visit_id: uuid.UUID) -> Any:
    visit = _visit(request, visit_id)
    from ketaclinic.accounts.audit import audit_record

    audit_record(
        actor=_actor(request),
        action="therapy.visit.read",
        patient_id=visit.patient.public_id,
        obj=visit,
    )
    return visit


@router.get("/patients/{patient_id}/therapy/visits", response={200: list[VisitOut], **R})
def visit_list(request: ActorRequest, patient_id: uuid.UUID) -> Any:
    actor = _actor(request)
    actor.require(Cap.THERAPY_VIEW)
    patient = patient_selectors.patient_chart_read(
        actor, patient_id, action="therapy.visits.listed"
    )
    return selectors.visits_for_patient(patient)


@router.put("/therapy/visits/{visit_id}/note", response={200: VisitOut, **R})
def visit_save(request: ActorRequest, visit_id: uuid.UUID, payload: VisitNoteIn) -> Any:
    visit = services.visit_save(
        actor=_actor(request), visit=_visit(request, visit_id), **payload.dict()
    )
    return _reload(request, visit)


@router.post("/therapy/visits/{visit_id}/sign", response={200: VisitOut, **R})
def visit_sign(request: ActorRequest, visit_id: uuid.UUID) -> Any:
    visit = services.visit_sign(actor=_actor(request), visit=_visit(request, visit_id))
    return _reload(request, visit)


@router.post("/therapy/visits/{visit_id}/amendments", response={201: AmendmentOut, **R})
def visit_amend(request: ActorRequest, visit_id: uuid.UUID, payload: AmendIn) -> Any:
    row = services.visit_amend(
        actor=_actor(request),
        visit=_visit(request, visit_id),
        text=payload.text,
        reason=payload.reason,
    )
    return Status(201, row)


@router.post("/therapy/risk-flags", response={201: RiskFlagOut, **R})
def risk_flag(request: ActorRequest, payload: RiskFlagIn) -> Any:
    actor = _actor(request)
    actor.require(Cap.THERAPY_RECORD)
    patient = patient_selectors.patient_get_for_actor(actor, payload.patient)
    visit = _visit(request, payload.visit) if payload.visit else None
    flag = services.risk_flag_raise(
        actor=actor, patient=patient, visit=visit, level=payload.level, reason=payload.reason
    )
    return Status(201, flag)


@router.get("/therapy/visits/{visit_id}/process-note", response={200: ProcessNoteOut, **R})
def process_note_read(request: ActorRequest, visit_id: uuid.UUID) -> Any:
    note = services.process_note_read(actor=_actor(request), visit=_visit(request, visit_id))
    if note is None:
        raise NotFound("No psychotherapy note of yours on this visit.")
    return note


@router.put("/therapy/visits/{visit_id}/process-note", response={200: ProcessNoteOut, **R})
def process_note_write(request: ActorRequest, visit_id: uuid.UUID, payload: ProcessNoteIn) -> Any:
    return services.process_note_write(
        actor=_actor(request), visit=_visit(request, visit_id), text=payload.text
    )


@router.post(
    "/therapy/visits/{visit_id}/process-note/break-glass", response={200: ProcessNoteOut, **R}
)
def process_note_break_glass(
    request: ActorRequest, visit_id: uuid.UUID, payload: BreakGlassIn
) -> Any:
    return services.process_note_break_glass(
        actor=_actor(request), visit=_visit(request, visit_id), reason=payload.reason
    )


@router.post("/therapy/assignments", response={201: AssignmentOut, **R})
def team_assign(request: ActorRequest, payload: AssignIn) -> Any:
    actor = _actor(request)
    actor.require(Cap.THERAPY_TEAM_ASSIGN)
    therapist = selectors.member_user(actor, payload.therapist, field="therapist")
    plan = protocol_selectors.plan_get(actor, payload.plan) if payload.plan else None
    session = session_selectors.session_get(actor, payload.session) if payload.session else None
    row = services.team_assign(actor=actor, therapist=therapist, plan=plan, session=session)
    return Status(201, row)


@router.post("/therapy/assignments/{assignment_id}/end", response={200: AssignmentOut, **R})
def team_unassign(request: ActorRequest, assignment_id: uuid.UUID) -> Any:
    actor = _actor(request)
    row = selectors.assignment_get(actor, assignment_id)
    return services.team_unassign(actor=actor, assignment=row)


@router.post("/therapy/messages", response={201: MessageOut, **R})
def message_send(request: ActorRequest, payload: MessageIn) -> Any:
    actor = _actor(request)
    actor.require(Cap.TEAM_MESSAGE)
    recipient = selectors.member_user(actor, payload.recipient, field="recipient")
    patient = (
        patient_selectors.patient_get_for_actor(actor, payload.patient) if payload.patient else None
    )
    row = services.message_send(
        actor=actor,
        recipient=recipient,
        subject=payload.subject,
        body=payload.body,
        patient=patient,
    )
    return Status(201, row)


@router.get("/therapy/messages", response={200: list[MessageOut], **R})
def message_inbox(request: ActorRequest) -> Any:
    return selectors.inbox(_actor(request))


@router.post("/therapy/messages/{message_id}/read", response={200: MessageOut, **R})
def message_mark_read(request: ActorRequest, message_id: uuid.UUID) -> Any:
    actor = _actor(request)
    return services.message_mark_read(actor=actor, message=selectors.message_get(actor, message_id))


@router.post("/plans/{plan_id}/therapy-measures", response={201: MeasurePlanOut, **R})
def measure_plan_add(request: ActorRequest, plan_id: uuid.UUID, payload: MeasurePlanIn) -> Any:
    actor = _actor(request)
    actor.require(Cap.THERAPY_RECORD)
    plan = protocol_selectors.plan_get(actor, plan_id)
    row = services.measure_plan_add(
        actor=actor, plan=plan, instrument_id=payload.instrument_id, timing=payload.timing
    )
    return Status(201, row)


class ReviewIn(Schema):
    note: str = Field(..., max_length=2000)


class BreakGlassOut(Schema):
    id: uuid.UUID = Field(..., alias="public_id")
    patient: uuid.UUID = Field(..., alias="patient.public_id")
    reader: uuid.UUID = Field(..., alias="reader.public_id")
    reader_role: str
    reason: str
    created_at: datetime
    reviewed_at: datetime | None
    review_note: str


@router.get("/therapy/break-glass-reads", response={200: list[BreakGlassOut], **R})
def break_glass_reads(request: ActorRequest) -> Any:
    return selectors.break_glass_reads(_actor(request))


@router.post("/therapy/break-glass-reads/{read_id}/review", response={200: BreakGlassOut, **R})
def break_glass_review(request: ActorRequest, read_id: uuid.UUID, payload: ReviewIn) -> Any:
    actor = _actor(request)
    read = selectors.break_glass_read_get(actor, read_id)
    return services.break_glass_review(actor=actor, read=read, note=payload.note)
