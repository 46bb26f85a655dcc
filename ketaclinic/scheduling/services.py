"""Writes for scheduling: appointment types, the monitoring-ratio policy, staff hours and time
off, booking (with every conflict rule as a hard stop), rescheduling that keeps history,
cancellation and no-show with reasons, check-in into the monitored session, series proposed
from the treatment plan, the waitlist, and reminders.

Every booking runs `_fit` inside a transaction that first locks the clinic row (PostgreSQL
SELECT ... FOR UPDATE; SQLite's IMMEDIATE transactions already serialize writers), so two
requests for the last free chair are decided one after the other: exactly one wins.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from decimal import Decimal

from django.db import transaction
from django_scopes import scope, scopes_disabled

from ketaclinic.accounts.actor import Actor
from ketaclinic.accounts.audit import audit_record
from ketaclinic.accounts.models import Chair, Clinic, Membership, Organization
from ketaclinic.accounts.roles import Cap
from ketaclinic.core import clock
from ketaclinic.core.errors import Conflict, FieldError, ValidationFailed
from ketaclinic.messaging.producers import clinic_context, local_time_text
from ketaclinic.messaging.services import message_send
from ketaclinic.patients.models import Patient
from ketaclinic.protocols.models import TreatmentPlan
from ketaclinic.scheduling import rules, series
from ketaclinic.scheduling.availability import (
    Availability,
    Fit,
    capacity_policy_current,
    portal_policy_current,
)
from ketaclinic.scheduling.defaults import DEFAULT_TYPES, ESKETAMINE_MIN_MINUTES
from ketaclinic.scheduling.ics import appointment_ics
from ketaclinic.scheduling.models import (
    Appointment,
    AppointmentSeries,
    AppointmentType,
    CapacityPolicy,
    PortalPolicy,
    StaffHours,
    TimeOff,
    WaitlistEntry,
)

# Staff may book a walk-in that started a few minutes ago, not a visit in the past.
PAST_GRACE = timedelta(minutes=15)
BOOKING_HORIZON = timedelta(days=400)
REMINDER_LEAD = timedelta(hours=24)
LONGEST_VISIT = timedelta(minutes=600)
MAX_PUBLIC_PRICE = Decimal(100_000)


# --- types and policy ---------------------------------------------------------------------------


def appointment_types_seed(*, organization: Organization) -> list[AppointmentType]:
    """Create the default appointment types the organization lacks. Idempotent."""
    with scope(organization=organization):
        have = set(
            AppointmentType.objects.filter(organization=organization).values_list("kind", flat=True)
        )
        created = [
            AppointmentType.objects.create(
                organization=organization,
                kind=d.kind,
                name=d.name,
                duration_minutes=d.duration_minutes,
                needs_chair=d.needs_chair,
                chair_capability=d.chair_capability,
                needs_clinician=d.needs_clinician,
                monitored=d.monitored,
                route=d.route,
                bookable_online=d.bookable_online,
                source=d.source,
            )
            for d in DEFAULT_TYPES
            if d.kind not in have
        ]
    return created


def appointment_type_update(
    *,
    actor: Actor,
    appointment_type: AppointmentType,
    duration_minutes: int,
    bookable_online: bool,
    is_active: bool = True,
    public_price: Decimal | None = None,
) -> AppointmentType:
    """Change a visit type's length, whether it is offered online, and the price the clinic
    publishes on its public page (None: no price shown)."""
    actor.require(Cap.SCHEDULE_MANAGE)
    if public_price is not None and not Decimal(0) <= public_price <= MAX_PUBLIC_PRICE:
        raise ValidationFailed.for_field("public_price", "Between 0 and 100,000 dollars.")
    if not 5 <= duration_minutes <= 600:
        raise ValidationFailed.for_field("duration_minutes", "Between 5 and 600 minutes.")
    if (
        appointment_type.kind == AppointmentType.Kind.ESKETAMINE
        and duration_minutes < ESKETAMINE_MIN_MINUTES
    ):
        raise ValidationFailed.for_field(
            "duration_minutes",
            "An esketamine visit holds its chair at least 120 minutes (2-hour observation).",
        )
    with transaction.atomic():
        appointment_type.duration_minutes = duration_minutes
        appointment_type.bookable_online = bookable_online
        appointment_type.is_active = is_active
        appointment_type.public_price = (
            None if public_price is None else public_price.quantize(Decimal("0.01"))
        )
        appointment_type.save()
        audit_record(
            actor=actor,
            action="scheduling.type.updated",
            obj=appointment_type,
            detail={
                "duration_minutes": duration_minutes,
                "bookable_online": bookable_online,
                "is_active": is_active,
                "public_price": None if public_price is None else str(public_price),
            },
        )
    return appointment_type


def capacity_policy_publish(
    *, actor: Actor, clinic: Clinic, patients_per_nurse: int, note: str = ""
) -> CapacityPolicy:
    actor.require(Cap.SCHEDULE_MANAGE)
    if not 1 <= patients_per_nurse <= 10:
        raise ValidationFailed.for_field("patients_per_nurse", "Between 1 and 10 patients.")
    with transaction.atomic():
        Clinic.objects.select_for_update().get(pk=clinic.pk)
        policy = CapacityPolicy.objects.create(
            organization=clinic.organization,
            clinic=clinic,
            version=capacity_policy_current(clinic).version + 1,
            patients_per_nurse=patients_per_nurse,
            note=note[:2000],
            created_by=actor.user,
        )
        audit_record(
            actor=actor,
            action="scheduling.capacity.published",
            obj=policy,
            detail={"clinic": str(clinic.public_id), "patients_per_nurse": patients_per_nurse},
        )
    return policy


def portal_policy_publish(
    *,
    actor: Actor,
    clinic: Clinic,
    change_cutoff_hours: int,
    horizon_days: int,
    note: str = "",
) -> PortalPolicy:
    """Publish a new version of what patients may do in the portal at this clinic."""
    actor.require(Cap.SCHEDULE_MANAGE)
    errors = []
    if not 1 <= change_cutoff_hours <= 336:
        errors.append(FieldError("change_cutoff_hours", "Between 1 and 336 hours (14 days)."))
    if not 1 <= horizon_days <= 180:
        errors.append(FieldError("horizon_days", "Between 1 and 180 days."))
    if errors:
        raise ValidationFailed(errors[0].message, errors)
    with transaction.atomic():
        Clinic.objects.select_for_update().get(pk=clinic.pk)
        policy = PortalPolicy.objects.create(
            organization=clinic.organization,
            clinic=clinic,
            version=portal_policy_current(clinic).version + 1,
            change_cutoff_hours=change_cutoff_hours,
            horizon_days=horizon_days,
            note=note.strip()[:2000],
            created_by=actor.user,
        )
        audit_record(
            actor=actor,
            action="scheduling.portal_policy.published",
            obj=policy,
            detail={
                "clinic": str(clinic.public_id),
                "change_cutoff_hours": change_cutoff_hours,
                "horizon_days": horizon_days,
            },
        )
    return policy


# --- staff hours and time off -------------------------------------------------------------------


def staff_hours_set(
    *,
    actor: Actor,
    membership: Membership,
    clinic: Clinic,
    hours: Iterable[tuple[int, time, time]],
) -> list[StaffHours]:
    """Replace the staff member's weekly hours at the clinic with `hours` (weekday, start, end)."""
    actor.require(Cap.SCHEDULE_MANAGE)
    rows = list(hours)
    errors = [
        FieldError(f"hours.{i}", "Give a weekday 0-6 and an end after the start.")
        for i, (weekday, start, end) in enumerate(rows)
        if not (0 <= weekday <= 6 and end > start)
    ]
    if membership.organization_id != actor.organization.pk:
        errors.append(FieldError("membership", "No such staff member."))
    if errors:
        raise ValidationFailed("The working hours are not valid.", errors)
    with transaction.atomic():
        StaffHours.objects.filter(membership=membership, clinic=clinic).delete()
        created = StaffHours.objects.bulk_create(
            StaffHours(
                organization=actor.organization,
                clinic=clinic,
                membership=membership,
                weekday=weekday,
                start_time=start,
                end_time=end,
            )
            for weekday, start, end in rows
        )
        audit_record(
            actor=actor,
            action="scheduling.hours.set",
            obj=membership,
            detail={"clinic": str(clinic.public_id), "rows": len(created)},
        )
    return created


