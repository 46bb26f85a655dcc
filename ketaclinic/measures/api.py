"""JSON API for measures (mounted at /api/v1/): responses, outcomes, alerts, one-time links."""

from __future__ import annotations

import uuid
from datetime import datetime
from decimal import Decimal
from typing import Any, Literal

from django.urls import reverse
from ninja import Field, Query, Router, Schema, Status

from ketaclinic.accounts.actor import Actor, ActorRequest
from ketaclinic.accounts.audit import audit_record
from ketaclinic.accounts.roles import Cap
from ketaclinic.core.api import ERROR_RESPONSES
from ketaclinic.core.errors import ValidationFailed
from ketaclinic.measures import selectors, services
from ketaclinic.measures.definitions import get_instrument
from ketaclinic.patients.selectors import patient_chart_read, patient_get_for_actor

router = Router(tags=["measures"])
MAX_PAGE = 200


def _actor(request: ActorRequest) -> Actor:
    return request.auth


class ResponseIn(Schema):
    instrument_id: str = Field(..., min_length=1, max_length=32, examples=["phq9"])
    answers: dict[str, int | None] = Field(
        ..., description="Option values keyed by item link id", examples=[{"1": 0, "9": 1}]
    )
    language: Literal["en", "es"] = "en"
    completed_at: datetime | None = None
    corrects: uuid.UUID | None = None
    correction_reason: str = Field("", max_length=2000)


class ResponseOut(Schema):
    id: uuid.UUID = Field(..., alias="public_id")
    patient: uuid.UUID
    instrument_id: str
    instrument_version: int
    rule: str
    answers: dict[str, int | None]
    total: Decimal | None
    subscales: dict[str, str]
    severity: str = Field(..., alias="severity_code")
    risk_level: str
    screen_positive: bool | None
    prorated: bool
    note: str = Field(..., alias="score_note")
    policy_reference: str
    respondent: str
    completed_at: datetime
    corrects: uuid.UUID | None
    alert: uuid.UUID | None = None

    @staticmethod
    def resolve_patient(obj: Any) -> uuid.UUID:
        return obj.patient.public_id

    @staticmethod
    def resolve_total(obj: Any) -> Decimal | None:
        return obj.score

    @staticmethod
    def resolve_corrects(obj: Any) -> uuid.UUID | None:
        return obj.corrects.public_id if obj.corrects_id else None

    @staticmethod
    def resolve_alert(obj: Any) -> uuid.UUID | None:
        alert = getattr(obj, "new_alert", None)
        return alert.public_id if alert else None


class ResponsePage(Schema):
    count: int
    limit: int
    offset: int
    items: list[ResponseOut]


class ResponseFilter(Schema):
    instrument_id: str = Field("", max_length=32)
    limit: int = Field(50, ge=1, le=MAX_PAGE)
    offset: int = Field(0, ge=0, le=10_000_000)


@router.post("/patients/{patient_id}/responses", response={201: ResponseOut, **ERROR_RESPONSES})
def record_response(request: ActorRequest, patient_id: str, payload: ResponseIn) -> Any:
    actor = _actor(request)
    actor.require(Cap.MEASURE_RECORD)
    patient = patient_get_for_actor(actor, patient_id)
    corrects = (
        selectors.response_get_for_actor(actor, payload.corrects) if payload.corrects else None
    )
    response = services.response_record(
        actor=actor,
        patient=patient,
        instrument_id=payload.instrument_id,
        answers=payload.answers,
        language=payload.language,
        completed_at=payload.completed_at,
        corrects=corrects,
        correction_reason=payload.correction_reason,
    )
    return Status(201, response)


@router.get("/patients/{patient_id}/responses", response={200: ResponsePage, **ERROR_RESPONSES})
def list_responses(request: ActorRequest, patient_id: str, filters: Query[ResponseFilter]) -> Any:
    actor = _actor(request)
    actor.require(Cap.MEASURE_VIEW)
    patient = patient_chart_read(actor, patient_id, action="measures.responses.read")
    responses = selectors.responses_for_patient(patient, instrument_id=filters.instrument_id)
    return {
        "count": responses.count(),
        "limit": filters.limit,
        "offset": filters.offset,
        "items": list(responses[filters.offset : filters.offset + filters.limit]),
    }


