"""JSON API: API tokens (mounted at /api/v1/). Anyone lists, issues and revokes their own;
a clinic admin (`tokens.manage`) sees and revokes the organization's and issues for others.
The secret is in the answer to the POST that issued it, and nowhere else, ever."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any, Literal

from ninja import Field, Query, Router, Schema, Status

from ketaclinic.accounts import services
from ketaclinic.accounts.actor import ActorRequest
from ketaclinic.accounts.models import ApiToken
from ketaclinic.core import clock
from ketaclinic.core.api import ERROR_RESPONSES

router = Router(tags=["tokens"])


class TokenOut(Schema):
    id: uuid.UUID
    name: str
    prefix: str = Field(..., description="The first characters of the secret, to recognise it")
    owner: str = Field(..., description="User name of the token's owner")
    created_at: datetime
    expires_at: datetime
    last_used_at: datetime | None
    revoked_at: datetime | None
    state: Literal["active", "expired", "revoked"]


class TokenCreated(TokenOut):
    secret: str = Field(..., description="The bearer token; shown in this answer only")


class TokenIn(Schema):
    name: str = Field("", max_length=100)
    days: int | None = Field(None, ge=1, le=3650, description="Lifetime; default 90 days")
    username: str | None = Field(
        None, max_length=150, description="Issue for this user (needs tokens.manage)"
    )


class TokenQuery(Schema):
    everyone: bool = Field(False, description="Every token of the organization (tokens.manage)")


def token_out(token: ApiToken, now: datetime) -> dict[str, Any]:
    return {
        "id": token.public_id,
        "name": token.name,
        "prefix": token.prefix,
        "owner": token.membership.user.username,
        "created_at": token.created_at,
        "expires_at": token.expires_at,
        "last_used_at": token.last_used_at,
        "revoked_at": token.revoked_at,
        "state": token.state_at(now),
    }


@router.get("/tokens", response={200: list[TokenOut], **ERROR_RESPONSES})
def token_list(request: ActorRequest, query: Query[TokenQuery]) -> Any:
    now = clock.now()
    tokens = services.token_list(actor=request.auth, everyone=query.everyone)
    return [token_out(token, now) for token in tokens]


@router.post("/tokens", response={201: TokenCreated, **ERROR_RESPONSES})
def token_create(request: ActorRequest, payload: TokenIn) -> Any:
    actor = request.auth
    token, secret = services.token_create(
        username=payload.username or actor.user.username,
        days=payload.days,
        name=payload.name,
        actor=actor,
    )
    return Status(201, {**token_out(token, clock.now()), "secret": secret})


@router.post("/tokens/{token_id}/revoke", response={200: TokenOut, **ERROR_RESPONSES})
def token_revoke(request: ActorRequest, token_id: uuid.UUID) -> Any:
    actor = request.auth
    token = services.token_get(actor=actor, public_id=token_id)
    return token_out(services.token_revoke(token=token, actor=actor), clock.now())
