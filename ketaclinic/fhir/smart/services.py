"""Registering SMART clients (an administrator's act, audited)."""

from __future__ import annotations

import secrets
from typing import Any, cast

from django.db import transaction
from joserfc.errors import JoseError
from joserfc.jwk import KeySet

from ketaclinic.accounts.actor import Actor
from ketaclinic.accounts.audit import audit_record
from ketaclinic.accounts.models import Membership
from ketaclinic.accounts.roles import Cap
from ketaclinic.core.errors import ValidationFailed
from ketaclinic.fhir.smart import scopes
from ketaclinic.fhir.smart.models import SmartClient


def smart_client_register(
    *,
    actor: Actor,
    name: str,
    kind: str,
    scope: str,
    redirect_uris: list[str] | None = None,
    jwks: dict[str, Any] | None = None,
    membership: Membership | None = None,
) -> SmartClient:
    actor.require(Cap.ADMIN_ACCESS)
    if kind not in SmartClient.Kind.values:
        raise ValidationFailed.for_field("kind", "Choose public (staff app) or backend.")
    if not name.strip():
        raise ValidationFailed.for_field("name", "Name the app.")
    if not scopes.is_valid(scope):
        raise ValidationFailed.for_field("scope", f"{scope!r} holds no SMART scope.")
    if kind == SmartClient.Kind.PUBLIC:
        if not redirect_uris:
            raise ValidationFailed.for_field("redirect_uris", "A staff app needs a redirect URI.")
        if any(":" not in uri for uri in redirect_uris):
            raise ValidationFailed.for_field("redirect_uris", "Each redirect URI is absolute.")
    else:
        if membership is None or membership.organization_id != actor.organization.pk:
            raise ValidationFailed.for_field(
                "membership", "A backend service acts as a member of this organization."
            )
        try:
            keys = KeySet.import_key_set(cast(Any, jwks or {}))
        except (JoseError, ValueError, TypeError, KeyError) as exc:
            raise ValidationFailed.for_field("jwks", f"Not a JWK Set: {exc}") from None
        if not keys.keys or any(k.is_private for k in keys.keys):
            raise ValidationFailed.for_field(
                "jwks", "Send the service's public keys only (a JWK Set)."
            )
    with transaction.atomic():
        client = SmartClient.objects.create(
            organization=actor.organization,
            client_id=secrets.token_urlsafe(16),
            name=name.strip()[:100],
            kind=kind,
            redirect_uris=list(redirect_uris or []),
            scope=scope,
            jwks=jwks,
            membership=membership,
        )
        audit_record(
            actor=actor,
            action="fhir.smart.client_registered",
            obj=client,
            detail={"client_id": client.client_id, "kind": kind, "scope": scope},
        )
    return client
