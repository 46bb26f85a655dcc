"""Shared by create-token, list-tokens and revoke-token: who is acting on the command line.

The command line names the acting user (`--as`, else the token's owner) and checks that user's
capabilities exactly as the screens and the API do: one's own tokens need `tokens.own`, another
user's need `tokens.manage` in the same organization."""

from __future__ import annotations

from django_scopes import scope

from ketaclinic.accounts.actor import Actor
from ketaclinic.accounts.command_line import cli_actor

__all__ = ["cli_actor", "in_scope"]


def in_scope(actor: Actor):  # noqa: ANN201 - a context manager
    return scope(organization=actor.organization)
