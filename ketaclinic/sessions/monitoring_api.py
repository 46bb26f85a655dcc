"""JSON API for what the flowsheet records during monitoring (mounted at /api/v1/): observations
(CADSS, MOAA/S, the side-effects checklist), medications given in the session, and the SPRAVATO
REMS Patient Monitoring Form. Same services and rules as the flowsheet."""

from __future__ import annotations

import uuid
from datetime import date, datetime
from decimal import Decimal
from typing import Any, Literal

from ninja import Field, Router, Schema, Status

from ketaclinic.accounts.actor import ActorRequest
from ketaclinic.accounts.roles import Cap
from ketaclinic.core.api import ERROR_RESPONSES
from ketaclinic.core.errors import NotFound, ValidationFailed
from ketaclinic.sessions import selectors, services
from ketaclinic.sessions.models import AdverseEvent, PatientMonitoringForm

router = Router(tags=["sessions"])
R = ERROR_RESPONSES


class ObservationIn(Schema):
    kind: Literal["cadss", "sedation", "side_effects"]
    score: Decimal | None = Field(None, description="CADSS total 0-92, or MOAA/S 0-5")
    data: dict[str, bool] = Field(
        {}, description="side_effects: every checklist item, true when present"
    )
    observed_at: datetime | None = None
    note: str = Field("", max_length=2000)


class ObservationOut(Schema):
    id: uuid.UUID = Field(..., alias="public_id")
    kind: str
    observed_at: datetime
    score: Decimal | None
    data: dict[str, Any]
    instrument: str
    note: str


class InterventionIn(Schema):
    drug_name: str = Field(..., max_length=120)
    dose_text: str = Field(..., max_length=80)
    route: Literal[
        "oral", "sublingual", "intravenous", "intramuscular", "subcutaneous", "intranasal"
    ]
    reason: str = Field(..., max_length=200)
    rxnorm_code: str = Field("", max_length=20, pattern=r"^\d*$")
    given_at: datetime | None = None
    adverse_event: uuid.UUID | None = Field(None, description="The session's adverse event")


class InterventionOut(Schema):
    id: uuid.UUID = Field(..., alias="public_id")
    drug_name: str
    dose_text: str
    route: str
    reason: str
    rxnorm_code: str
    given_at: datetime


class PmfAnswersIn(Schema):
    answers: dict[str, Any] = Field(
        ...,
        description="Answers the session record cannot give: "
        + ", ".join(services.PMF_MANUAL_FIELDS),
    )


class PmfSubmittedIn(Schema):
    submitted_on: date


class PmfOut(Schema):
    id: uuid.UUID = Field(..., alias="public_id")
    data: dict[str, Any]
    missing: list[Any]
    problems: list[Any]
    treatment_date: date
    due_on: date
    submitted_on: date | None


def _session(request: ActorRequest, session_id: uuid.UUID, cap: Cap) -> Any:
    return selectors.session_get(request.auth, session_id, capability=cap)


def _pmf(session: Any) -> PatientMonitoringForm:
    if session.drug != "esketamine":
        raise ValidationFailed.for_field("session", "Only esketamine sessions have a REMS form.")
    pmf = selectors.flowsheet(session).pmf
    if pmf is None:
        raise NotFound("This session has no REMS form yet.")
    return pmf


@router.post("/sessions/{session_id}/observations", response={201: ObservationOut, **R})
def observation_add(request: ActorRequest, session_id: uuid.UUID, payload: ObservationIn) -> Any:
    session = _session(request, session_id, Cap.SESSION_RUN)
    row = services.observation_record(
        actor=request.auth,
        session=session,
        kind=payload.kind,
        score=payload.score,
        data=payload.data,
        observed_at=payload.observed_at,
        note=payload.note,
    )
    return Status(201, row)


@router.post("/sessions/{session_id}/interventions", response={201: InterventionOut, **R})
def intervention_add(request: ActorRequest, session_id: uuid.UUID, payload: InterventionIn) -> Any:
    session = _session(request, session_id, Cap.DOSE_ADMINISTER)
    event = None
    if payload.adverse_event is not None:
        event = AdverseEvent.objects.filter(
            session=session, public_id=payload.adverse_event
        ).first()
        if event is None:
            raise ValidationFailed.for_field(
                "adverse_event", "No such adverse event in this session."
            )
    row = services.intervention_record(
        actor=request.auth,
        session=session,
        drug_name=payload.drug_name,
        dose_text=payload.dose_text,
        route=payload.route,
        reason=payload.reason,
        rxnorm_code=payload.rxnorm_code,
        given_at=payload.given_at,
        adverse_event=event,
    )
    return Status(201, row)


@router.get("/sessions/{session_id}/pmf", response={200: PmfOut, **R})
def pmf_read(request: ActorRequest, session_id: uuid.UUID) -> Any:
    return _pmf(_session(request, session_id, Cap.SESSION_VIEW))


@router.patch("/sessions/{session_id}/pmf", response={200: PmfOut, **R})
def pmf_answers(request: ActorRequest, session_id: uuid.UUID, payload: PmfAnswersIn) -> Any:
    """Record the answers the session record cannot give; completeness is checked at signing."""
    session = _session(request, session_id, Cap.SESSION_RUN)
    return services.pmf_update(actor=request.auth, session=session, answers=payload.answers)


@router.post("/sessions/{session_id}/pmf/submitted", response={200: PmfOut, **R})
def pmf_submitted(request: ActorRequest, session_id: uuid.UUID, payload: PmfSubmittedIn) -> Any:
    """The form was sent to the REMS (online or fax): the 7-day tracker stops counting."""
    session = _session(request, session_id, Cap.SESSION_RUN)
    return services.pmf_mark_submitted(
        actor=request.auth, pmf=_pmf(session), submitted_on=payload.submitted_on
    )
