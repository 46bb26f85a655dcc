"""Reads for scheduling: one appointment for an actor (404 across tenants), the calendar of a day
or week (a fixed number of queries whatever the number of visits), free slots, lookups."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from django.db.models import QuerySet

from ketaclinic.accounts.actor import Actor
from ketaclinic.accounts.audit import audit_record
from ketaclinic.accounts.models import Chair, Clinic, Membership
from ketaclinic.accounts.roles import Cap
from ketaclinic.core import clock
from ketaclinic.core.errors import NotFound, ValidationFailed
from ketaclinic.scheduling.availability import Availability
from ketaclinic.scheduling.models import (
    Appointment,
    AppointmentSeries,
    AppointmentType,
    WaitlistEntry,
)

VISIBLE = ("booked", "checked_in", "no_show", "proposed")


def _uuid(value: Any) -> uuid.UUID | None:
    try:
        return value if isinstance(value, uuid.UUID) else uuid.UUID(str(value))
    except ValueError:
        return None


def appointment_get_for_actor(actor: Actor, public_id: Any) -> Appointment:
    actor.require(Cap.SCHEDULE_VIEW)
    key = _uuid(public_id)
    found = (
        Appointment.objects.select_related(
            "patient", "clinic", "appointment_type", "chair", "clinician__user", "organization"
        )
        .filter(public_id=key)
        .first()
        if key
        else None
    )
    if found is None:
        audit_record(
            actor=actor,
            action="scheduling.appointment.lookup_denied",
            outcome="denied",
            detail={"requested": str(public_id)[:64]},
        )
        raise NotFound("No such appointment.")
    return found


def series_get_for_actor(actor: Actor, public_id: Any) -> AppointmentSeries:
    actor.require(Cap.SCHEDULE_VIEW)
    key = _uuid(public_id)
    found = AppointmentSeries.objects.filter(public_id=key).first() if key else None
    if found is None:
        raise NotFound("No such series.")
    return found


def waitlist_get_for_actor(actor: Actor, public_id: Any) -> WaitlistEntry:
    actor.require(Cap.SCHEDULE_VIEW)
    key = _uuid(public_id)
    found = (
        WaitlistEntry.objects.filter(public_id=key).select_related("patient", "clinic").first()
        if key
        else None
    )
    if found is None:
        raise NotFound("No such waitlist entry.")
    return found


def clinic_for_actor(actor: Actor, public_id: Any = None) -> Clinic:
    clinics = Clinic.objects.filter(organization=actor.organization)
    if public_id:
        key = _uuid(public_id)
        found = clinics.filter(public_id=key).first() if key else None
        if found is None:
            raise NotFound("No such clinic.")
        return found
    found = actor.membership.home_clinic or clinics.order_by("pk").first()
    if found is None:
        raise ValidationFailed.for_field("clinic", "The organization has no clinic.")
    return found


def appointment_type_by_kind(actor: Actor, kind: str) -> AppointmentType:
    found = AppointmentType.objects.filter(organization=actor.organization, kind=kind).first()
    if found is None:
        raise ValidationFailed.for_field("appointment_type", f"Unknown appointment type {kind!r}.")
    return found


def chair_by_number(clinic: Clinic, number: int | None) -> Chair | None:
    if number is None:
        return None
    found = Chair.objects.filter(clinic=clinic, number=number).first()
    if found is None:
        raise ValidationFailed.for_field("chair", f"This clinic has no chair {number}.")
    return found


def clinician_by_user(actor: Actor, user_public_id: Any) -> Membership | None:
    if not user_public_id:
        return None
    key = _uuid(user_public_id)
    found = (
        Membership.objects.filter(
            organization=actor.organization, user__public_id=key, is_active=True
        )
        .select_related("user")
        .first()
        if key
        else None
    )
    if found is None:
        raise ValidationFailed.for_field("clinician", "No such clinician in this organization.")
    return found


def staff_member_by_user(actor: Actor, user_public_id: Any) -> Membership:
    """The organization's active staff member with this user id (422 naming `staff` if none)."""
    found = clinician_by_user(actor, user_public_id)
    if found is None:
        raise ValidationFailed.for_field("staff", "Name the staff member.")
    return found


