"""Access outside one's assignment (issue 12 item 2): care teams and breaking the glass.

When an organization keeps charts to the care team (`Organization.care_team_only`), a
prescriber, nurse or therapist opens a patient's record only if on the patient's care team, or
after breaking the glass: a stated reason, an access that lapses after a time limit, an audit
event, and an entry on compliance's Today page until a compliance officer reviews it.
Compliance, clinic admins and the front desk are not kept to care teams (they do not treat).
Limits: docs/sources/security.md, "Break-glass access".
"""

from __future__ import annotations

import uuid
from datetime import timedelta

from django.db import transaction

from ketaclinic.accounts.actor import Actor
from ketaclinic.accounts.audit import audit_record
from ketaclinic.accounts.models import Membership, Organization
from ketaclinic.accounts.roles import CARE_TEAM_ROLES, Cap
from ketaclinic.core import clock
from ketaclinic.core.errors import Conflict, FieldError, Forbidden, NotFound, ValidationFailed
from ketaclinic.patients.models import BreakGlassAccess, CareTeamMember, Patient

MIN_REASON = 20  # characters: a reason someone else can judge, not "x"
DEFAULT_MINUTES = 60
MAX_MINUTES = 8 * 60  # one shift


def kept_to_care_team(actor: Actor) -> bool:
    return actor.organization.care_team_only and actor.role in CARE_TEAM_ROLES


def assignment_check(actor: Actor, patient: Patient) -> None:
    """Refuse (403, audited) a clinician outside the patient's care team without an open
    break-glass access. Nothing to check (no query) when the organization does not ask for it."""
    if not kept_to_care_team(actor):
        return
    user = actor.user
    if CareTeamMember.objects.filter(patient=patient, user=user).exists():
        return
    if BreakGlassAccess.objects.filter(
        patient=patient, user=user, expires_at__gt=clock.now()
    ).exists():
        return
    audit_record(
        actor=actor,
        action="patients.patient.outside_assignment",
        outcome="denied",
        patient_id=patient.public_id,
        obj=patient,
    )
    raise OutsideAssignment(patient)


class OutsideAssignment(Forbidden):
    """403 with the way out: the break-glass form for this patient (on screen)."""

    def __init__(self, patient: Patient) -> None:
        super().__init__(
            "You are not on this patient's care team. In an emergency, break the glass: give "
            "the reason, the access lapses after a time limit, and compliance is told."
        )
        self.break_glass_url = f"/patients/{patient.public_id}/break-glass/"


def _patient(public_id: str | uuid.UUID) -> Patient:
    try:
        key = uuid.UUID(str(public_id))
    except ValueError:
        key = None
    patient = Patient.objects.filter(public_id=key).first() if key else None
    if patient is None:
        raise NotFound("No such patient.")
    return patient


def break_glass_open(
    *, actor: Actor, patient_id: str | uuid.UUID, reason: str, minutes: int | None = None
) -> BreakGlassAccess:
    actor.require(Cap.PATIENT_BREAK_GLASS)
    patient = _patient(patient_id)
    reason = (reason or "").strip()
    minutes = DEFAULT_MINUTES if minutes is None else minutes
    errors = []
    if len(reason) < MIN_REASON:
        errors.append(
            ("reason", f"Say why you need this chart now (at least {MIN_REASON} characters).")
        )
    if not 1 <= minutes <= MAX_MINUTES:
        errors.append(("minutes", f"The access lasts between 1 and {MAX_MINUTES} minutes."))
    if errors:
        raise ValidationFailed(
            "The glass was not broken.", [FieldError(field, message) for field, message in errors]
        )
    with transaction.atomic():
        access = BreakGlassAccess.objects.create(
            organization=actor.organization,
            patient=patient,
            user=actor.user,
            role=actor.role,
            reason=reason[:2000],
            expires_at=clock.now() + timedelta(minutes=minutes),
        )
        audit_record(
            actor=actor,
            action="patients.break_glass.opened",
            patient_id=patient.public_id,
            obj=access,
            detail={"reason": reason[:500], "minutes": minutes},
        )
    return access


