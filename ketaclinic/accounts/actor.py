"""Who is acting, in which organization and role, through which channel.

Every service receives an `Actor`: the UI builds it from the logged-in membership, the JSON and
FHIR APIs from the bearer token, the CLI from a named user. Permission checks and audit events
read from it, so all paths are checked the same way.
"""

from __future__ import annotations

from dataclasses import dataclass

from django.http import HttpRequest

from ketaclinic.accounts.models import Membership, Organization, User
from ketaclinic.accounts.roles import Cap, role_can
from ketaclinic.core.errors import Forbidden


@dataclass(frozen=True)
class Actor:
    membership: Membership
    channel: str  # ui, api, fhir, cli, admin, portal
    client_address: str = ""

    @property
    def user(self) -> User:
        return self.membership.user

    @property
    def organization(self) -> Organization:
        return self.membership.organization

    @property
    def role(self) -> str:
        return self.membership.role

    # Plain values for the audit append (no related-object access on the hot path).
    @property
    def organization_id(self) -> int:
        return self.membership.organization_id

    @property
    def user_id(self) -> int:
        return self.membership.user_id

    @property
    def username(self) -> str:
        return self.membership.user.username

    @property
    def chain_key(self) -> str:
        return str(self.membership.organization.public_id)

    def can(self, capability: Cap | str) -> bool:
        return self.membership.is_active and role_can(self.role, capability)

    def require(self, capability: Cap | str, *, action: str = "") -> None:
        """Refuse, and record the refusal, when the role lacks the capability."""
        if self.can(capability):
            return
        from ketaclinic.accounts.audit import audit_record

        audit_record(
            actor=self,
            action=action or f"{capability}.denied",
            outcome="denied",
            detail={"capability": str(capability)},
        )
        raise Forbidden(f"Your role ({self.role}) may not do this ({capability}).")


class ActorRequest(HttpRequest):
    """The type of a request that TenantMiddleware resolved to an `Actor` (for annotations only;
    Django builds the request): `actor` is who acts, from the session or the bearer token, and on
    the JSON API TokenAuth sets `auth` to the same Actor."""

    actor: Actor
    auth: Actor
