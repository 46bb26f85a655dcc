"""Handoff messages between members of the treatment team, inside the app, audited."""

from __future__ import annotations

from django.db import transaction

from ketaclinic.accounts.actor import Actor
from ketaclinic.accounts.audit import audit_record
from ketaclinic.accounts.models import User
from ketaclinic.accounts.roles import Cap
from ketaclinic.core import clock
from ketaclinic.core.errors import Conflict, NotFound
from ketaclinic.patients.models import Patient
from ketaclinic.therapy.models import TeamMessage
from ketaclinic.therapy.services._common import member_of, refuse

BODY_LIMIT = 4000


def message_send(
    *, actor: Actor, recipient: User, subject: str, body: str, patient: Patient | None = None
) -> TeamMessage:
    actor.require(Cap.TEAM_MESSAGE)
    subject, body = (subject or "").strip(), (body or "").strip()
    problems = []
    if not subject:
        problems.append(("subject", "Give the message a subject."))
    elif len(subject) > 200:
        problems.append(("subject", "At most 200 characters."))
    if not body:
        problems.append(("body", "Write the message."))
    elif len(body) > BODY_LIMIT:
        problems.append(("body", f"At most {BODY_LIMIT} characters."))
    refuse(problems)
    membership = member_of(actor, recipient, field="recipient")
    if not membership.user.pk or recipient.pk == actor.user.pk:
        refuse([("recipient", "Send the message to someone else on the team.")])
    with transaction.atomic():
        message = TeamMessage.objects.create(
            organization=actor.organization,
            patient=patient,
            sender=actor.user,
            recipient=recipient,
            subject=subject,
            body=body,
        )
        audit_record(
            actor=actor,
            action="therapy.message.sent",
            patient_id=patient.public_id if patient else None,
            obj=message,
            detail={"recipient": str(recipient.public_id)},
        )
    return message


def message_mark_read(*, actor: Actor, message: TeamMessage) -> TeamMessage:
    actor.require(Cap.TEAM_MESSAGE)
    if message.recipient_id != actor.user.pk:
        raise NotFound("No such message.")
    now = clock.now()
    with transaction.atomic():
        updated = TeamMessage.objects.filter(pk=message.pk, read_at__isnull=True).update(
            read_at=now, updated_at=now
        )
        if updated != 1:
            raise Conflict("The message is already marked read.")
        audit_record(
            actor=actor,
            action="therapy.message.read",
            patient_id=message.patient.public_id if message.patient else None,
            obj=message,
        )
    message.refresh_from_db()
    return message
