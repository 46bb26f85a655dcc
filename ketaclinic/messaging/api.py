"""JSON API for messaging (mounted at /api/v1/): consent to contact, a patient's messages, the
clinic's contact policy. Same services as the staff screens."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any, Literal

from ninja import Field, Router, Schema

from ketaclinic.accounts.actor import ActorRequest
from ketaclinic.accounts.roles import Cap
from ketaclinic.core.api import ERROR_RESPONSES
from ketaclinic.messaging import selectors, services
from ketaclinic.messaging.kinds import kind_label
from ketaclinic.patients.selectors import patient_get_for_actor

router = Router(tags=["messaging"])


class ContactOut(Schema):
    channel: str
    address: str
    allowed: bool
    reason: str
    explicit: bool


class ContactIn(Schema):
    allowed: bool
    note: str = Field("", max_length=200)


class AttemptOut(Schema):
    attempted_at: datetime
    outcome: str
    detail: str


class MessageOut(Schema):
    id: uuid.UUID = Field(..., alias="public_id")
    kind: str
    kind_label: str
    channel: str
    to_address: str
    status: str
    status_reason: str
    attempt_count: int
    next_attempt_at: datetime | None
    sent_at: datetime | None
    created_at: datetime
    attempts: list[AttemptOut]

    @staticmethod
    def resolve_kind_label(obj: Any) -> str:
        return kind_label(obj.kind)

    @staticmethod
    def resolve_attempts(obj: Any) -> list[Any]:
        return list(obj.attempts.all())


class PolicyIn(Schema):
    email_allowed_by_default: bool
    sms_allowed_by_default: bool
    on_call_email: str = Field("", max_length=254)
    on_call_phone: str = Field("", max_length=40)


class PolicyOut(PolicyIn):
    channels_configured: dict[str, bool]


@router.get("/patients/{patient_id}/contact", response={200: list[ContactOut], **ERROR_RESPONSES})
def list_contact(request: ActorRequest, patient_id: str) -> Any:
    actor = request.auth
    actor.require(Cap.MESSAGE_VIEW)
    patient = patient_get_for_actor(actor, patient_id)
    return list(selectors.contact_statuses(patient).values())


@router.put(
    "/patients/{patient_id}/contact/{channel}",
    response={200: ContactOut, **ERROR_RESPONSES},
)
def set_contact(
    request: ActorRequest, patient_id: str, channel: Literal["email", "sms"], payload: ContactIn
) -> Any:
    actor = request.auth
    patient = patient_get_for_actor(actor, patient_id)
    services.contact_preference_set(
        actor=actor, patient=patient, channel=channel, allowed=payload.allowed, note=payload.note
    )
    return selectors.contact_statuses(patient)[channel]


@router.get("/patients/{patient_id}/messages", response={200: list[MessageOut], **ERROR_RESPONSES})
def list_messages(request: ActorRequest, patient_id: str) -> Any:
    actor = request.auth
    actor.require(Cap.MESSAGE_VIEW)
    patient = patient_get_for_actor(actor, patient_id)
    return selectors.messages_for_patient(patient, limit=100)


def _policy_out(organization: Any) -> dict[str, Any]:
    policy = selectors.contact_policy(organization)
    return {
        "email_allowed_by_default": policy.email_allowed_by_default,
        "sms_allowed_by_default": policy.sms_allowed_by_default,
        "on_call_email": policy.on_call_email,
        "on_call_phone": policy.on_call_phone,
        "channels_configured": selectors.channels_configured(),
    }


@router.get("/messaging/policy", response={200: PolicyOut, **ERROR_RESPONSES})
def get_policy(request: ActorRequest) -> Any:
    actor = request.auth
    actor.require(Cap.MESSAGING_POLICY_EDIT)
    return _policy_out(actor.organization)


@router.put("/messaging/policy", response={200: PolicyOut, **ERROR_RESPONSES})
def put_policy(request: ActorRequest, payload: PolicyIn) -> Any:
    actor = request.auth
    services.contact_policy_set(actor=actor, **payload.dict())
    return _policy_out(actor.organization)
