"""Set-ups for scheduling tests: default types, staff hours, bookings."""

from __future__ import annotations

from datetime import time
from typing import Any

from django_scopes import scope

from ketaclinic.accounts.models import Chair, Clinic
from ketaclinic.scheduling import services
from ketaclinic.scheduling.models import AppointmentType


def clinic_of(organization: Any) -> Clinic:
    return Clinic.objects.filter(organization=organization).earliest("pk")


def types(organization: Any) -> dict[str, AppointmentType]:
    services.appointment_types_seed(organization=organization)
    return {t.kind: t for t in AppointmentType.objects.filter(organization=organization)}


def open_every_day(admin: Any, *memberships: Any, start: time = time(7), end: time = time(20)):
    clinic = clinic_of(admin.organization)
    for membership in memberships:
        services.staff_hours_set(
            actor=admin,
            membership=membership,
            clinic=clinic,
            hours=[(day, start, end) for day in range(7)],
        )
    return clinic


def chair(organization: Any, number: int) -> Chair:
    with scope(organization=organization):
        return Chair.objects.select_related("clinic").get(
            clinic=clinic_of(organization), number=number
        )
