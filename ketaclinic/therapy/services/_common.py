"""Helpers shared by the therapy services."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from ketaclinic.accounts.actor import Actor
from ketaclinic.accounts.audit import audit_record
from ketaclinic.accounts.models import Membership, User
from ketaclinic.core import clock
from ketaclinic.core.errors import FieldError, ValidationFailed


def audit(actor: Actor, action: str, patient: Any, obj: Any, **detail: Any) -> None:
    audit_record(
        actor=actor, action=action, patient_id=patient.public_id, obj=obj, detail=detail or None
    )


def refuse(problems: list[tuple[str, str]], detail: str | None = None) -> None:
    if problems:
        raise ValidationFailed(
            detail or " ".join(message for _, message in problems),
            [FieldError(field, message) for field, message in problems],
        )


def aware(value: datetime | None, field: str) -> datetime | None:
    """A time given by a person: with its zone, and not in the future (2 minutes of clock skew)."""
    if value is None:
        return None
    if value.tzinfo is None:
        raise ValidationFailed.for_field(field, "Give the time with its time zone.")
    if value > clock.now() + timedelta(minutes=2):
        raise ValidationFailed.for_field(field, "The time is in the future.")
    return value


def member_of(actor: Actor, user: User, *, field: str, role: str | None = None) -> Membership:
    """The user's active membership in the actor's organization (another clinic's is unknown)."""
    membership = (
        Membership.objects.select_related("user")
        .filter(organization=actor.organization, user=user, is_active=True)
        .first()
    )
    if membership is None or (role is not None and membership.role != role):
        what = f"an active {role.replace('_', ' ')}" if role else "an active member"
        raise ValidationFailed.for_field(field, f"Choose {what} of this clinic.")
    return membership