@router.get("/responses/{response_id}", response={200: ResponseOut, **ERROR_RESPONSES})
def get_response(request: ActorRequest, response_id: str) -> Any:
    actor = _actor(request)
    response = selectors.response_get_for_actor(actor, response_id)
    audit_record(
        actor=actor,
        action="measures.response.read",
        patient_id=response.patient.public_id,
        obj=response,
    )
    return response


class VerdictOut(Schema):
    met: bool | None
    reason: str
    rule: str
    policy_reference: str


class PointOut(Schema):
    score: Decimal
    taken_at: datetime


class OutcomeOut(Schema):
    instrument_id: str
    rule: str
    baseline: PointOut | None
    latest: PointOut | None
    percent_change: Decimal | None
    percent_change_reason: str
    response: VerdictOut
    remission: VerdictOut
    relapse_status: str
    relapse_reason: str
    session_dates: list[datetime]
    series: list[PointOut]


@router.get(
    "/patients/{patient_id}/outcomes/{instrument_id}", response={200: OutcomeOut, **ERROR_RESPONSES}
)
def get_outcome(request: ActorRequest, patient_id: str, instrument_id: str) -> Any:
    actor = _actor(request)
    actor.require(Cap.MEASURE_VIEW)
    try:
        instrument = get_instrument(instrument_id)
    except KeyError:
        raise ValidationFailed.for_field("instrument_id", "Unknown instrument.") from None
    patient = patient_chart_read(actor, patient_id, action="measures.outcomes.read")
    responses = list(
        selectors.responses_for_patient(
            patient, instrument_id=instrument.id, include_corrected=False
        )
    )
    sessions = selectors.treatment_session_dates(patient)
    trajectory = selectors.trajectory_for(
        instrument, responses, sessions, selectors.outcome_policy_current(patient)
    )
    a = trajectory.assessment
    if a is None:
        raise ValidationFailed.for_field("instrument_id", "No scored response of this measure.")
    return {
        "instrument_id": instrument.id,
        "rule": instrument.rule_id,
        "baseline": (
            {"score": a.baseline.measurement.score, "taken_at": a.baseline.measurement.taken_at}
            if a.baseline
            else None
        ),
        "latest": {"score": a.latest.score, "taken_at": a.latest.taken_at} if a.latest else None,
        "percent_change": a.percent_change.value if a.percent_change else None,
        "percent_change_reason": a.percent_change.reason if a.percent_change else "no baseline",
        "response": a.response,
        "remission": a.remission,
        "relapse_status": a.relapse.status,
        "relapse_reason": a.relapse.reason,
        "session_dates": sessions,
        "series": [
            {"score": r.score, "taken_at": r.completed_at}
            for r in reversed(responses)
            if r.score is not None
        ],
    }


class AlertOut(Schema):
    id: uuid.UUID = Field(..., alias="public_id")
    patient: uuid.UUID
    source_kind: str  # "questionnaire" (see response), "intake" (see intake), "session_vitals"
    response: uuid.UUID | None
    intake: uuid.UUID | None
    source_public_id: uuid.UUID | None = None  # the vitals entry (session_vitals) or therapy note
    session: uuid.UUID | None = None  # the treatment session a session_vitals alert came from
    rule: str
    severity: str
    summary: str
    findings: list[dict[str, Any]]
    created_at: datetime
    escalate_after: datetime
    escalated_at: datetime | None
    escalated_to_role: str
    acknowledged_at: datetime | None
    action_note: str

    @staticmethod
    def resolve_patient(obj: Any) -> uuid.UUID:
        return obj.patient.public_id

    @staticmethod
    def resolve_response(obj: Any) -> uuid.UUID | None:
        return obj.response.public_id if obj.response_id else None

    @staticmethod
    def resolve_intake(obj: Any) -> uuid.UUID | None:
        return obj.intake.public_id if obj.intake_id else None

    @staticmethod
    def resolve_session(obj: Any) -> str | None:
        findings = obj.findings or [{}]
        return findings[0].get("session") if isinstance(findings[0], dict) else None


