"""Floor-level hard stops shared by booking, check-in, the dose order and the administration.

One open session per patient, one patient per chair, how often a patient may be dosed, and the
Spravato REMS. Checked in the services, so the staff UI, the JSON API, FHIR, the admin and the CLI
all meet them; the database holds the first two as partial unique constraints as well.
Sources and the reasoning behind each number: docs/sources/sessions.md.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

from ketaclinic.accounts.models import Clinic
from ketaclinic.core.errors import Conflict, FieldError, SafetyStop, ValidationFailed
from ketaclinic.protocols.models import PlanEvent
from ketaclinic.sessions.frequency import (
    FrequencyFinding,
    FrequencyLimits,
    PreviousDose,
    dose_frequency_findings,
    weekly_window,
)
from ketaclinic.sessions.models import ACTIVE_STATES, RemsEnrollment, TreatmentSession
from ketaclinic.sessions.policy import SessionSafetyPolicy
from ketaclinic.sessions.workflow import FINAL_STATES


def local_time(clinic: Clinic, at: datetime) -> str:
    """'Mar 2, 09:05 CST': a time as the clinic's staff read it, in its own time zone."""
    local = at.astimezone(ZoneInfo(clinic.time_zone))
    return f"{local:%b} {local.day}, {local:%H:%M %Z}"


def _state_words(state: str) -> str:
    return {
        "checked_in": "checked in",
        "prechecks_passed": "pre-checks done",
        "dosing": "being dosed",
        "monitoring": "being monitored",
        "ready_for_discharge": "ready for discharge",
        "scheduled": "booked",
    }.get(state, state.replace("_", " "))


# --- one open session per patient, one patient per chair ----------------------------------------


def require_patient_free(session: TreatmentSession) -> None:
    """No other session of this patient is open (checked in and not yet discharged or aborted)."""
    other = (
        TreatmentSession.objects.filter(patient_id=session.patient_id, state__in=ACTIVE_STATES)
        .exclude(pk=session.pk)
        .select_related("clinic")
        .first()
    )
    if other is None:
        return
    where = f"chair {other.chair}" if other.chair else other.clinic.name
    message = (
        f"This patient is already in another session ({where}, {_state_words(other.state)} since "
        f"{local_time(other.clinic, other.state_changed_at)}). One open session per patient: "
        "discharge or abort that session first."
    )
    raise Conflict(message, [FieldError("patient", message)])


def require_chair_free(session: TreatmentSession, chair: int | None) -> None:
    """No other patient is in this chair of this clinic right now."""
    if chair is None:
        return
    other = (
        TreatmentSession.objects.filter(
            clinic_id=session.clinic_id, chair=chair, state__in=ACTIVE_STATES
        )
        .exclude(pk=session.pk)
        .select_related("patient", "clinic")
        .first()
    )
    if other is None:
        return
    message = (
        f"Chair {chair} is taken: {other.patient.full_name} is {_state_words(other.state)} there "
        f"(since {local_time(other.clinic, other.state_changed_at)}). One patient per chair: "
        "choose another chair or discharge that patient first."
    )
    raise Conflict(message, [FieldError("chair", message)])


def require_bookable(
    *,
    clinic: Clinic,
    patient_id: int,
    chair: int | None,
    scheduled_at: datetime,
    now: datetime,
    policy: SessionSafetyPolicy,
    exclude_pk: int | None = None,
) -> None:
    """A booking on a sensible date that neither double-books the patient nor the chair."""
    if scheduled_at < now - timedelta(days=policy.schedule_max_days_back):
        raise ValidationFailed.for_field(
            "scheduled_at",
            f"{local_time(clinic, scheduled_at)} is too far in the past: a session can be "
            f"booked at most {policy.schedule_max_days_back} days back. Check the date.",
        )
    if scheduled_at > now + timedelta(days=policy.schedule_max_days_ahead):
        raise ValidationFailed.for_field(
            "scheduled_at",
            f"{local_time(clinic, scheduled_at)} is more than {policy.schedule_max_days_ahead} "
            "days ahead. Check the date.",
        )
    slot = timedelta(minutes=policy.chair_booking_minutes)
    nearby = TreatmentSession.objects.filter(
        scheduled_at__gt=scheduled_at - slot, scheduled_at__lt=scheduled_at + slot
    ).exclude(state__in=[s.value for s in FINAL_STATES])
    if exclude_pk is not None:
        nearby = nearby.exclude(pk=exclude_pk)
    same_patient = nearby.filter(patient_id=patient_id).select_related("clinic").first()
    if same_patient is not None:
        raise Conflict.for_field(
            "scheduled_at",
            "The patient already has a session booked at "
            f"{local_time(same_patient.clinic, same_patient.scheduled_at)}; a session keeps its "
            f"chair for {policy.chair_booking_minutes} minutes.",
        )
    if chair is not None:
        same_chair = nearby.filter(clinic=clinic, chair=chair).first()
        if same_chair is not None:
            raise Conflict.for_field(
                "chair",
                f"Chair {chair} is already booked at "
                f"{local_time(clinic, same_chair.scheduled_at)}; a session keeps its chair for "
                f"{policy.chair_booking_minutes} minutes. Choose another chair or time.",
            )