def appointments_between(
    clinic: Clinic, start: datetime, end: datetime, *, statuses: tuple[str, ...] = VISIBLE
) -> QuerySet[Appointment]:
    return (
        Appointment.objects.filter(
            clinic=clinic, starts_at__lt=end, ends_at__gt=start, status__in=statuses
        )
        .select_related("patient", "appointment_type", "chair", "clinician__user")
        .order_by("starts_at", "pk")
    )


def local_day_bounds(clinic: Clinic, day: date) -> tuple[datetime, datetime]:
    zone = ZoneInfo(clinic.time_zone)
    return datetime.combine(day, time(0), zone), datetime.combine(
        day + timedelta(days=1), time(0), zone
    )


@dataclass(frozen=True, slots=True)
class DayCard:
    """What the day view shows of one visit, read as plain values (no model instances) and with
    its times already in the clinic's zone: a busy day has 200 of these."""

    public_id: uuid.UUID
    status: str
    status_display: str
    times: str  # "09:00–09:30 CST"
    patient_name: str
    type_name: str
    clinician_name: str


@dataclass
class Column:
    title: str
    chair: Chair | None
    appointments: list[DayCard] = field(default_factory=list)


_STATUS_LABELS = dict(Appointment.Status.choices)


def day_columns(clinic: Clinic, day: date, clinician: Membership | None = None) -> list[Column]:
    """One column per active chair, then one for visits without a chair (consults, therapy);
    only one clinician's visits when `clinician` is given. Two queries whatever the number of
    visits."""
    start, end = local_day_bounds(clinic, day)
    zone = ZoneInfo(clinic.time_zone)
    chairs = list(Chair.objects.filter(clinic=clinic, is_active=True).order_by("number"))
    columns = {c.pk: Column(c.label, c) for c in chairs}
    no_chair = Column("Rooms and telehealth", None)
    rows = (
        Appointment.objects.filter(
            clinic=clinic, starts_at__lt=end, ends_at__gt=start, status__in=VISIBLE
        )
        .filter(**({"clinician": clinician} if clinician else {}))
        .order_by("starts_at", "pk")
        .values_list(
            "public_id", "status", "starts_at", "ends_at", "chair_id",
            "patient__given_name", "patient__family_name", "appointment_type__name",
            "clinician__user__first_name", "clinician__user__last_name",
        )
    )  # fmt: skip
    for public_id, status, starts, ends, chair_id, given, family, kind, first, last in rows:
        local_start, local_end = starts.astimezone(zone), ends.astimezone(zone)
        card = DayCard(
            public_id=public_id,
            status=status,
            status_display=_STATUS_LABELS.get(status, status),
            times=f"{local_start:%H:%M}–{local_end:%H:%M} {local_end.tzname()}",
            patient_name=f"{given} {family}",
            type_name=kind,
            clinician_name=f"{first or ''} {last or ''}".strip(),
        )
        (columns.get(chair_id, no_chair) if chair_id else no_chair).appointments.append(card)
    return [*columns.values(), no_chair]


def week_days(
    clinic: Clinic, monday: date, clinician: Membership | None = None
) -> list[tuple[date, list[Appointment]]]:
    start, _ = local_day_bounds(clinic, monday)
    _, end = local_day_bounds(clinic, monday + timedelta(days=6))
    zone = ZoneInfo(clinic.time_zone)
    days: dict[date, list[Appointment]] = {monday + timedelta(days=i): [] for i in range(7)}
    visits = appointments_between(clinic, start, end)
    if clinician is not None:
        visits = visits.filter(clinician=clinician)
    for appointment in visits:
        local = appointment.starts_at.astimezone(zone).date()
        if local in days:
            days[local].append(appointment)
    return list(days.items())


def free_slots(
    clinic: Clinic,
    appointment_type: AppointmentType,
    day: date,
    *,
    clinician: Membership | None = None,
    exclude: Appointment | None = None,
) -> list[tuple[datetime, Chair | None]]:
    """Free starts on a local day; `exclude` is a visit being moved (its own time is free)."""
    start, end = local_day_bounds(clinic, day)
    available = Availability.load(
        clinic,
        start,
        end + timedelta(minutes=appointment_type.duration_minutes),
        clinicians=(clinician.pk,) if clinician else (),
        exclude_pk=exclude.pk if exclude else None,
    )
    return list(available.free_starts(appointment_type, day, clinician.pk if clinician else None))


def appointments_for_patient(patient: Any, *, limit: int = 50) -> list[Appointment]:
    return list(
        Appointment.objects.filter(patient=patient)
        .select_related("appointment_type", "chair", "clinic", "clinician__user")
        .order_by("-starts_at")[:limit]
    )