class AcknowledgeIn(Schema):
    note: str = Field(..., min_length=1, max_length=4000)


@router.get("/alerts", response={200: list[AlertOut], **ERROR_RESPONSES})
def list_alerts(request: ActorRequest) -> Any:
    """Open (unacknowledged) alerts of the organization, escalated and critical first."""
    _actor(request).require(Cap.MEASURE_VIEW)
    return selectors.alerts_open()


@router.post("/alerts/{alert_id}/acknowledge", response={200: AlertOut, **ERROR_RESPONSES})
def acknowledge_alert(request: ActorRequest, alert_id: str, payload: AcknowledgeIn) -> Any:
    actor = _actor(request)
    alert = selectors.alert_get_for_actor(actor, alert_id, capability=Cap.ALERT_ACKNOWLEDGE)
    return services.alert_acknowledge(actor=actor, alert=alert, note=payload.note)


class LinkIn(Schema):
    instrument_id: str = Field(..., min_length=1, max_length=32)
    language: Literal["en", "es"] = "en"


class LinkOut(Schema):
    id: uuid.UUID
    url: str
    expires_at: datetime


@router.post("/patients/{patient_id}/measure-links", response={201: LinkOut, **ERROR_RESPONSES})
def create_link(request: ActorRequest, patient_id: str, payload: LinkIn) -> Any:
    """A one-time link for the patient; the URL is returned once and never stored."""
    actor = _actor(request)
    actor.require(Cap.MEASURE_RECORD)
    patient = patient_get_for_actor(actor, patient_id)
    issued = services.measure_link_create(actor=actor, patient=patient, **payload.dict())
    url = request.build_absolute_uri(reverse("portal:measure", kwargs={"token": issued.token}))
    return Status(
        201, {"id": issued.link.public_id, "url": url, "expires_at": issued.link.expires_at}
    )


@router.post("/measure-links/{link_id}/resend", response={201: LinkOut, **ERROR_RESPONSES})
def resend_link(request: ActorRequest, link_id: str) -> Any:
    """Send an unanswered questionnaire link again: a fresh link (returned once), the old one
    stops working. 409 once the patient has answered."""
    actor = _actor(request)
    actor.require(Cap.MEASURE_LINK_RESEND)
    link = selectors.link_get_for_actor(actor, link_id)
    patient_get_for_actor(actor, link.target_id)
    issued = services.measure_link_resend(actor=actor, link=link)
    url = request.build_absolute_uri(reverse("portal:measure", kwargs={"token": issued.token}))
    return Status(
        201, {"id": issued.link.public_id, "url": url, "expires_at": issued.link.expires_at}
    )


class ScheduleIn(Schema):
    instrument_id: str = Field(..., max_length=32)
    cadence: str = Field(..., max_length=16)
    starts_at: datetime | None = None
    language: Literal["en", "es"] = "en"


class ScheduleOut(Schema):
    id: uuid.UUID = Field(..., alias="public_id")
    instrument_id: str
    cadence: str
    language: str
    starts_at: datetime
    next_due_at: datetime | None
    is_active: bool


@router.post(
    "/patients/{patient_id}/measure-schedules", response={201: ScheduleOut, **ERROR_RESPONSES}
)
def create_schedule(request: ActorRequest, patient_id: str, payload: ScheduleIn) -> Any:
    """Send a self-report questionnaire on a cadence; links are created when due."""
    actor = _actor(request)
    patient = patient_get_for_actor(actor, patient_id)
    schedule = services.schedule_create(actor=actor, patient=patient, **payload.dict())
    return Status(201, schedule)
