"""What holds a clinic's chairs, clinicians and nurses over a window, loaded once (a fixed number
of queries), and the questions asked of it: does this visit fit here, and which times are free.

The booking service loads it for one visit inside its locked transaction; free-slot search loads
it for a whole day and asks the pure rules (rules.py) about every candidate time.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from django.db.models import Q

from ketaclinic.accounts.models import Chair, Clinic, Membership
from ketaclinic.accounts.roles import Role
from ketaclinic.scheduling import rules
from ketaclinic.scheduling.models import (
    DEFAULT_PATIENTS_PER_NURSE,
    Appointment,
    AppointmentType,
    CapacityPolicy,
    PortalPolicy,
    StaffHours,
    TimeOff,
)

SLOT_STEP = timedelta(minutes=15)
DAY_OPENS, DAY_CLOSES = time(6), time(22)  # the span searched for free slots, local time


@dataclass
class Fit:
    chair: Chair | None
    refusals: list[rules.Refusal] = field(default_factory=list)


def portal_policy_current(clinic: Clinic) -> PortalPolicy:
    """The clinic's newest portal rules, or the defaults (version 0) until it publishes its own."""
    policy = PortalPolicy.objects.filter(clinic=clinic).order_by("-version").first()
    return policy or PortalPolicy(organization=clinic.organization, clinic=clinic, version=0)


def capacity_policy_current(clinic: Clinic) -> CapacityPolicy:
    policy = CapacityPolicy.objects.filter(clinic=clinic).order_by("-version").first()
    return policy or CapacityPolicy(
        organization=clinic.organization,
        clinic=clinic,
        version=0,
        patients_per_nurse=DEFAULT_PATIENTS_PER_NURSE,
    )