def time_off_add(
    *,
    actor: Actor,
    membership: Membership,
    starts_at: datetime,
    ends_at: datetime,
    reason: str = "",
) -> TimeOff:
    actor.require(Cap.SCHEDULE_MANAGE)
    if starts_at.tzinfo is None or ends_at.tzinfo is None or ends_at <= starts_at:
        raise ValidationFailed.for_field(
            "ends_at", "Give a start and a later end, with time zones."
        )
    with transaction.atomic():
        off = TimeOff.objects.create(
            organization=actor.organization,
            membership=membership,
            starts_at=starts_at,
            ends_at=ends_at,
            reason=reason.strip()[:200],
        )
        audit_record(actor=actor, action="scheduling.time_off.added", obj=off)
    return off


# --- fitting a visit ----------------------------------------------------------------------------


def _fit(
    *,
    clinic: Clinic,
    appointment_type: AppointmentType,
    starts_at: datetime,
    chair: Chair | None,
    clinician: Membership | None,
    exclude_pk: int | None = None,
) -> Fit:
    ends_at = starts_at + timedelta(minutes=appointment_type.duration_minutes)
    available = Availability.load(
        clinic,
        starts_at,
        ends_at,
        clinicians=(clinician.pk,) if clinician else (),
        exclude_pk=exclude_pk,
    )
    return available.fit(appointment_type, starts_at, chair, clinician.pk if clinician else None)