def clinic_for_patient(patient: Any) -> Clinic | None:
    """The clinic a patient books at in the portal: where their latest visit is, else the
    organization's first clinic."""
    latest = (
        Appointment.objects.filter(patient=patient)
        .order_by("-starts_at")
        .values_list("clinic_id", flat=True)
        .first()
    )
    clinics = Clinic.objects.filter(organization_id=patient.organization_id)
    return (clinics.filter(pk=latest).first() if latest else None) or clinics.order_by("pk").first()


def portal_types(organization: Any) -> list[AppointmentType]:
    from ketaclinic.scheduling.services import portal_bookable

    return [
        t
        for t in AppointmentType.objects.filter(
            organization=organization, is_active=True, bookable_online=True
        ).order_by("name")
        if portal_bookable(t)
    ]


def online_slots(
    clinic: Clinic,
    appointment_type: AppointmentType,
    *,
    first: datetime,
    last: datetime,
    per_day: int = 4,
    clinicians: list[Membership | None] | None = None,
) -> list[tuple[datetime, Membership | None]]:
    """Times a patient may pick online between `first` and `last`: a few on the hour per day, for
    each prescriber working at the clinic (or any chair, for a visit that needs no clinician)."""
    from ketaclinic.scheduling.models import StaffHours

    zone = ZoneInfo(clinic.time_zone)
    if clinicians is None and not appointment_type.needs_clinician:
        clinicians = [None]
    elif clinicians is None:
        clinicians = list(
            Membership.objects.filter(
                organization=clinic.organization_id,
                is_active=True,
                role="prescriber",
                pk__in=StaffHours.objects.filter(clinic=clinic).values("membership_id"),
            ).select_related("user")
        )
    # One load for the whole window (a fixed number of queries, whatever its length).
    available = Availability.load(
        clinic,
        first,
        last + timedelta(minutes=appointment_type.duration_minutes),
        clinicians=tuple(c.pk for c in clinicians if c is not None),
    )
    offered: list[tuple[datetime, Membership | None]] = []
    day, last_day = first.astimezone(zone).date(), last.astimezone(zone).date()
    while day <= last_day:
        for clinician in clinicians:
            starts = [
                s
                for s, _ in available.free_starts(
                    appointment_type, day, clinician.pk if clinician else None
                )
                if s.minute == 0 and first <= s <= last
            ]
            offered.extend((s, clinician) for s in starts[:per_day])
        day += timedelta(days=1)
    return sorted(offered, key=lambda o: o[0])


def clinician_for_portal(organization: Any, user_public_id: str) -> Membership | None:
    """The clinician a patient picked with a time (by the user's public id); empty: none."""
    if not user_public_id:
        return None
    key = _uuid(user_public_id)
    found = (
        Membership.objects.filter(organization=organization, user__public_id=key, is_active=True)
        .select_related("user")
        .first()
        if key is not None
        else None
    )
    if found is None:
        raise ValidationFailed.for_field("slot", "Choose one of the times shown.")
    return found


def upcoming_visits(patient: Any) -> QuerySet[Appointment]:
    """The patient's booked visits from now on, soonest first (portal home and appointments)."""
    return (
        Appointment.objects.filter(patient=patient, status="booked", starts_at__gte=clock.now())
        .select_related("clinic", "appointment_type", "chair")
        .order_by("starts_at")
    )


def clinicians_for_filter(actor: Actor) -> list[Membership]:
    """Staff who see patients, for the calendar's "whose visits" filter."""
    return list(
        Membership.objects.filter(
            organization=actor.organization,
            is_active=True,
            role__in=("prescriber", "therapist", "nurse"),
        )
        .select_related("user")
        .order_by("user__last_name", "user__first_name", "pk")
    )


def weekly_hours(clinic: Clinic, memberships: list[Membership]) -> dict[int, list[Any]]:
    """Each staff member's regular weekly hours at the clinic (StaffHours rows, in week order),
    by membership id; one query for the lot."""
    from ketaclinic.scheduling.models import StaffHours

    found: dict[int, list[Any]] = {m.pk: [] for m in memberships}
    for row in StaffHours.objects.filter(clinic=clinic, membership__in=memberships).order_by(
        "weekday", "start_time"
    ):
        found[row.membership_id].append(row)
    return found
