"""The session note: save, sign (ledger must balance), amend."""

from __future__ import annotations

import hashlib
from decimal import Decimal

from django.db import transaction

from ketaclinic.accounts.actor import Actor
from ketaclinic.accounts.roles import Cap
from ketaclinic.core import clock
from ketaclinic.core.errors import Conflict, FieldError, SafetyStop, ValidationFailed
from ketaclinic.inventory import selectors as inventory_selectors
from ketaclinic.sessions.models import (
    DoseAdministration,
    NoteAmendment,
    SessionNote,
    TreatmentSession,
)
from ketaclinic.sessions.services._common import (
    _audit,
    _locked,
    session_policy,
)
from ketaclinic.sessions.services.pmf import (
    _pmf_refresh,
)
from ketaclinic.sessions.workflow import (
    SessionState,
)

# --- the note -----------------------------------------------------------------------------------


def note_save(*, actor: Actor, session: TreatmentSession, text: str) -> SessionNote:
    actor.require(Cap.SESSION_RUN)
    with transaction.atomic():
        session = _locked(session)
        note = SessionNote.objects.filter(session=session).first()
        if note is not None and note.signed_at is not None:
            raise Conflict(
                "The note is signed and cannot change; add an amendment.",
                [FieldError("text", "signed")],
            )
        if note is None:
            note = SessionNote(
                organization=session.organization, session=session, recorded_by=actor.user
            )
        note.text = text
        note.save()
        _audit(actor, "sessions.note.saved", session, note, length=len(text))
    return note


def _mg_text(value: Decimal) -> str:
    normal = Decimal(value).normalize()
    return "0" if normal == 0 else format(normal, "f")


def _require_ledger_balanced(session: TreatmentSession) -> None:
    """drawn = administered + wasted + returned in the inventory ledger, for every
    administration of the session (issue 7); otherwise SafetyStop naming each one."""
    errors = []
    administrations = DoseAdministration.objects.filter(session=session).order_by(
        "started_at", "pk"
    )
    for administration in administrations:
        account = inventory_selectors.administration_reconciliation(
            administration.public_id, administered_mg=administration.dose_mg
        )
        if account.balanced:
            continue
        difference = account.difference_mg
        gap = (
            f"{_mg_text(difference)} mg unaccounted"
            if difference > 0
            else f"{_mg_text(-difference)} mg more accounted for than drawn"
        )
        errors.append(
            FieldError(
                f"administration.{administration.public_id}",
                f"Administration {administration.public_id} (lot {administration.lot_number}): "
                f"drawn {_mg_text(account.drawn_mg)} mg, "
                f"administered {_mg_text(account.administered_mg)} mg, "
                f"wasted {_mg_text(account.wasted_mg)} mg, "
                f"returned {_mg_text(account.returned_mg)} mg: {gap}.",
            )
        )
    if errors:
        raise SafetyStop(
            "The controlled-substance ledger does not balance: "
            + " ".join(error.message for error in errors),
            errors,
        )


def note_sign(*, actor: Actor, session: TreatmentSession) -> SessionNote:
    """Sign the note. An esketamine session's REMS form must be complete first, and every
    administration must balance in the controlled-substance ledger (unless the clinic's safety
    policy turns that off)."""
    actor.require(Cap.SESSION_RUN)
    now = clock.now()
    with transaction.atomic():
        session = _locked(session)
        if not session.is_final:
            raise Conflict("Sign the note after discharge (or abort).")
        note = SessionNote.objects.select_for_update().filter(session=session).first()
        if note is None or not note.text.strip():
            raise ValidationFailed.for_field("text", "Write the note before signing it.")
        if note.signed_at is not None:
            raise Conflict("The note is already signed; add an amendment.")
        if session.drug == "esketamine" and session.state == SessionState.DISCHARGED:
            pmf = _pmf_refresh(session)
            if pmf.missing or pmf.problems:
                raise SafetyStop(
                    "The REMS Patient Monitoring Form is incomplete: "
                    + ", ".join(pmf.missing + pmf.problems),
                    [FieldError(f"pmf.{key}", "Required by the REMS form.") for key in pmf.missing]
                    + [FieldError("pmf", problem) for problem in pmf.problems],
                )
        if session_policy(session).require_ledger_reconciliation:
            _require_ledger_balanced(session)
        digest = hashlib.sha256(note.text.encode()).hexdigest()
        SessionNote.objects.filter(pk=note.pk).update(
            signed_at=now, signed_by=actor.user, content_hash=digest, updated_at=now
        )
        note.refresh_from_db()
        _audit(actor, "sessions.note.signed", session, note, content_hash=digest)
    return note


def note_amend(*, actor: Actor, session: TreatmentSession, text: str, reason: str) -> NoteAmendment:
    actor.require(Cap.SESSION_RUN)
    if not text.strip() or len(reason.strip()) < 5:
        raise ValidationFailed.for_field("reason", "An amendment needs its text and a reason.")
    with transaction.atomic():
        note = SessionNote.objects.filter(session=session).first()
        if note is None or note.signed_at is None:
            raise Conflict("Only a signed note is amended; edit the draft instead.")
        amendment = NoteAmendment.objects.create(
            organization=session.organization,
            session=session,
            recorded_by=actor.user,
            note=note,
            text=text,
            reason=reason.strip(),
            signed_at=clock.now(),
        )
        _audit(actor, "sessions.note.amended", session, amendment, reason=reason.strip())
    return amendment