def _raise_refusals(refusals: list[rules.Refusal]) -> None:
    if refusals:
        raise Conflict(
            " ".join(r.message for r in refusals),
            [FieldError(r.field, r.message) for r in refusals],
        )


def _check_time(starts_at: datetime, now: datetime) -> None:
    if starts_at.tzinfo is None:
        raise ValidationFailed.for_field("starts_at", "Give the time with its time zone.")
    if starts_at < now - PAST_GRACE:
        raise ValidationFailed.for_field("starts_at", "This time is in the past.")
    if starts_at > now + BOOKING_HORIZON:
        raise ValidationFailed.for_field("starts_at", "Book at most 400 days ahead.")


def _clinic_for(actor: Actor | None, clinic: Clinic | None, organization: Organization) -> Clinic:
    home = actor.membership.home_clinic if actor else None
    clinic = (
        clinic or home or Clinic.objects.filter(organization=organization).order_by("pk").first()
    )
    if clinic is None:
        raise ValidationFailed.for_field("clinic", "The organization has no clinic.")
    return clinic


def _check_parts(
    organization: Organization,
    patient: Patient,
    appointment_type: AppointmentType,
    chair: Chair | None,
    clinic: Clinic,
    clinician: Membership | None,
) -> None:
    errors = []
    if not patient.is_active:
        errors.append(FieldError("patient", "This patient is not active."))
    if not appointment_type.is_active:
        errors.append(FieldError("appointment_type", "This appointment type is not offered."))
    if chair is not None and (chair.clinic_id != clinic.pk or not chair.is_active):
        errors.append(FieldError("chair", "This chair is not in use at this clinic."))
    if clinician is not None and (
        clinician.organization_id != organization.pk or not clinician.is_active
    ):
        errors.append(FieldError("clinician", "No such clinician."))
    if appointment_type.needs_clinician and clinician is None:
        errors.append(FieldError("clinician", "Choose the clinician for this visit."))
    if errors:
        raise ValidationFailed(errors[0].message, errors)


# --- booking ------------------------------------------------------------------------------------


def appointment_book(
    *,
    actor: Actor | None,
    patient: Patient,
    appointment_type: AppointmentType,
    starts_at: datetime,
    clinic: Clinic | None = None,
    chair: Chair | None = None,
    clinician: Membership | None = None,
    plan: TreatmentPlan | None = None,
    source: str = Appointment.Source.STAFF,
    notify: bool = True,
) -> Appointment:
    """Book one visit, or raise Conflict (409) naming every rule it breaks. `actor` None is the
    patient booking in the portal (the portal view checks the clinic's rules first)."""
    if actor is not None:
        actor.require(Cap.SCHEDULE_BOOK)
    organization = patient.organization
    now = clock.now()
    _check_time(starts_at, now)
    clinic = _clinic_for(actor, clinic, organization)
    _check_parts(organization, patient, appointment_type, chair, clinic, clinician)
    with transaction.atomic():
        Clinic.objects.select_for_update().get(pk=clinic.pk)
        fit = _fit(
            clinic=clinic,
            appointment_type=appointment_type,
            starts_at=starts_at,
            chair=chair,
            clinician=clinician,
        )
        _raise_refusals(fit.refusals)
        appointment = Appointment.objects.create(
            organization=organization,
            clinic=clinic,
            patient=patient,
            appointment_type=appointment_type,
            chair=fit.chair,
            clinician=clinician,
            starts_at=starts_at,
            ends_at=starts_at + timedelta(minutes=appointment_type.duration_minutes),
            status=Appointment.Status.BOOKED,
            source=source,
            plan=plan,
            booked_by=actor.user if actor else None,
        )
        _audit(actor, "scheduling.appointment.booked", appointment, source=source)
        if notify:
            _notify(appointment, "appointment_confirmation")
    return appointment


