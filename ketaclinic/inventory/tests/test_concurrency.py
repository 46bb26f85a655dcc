"""Two nurses draw from the same vial at the same moment, each in a real transaction on its own
database connection. Only what is in the vial can be drawn (SQLite and PostgreSQL)."""

from __future__ import annotations

import threading
from decimal import Decimal

import pytest
from django.db import connection
from django_scopes import scope

from conftest import actor_for, make_member
from ketaclinic.core.errors import SafetyStop
from ketaclinic.inventory import services
from ketaclinic.inventory.models import Container, LedgerRow
from ketaclinic.sessions.tests.builders import recorded_administration


@pytest.mark.django_db(transaction=True)
def test_two_concurrent_draws_from_one_vial_cannot_both_exceed_it(org_a, stock, patient, nurse):
    second_nurse = actor_for(make_member(org_a, "nurse", username="nurse-two"))
    with scope(organization=org_a):
        vial = Container.objects.filter(lot=stock["lot"]).order_by("label").first()
    with scope(organization=org_a):
        given = {id(a): recorded_administration(nurse, patient) for a in (nurse, second_nurse)}
    barrier = threading.Barrier(2)
    outcomes: list[str] = []

    def draw(actor):
        try:
            with scope(organization=org_a):
                barrier.wait(timeout=10)
                services.inventory_draw_for_administration(
                    actor=actor,
                    container=vial,
                    quantity_mg="300",
                    administration_public_id=given[id(actor)],
                    patient=patient,
                )
            outcomes.append("drawn")
        except SafetyStop as stop:
            outcomes.append(f"refused:{stop.errors[0].field}")
        except Exception as error:  # pragma: no cover - reported below
            outcomes.append(f"error:{error!r}")
        finally:
            connection.close()

    threads = [threading.Thread(target=draw, args=(a,)) for a in (nurse, second_nurse)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)

    assert sorted(outcomes) == ["drawn", "refused:quantity_mg"], outcomes
    with scope(organization=org_a):
        vial.refresh_from_db()
        assert vial.remaining_mg == Decimal("200.0")
        draws = LedgerRow.objects.filter(kind="draw")
        assert draws.count() == 1
        assert draws.get().balance_after_mg == Decimal("4700.0")
        assert list(LedgerRow.objects.values_list("sequence", flat=True)) == [1, 2]