@dataclass
class Availability:
    clinic: Clinic
    held: list[rules.Held]
    nurse_hours: list[rules.Interval]
    staff_hours: dict[int, list[rules.Interval]]
    patients_per_nurse: int
    chairs: list[Chair]

    @classmethod
    def load(
        cls,
        clinic: Clinic,
        start: datetime,
        end: datetime,
        *,
        clinicians: tuple[int, ...] = (),
        exclude_pk: int | None = None,
    ) -> Availability:
        window = Q(starts_at__lt=end, ends_at__gt=start)
        where = Q(clinic=clinic) | Q(clinician_id__in=clinicians)
        holding = Appointment.objects.filter(window & where, status__in=Appointment.HOLDING)
        if exclude_pk is not None:
            holding = holding.exclude(pk=exclude_pk)
        held = [
            rules.Held(*row)
            for row in holding.values_list(
                "starts_at", "ends_at", "chair_id", "clinician_id", "appointment_type__monitored"
            )
        ]
        zone = ZoneInfo(clinic.time_zone)
        first = start.astimezone(zone).date() - timedelta(days=1)
        last = end.astimezone(zone).date() + timedelta(days=1)
        nurses = set(
            Membership.objects.filter(
                organization=clinic.organization, role=Role.NURSE, is_active=True
            ).values_list("pk", flat=True)
        )
        intervals = _working(nurses | set(clinicians), clinic, first, last)
        return cls(
            clinic=clinic,
            held=held,
            nurse_hours=[i for n in nurses for i in intervals[n]],
            staff_hours=intervals,
            patients_per_nurse=capacity_policy_current(clinic).patients_per_nurse,
            chairs=list(Chair.objects.filter(clinic=clinic, is_active=True).order_by("number")),
        )

    def check(
        self,
        appointment_type: AppointmentType,
        start: datetime,
        chair: Chair | None,
        clinician: int | None,
    ) -> list[rules.Refusal]:
        return rules.refusals(
            rules.Request(
                start=start,
                end=start + timedelta(minutes=appointment_type.duration_minutes),
                chair_id=chair.pk if chair else None,
                chair_capabilities=frozenset(chair.capabilities if chair else ()),
                needed_capability=appointment_type.chair_capability or None,
                needs_chair=appointment_type.needs_chair,
                clinician_id=clinician,
                monitored=appointment_type.monitored,
            ),
            held=self.held,
            clinician_hours=self.staff_hours.get(clinician, []) if clinician else None,
            nurse_hours=self.nurse_hours,
            patients_per_nurse=self.patients_per_nurse,
            time_zone=self.clinic.time_zone,
        )

    def fit(
        self,
        appointment_type: AppointmentType,
        start: datetime,
        chair: Chair | None,
        clinician: int | None,
    ) -> Fit:
        """The chair to use (the one asked for, or the first free one that can host the visit)
        and every reason the visit does not fit; no reasons means it may be booked."""
        if chair is not None or not appointment_type.needs_chair:
            found = self.check(appointment_type, start, chair, clinician)
            return Fit(chair if appointment_type.needs_chair else None, found)
        first_refusals: list[rules.Refusal] | None = None
        for candidate in self.fitting_chairs(appointment_type):
            found = self.check(appointment_type, start, candidate, clinician)
            if not found:
                return Fit(candidate)
            if all(r.field != "chair" for r in found):
                # A chair is free; something else (the ratio, the clinician) stands in the way.
                return Fit(candidate, found)
            first_refusals = first_refusals if first_refusals is not None else found
        others = [r for r in (first_refusals or []) if r.field != "chair"]
        no_chair = rules.Refusal(
            "no_chair", "chair", "No chair that can host this visit is free at that time."
        )
        return Fit(None, [no_chair, *others])

    def fitting_chairs(self, appointment_type: AppointmentType) -> list[Chair]:
        needed = appointment_type.chair_capability
        return [c for c in self.chairs if not needed or needed in c.capabilities]

    def candidate_starts(self, day: date) -> Iterator[datetime]:
        zone = ZoneInfo(self.clinic.time_zone)
        moment = datetime.combine(day, DAY_OPENS, zone)
        closes = datetime.combine(day, DAY_CLOSES, zone)
        while moment < closes:
            yield moment
            moment += SLOT_STEP

    def free_starts_in_chair(
        self, appointment_type: AppointmentType, day: date, chair: Chair
    ) -> list[datetime]:
        return [
            start
            for start in self.candidate_starts(day)
            if not self.check(appointment_type, start, chair, None)
        ]

    def free_starts(
        self, appointment_type: AppointmentType, day: date, clinician: int | None
    ) -> Iterator[tuple[datetime, Chair | None]]:
        """Every start on the local `day` (every 15 minutes) at which the visit fits, with the
        chair it would take.

        A cheap pre-filter (chair occupancy per chair, the clinician's hours) narrows each start
        to one candidate chair; that candidate is then judged by the full rules, so a slot
        offered here is exactly one the booking service accepts.
        """
        duration = timedelta(minutes=appointment_type.duration_minutes)
        by_chair: dict[int, list[rules.Held]] = {}
        for held in self.held:
            if held.chair_id is not None:
                by_chair.setdefault(held.chair_id, []).append(held)
        chairs = self.fitting_chairs(appointment_type) if appointment_type.needs_chair else [None]
        hours = self.staff_hours.get(clinician, []) if clinician else None
        for start in self.candidate_starts(day):
            end = start + duration
            if hours is not None and not any(i.covers(start, end) for i in hours):
                continue
            for chair in chairs:
                if chair is not None and any(
                    h.start < end and start < h.end for h in by_chair.get(chair.pk, ())
                ):
                    continue
                if not self.check(appointment_type, start, chair, clinician):
                    yield start, chair
                break


def _working(
    memberships: set[int], clinic: Clinic, first: date, last: date
) -> dict[int, list[rules.Interval]]:
    hours: dict[int, list[rules.WeeklyHours]] = {m: [] for m in memberships}
    for row in StaffHours.objects.filter(clinic=clinic, membership_id__in=memberships):
        hours[row.membership_id].append(
            rules.WeeklyHours(row.weekday, row.start_time, row.end_time)
        )
    offs: dict[int, list[rules.Interval]] = {m: [] for m in memberships}
    for off in TimeOff.objects.filter(membership_id__in=memberships):
        offs[off.membership_id].append(rules.Interval(off.starts_at, off.ends_at))
    return {
        m: rules.working_intervals(
            hours[m], offs[m], time_zone=clinic.time_zone, first_day=first, last_day=last
        )
        for m in memberships
    }