def _audit(actor: Actor | None, action: str, appointment: Appointment, **detail: object) -> None:
    audit_record(
        actor=actor,
        organization=appointment.organization,
        channel="" if actor else "portal",
        action=action,
        patient_id=appointment.patient.public_id,
        obj=appointment,
        detail={
            "starts_at": appointment.starts_at.isoformat(),
            "chair": appointment.chair.number if appointment.chair else None,
            **{k: v for k, v in detail.items() if v not in (None, "")},
        },
    )


def _notify(appointment: Appointment, kind: str) -> None:
    context = clinic_context(appointment.organization, appointment.clinic)
    minutes = appointment.appointment_type.duration_minutes
    context.update(
        starts=local_time_text(appointment.starts_at, appointment.clinic.time_zone),
        duration=f"about {minutes // 60} h {minutes % 60} min"
        if minutes >= 60
        else f"{minutes} min",
        instructions=(
            "Please arrange a ride home: do not drive until the next day after a night's sleep."
            if appointment.appointment_type.monitored
            else ""
        ),
    )
    ics = appointment_ics(
        uid=str(appointment.public_id),
        starts_at=appointment.starts_at,
        ends_at=appointment.ends_at,
        clinic_name=context["clinic_name"],
        address=context["address"],
        sequence=0,
        stamp=clock.now(),
        cancelled=kind == "appointment_cancelled",
    )
    message_send(
        organization=appointment.organization,
        patient=appointment.patient,
        kind=kind,
        context=context,
        attachments=[
            {"filename": "appointment.ics", "content_type": "text/calendar", "content": ics}
        ],
        dedupe_key=f"{kind}:{appointment.public_id}",
    )


def _locked(appointment: Appointment) -> Appointment:
    return (
        Appointment.objects.select_for_update(of=("self",))
        .select_related("patient", "clinic", "appointment_type", "chair", "organization")
        .get(pk=appointment.pk)
    )


def appointment_reschedule(
    *,
    actor: Actor | None,
    appointment: Appointment,
    starts_at: datetime,
    chair: Chair | None = None,
    clinician: Membership | None = None,
    reason: str = "",
) -> Appointment:
    """Move a booked visit: the old row stays as "moved" (history) and a new one is booked."""
    if actor is not None:
        actor.require(Cap.SCHEDULE_BOOK)
    now = clock.now()
    _check_time(starts_at, now)
    with transaction.atomic():
        Clinic.objects.select_for_update().get(pk=appointment.clinic_id)
        old = _locked(appointment)
        if old.status != Appointment.Status.BOOKED:
            raise Conflict.for_field(
                "status", f"A {old.get_status_display().lower()} visit cannot be moved."
            )
        clinician = clinician or old.clinician
        fit = _fit(
            clinic=old.clinic,
            appointment_type=old.appointment_type,
            starts_at=starts_at,
            chair=chair,
            clinician=clinician,
            exclude_pk=old.pk,
        )
        _raise_refusals(fit.refusals)
        Appointment.objects.filter(pk=old.pk).update(
            status=Appointment.Status.RESCHEDULED,
            status_reason=reason.strip()[:300],
            status_changed_at=now,
            updated_at=now,
        )
        new = Appointment.objects.create(
            organization=old.organization,
            clinic=old.clinic,
            patient=old.patient,
            appointment_type=old.appointment_type,
            chair=fit.chair,
            clinician=clinician,
            starts_at=starts_at,
            ends_at=starts_at + (old.ends_at - old.starts_at),
            status=Appointment.Status.BOOKED,
            source=old.source if actor else Appointment.Source.PORTAL,
            series=old.series,
            series_index=old.series_index,
            series_phase=old.series_phase,
            plan=old.plan,
            rescheduled_from=old,
            booked_by=actor.user if actor else None,
        )
        _audit(actor, "scheduling.appointment.rescheduled", new, moved_from=str(old.public_id))
        _notify(new, "appointment_confirmation")
    return new


