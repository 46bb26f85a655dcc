"""Reads for accounts: the active membership of a user and the owner of a bearer token."""

from __future__ import annotations

from django.db.models import Q

from ketaclinic.accounts.models import ApiToken, Membership, User
from ketaclinic.accounts.services import TOKEN_PREFIX, token_hash
from ketaclinic.core import clock


def membership_active_for_user(user: User, membership_id: int | None = None) -> Membership | None:
    memberships = Membership.objects.select_related("organization", "home_clinic", "user").filter(
        user=user, is_active=True
    )
    if membership_id is not None:
        chosen = memberships.filter(pk=membership_id).first()
        if chosen is not None:
            return chosen
    return memberships.order_by("pk").first()


def token_membership(secret: str) -> Membership | None:
    """The membership behind a valid, unexpired, unrevoked bearer token, else None."""
    if not secret.startswith(TOKEN_PREFIX) or len(secret) > 100:
        return None
    now = clock.now()
    token = (
        ApiToken.objects.select_related(
            "membership__user", "membership__organization", "membership__home_clinic"
        )
        .filter(key_hash=token_hash(secret), revoked_at__isnull=True, expires_at__gt=now)
        .filter(Q(membership__is_active=True) & Q(membership__user__is_active=True))
        .first()
    )
    if token is None:
        return None
    # Recorded at most once a minute per token: a write on every API call would halve throughput.
    if token.last_used_at is None or (now - token.last_used_at).total_seconds() > 60:
        ApiToken.objects.filter(pk=token.pk).update(last_used_at=now)
    return token.membership
