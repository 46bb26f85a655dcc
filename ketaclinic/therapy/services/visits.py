"""Therapy visits and their progress notes: create, save the draft, sign (then immutable),
amend; and the therapist's risk flag, which raises a safety alert like any other."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from django.db import transaction

from ketaclinic.accounts.actor import Actor
from ketaclinic.accounts.roles import Cap
from ketaclinic.core import clock
from ketaclinic.core.errors import Conflict, Forbidden, ValidationFailed
from ketaclinic.measures.models import SafetyAlert
from ketaclinic.measures.services import alert_raise
from ketaclinic.patients.models import Patient
from ketaclinic.protocols.models import TreatmentPlan
from ketaclinic.sessions.models import TreatmentSession
from ketaclinic.therapy import notes
from ketaclinic.therapy.models import RiskFlag, TherapyNoteAmendment, TherapyVisit
from ketaclinic.therapy.services._common import audit, aware, refuse

NOTE_FIELDS = ("content", "mental_status", "risk_level", "risk_notes", "narrative")
MIN_REASON = 10


def _locked(visit: TherapyVisit) -> TherapyVisit:
    return TherapyVisit.objects.select_for_update().select_related("patient").get(pk=visit.pk)


def _require_author(actor: Actor, visit: TherapyVisit) -> None:
    if visit.therapist_id != actor.user.pk:
        raise Forbidden("Only the visit's therapist writes its note; send them a message instead.")


def _check_enums(kind: str, visit_format: str, modality: str) -> None:
    problems = []
    if kind not in notes.VisitKind.__members__.values():
        problems.append(("kind", "Choose preparation, dosing-session support or integration."))
    if visit_format not in notes.VisitFormat.__members__.values():
        problems.append(("format", "Choose individual or group."))
    if modality not in notes.Modality.__members__.values():
        problems.append(("modality", "Choose in person, video or audio only."))
    refuse(problems)


def _clean_content(kind: str, content: Mapping[str, Any]) -> dict[str, Any]:
    keys = {field.key for field in notes.template_for(kind)}
    unknown = sorted(set(content) - keys)
    if unknown:
        raise ValidationFailed.for_field(
            unknown[0], f"Not a part of the {notes.VisitKind(kind).label.lower()} note."
        )
    return {key: value for key, value in content.items() if value not in (None, "", [])}


def _clean_mental_status(mental_status: Mapping[str, Any]) -> dict[str, str]:
    keys = {field.key for field in notes.MENTAL_STATUS}
    unknown = sorted(set(mental_status) - keys)
    if unknown:
        raise ValidationFailed.for_field(
            f"mental_status.{unknown[0]}", "Not a part of the mental-status examination."
        )
    return {key: str(value).strip() for key, value in mental_status.items() if str(value).strip()}


def visit_create(
    *,
    actor: Actor,
    patient: Patient,
    kind: str,
    visit_format: str = notes.VisitFormat.INDIVIDUAL,
    modality: str = notes.Modality.IN_PERSON,
    started_at: datetime | None = None,
    ended_at: datetime | None = None,
    with_em: bool = False,
    group_size: int | None = None,
    session: TreatmentSession | None = None,
    plan: TreatmentPlan | None = None,
    appointment: Any = None,
) -> TherapyVisit:
    """Open a visit (its note a draft) with the actor as its therapist. Dosing-session support
    names the session the therapist is present at; its time in and out are the visit's times.
    A visit booked in the calendar names its appointment (a KAP preparation or integration
    appointment of the patient; one visit per appointment)."""
    actor.require(Cap.THERAPY_RECORD)
    if appointment is not None:
        _check_appointment(appointment, patient, kind)
    _check_enums(kind, visit_format, modality)
    started = aware(started_at, "started_at") or clock.now()
    ended = aware(ended_at, "ended_at")
    refuse(notes.check_times(started, ended))
    if visit_format == notes.VisitFormat.GROUP and (group_size is None or group_size < 2):
        raise ValidationFailed.for_field("group_size", "A group visit has at least 2 patients.")
    if visit_format == notes.VisitFormat.INDIVIDUAL:
        group_size = None
    if kind == notes.VisitKind.DOSING_SUPPORT:
        if session is None:
            raise ValidationFailed.for_field(
                "session", "Name the dosing session the therapist is present at."
            )
        if session.checked_in_at is None:
            raise Conflict("The patient has not checked in for this session yet.")
    if session is not None and session.patient_id != patient.pk:
        raise ValidationFailed.for_field("session", "That session is another patient's.")
    if plan is not None and plan.patient_id != patient.pk:
        raise ValidationFailed.for_field("plan", "That plan is another patient's.")
    if plan is None:
        plan = session.plan if session is not None else _active_plan(patient)
    with transaction.atomic():
        visit = TherapyVisit.objects.create(
            organization=actor.organization,
            patient=patient,
            recorded_by=actor.user,
            kind=kind,
            format=visit_format,
            group_size=group_size,
            modality=modality,
            with_em=with_em,
            plan=plan,
            session=session,
            appointment_public_id=appointment.public_id if appointment is not None else None,
            therapist=actor.user,
            started_at=started,
            ended_at=ended,
            rule=notes.NOTE_RULE,
        )
        audit(actor, "therapy.visit.created", patient, visit, kind=kind, modality=modality)
    return visit


# Calendar appointment kinds (scheduling.AppointmentType.Kind) -> the visit they book.
APPOINTMENT_KINDS = {
    "kap_preparation": notes.VisitKind.PREPARATION,
    "kap_integration": notes.VisitKind.INTEGRATION,
}


def _check_appointment(appointment: Any, patient: Patient, kind: str) -> None:
    if appointment.patient_id != patient.pk:
        raise ValidationFailed.for_field("appointment", "That appointment is another patient's.")
    booked_kind = APPOINTMENT_KINDS.get(appointment.appointment_type.kind)
    if booked_kind is None or booked_kind != kind:
        raise ValidationFailed.for_field(
            "appointment", "The appointment was not booked for this kind of visit."
        )
    if appointment.status not in ("booked", "checked_in"):
        raise Conflict("The appointment was cancelled, moved or missed.")
    if TherapyVisit.objects.filter(appointment_public_id=appointment.public_id).exists():
        raise Conflict("A visit was already opened for this appointment.")


def _active_plan(patient: Patient) -> TreatmentPlan | None:
    return (
        TreatmentPlan.objects.filter(patient=patient, status=TreatmentPlan.Status.ACTIVE)
        .order_by("-start_date", "-pk")
        .first()
    )


def visit_save(
    *,
    actor: Actor,
    visit: TherapyVisit,
    content: Mapping[str, Any] | None = None,
    mental_status: Mapping[str, Any] | None = None,
    risk_level: str | None = None,
    risk_notes: str | None = None,
    narrative: str | None = None,
    started_at: datetime | None = None,
    ended_at: datetime | None = None,
) -> TherapyVisit:
    """Save the draft note (only what is given changes). A signed note answers 409."""
    actor.require(Cap.THERAPY_RECORD)
    with transaction.atomic():
        visit = _locked(visit)
        if visit.is_signed:
            raise Conflict("The note is signed and cannot change; add an amendment.")
        _require_author(actor, visit)
        if content is not None:
            visit.content = _clean_content(visit.kind, content)
        if mental_status is not None:
            visit.mental_status = _clean_mental_status(mental_status)
        if risk_level is not None:
            if risk_level and risk_level not in notes.RiskLevel.__members__.values():
                raise ValidationFailed.for_field(
                    "risk_level", "Choose none, low, moderate or high."
                )
            visit.risk_level = risk_level
        if risk_notes is not None:
            visit.risk_notes = risk_notes.strip()
        if narrative is not None:
            visit.narrative = narrative.strip()
        visit.started_at = aware(started_at, "started_at") or visit.started_at
        visit.ended_at = aware(ended_at, "ended_at") or visit.ended_at
        refuse(notes.check_times(visit.started_at, visit.ended_at))
        refuse(notes.check_lengths(visit.content, visit.narrative))
        visit.save()
        audit(actor, "therapy.note.saved", visit.patient, visit, length=len(visit.narrative))
    return visit


def _content_hash(visit: TherapyVisit) -> str:
    body = {name: getattr(visit, name) for name in NOTE_FIELDS}
    body["started_at"] = visit.started_at.isoformat()
    body["ended_at"] = visit.ended_at.isoformat() if visit.ended_at else None
    return hashlib.sha256(json.dumps(body, sort_keys=True).encode()).hexdigest()


def visit_sign(*, actor: Actor, visit: TherapyVisit) -> TherapyVisit:
    """Sign the note: every template part, the mental status, the risk assessment and the
    narrative must be there, and the visit's time out. A high risk judgement raises a safety
    alert in the same transaction."""
    actor.require(Cap.THERAPY_RECORD)
    now = clock.now()
    with transaction.atomic():
        visit = _locked(visit)
        if visit.is_signed:
            raise Conflict("The note is already signed; add an amendment.")
        _require_author(actor, visit)
        problems = notes.validate_note(
            kind=visit.kind,
            content=visit.content,
            mental_status=visit.mental_status,
            risk_level=visit.risk_level,
            risk_notes=visit.risk_notes,
            narrative=visit.narrative,
        )
        if visit.ended_at is None:
            problems.append(("ended_at", "Record when the visit ended (time out)."))
        refuse(problems, "The note cannot be signed yet: " + "; ".join(m for _, m in problems))
        billing = notes.billing_facts(
            kind=visit.kind,
            visit_format=visit.format,
            modality=visit.modality,
            with_em=visit.with_em,
            started_at=visit.started_at,
            ended_at=visit.ended_at,  # type: ignore[arg-type]
        )
        digest = _content_hash(visit)
        TherapyVisit.objects.filter(pk=visit.pk).update(
            signed_at=now,
            signed_by=actor.user,
            content_hash=digest,
            billing=billing.to_dict(),
            updated_at=now,
        )
        visit.refresh_from_db()
        flag = None
        if visit.risk_level in notes.ALERTING_LEVELS:
            flag = _flag(actor, visit.patient, visit, visit.risk_level, visit.risk_notes)
        audit(
            actor,
            "therapy.note.signed",
            visit.patient,
            visit,
            content_hash=digest,
            billing=billing.to_dict(),
            risk_flag=str(flag.public_id) if flag else None,
        )
    return visit


def visit_amend(
    *, actor: Actor, visit: TherapyVisit, text: str, reason: str
) -> TherapyNoteAmendment:
    actor.require(Cap.THERAPY_RECORD)
    text, reason = (text or "").strip(), (reason or "").strip()
    problems = []
    if not text:
        problems.append(("text", "Write the amendment."))
    if len(reason) < 5:
        problems.append(("reason", "Say why the note is amended."))
    refuse(problems)
    with transaction.atomic():
        visit = _locked(visit)
        if not visit.is_signed:
            raise Conflict("Only a signed note is amended; edit the draft instead.")
        _require_author(actor, visit)
        amendment = TherapyNoteAmendment.objects.create(
            organization=visit.organization,
            visit=visit,
            recorded_by=actor.user,
            text=text,
            reason=reason[:200],
            signed_at=clock.now(),
        )
        # The note's record changed (its FHIR version too), though its signed text did not.
        TherapyVisit.objects.filter(pk=visit.pk).update(updated_at=amendment.signed_at)
        audit(
            actor,
            "therapy.note.amended",
            visit.patient,
            amendment,
            visit=str(visit.public_id),
            reason=reason[:200],
        )
    return amendment


def _flag(
    actor: Actor, patient: Patient, visit: TherapyVisit | None, level: str, reason: str
) -> RiskFlag:
    flag = RiskFlag.objects.create(
        organization=patient.organization,
        patient=patient,
        visit=visit,
        level=level,
        reason=reason,
        raised_by=actor.user,
        rule=notes.RISK_RULE,
    )
    label = notes.RiskLevel(level).label.lower()
    alert_raise(
        patient=patient,
        source_kind=SafetyAlert.SourceKind.THERAPY,
        source_public_id=flag.public_id,
        finding={
            "rule": f"{notes.RISK_RULE}:{level}",
            "label": f"Therapist's risk flag ({label} risk): {reason}"[:255],
        },
        severity=SafetyAlert.Severity.CRITICAL
        if level == notes.RiskLevel.HIGH
        else SafetyAlert.Severity.HIGH,
        responsible=_prescriber(patient, visit),
    )
    return flag


def _prescriber(patient: Patient, visit: TherapyVisit | None) -> Any:
    plan = visit.plan if visit is not None and visit.plan_id else _active_plan(patient)
    return plan.prescriber if plan is not None else None


def risk_flag_raise(
    *,
    actor: Actor,
    patient: Patient,
    level: str,
    reason: str,
    visit: TherapyVisit | None = None,
) -> RiskFlag:
    """The therapist flags a risk (at any time, with or without a note): a safety alert goes to
    the prescriber of the plan, acknowledged and escalated like every other alert."""
    actor.require(Cap.THERAPY_RECORD)
    reason = (reason or "").strip()
    problems = []
    if level not in (notes.RiskLevel.LOW, notes.RiskLevel.MODERATE, notes.RiskLevel.HIGH):
        problems.append(("level", "Choose low, moderate or high."))
    if len(reason) < MIN_REASON:
        problems.append(("reason", "Say what the risk is (at least 10 characters)."))
    refuse(problems)
    if visit is not None and visit.patient_id != patient.pk:
        raise ValidationFailed.for_field("visit", "That visit is another patient's.")
    with transaction.atomic():
        flag = _flag(actor, patient, visit, level, reason)
        audit(actor, "therapy.risk.flagged", patient, flag, level=level)
    return flag