def _end(
    actor: Actor,
    appointment: Appointment,
    status: str,
    reason: str,
    action: str,
    *,
    allowed_from: tuple[str, ...],
) -> Appointment:
    reason = (reason or "").strip()
    if not reason:
        raise ValidationFailed.for_field("reason", "Give the reason.")
    now = clock.now()
    with transaction.atomic():
        current = _locked(appointment)
        if current.status not in allowed_from:
            raise Conflict.for_field(
                "status", f"This visit is {current.get_status_display().lower()}."
            )
        if status == Appointment.Status.NO_SHOW and current.starts_at > now:
            raise Conflict.for_field("status", "A visit that has not started is not a no-show.")
        Appointment.objects.filter(pk=current.pk).update(
            status=status, status_reason=reason[:300], status_changed_at=now, updated_at=now
        )
        current.refresh_from_db()
        _audit(actor, action, current, reason=reason[:300])
        if status == Appointment.Status.CANCELLED and current.starts_at > now:
            _notify(current, "appointment_cancelled")
    return current


def appointment_cancel(
    *, actor: Actor | None, appointment: Appointment, reason: str
) -> Appointment:
    if actor is not None:
        actor.require(Cap.SCHEDULE_BOOK)
    return _end(
        actor,  # type: ignore[arg-type]
        appointment,
        Appointment.Status.CANCELLED,
        reason,
        "scheduling.appointment.cancelled",
        allowed_from=(Appointment.Status.BOOKED, Appointment.Status.PROPOSED),
    )


def appointment_no_show(*, actor: Actor, appointment: Appointment, reason: str) -> Appointment:
    actor.require(Cap.SCHEDULE_BOOK)
    return _end(
        actor,
        appointment,
        Appointment.Status.NO_SHOW,
        reason,
        "scheduling.appointment.no_show",
        allowed_from=(Appointment.Status.BOOKED,),
    )


def _plan_for(appointment: Appointment) -> TreatmentPlan:
    if appointment.plan is not None:
        return appointment.plan
    route = appointment.appointment_type.route
    plans = TreatmentPlan.objects.filter(
        patient=appointment.patient, status=TreatmentPlan.Status.ACTIVE
    ).select_related("protocol")
    plan = next((p for p in plans if p.protocol.route == route), None)
    if plan is None:
        raise Conflict.for_field("plan", "The patient has no active treatment plan for this visit.")
    return plan


def appointment_check_in(*, actor: Actor, appointment: Appointment) -> Appointment:
    """The patient arrived: a dosing visit opens its monitored session (sessions' own services,
    with all their gates); any other visit is marked checked in."""
    from ketaclinic.sessions.services import session_check_in, session_schedule

    actor.require(Cap.SCHEDULE_BOOK)
    now = clock.now()
    with transaction.atomic():
        current = _locked(appointment)
        if current.status != Appointment.Status.BOOKED:
            raise Conflict.for_field(
                "status", f"This visit is {current.get_status_display().lower()}."
            )
        session_id = None
        if current.appointment_type.route:
            session = session_schedule(
                actor=actor,
                plan=_plan_for(current),
                scheduled_at=current.starts_at,
                clinic=current.clinic,
                chair=current.chair.number if current.chair else None,
            )
            session = session_check_in(actor=actor, session=session)
            session_id = session.public_id
        Appointment.objects.filter(pk=current.pk).update(
            status=Appointment.Status.CHECKED_IN,
            session_public_id=session_id,
            status_changed_at=now,
            updated_at=now,
        )
        current.refresh_from_db()
        _audit(actor, "scheduling.appointment.checked_in", current, session=str(session_id or ""))
    return current


# --- series from the plan -----------------------------------------------------------------------


