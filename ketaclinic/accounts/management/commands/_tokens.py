"""Shared by create-token, list-tokens and revoke-token: who is acting on the command line.

The command line names the acting user (`--as`, else the token's owner) and checks that user's
capabilities exactly as the screens and the API do: one's own tokens need `tokens.own`, another
user's need `tokens.manage` in the same organization."""

from __future__ import annotations

from django.core.management.base import CommandError
from django_scopes import scope

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


def in_scope(actor: Actor):  # noqa: ANN201 - a context manager
    return scope(organization=actor.organization)
