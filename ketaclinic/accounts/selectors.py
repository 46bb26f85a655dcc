"""Reads for accounts: the active membership of a user and the owner of a bearer token."""

from __future__ import annotations

from ketaclinic.accounts.models import Membership, User


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
    """The membership behind a valid, unexpired, unrevoked bearer token, else None (cached per
    process: accounts.identity_cache)."""
    from ketaclinic.accounts import identity_cache

    return identity_cache.token_membership(secret)
