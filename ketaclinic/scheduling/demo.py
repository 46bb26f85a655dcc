"""The demo clinic's calendar: appointment types, staff working hours (so that every chair has
free slots for the next 14 days), the contact policy (e-mail allowed, as the issue asks for the
demo) and a handful of booked visits. Called by `ketaclinic demo` (ketaclinic.demo.generator)."""

from __future__ import annotations

import random
from datetime import datetime, time, timedelta
from zoneinfo import ZoneInfo

from django.db import transaction
from django_scopes import scope

from ketaclinic.accounts.actor import Actor
from ketaclinic.accounts.models import Clinic, Membership, Organization
from ketaclinic.accounts.roles import Role
from ketaclinic.core import clock
from ketaclinic.core.errors import DomainError
from ketaclinic.messaging.models import ContactPolicy
from ketaclinic.patients.models import Patient
from ketaclinic.scheduling import services
from ketaclinic.scheduling.models import AppointmentType

WEEKDAYS = range(5)
SHIFTS = {
    Role.NURSE: (time(7), time(19)),
    Role.PRESCRIBER: (time(8), time(17)),
    Role.THERAPIST: (time(9), time(18)),
}
DEMO_DAYS = 14


def scheduling_demo_setup(organization: Organization, *, seed: int = 1, visits: int = 12) -> int:
    """Set up the demo calendar; returns the number of visits booked. Idempotent enough for a
    demo: hours are replaced, types and the contact policy created once."""
    rng = random.Random(seed)
    with scope(organization=organization), transaction.atomic():
        services.appointment_types_seed(organization=organization)
        ContactPolicy.objects.get_or_create(
            organization=organization, defaults={"email_allowed_by_default": True}
        )
        clinic = Clinic.objects.filter(organization=organization).order_by("pk").first()
        if clinic is None:
            raise LookupError("the demo organization has no clinic")
        members = {
            m.role: m
            for m in Membership.objects.filter(organization=organization, is_active=True)
            .select_related("user")
            .order_by("pk")
        }
        admin = Actor(membership=members[Role.CLINIC_ADMIN], channel="cli")
        for role, (start, end) in SHIFTS.items():
            if role in members:
                services.staff_hours_set(
                    actor=admin,
                    membership=members[role],
                    clinic=clinic,
                    hours=[(day, start, end) for day in WEEKDAYS],
                )
    return _book_some(organization, clinic, members, rng, visits)


def _book_some(
    organization: Organization,
    clinic: Clinic,
    members: dict[str, Membership],
    rng: random.Random,
    visits: int,
) -> int:
    desk = Actor(membership=members[Role.FRONT_DESK], channel="cli")
    zone = ZoneInfo(clinic.time_zone)
    today = clock.now().astimezone(zone).date()
    booked = 0
    with scope(organization=organization):
        types = {t.kind: t for t in AppointmentType.objects.filter(organization=organization)}
        patients = list(Patient.objects.filter(organization=organization).order_by("pk")[:visits])
        for patient in patients:
            day = today + timedelta(days=rng.randint(1, DEMO_DAYS))
            if day.weekday() >= 5:
                day += timedelta(days=7 - day.weekday())
            kind = rng.choice(["iv_infusion", "esketamine", "follow_up", "consult"])
            start = datetime.combine(day, time(rng.choice([8, 9, 10, 11, 13])), zone)
            try:
                services.appointment_book(
                    actor=desk,
                    patient=patient,
                    appointment_type=types[kind],
                    starts_at=start,
                    clinic=clinic,
                    clinician=members[Role.PRESCRIBER] if types[kind].needs_clinician else None,
                    notify=False,
                )
            except DomainError:
                continue  # a full slot: the demo simply has one visit fewer
            booked += 1
    return booked
