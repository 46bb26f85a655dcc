"""Staff accounts and their roles, as a clinic admin manages them (issue 12 item 1).

Privilege changes are first-class actions with separation of duties:
- nobody creates, changes, approves or deactivates their own membership;
- a privileged role (accounts.roles.PRIVILEGED_ROLES: prescriber, compliance, clinic admin) takes
  effect only when a second clinic admin, neither the requester nor the person concerned,
  approves it; until then a new account cannot log in and an existing one keeps its old role;
- every request, approval, rejection, change and deactivation is one audit event.

The Django admin shows memberships read-only, so these services are the only way to change a role
short of the operator's command line (`ketaclinic create-user`, for the first accounts).
"""

from __future__ import annotations

import base64
from dataclasses import dataclass

from django.db import transaction

from ketaclinic.accounts.actor import Actor
from ketaclinic.accounts.audit import audit_record
from ketaclinic.accounts.models import Clinic, Membership, RoleChange
from ketaclinic.accounts.roles import PRIVILEGED_ROLES, ROLE_LABELS, Cap, Role
from ketaclinic.accounts.services import totp_device_create, user_create
from ketaclinic.core import clock
from ketaclinic.core.errors import Conflict, FieldError, Forbidden, NotFound, ValidationFailed

_SELF_REFUSAL = "Nobody may change their own account or role; ask another clinic admin."


@dataclass(frozen=True)
class NewStaff:
    """A created account and the secrets shown to the admin once (never stored in clear)."""

    membership: Membership
    password: str
    totp_secret: str  # base32, as authenticator apps take it typed in
    totp_url: str  # otpauth:// URL, shown as a QR code
    change: RoleChange

    @property
    def pending(self) -> bool:
        return self.change.status == RoleChange.Status.PENDING


def _role(value: str) -> Role:
    try:
        return Role(value)
    except ValueError:
        allowed = ", ".join(r.value for r in Role)
        raise ValidationFailed.for_field(
            "role", f"Unknown role {value!r}; choose one of: {allowed}."
        ) from None


def _label(role: str) -> str:
    try:
        return ROLE_LABELS[Role(role)]
    except ValueError:
        return role


def staff_create(
    *,
    actor: Actor,
    username: str,
    role: str,
    first_name: str = "",
    last_name: str = "",
    email: str = "",
    home_clinic: Clinic | None = None,
    reason: str = "",
) -> NewStaff:
    """Create a staff account with a generated password and an authenticator (shown once).

    A privileged role waits for a second clinic admin's approval: the account exists but cannot
    log in until then."""
    actor.require(Cap.STAFF_MANAGE)
    wanted = _role(role)
    if home_clinic is not None and home_clinic.organization_id != actor.organization.pk:
        raise NotFound.for_field("home_clinic", "No such clinic.")
    now = clock.now()
    privileged = wanted in PRIVILEGED_ROLES
    with transaction.atomic():
        user, membership, password = user_create(
            organization=actor.organization,
            username=(username or "").strip(),
            role=wanted.value,
            first_name=first_name.strip(),
            last_name=last_name.strip(),
            email=email.strip(),
            audit=False,
        )
        updates = ["home_clinic"]
        membership.home_clinic = home_clinic or membership.home_clinic
        if privileged:
            membership.is_active = False
            updates.append("is_active")
        membership.save(update_fields=updates)
        device = totp_device_create(user=user, audit=False)
        change = RoleChange.objects.create(
            organization=actor.organization,
            membership=membership,
            from_role="",
            to_role=wanted.value,
            reason=reason.strip(),
            status=RoleChange.Status.PENDING if privileged else RoleChange.Status.APPLIED,
            requested_by=actor.user,
            requested_at=now,
            decided_by=None if privileged else actor.user,
            decided_at=None if privileged else now,
        )
        audit_record(
            actor=actor,
            action="accounts.staff.created",
            obj=user,
            detail={
                "username": user.username,
                "role": wanted.value,
                "awaiting_approval": privileged,
                "authenticator": "enrolled",
            },
        )
    secret = base64.b32encode(device.bin_key).decode()
    return NewStaff(membership, password, secret, device.config_url, change)


def _check_target(actor: Actor, membership: Membership, what: str, **detail: str) -> None:
    if membership.organization_id != actor.organization.pk:
        raise NotFound("No such staff member.")
    if membership.user_id == actor.user.pk:
        audit_record(
            actor=actor,
            action=f"accounts.{what}.self.denied",
            outcome="denied",
            obj=membership.user,
            detail={"username": membership.user.username, **detail},
        )
        raise Forbidden(_SELF_REFUSAL, [FieldError("membership", _SELF_REFUSAL)])


