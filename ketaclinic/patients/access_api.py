"""JSON API: care teams and break-glass access (patients.access), mounted at /api/v1/."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any, cast

from django.http import HttpRequest
from ninja import Field, Router, Schema, Status

from ketaclinic.accounts.actor import Actor, ActorRequest
from ketaclinic.core.api import ERROR_RESPONSES
from ketaclinic.patients import access
from ketaclinic.patients.models import BreakGlassAccess

router = Router(tags=["access"])


def _actor(request: HttpRequest) -> Actor:
    return cast(ActorRequest, request).auth  # the Actor set by TenantMiddleware and TokenAuth


class ChartBreakGlassIn(Schema):
    reason: str = Field(..., max_length=2000, description="Why the chart is needed now")
    minutes: int = Field(access.DEFAULT_MINUTES, description="How long the access lasts")


class ChartBreakGlassOut(Schema):
    id: uuid.UUID
    patient: uuid.UUID
    user: str
    role: str
    reason: str
    opened_at: datetime
    expires_at: datetime
    reviewed_by: str | None
    reviewed_at: datetime | None
    review_note: str


def _out(item: BreakGlassAccess) -> dict[str, Any]:
    return {
        "id": item.public_id,
        "patient": item.patient.public_id,
        "user": item.user.username,
        "role": item.role,
        "reason": item.reason,
        "opened_at": item.created_at,
        "expires_at": item.expires_at,
        "reviewed_by": item.reviewed_by.username if item.reviewed_by else None,
        "reviewed_at": item.reviewed_at,
        "review_note": item.review_note,
    }


class ChartBreakGlassReviewIn(Schema):
    note: str = Field("", max_length=2000)


class CareTeamMemberIn(Schema):
    username: str = Field(..., max_length=150)


class CareTeamMemberOut(Schema):
    patient: uuid.UUID
    username: str


class CareTeamPolicy(Schema):
    care_team_only: bool


@router.post(
    "/patients/{patient_id}/break-glass", response={201: ChartBreakGlassOut, **ERROR_RESPONSES}
)
def break_glass_open(request: HttpRequest, patient_id: str, payload: ChartBreakGlassIn) -> Any:
    """Open a patient's chart outside one's care team: audited, time-limited, shown to
    compliance until reviewed."""
    item = access.break_glass_open(
        actor=_actor(request), patient_id=patient_id, reason=payload.reason, minutes=payload.minutes
    )
    return Status(201, _out(item))


@router.get("/break-glass", response={200: list[ChartBreakGlassOut], **ERROR_RESPONSES})
def break_glass_list(request: HttpRequest, unreviewed: bool = False) -> Any:
    """Compliance: every break-glass access, newest first (`unreviewed=true`: those to review)."""
    return [
        _out(item) for item in access.break_glass_list(_actor(request), unreviewed_only=unreviewed)
    ]


@router.post(
    "/break-glass/{access_id}/review", response={200: ChartBreakGlassOut, **ERROR_RESPONSES}
)
def break_glass_review(
    request: HttpRequest, access_id: str, payload: ChartBreakGlassReviewIn
) -> Any:
    return _out(
        access.break_glass_review(actor=_actor(request), access_id=access_id, note=payload.note)
    )


@router.post(
    "/patients/{patient_id}/care-team", response={201: CareTeamMemberOut, **ERROR_RESPONSES}
)
def care_team_add(request: HttpRequest, patient_id: str, payload: CareTeamMemberIn) -> Any:
    member = access.care_team_add(
        actor=_actor(request), patient_id=patient_id, username=payload.username
    )
    return Status(201, {"patient": member.patient.public_id, "username": member.user.username})


@router.get(
    "/patients/{patient_id}/care-team", response={200: list[CareTeamMemberOut], **ERROR_RESPONSES}
)
def care_team_list(request: HttpRequest, patient_id: str) -> Any:
    members = access.care_team_list(actor=_actor(request), patient_id=patient_id)
    return [{"patient": m.patient.public_id, "username": m.user.username} for m in members]


@router.delete(
    "/patients/{patient_id}/care-team/{username}", response={204: None, **ERROR_RESPONSES}
)
def care_team_remove(request: HttpRequest, patient_id: str, username: str) -> Any:
    access.care_team_remove(actor=_actor(request), patient_id=patient_id, username=username)
    return Status(204, None)


@router.put("/setup/care-team-policy", response={200: CareTeamPolicy, **ERROR_RESPONSES})
def care_team_policy(request: HttpRequest, payload: CareTeamPolicy) -> Any:
    """Keep prescribers, nurses and therapists to their patients' charts (or stop doing so)."""
    organization = access.care_team_policy_set(
        actor=_actor(request), enabled=payload.care_team_only
    )
    return {"care_team_only": organization.care_team_only}
