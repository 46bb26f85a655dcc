"""The treatment team: a therapist assigned to a plan or to one dosing session; and the
instruments a plan asks for around dosing sessions."""

from __future__ import annotations

from django.db import IntegrityError, transaction

from ketaclinic.accounts.actor import Actor
from ketaclinic.accounts.models import User
from ketaclinic.accounts.roles import Cap, Role
from ketaclinic.core import clock
from ketaclinic.core.errors import Conflict, ValidationFailed
from ketaclinic.measures.definitions import get_instrument
from ketaclinic.protocols.models import TreatmentPlan
from ketaclinic.sessions.models import TreatmentSession
from ketaclinic.therapy.models import TeamAssignment, TherapyMeasurePlan
from ketaclinic.therapy.services._common import audit, member_of


def team_assign(
    *,
    actor: Actor,
    therapist: User,
    plan: TreatmentPlan | None = None,
    session: TreatmentSession | None = None,
) -> TeamAssignment:
    actor.require(Cap.THERAPY_TEAM_ASSIGN)
    if (plan is None) == (session is None):
        raise ValidationFailed.for_field("plan", "Assign the therapist to a plan or to a session.")
    member_of(actor, therapist, field="therapist", role=Role.THERAPIST)
    patient = plan.patient if plan is not None else session.patient  # type: ignore[union-attr]
    if session is not None and session.is_final:
        raise Conflict("The session has ended; assign the therapist to an open session.")
    try:
        with transaction.atomic():
            assignment = TeamAssignment.objects.create(
                organization=actor.organization,
                patient=patient,
                plan=plan,
                session=session,
                therapist=therapist,
                assigned_by=actor.user,
            )
            audit(
                actor,
                "therapy.team.assigned",
                patient,
                assignment,
                therapist=str(therapist.public_id),
                to="plan" if plan is not None else "session",
            )
    except IntegrityError as error:
        raise Conflict("This therapist is already on the team.") from error
    return assignment


def team_unassign(*, actor: Actor, assignment: TeamAssignment) -> TeamAssignment:
    actor.require(Cap.THERAPY_TEAM_ASSIGN)
    now = clock.now()
    with transaction.atomic():
        ended = TeamAssignment.objects.filter(pk=assignment.pk, ended_at__isnull=True).update(
            ended_at=now, updated_at=now
        )
        if ended != 1:
            raise Conflict("This assignment has already ended.")
        audit(actor, "therapy.team.unassigned", assignment.patient, assignment)
    assignment.refresh_from_db()
    return assignment


def measure_plan_add(
    *, actor: Actor, plan: TreatmentPlan, instrument_id: str, timing: str
) -> TherapyMeasurePlan:
    actor.require(Cap.THERAPY_RECORD)
    try:
        instrument = get_instrument(instrument_id)
    except (KeyError, ValueError) as error:
        raise ValidationFailed.for_field("instrument_id", "Unknown instrument.") from error
    if timing not in TherapyMeasurePlan.Timing.values:
        raise ValidationFailed.for_field("timing", "Choose when the instrument is asked for.")
    if plan.status != TreatmentPlan.Status.ACTIVE:
        raise Conflict("The plan is not active.")
    try:
        with transaction.atomic():
            row = TherapyMeasurePlan.objects.create(
                organization=actor.organization,
                plan=plan,
                instrument_id=instrument.id,
                timing=timing,
                created_by=actor.user,
            )
            audit(
                actor,
                "therapy.measure_plan.added",
                plan.patient,
                row,
                instrument=instrument.rule_id,
                timing=timing,
            )
    except IntegrityError as error:
        raise Conflict("The plan already asks for this instrument at that time.") from error
    return row
