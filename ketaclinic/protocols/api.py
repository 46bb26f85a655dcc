"""JSON API for protocols, the session safety policy and plan changes (mounted at /api/v1/).

The same services and rules as the staff screens: a published protocol version never changes
(clone it), a policy edit is validated as a whole and published as a new version, a plan's phase
and dose change through their services with the reason recorded.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from decimal import Decimal
from typing import Any, Literal

from ninja import Field, Router, Schema, Status

from ketaclinic.accounts.actor import Actor, ActorRequest
from ketaclinic.accounts.roles import Cap
from ketaclinic.core.api import ERROR_RESPONSES
from ketaclinic.protocols import selectors, services
from ketaclinic.protocols.models import ProtocolVersion

router = Router(tags=["protocols"])
R = ERROR_RESPONSES


def _actor(request: ActorRequest) -> Actor:
    return request.auth


class ProtocolOut(Schema):
    id: uuid.UUID = Field(..., alias="public_id")
    protocol_id: str
    version: int
    title: str
    drug: str
    route: str
    setting: str
    status: str
    origin: str
    change_note: str
    published_at: datetime | None
    definition: dict[str, Any]


class CatalogOut(Schema):
    added: int


class CloneIn(Schema):
    note: str = Field("", max_length=500)


class DraftIn(Schema):
    changes: dict[str, Any] = Field(
        ...,
        description='Editable fields by dotted name, e.g. {"caps.max_mg": "70"}: '
        + ", ".join(services.EDITABLE_FIELDS),
    )


class SafetyPolicyIn(Schema):
    changes: dict[str, Any] = Field(..., description="Policy fields to change (the rest is kept)")
    note: str = Field("", max_length=2000)


class SafetyPolicyOut(Schema):
    version: int
    data: dict[str, Any]
    note: str
    published_at: datetime | None


class PhaseIn(Schema):
    to_phase: str = Field(..., max_length=60)
    reason: str = Field("", max_length=500)


class TitrateIn(Schema):
    direction: Literal["increase", "decrease"]
    reason: str = Field(..., max_length=2000)
    sessions_at_current_amount: int = Field(..., ge=0, le=1000)
    worst_adverse_event_grade: int | None = Field(None, ge=1, le=5)
    weight_kg: Decimal | None = Field(None, ge=1, max_digits=6, decimal_places=2)


class PlanEventOut(Schema):
    id: uuid.UUID = Field(..., alias="public_id")
    kind: str
    from_value: str
    to_value: str
    reason: str
    recorded_at: datetime
    result: dict[str, Any]


def _protocol(request: ActorRequest, protocol_id: uuid.UUID) -> ProtocolVersion:
    return selectors.protocol_get(_actor(request), protocol_id)


@router.get("/protocols", response={200: list[ProtocolOut], **R})
def protocol_list(request: ActorRequest) -> Any:
    _actor(request).require(Cap.PATIENT_LIST)
    return list(selectors.protocol_versions())


@router.post("/protocols/catalog", response={200: CatalogOut, **R})
def protocol_catalog(request: ActorRequest) -> Any:
    """Add the cited catalog protocols this clinic does not have yet (as the screen's button)."""
    actor = _actor(request)
    return {"added": services.protocol_catalog_seed(organization=actor.organization, actor=actor)}


@router.get("/protocols/{protocol_id}", response={200: ProtocolOut, **R})
def protocol_read(request: ActorRequest, protocol_id: uuid.UUID) -> Any:
    return _protocol(request, protocol_id)


@router.post("/protocols/{protocol_id}/clone", response={201: ProtocolOut, **R})
def protocol_clone(request: ActorRequest, protocol_id: uuid.UUID, payload: CloneIn) -> Any:
    source = _protocol(request, protocol_id)
    return Status(
        201, services.protocol_clone(actor=_actor(request), source=source, note=payload.note)
    )


@router.patch("/protocols/{protocol_id}", response={200: ProtocolOut, **R})
def protocol_draft_update(request: ActorRequest, protocol_id: uuid.UUID, payload: DraftIn) -> Any:
    """Edit a draft; a published version answers 409 (clone it to a new version)."""
    protocol = _protocol(request, protocol_id)
    return services.protocol_draft_update(
        actor=_actor(request), protocol=protocol, changes=payload.changes
    )


@router.post("/protocols/{protocol_id}/publish", response={200: ProtocolOut, **R})
def protocol_publish(request: ActorRequest, protocol_id: uuid.UUID) -> Any:
    protocol = _protocol(request, protocol_id)
    return services.protocol_publish(actor=_actor(request), protocol=protocol)


@router.get("/safety-policy", response={200: SafetyPolicyOut, **R})
def safety_policy_read(request: ActorRequest) -> Any:
    actor = _actor(request)
    actor.require(Cap.SAFETY_POLICY_EDIT)
    row, policy = selectors.safety_policy_current(actor.organization)
    if row is None:
        return {
            "version": policy.version,
            "data": policy.to_dict(),
            "note": "",
            "published_at": None,
        }
    return row


@router.post("/safety-policy", response={201: SafetyPolicyOut, **R})
def safety_policy_publish(request: ActorRequest, payload: SafetyPolicyIn) -> Any:
    """Publish the next version: the current policy with these changes, validated as a whole."""
    row = services.safety_policy_publish(
        actor=_actor(request), changes=payload.changes, note=payload.note
    )
    return Status(201, row)


@router.post("/plans/{plan_id}/phase", response={201: PlanEventOut, **R})
def plan_phase(request: ActorRequest, plan_id: uuid.UUID, payload: PhaseIn) -> Any:
    actor = _actor(request)
    plan = selectors.plan_get(actor, plan_id, capability=Cap.PLAN_PRESCRIBE)
    return Status(
        201,
        services.plan_phase_change(
            actor=actor, plan=plan, to_phase=payload.to_phase, reason=payload.reason
        ),
    )


@router.post("/plans/{plan_id}/titrations", response={201: PlanEventOut, **R})
def plan_titrate(request: ActorRequest, plan_id: uuid.UUID, payload: TitrateIn) -> Any:
    actor = _actor(request)
    plan = selectors.plan_get(actor, plan_id, capability=Cap.PLAN_PRESCRIBE)
    return Status(201, services.plan_titrate(actor=actor, plan=plan, **payload.dict()))
