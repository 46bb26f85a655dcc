"""Psychotherapy (process) notes, kept apart from the medical record (45 CFR 164.501; see
docs/sources/therapy.md): only the author writes and reads one. Anyone else sees nothing, not
even that it exists, unless they break the glass: a stated reason, an audit event, a row that
compliance reviews, and a message to every compliance officer of the clinic."""

from __future__ import annotations

from django.db import transaction

from ketaclinic.accounts.actor import Actor
from ketaclinic.accounts.audit import audit_record
from ketaclinic.accounts.models import Membership
from ketaclinic.accounts.roles import Cap, Role
from ketaclinic.core import clock
from ketaclinic.core.errors import Conflict, NotFound, ValidationFailed
from ketaclinic.therapy.models import (
    BreakGlassRead,
    PsychotherapyNote,
    TeamMessage,
    TherapyVisit,
)
from ketaclinic.therapy.services._common import audit

TEXT_LIMIT = 20_000
MIN_BREAK_GLASS_REASON = 20


def process_note_write(*, actor: Actor, visit: TherapyVisit, text: str) -> PsychotherapyNote:
    """Write (or rewrite) the author's process note of a visit. The audit event records that it
    was written, never what it says."""
    actor.require(Cap.THERAPY_PROCESS_NOTE)
    text = (text or "").strip()
    if not text:
        raise ValidationFailed.for_field("text", "Write the note.")
    if len(text) > TEXT_LIMIT:
        raise ValidationFailed.for_field("text", f"At most {TEXT_LIMIT} characters.")
    if visit.therapist_id != actor.user.pk:
        # Only the visit's therapist keeps process notes on it.
        raise NotFound("No such visit.")
    with transaction.atomic():
        note = PsychotherapyNote.objects.select_for_update().filter(visit=visit).first()
        if note is None:
            note = PsychotherapyNote(
                organization=visit.organization,
                patient=visit.patient,
                visit=visit,
                author=actor.user,
            )
        note.text = text
        note.save()
        audit(actor, "therapy.process_note.written", visit.patient, note, length=len(text))
    return note


def process_note_read(*, actor: Actor, visit: TherapyVisit) -> PsychotherapyNote | None:
    """The author's own process note of the visit, or None. For anyone else: None, always (the
    note's existence is not disclosed); break the glass to read it."""
    actor.require(Cap.THERAPY_PROCESS_NOTE)
    note = PsychotherapyNote.objects.filter(visit=visit, author=actor.user).first()
    if note is not None:
        audit(actor, "therapy.process_note.read", visit.patient, note)
    return note


def process_note_break_glass(
    *, actor: Actor, visit: TherapyVisit, reason: str
) -> PsychotherapyNote:
    """Read another author's process note in an emergency: audited and reported to compliance."""
    actor.require(Cap.THERAPY_BREAK_GLASS)
    reason = (reason or "").strip()
    if len(reason) < MIN_BREAK_GLASS_REASON:
        raise ValidationFailed.for_field(
            "reason",
            f"Say why the note must be read now (at least {MIN_BREAK_GLASS_REASON} characters).",
        )
    with transaction.atomic():
        note = (
            PsychotherapyNote.objects.select_related("patient", "author")
            .filter(visit=visit)
            .first()
        )
        if note is None:
            audit_record(
                actor=actor,
                action="therapy.process_note.break_glass",
                outcome="denied",
                patient_id=visit.patient.public_id,
                obj=visit,
                detail={"reason": reason[:500], "found": False},
            )
            raise NotFound("This visit has no psychotherapy note.")
        read = BreakGlassRead.objects.create(
            organization=note.organization,
            note=note,
            patient=note.patient,
            reader=actor.user,
            reader_role=actor.role,
            reason=reason[:2000],
        )
        audit(
            actor,
            "therapy.process_note.break_glass",
            note.patient,
            note,
            reason=reason[:500],
            author=str(note.author.public_id),
            break_glass=str(read.public_id),
        )
        officers = Membership.objects.filter(
            organization=actor.organization, role=Role.COMPLIANCE, is_active=True
        ).values_list("user", flat=True)
        TeamMessage.objects.bulk_create(
            TeamMessage(
                organization=actor.organization,
                patient=note.patient,
                sender=None,
                recipient_id=officer,
                subject="Break-glass read of a psychotherapy note",
                body=(
                    f"{actor.user.display_name} ({actor.role.replace('_', ' ')}) read "
                    f"{note.author.display_name}'s psychotherapy note on "
                    f"{note.patient.full_name}. Reason given: {reason[:500]}"
                ),
            )
            for officer in officers
        )
    return note


def break_glass_review(*, actor: Actor, read: BreakGlassRead, note: str) -> BreakGlassRead:
    """Compliance records that it reviewed a break-glass read (and what it concluded)."""
    actor.require(Cap.AUDIT_VIEW)
    note = (note or "").strip()
    if len(note) < 5:
        raise ValidationFailed.for_field("note", "Say what the review found.")
    now = clock.now()
    with transaction.atomic():
        updated = BreakGlassRead.objects.filter(pk=read.pk, reviewed_at__isnull=True).update(
            reviewed_at=now, reviewed_by=actor.user, review_note=note[:2000], updated_at=now
        )
        if updated != 1:
            raise Conflict("This read has already been reviewed.")
        audit_record(
            actor=actor,
            action="therapy.process_note.break_glass_reviewed",
            patient_id=read.patient.public_id,
            obj=read,
        )
    read.refresh_from_db()
    return read