def plan_phases(plan: TreatmentPlan) -> list[series.PhasePlan]:
    """The plan's dosing phases as recurrence inputs: a counted phase at its highest weekly rate
    (IV: 3 a week), an open-ended one at its lowest (esketamine week 9+: every 2 weeks)."""
    phases = []
    for phase in plan.protocol.template.phases:
        if phase.visit.value != "dosing":
            continue
        per_week = (
            phase.sessions_per_week_max
            if phase.planned_sessions
            else phase.sessions_per_week_min or phase.sessions_per_week_max
        )
        phases.append(
            series.PhasePlan(phase.name, phase.planned_sessions, per_week, phase.start_week)
        )
    return phases


def series_propose(
    *,
    actor: Actor,
    plan: TreatmentPlan,
    appointment_type: AppointmentType,
    first_day: date,
    wall_time: time,
    clinic: Clinic | None = None,
    exceptions: Sequence[date] = (),
    phases: Sequence[str] | None = None,
) -> AppointmentSeries:
    """Propose the plan's visits (status proposed: they hold nothing until confirmed)."""
    actor.require(Cap.SCHEDULE_BOOK)
    if plan.status != TreatmentPlan.Status.ACTIVE:
        raise Conflict.for_field("plan", "The treatment plan is not active.")
    if appointment_type.route and appointment_type.route != plan.protocol.route:
        raise ValidationFailed.for_field(
            "appointment_type", "This visit type does not match the plan's route."
        )
    clinic = _clinic_for(actor, clinic, actor.organization)
    chosen = [p for p in plan_phases(plan) if phases is None or p.name in phases]
    visits = series.expand(
        chosen,
        first_day=first_day,
        wall_time=wall_time,
        time_zone=clinic.time_zone,
        exceptions=exceptions,
    )
    if not visits:
        raise ValidationFailed.for_field("phases", "The plan has no regular visits to propose.")
    _check_time(visits[0].starts_at, clock.now())
    with transaction.atomic():
        proposal = AppointmentSeries.objects.create(
            organization=actor.organization,
            patient=plan.patient,
            plan=plan,
            appointment_type=appointment_type,
            rules=[
                {"phase": p, "rrule": r}
                for p, r in dict.fromkeys((v.phase, v.rrule) for v in visits)
            ],
            exceptions=[d.isoformat() for d in exceptions],
            algorithm=series.RULE,
            created_by=actor.user,
        )
        duration = timedelta(minutes=appointment_type.duration_minutes)
        Appointment.objects.bulk_create(
            Appointment(
                organization=actor.organization,
                clinic=clinic,
                patient=plan.patient,
                appointment_type=appointment_type,
                starts_at=v.starts_at,
                ends_at=v.starts_at + duration,
                status=Appointment.Status.PROPOSED,
                series=proposal,
                series_index=v.index,
                series_phase=v.phase,
                plan=plan,
                booked_by=actor.user,
            )
            for v in visits
        )
        audit_record(
            actor=actor,
            action="scheduling.series.proposed",
            patient_id=plan.patient.public_id,
            obj=proposal,
            detail={"visits": len(visits), "rules": proposal.rules},
        )
    return proposal


@dataclass
class SeriesConfirmation:
    booked: list[Appointment] = field(default_factory=list)
    refused: list[tuple[Appointment, list[rules.Refusal]]] = field(default_factory=list)


def series_confirm(
    *,
    actor: Actor,
    proposal: AppointmentSeries,
    clinician: Membership | None = None,
    only: Sequence[Appointment] | None = None,
) -> SeriesConfirmation:
    """Book every proposed visit that fits (each under the same rules as a single booking); the
    others stay proposed with their reasons, for the scheduler to move or drop."""
    actor.require(Cap.SCHEDULE_BOOK)
    result = SeriesConfirmation()
    pending = Appointment.objects.filter(
        series=proposal, status=Appointment.Status.PROPOSED
    ).select_related("clinic", "appointment_type", "patient", "organization")
    if only is not None:
        pending = pending.filter(pk__in=[a.pk for a in only])
    now = clock.now()
    for visit in pending.order_by("starts_at"):
        with transaction.atomic():
            Clinic.objects.select_for_update().get(pk=visit.clinic_id)
            fit = _fit(
                clinic=visit.clinic,
                appointment_type=visit.appointment_type,
                starts_at=visit.starts_at,
                chair=visit.chair,
                clinician=clinician or visit.clinician,
            )
            if fit.refusals:
                result.refused.append((visit, fit.refusals))
                continue
            Appointment.objects.filter(pk=visit.pk, status=Appointment.Status.PROPOSED).update(
                status=Appointment.Status.BOOKED,
                chair=fit.chair,
                clinician=clinician or visit.clinician,
                status_changed_at=now,
                updated_at=now,
            )
            visit.refresh_from_db()
            _audit(actor, "scheduling.appointment.booked", visit, series=str(proposal.public_id))
            result.booked.append(visit)
    if result.booked:
        with transaction.atomic():
            _notify(result.booked[0], "appointment_confirmation")
    return result


