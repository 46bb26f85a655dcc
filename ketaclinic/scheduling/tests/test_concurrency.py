"""Two front-desk staff book the last free chair at the same moment, each in a real transaction
on its own database connection: exactly one wins (SQLite and PostgreSQL)."""

from __future__ import annotations

import threading
from datetime import UTC, datetime

import pytest
import time_machine
from django.db import connection
from django_scopes import scope

from conftest import actor_for, make_member, make_patient
from ketaclinic.core.errors import Conflict
from ketaclinic.scheduling import services
from ketaclinic.scheduling.models import Appointment
from ketaclinic.scheduling.tests.helpers import chair, open_every_day, types

NOW = datetime(2026, 3, 2, 15, 0, tzinfo=UTC)
TUESDAY_9 = datetime(2026, 3, 3, 15, 0, tzinfo=UTC)


@pytest.mark.django_db(transaction=True)
def test_two_concurrent_bookings_of_the_last_free_chair_exactly_one_wins(org_a, members):
    admin = actor_for(members["clinic_admin"])
    desks = [actor_for(members["front_desk"]), actor_for(make_member(org_a, "front_desk", "desk2"))]
    nurses = [members["nurse"], *(make_member(org_a, "nurse", f"nurse-{i}") for i in range(3))]
    with time_machine.travel(NOW, tick=False), scope(organization=org_a):
        open_every_day(admin, *nurses)
        iv = types(org_a)["iv_infusion"]
        prescriber = actor_for(members["prescriber"])
        patients = [make_patient(prescriber, mrn=f"C{i}") for i in range(5)]
        # Chairs 1-3 are taken; chair 4 is the last one free.
        for number, patient in zip((1, 2, 3), patients, strict=False):
            services.appointment_book(
                actor=desks[0],
                patient=patient,
                appointment_type=iv,
                starts_at=TUESDAY_9,
                chair=chair(org_a, number),
            )
    barrier = threading.Barrier(2)
    outcomes: list[str] = []

    def attempt(actor, patient):
        try:
            with time_machine.travel(NOW, tick=False), scope(organization=org_a):
                barrier.wait(timeout=10)
                booked = services.appointment_book(
                    actor=actor, patient=patient, appointment_type=iv, starts_at=TUESDAY_9
                )
            outcomes.append(f"chair {booked.chair.number}")
        except Conflict as conflict:
            outcomes.append(f"refused:{conflict.errors[0].field}")
        except Exception as error:  # pragma: no cover - reported below
            outcomes.append(f"error:{error!r}")
        finally:
            connection.close()

    threads = [threading.Thread(target=attempt, args=(desks[i], patients[3 + i])) for i in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)

    assert sorted(outcomes) == ["chair 4", "refused:chair"], outcomes
    with scope(organization=org_a):
        assert Appointment.objects.filter(chair=chair(org_a, 4), status="booked").count() == 1