def staff_role_change(
    *, actor: Actor, membership: Membership, role: str, reason: str = ""
) -> RoleChange:
    """Change another member's role: at once for an ordinary role, after a second admin's
    approval for a privileged one. Giving a deactivated account a role reactivates it."""
    actor.require(Cap.STAFF_MANAGE)
    wanted = _role(role)
    _check_target(actor, membership, "role_change", to_role=wanted.value)
    now = clock.now()
    with transaction.atomic():
        membership = Membership.objects.select_for_update().get(pk=membership.pk)
        if membership.role == wanted.value and membership.is_active:
            raise ValidationFailed.for_field(
                "role", f"{membership.user.display_name} already is {_label(wanted.value)}."
            )
        if RoleChange.objects.filter(
            membership=membership, status=RoleChange.Status.PENDING
        ).exists():
            raise Conflict.for_field(
                "role", "A role change for this person is already waiting for approval."
            )
        privileged = wanted in PRIVILEGED_ROLES
        change = RoleChange.objects.create(
            organization=actor.organization,
            membership=membership,
            from_role=membership.role,
            to_role=wanted.value,
            reason=reason.strip(),
            status=RoleChange.Status.PENDING if privileged else RoleChange.Status.APPLIED,
            requested_by=actor.user,
            requested_at=now,
            decided_by=None if privileged else actor.user,
            decided_at=None if privileged else now,
        )
        detail: dict[str, object] = {
            "username": membership.user.username,
            "from_role": membership.role,
            "to_role": wanted.value,
            "reason": change.reason,
        }
        if not membership.is_active:
            detail["reactivates"] = True
        if privileged:
            audit_record(
                actor=actor, action="accounts.role_change.requested", obj=change, detail=detail
            )
        else:
            # A role given to a deactivated account brings it back (audited as such).
            membership.role = wanted.value
            membership.is_active = True
            membership.save(update_fields=["role", "is_active", "updated_at"])
            audit_record(
                actor=actor, action="accounts.membership.role_changed", obj=change, detail=detail
            )
    return change


def role_change_decide(*, actor: Actor, change: RoleChange, approve: bool) -> RoleChange:
    """The second clinic admin approves (or rejects) a pending privileged grant."""
    actor.require(Cap.STAFF_MANAGE)
    if change.organization_id != actor.organization.pk:
        raise NotFound("No such role change.")
    # Who asked and whom it concerns never change, so the refusal is decided (and recorded)
    # outside the transaction that a refusal rolls back.
    target = Membership.objects.select_related("user").get(pk=change.membership_id)
    if actor.user.pk in (change.requested_by_id, target.user_id):
        message = (
            "A second clinic admin must decide: not the person who asked for the change, "
            "nor the person it concerns."
        )
        audit_record(
            actor=actor,
            action="accounts.role_change.approve.denied",
            outcome="denied",
            obj=change,
            detail={"username": target.user.username, "to_role": change.to_role},
        )
        raise Forbidden(message, [FieldError("approve", message)])
    with transaction.atomic():
        change = RoleChange.objects.select_for_update().get(pk=change.pk)
        membership = Membership.objects.select_for_update().get(pk=change.membership_id)
        if change.status != RoleChange.Status.PENDING:
            raise Conflict("This role change was already decided.")
        now = clock.now()
        change.status = RoleChange.Status.APPLIED if approve else RoleChange.Status.REJECTED
        change.decided_by = actor.user
        change.decided_at = now
        change.save(update_fields=["status", "decided_by", "decided_at", "updated_at"])
        if approve:
            membership.role = change.to_role
            membership.is_active = True
            membership.save(update_fields=["role", "is_active", "updated_at"])
        audit_record(
            actor=actor,
            action="accounts.role_change.approved" if approve else "accounts.role_change.rejected",
            obj=change,
            detail={
                "username": membership.user.username,
                "from_role": change.from_role,
                "to_role": change.to_role,
                "requested_by": change.requested_by.username if change.requested_by else "",
            },
        )
    return change


def staff_deactivate(*, actor: Actor, membership: Membership, reason: str = "") -> Membership:
    """End someone's access (they leave, or their account is compromised). Never one's own."""
    actor.require(Cap.STAFF_MANAGE)
    _check_target(actor, membership, "staff.deactivate")
    with transaction.atomic():
        membership = Membership.objects.select_for_update().get(pk=membership.pk)
        if (
            not membership.is_active
            and not RoleChange.objects.filter(
                membership=membership, status=RoleChange.Status.PENDING
            ).exists()
        ):
            raise Conflict("This account is already deactivated.")
        membership.is_active = False
        membership.save(update_fields=["is_active", "updated_at"])
        # A pending grant for someone who leaves must not be approvable later.
        RoleChange.objects.filter(membership=membership, status=RoleChange.Status.PENDING).update(
            status=RoleChange.Status.REJECTED, decided_by=actor.user, decided_at=clock.now()
        )
        audit_record(
            actor=actor,
            action="accounts.staff.deactivated",
            obj=membership.user,
            detail={
                "username": membership.user.username,
                "role": membership.role,
                "reason": reason.strip(),
            },
        )
    return membership