def break_glass_review(
    *, actor: Actor, access_id: str | uuid.UUID, note: str = ""
) -> BreakGlassAccess:
    actor.require(Cap.BREAK_GLASS_REVIEW)
    access = break_glass_get(actor, access_id)
    if access.user_id == actor.user.pk:
        raise Forbidden("Someone else reviews your own break-glass access.")
    with transaction.atomic():
        updated = BreakGlassAccess.objects.filter(pk=access.pk, reviewed_at__isnull=True).update(
            reviewed_by=actor.user, reviewed_at=clock.now(), review_note=(note or "").strip()[:2000]
        )
        if not updated:
            raise Conflict("This access is already reviewed.")
        access.refresh_from_db()
        audit_record(
            actor=actor,
            action="patients.break_glass.reviewed",
            patient_id=access.patient.public_id,
            obj=access,
            detail={"note": access.review_note[:500]},
        )
    return access


def break_glass_get(actor: Actor, access_id: str | uuid.UUID) -> BreakGlassAccess:
    try:
        key = uuid.UUID(str(access_id))
    except ValueError:
        key = None
    access = (
        BreakGlassAccess.objects.select_related("patient", "user").filter(public_id=key).first()
        if key
        else None
    )
    if access is None:
        raise NotFound("No such break-glass access.")
    return access


def break_glass_list(actor: Actor, *, unreviewed_only: bool = False) -> list[BreakGlassAccess]:
    actor.require(Cap.BREAK_GLASS_REVIEW)
    accesses = BreakGlassAccess.objects.select_related("patient", "user", "reviewed_by")
    if unreviewed_only:
        accesses = accesses.filter(reviewed_at__isnull=True)
    return list(accesses[:200])


def care_team_add(*, actor: Actor, patient_id: str | uuid.UUID, username: str) -> CareTeamMember:
    actor.require(Cap.CARE_TEAM_MANAGE)
    patient = _patient(patient_id)
    membership = (
        Membership.objects.select_related("user")
        .filter(organization=actor.organization, user__username=username, is_active=True)
        .first()
    )
    if membership is None or membership.role not in CARE_TEAM_ROLES:
        raise ValidationFailed.for_field(
            "username", "Name an active prescriber, nurse or therapist of this organization."
        )
    with transaction.atomic():
        member, created = CareTeamMember.objects.get_or_create(
            organization=actor.organization,
            patient=patient,
            user=membership.user,
            defaults={"added_by": actor.user},
        )
        if not created:
            raise Conflict(f"{username} is already on this patient's care team.")
        audit_record(
            actor=actor,
            action="patients.care_team.added",
            patient_id=patient.public_id,
            obj=member,
            detail={"username": username},
        )
    return member


def care_team_list(*, actor: Actor, patient_id: str | uuid.UUID) -> list[CareTeamMember]:
    actor.require(Cap.CARE_TEAM_MANAGE)
    patient = _patient(patient_id)
    return list(
        CareTeamMember.objects.select_related("user", "patient")
        .filter(patient=patient)
        .order_by("created_at")
    )


def care_team_remove(*, actor: Actor, patient_id: str | uuid.UUID, username: str) -> None:
    actor.require(Cap.CARE_TEAM_MANAGE)
    patient = _patient(patient_id)
    member = CareTeamMember.objects.filter(patient=patient, user__username=username).first()
    if member is None:
        raise NotFound(f"{username} is not on this patient's care team.")
    with transaction.atomic():
        audit_record(
            actor=actor,
            action="patients.care_team.removed",
            patient_id=patient.public_id,
            obj=member,
            detail={"username": username},
        )
        member.delete()


def care_team_policy_set(*, actor: Actor, enabled: bool) -> Organization:
    actor.require(Cap.SETUP_MANAGE)
    organization = actor.organization
    with transaction.atomic():
        Organization.objects.filter(pk=organization.pk).update(care_team_only=enabled)
        organization.care_team_only = enabled
        audit_record(
            actor=actor, action="patients.care_team.policy_set", detail={"care_team_only": enabled}
        )
    return organization