# --- how often a patient is dosed ---------------------------------------------------------------


def _phase_facts(session: TreatmentSession) -> tuple[datetime | None, int]:
    """When the plan's current phase began (None: with the plan) and the sessions added to it."""
    plan = session.plan
    events = list(
        PlanEvent.objects.filter(
            plan=plan, kind__in=(PlanEvent.Kind.PHASE, PlanEvent.Kind.EXTENSION)
        ).values_list("kind", "from_value", "to_value", "recorded_at")
    )
    began = max(
        (at for kind, _, to, at in events if kind == PlanEvent.Kind.PHASE and to == plan.phase),
        default=None,
    )
    extra = sum(
        int(to)
        for kind, phase, to, at in events
        if kind == PlanEvent.Kind.EXTENSION
        and phase == plan.phase
        and (began is None or at >= began)
    )
    return began, extra


def frequency_limits(
    session: TreatmentSession, policy: SessionSafetyPolicy, extra: int
) -> FrequencyLimits:
    template = session.protocol.template
    phase = next((p for p in template.phases if p.name == session.plan.phase), None)
    per_week = phase.sessions_per_week_max if phase is not None else None
    planned = phase.planned_sessions if phase is not None else None
    return FrequencyLimits(
        min_hours_between_doses=policy.min_hours_between_doses(session.drug),
        max_sessions_per_week=Decimal(per_week or policy.max_dosing_sessions_per_week_default),
        planned_sessions=None if planned is None else planned + extra,
        phase=session.plan.phase or "current",
    )


def frequency_findings(
    session: TreatmentSession, policy: SessionSafetyPolicy, at: datetime
) -> list[FrequencyFinding]:
    began, extra = _phase_facts(session)
    limits = frequency_limits(session, policy, extra)
    days, _ = weekly_window(limits.max_sessions_per_week)
    lookback = max(timedelta(days=days + 1), timedelta(hours=limits.min_hours_between_doses))
    zone = ZoneInfo(session.clinic.time_zone)
    dosed = TreatmentSession.objects.filter(dose_started_at__isnull=False).exclude(pk=session.pk)
    previous = [
        PreviousDose(started, started.astimezone(zone).date())
        for started in dosed.filter(
            patient_id=session.patient_id,
            dose_started_at__gt=at - lookback,
            dose_started_at__lt=at + timedelta(hours=limits.min_hours_between_doses),
        ).values_list("dose_started_at", flat=True)
        if started is not None
    ]
    in_phase = dosed.filter(plan_id=session.plan_id)
    if began is not None:
        in_phase = in_phase.filter(dose_started_at__gte=began)
    return dose_frequency_findings(
        at=at,
        local_day=at.astimezone(zone).date(),
        previous=previous,
        doses_in_phase=in_phase.count(),
        limits=limits,
    )


def require_dose_frequency(
    session: TreatmentSession, policy: SessionSafetyPolicy, at: datetime
) -> None:
    """Refuse a dose that comes too soon or too often, unless a prescriber overrode what may be."""
    findings = frequency_findings(session, policy, at)
    overridden = bool(session.frequency_override_reason) and policy.dose_frequency_override_allowed
    blocking = [f for f in findings if not (f.overridable and overridden)]
    if not blocking:
        return
    messages = [f.message for f in blocking]
    if any(f.overridable for f in blocking):
        messages.append(
            "A prescriber may override this with a written justification."
            if policy.dose_frequency_override_allowed
            else "This clinic's policy allows no override."
        )
    raise SafetyStop(" ".join(messages), [FieldError("dose_frequency", m) for m in messages])


# --- Spravato REMS ------------------------------------------------------------------------------


def require_rems(session: TreatmentSession) -> None:
    """Esketamine only in a REMS-certified clinic, to a patient enrolled in the REMS."""
    if session.drug != "esketamine":
        return
    problems = []
    if not session.clinic.rems_setting_id.strip():
        problems.append(
            FieldError(
                "rems_certification",
                f"{session.clinic.name} is not certified in the Spravato REMS: no esketamine may "
                "be ordered or given here until the clinic's REMS setting ID is recorded in Setup.",
            )
        )
    if not RemsEnrollment.objects.filter(patient_id=session.patient_id).exists():
        problems.append(
            FieldError(
                "rems_enrollment",
                "The patient is not enrolled in the Spravato REMS: record the REMS enrollment "
                "before esketamine is ordered or given.",
            )
        )
    if problems:
        raise SafetyStop(" ".join(p.message for p in problems), problems)
