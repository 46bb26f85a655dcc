"""Who is acting when a management command runs: the user named on the command line, with the
capabilities of their membership exactly as the screens and the API check them. Every command
that writes or discloses clinical data (tokens, imports, exports, reports) resolves its user here,
so an inactive user or membership is refused the same way everywhere."""

from __future__ import annotations

from django.core.management.base import CommandError

from ketaclinic.accounts.actor import Actor
from ketaclinic.accounts.models import Membership


def cli_actor(username: str) -> Actor:
    membership = (
        Membership.objects.select_related("user", "organization", "home_clinic")
        .filter(user__username=username, is_active=True, user__is_active=True)
        .order_by("pk")
        .first()
    )
    if membership is None:
        raise CommandError(f"No active user {username!r}.")
    return Actor(membership=membership, channel="cli", client_address="")
