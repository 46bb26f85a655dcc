"""Scheduling a session, checking the patient in, aborting before the end."""

from __future__ import annotations

from datetime import datetime

from django.db import IntegrityError, transaction

from ketaclinic.accounts.actor import Actor
from ketaclinic.accounts.chairs import chair_refusal
from ketaclinic.accounts.models import Chair, Clinic
from ketaclinic.accounts.roles import Cap
from ketaclinic.core import clock
from ketaclinic.core.errors import Conflict, SafetyStop, ValidationFailed
from ketaclinic.protocols import selectors as protocol_selectors
from ketaclinic.protocols.models import TreatmentPlan
from ketaclinic.sessions.models import (
    TreatmentSession,
)
from ketaclinic.sessions.services._common import (
    MIN_REASON,
    _audit,
    _gate,
    _locked,
    _move,
    _save,
    session_policy,
)
from ketaclinic.sessions.services.floor import (
    frequency_findings,
    require_bookable,
    require_chair_free,
    require_dose_frequency,
    require_patient_free,
)
from ketaclinic.sessions.workflow import (
    SessionEvent,
    SessionState,
)

# --- schedule, check in, abort ----------------------------------------------------------------


def _require_chair(clinic: Clinic, number: int, route: str) -> None:
    """The chair exists in this clinic, is in use and is set up for the route."""
    chair = Chair.objects.filter(clinic=clinic, number=number, is_active=True).first()
    if chair is None:
        numbers = list(
            Chair.objects.filter(clinic=clinic, is_active=True).values_list("number", flat=True)
        )
        known = ", ".join(str(n) for n in numbers) if numbers else "none yet (add them in Setup)"
        raise ValidationFailed.for_field(
            "chair", f"{clinic.name} has no chair {number}; its chairs are {known}."
        )
    refusal = chair_refusal(chair.capabilities, route)
    if refusal is not None:
        raise ValidationFailed.for_field("chair", f"{chair.label}: {refusal}.")


def session_schedule(
    *,
    actor: Actor,
    plan: TreatmentPlan,
    scheduled_at: datetime,
    clinic: Clinic | None = None,
    chair: int | None = None,
) -> TreatmentSession:
    actor.require(Cap.SESSION_RUN)
    if plan.status != TreatmentPlan.Status.ACTIVE:
        raise Conflict("The treatment plan is not active.")
    if scheduled_at.tzinfo is None:
        raise ValidationFailed.for_field("scheduled_at", "Give the time with its time zone.")
    clinic = clinic or actor.membership.home_clinic or Clinic.objects.order_by("pk").first()
    if clinic is None:
        raise ValidationFailed.for_field("clinic", "The organization has no clinic.")
    template = plan.protocol.template
    if chair is not None:
        _require_chair(clinic, chair, template.route.value)
    now = clock.now()
    session = TreatmentSession(
        organization=actor.organization,
        patient=plan.patient,
        recorded_by=actor.user,
        plan=plan,
        protocol=plan.protocol,
        protocol_key=plan.protocol_key,
        clinic=clinic,
        chair=chair,
        drug=template.drug.value,
        route=template.route.value,
        setting=template.setting.value,
        scheduled_at=scheduled_at,
        state=SessionState.SCHEDULED,
        state_changed_at=now,
    )
    _gate(session, now)
    row, policy = protocol_selectors.safety_policy_current(actor.organization)
    session.policy_version = row
    session.policy_key = policy.policy_key
    require_bookable(
        clinic=clinic,
        patient_id=plan.patient_id,
        chair=chair,
        scheduled_at=scheduled_at,
        now=now,
        policy=policy,
    )
    with transaction.atomic():
        previous = TreatmentSession.objects.filter(plan=plan).exclude(state=SessionState.ABORTED)
        session.session_number = previous.count() + 1
        session.save()
        _audit(
            actor,
            "sessions.session.scheduled",
            session,
            scheduled_at=scheduled_at.isoformat(),
            protocol=plan.protocol_key,
            policy=policy.policy_key,
        )
    return session


def session_check_in(
    *, actor: Actor, session: TreatmentSession, chair: int | None = None
) -> TreatmentSession:
    actor.require(Cap.SESSION_RUN)
    now = clock.now()
    try:
        with transaction.atomic():
            session = _locked(session)
            _gate(session, now)
            if chair is not None:
                _require_chair(session.clinic, chair, session.route)
                session.chair = chair
            # The floor's hard stops, at check-in at the latest (again at the dose).
            require_patient_free(session)
            require_chair_free(session, session.chair)
            require_dose_frequency(session, session_policy(session), now)
            _move(actor, session, SessionEvent.CHECK_IN, at=now)
            session.checked_in_at = now
            _save(session, "chair", "checked_in_at")
            _audit(actor, "sessions.session.checked_in", session, chair=session.chair)
    except IntegrityError:
        # Another nurse checked this patient or this chair in at the same moment: the database's
        # partial unique constraints refused the second; say so as the checks above would.
        require_patient_free(session)
        require_chair_free(session, session.chair)
        raise
    return session


def session_frequency_override(
    *, actor: Actor, session: TreatmentSession, reason: str
) -> TreatmentSession:
    """A prescriber allows this session's dose despite the gap or weekly limit, in writing.

    Only what the policy calls overridable (the gap since the last dose, sessions a week), never
    the planned session count (extend the phase instead) nor any other hard stop.
    """
    actor.require(Cap.DOSE_ORDER)
    reason = (reason or "").strip()
    if len(reason) < MIN_REASON:
        raise ValidationFailed.for_field(
            "reason", "Write the clinical justification for dosing outside the usual frequency."
        )
    now = clock.now()
    with transaction.atomic():
        session = _locked(session)
        if session.is_final or session.dose_started_at is not None:
            raise Conflict("The dose of this session can no longer be overridden.")
        policy = session_policy(session)
        if not policy.dose_frequency_override_allowed:
            raise SafetyStop.for_field(
                "reason", "This clinic's policy allows no override of the dosing frequency."
            )
        findings = frequency_findings(session, policy, now)
        session.frequency_override_by = actor.user
        session.frequency_override_reason = reason
        session.frequency_override_at = now
        session.save(
            update_fields=[
                "frequency_override_by",
                "frequency_override_reason",
                "frequency_override_at",
                "updated_at",
            ]
        )
        _audit(
            actor,
            "sessions.frequency.overridden",
            session,
            reason=reason,
            findings=[f.message for f in findings],
        )
    return session


def session_abort(*, actor: Actor, session: TreatmentSession, reason: str) -> TreatmentSession:
    actor.require(Cap.SESSION_RUN)
    now = clock.now()
    with transaction.atomic():
        session = _locked(session)
        _move(actor, session, SessionEvent.ABORT, at=now, reason=(reason or "").strip())
        session.abort_reason = reason.strip()
        _save(session, "abort_reason")
        _audit(actor, "sessions.session.aborted", session, reason=reason)
    return session