# --- waitlist -----------------------------------------------------------------------------------


def waitlist_add(
    *,
    actor: Actor,
    patient: Patient,
    appointment_type: AppointmentType,
    earliest: date,
    latest: date,
    clinic: Clinic | None = None,
    note: str = "",
) -> WaitlistEntry:
    actor.require(Cap.SCHEDULE_BOOK)
    if latest < earliest:
        raise ValidationFailed.for_field("latest", "The last day comes after the first.")
    if latest > clock.now().date() + BOOKING_HORIZON:
        raise ValidationFailed.for_field("latest", "At most 400 days ahead.")
    clinic = _clinic_for(actor, clinic, actor.organization)
    with transaction.atomic():
        entry = WaitlistEntry.objects.create(
            organization=actor.organization,
            clinic=clinic,
            patient=patient,
            appointment_type=appointment_type,
            earliest=earliest,
            latest=latest,
            note=note.strip()[:300],
            created_by=actor.user,
        )
        audit_record(
            actor=actor, action="scheduling.waitlist.added", patient_id=patient.public_id, obj=entry
        )
    return entry


def waitlist_book(
    *,
    actor: Actor,
    entry: WaitlistEntry,
    starts_at: datetime,
    chair: Chair | None = None,
    clinician: Membership | None = None,
) -> Appointment:
    with transaction.atomic():
        locked = WaitlistEntry.objects.select_for_update().get(pk=entry.pk)
        if locked.status != WaitlistEntry.Status.WAITING:
            raise Conflict("This waitlist entry is no longer waiting.")
        appointment = appointment_book(
            actor=actor,
            patient=locked.patient,
            appointment_type=locked.appointment_type,
            starts_at=starts_at,
            clinic=locked.clinic,
            chair=chair,
            clinician=clinician,
        )
        WaitlistEntry.objects.filter(pk=locked.pk).update(
            status=WaitlistEntry.Status.BOOKED, appointment=appointment, updated_at=clock.now()
        )
    return appointment


def waitlist_remove(*, actor: Actor, entry: WaitlistEntry, reason: str) -> WaitlistEntry:
    """Take a patient off the waitlist (found a time elsewhere, no longer wants it) with a reason;
    the entry stays as history."""
    actor.require(Cap.SCHEDULE_BOOK)
    reason = (reason or "").strip()
    if not reason:
        raise ValidationFailed.for_field("reason", "Say why the patient leaves the waitlist.")
    with transaction.atomic():
        locked = WaitlistEntry.objects.select_for_update().get(pk=entry.pk)
        if locked.status != WaitlistEntry.Status.WAITING:
            raise Conflict("This waitlist entry is no longer waiting.")
        locked.status = WaitlistEntry.Status.REMOVED
        locked.save(update_fields=["status", "updated_at"])
        audit_record(
            actor=actor,
            action="scheduling.waitlist.removed",
            patient_id=locked.patient.public_id,
            obj=locked,
            detail={"reason": reason[:300]},
        )
    return locked


# --- reminders ----------------------------------------------------------------------------------


def reminders_send_due(*, now: datetime) -> int:
    """Queue a reminder (with the calendar file) for every booked visit in the next 24 hours that
    has none yet. Idempotent across workers: the conditional update claims each visit once."""
    with scopes_disabled():
        due = list(
            Appointment.objects.select_related(
                "organization", "clinic", "patient", "appointment_type", "chair"
            ).filter(
                status=Appointment.Status.BOOKED,
                reminder_sent_at__isnull=True,
                starts_at__gt=now,
                starts_at__lte=now + REMINDER_LEAD,
            )
        )
    sent = 0
    for appointment in due:
        with scope(organization=appointment.organization), transaction.atomic():
            claimed = Appointment.objects.filter(
                pk=appointment.pk, reminder_sent_at__isnull=True
            ).update(reminder_sent_at=now)
            if claimed:
                _notify(appointment, "appointment_reminder")
                sent += 1
    return sent


# --- the patient's own changes (portal) ----------------------------------------------------------
# Within the clinic's versioned portal rules (PortalPolicy; defaults in docs/sources/scheduling.md):
# change or cancel up to `change_cutoff_hours` before a visit, later they call (the clinic may need
# the chair for someone on the waitlist); book a follow-up from that cutoff to `horizon_days` ahead.


def portal_bookable(appointment_type: AppointmentType) -> bool:
    """A patient books online only what the clinic offers online and what needs no treatment
    plan: never a dosing visit (the series comes from the plan) nor a consultation (new patients
    request one on the public page)."""
    return (
        appointment_type.is_active
        and appointment_type.bookable_online
        and not appointment_type.route
        and appointment_type.kind != AppointmentType.Kind.CONSULT
    )


def _portal_check(patient: Patient, appointment: Appointment, now: datetime) -> None:
    if appointment.patient_id != patient.pk:
        from ketaclinic.core.errors import NotFound

        raise NotFound("No such appointment.")
    if appointment.status != Appointment.Status.BOOKED:
        raise Conflict.for_field("status", "This visit cannot be changed any more.")
    policy = portal_policy_current(appointment.clinic)
    if appointment.starts_at - now < timedelta(hours=policy.change_cutoff_hours):
        raise Conflict.for_field(
            "starts_at",
            f"Visits can be changed online up to {policy.change_cutoff_hours} hours before; "
            "please call the clinic.",
        )


def _portal_window(
    policy: PortalPolicy, starts_at: datetime, now: datetime, anchor: datetime | None = None
) -> None:
    """From the cutoff to `horizon_days` after now (a new booking) or after the visit's current
    time (a move, so a visit booked far ahead by the clinic can still be moved a little)."""
    if starts_at.tzinfo is None:
        raise ValidationFailed.for_field("starts_at", "Give the time with its time zone.")
    if starts_at - now < timedelta(hours=policy.change_cutoff_hours):
        raise ValidationFailed.for_field(
            "starts_at", f"Choose a time at least {policy.change_cutoff_hours} hours ahead."
        )
    if starts_at - max(now, anchor or now) > timedelta(days=policy.horizon_days):
        raise ValidationFailed.for_field(
            "starts_at", f"Online, book at most {policy.horizon_days} days ahead."
        )


def portal_appointment_book(
    *,
    patient: Patient,
    appointment_type: AppointmentType,
    starts_at: datetime,
    clinic: Clinic,
    clinician: Membership | None,
) -> Appointment:
    """The patient books a follow-up in the portal, within the clinic's rules; every conflict rule
    of a staff booking applies too (appointment_book)."""
    if appointment_type.organization_id != patient.organization_id or not portal_bookable(
        appointment_type
    ):
        raise ValidationFailed.for_field(
            "appointment_type", "This visit cannot be booked online; please call the clinic."
        )
    _portal_window(portal_policy_current(clinic), starts_at, clock.now())
    return appointment_book(
        actor=None,
        patient=patient,
        appointment_type=appointment_type,
        starts_at=starts_at,
        clinic=clinic,
        clinician=clinician,
        source=Appointment.Source.PORTAL,
    )


def portal_appointment_cancel(
    *, patient: Patient, appointment: Appointment, reason: str
) -> Appointment:
    _portal_check(patient, appointment, clock.now())
    return appointment_cancel(
        actor=None, appointment=appointment, reason=reason or "by the patient"
    )


def portal_appointment_reschedule(
    *, patient: Patient, appointment: Appointment, starts_at: datetime
) -> Appointment:
    now = clock.now()
    _portal_check(patient, appointment, now)
    _portal_window(
        portal_policy_current(appointment.clinic), starts_at, now, anchor=appointment.starts_at
    )
    return appointment_reschedule(
        actor=None, appointment=appointment, starts_at=starts_at, reason="moved by the patient"
    )
