"""The stock page, the report pages and the inventory API lists read in a fixed number of
queries: the same bound holds for N and for 3N lots, administrations, wastes, destructions,
losses and discrepancy cases."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from django_scopes import scope

from conftest import actor_for, api_client, make_patient, staff_client, totp_code
from ketaclinic.inventory import services
from ketaclinic.inventory.models import Container, DeaForm, InventoryCount
from ketaclinic.inventory.tests.conftest import receive
from ketaclinic.sessions.tests.builders import recorded_administration

pytestmark = pytest.mark.django_db

N = 3
FORM_41 = {
    "dea_registration_number": "FA1234563",
    "registered_address": "1 Main St",
    "telephone": "555-0100",
    "destruction_method": "chemical digestion",
}


def populate(org: Any, actor: Any, members: Any, stock: dict[str, Any], start: int, n: int) -> None:
    """`n` more of everything the pages list: a lot of 2 vials per step, a draw for a new
    patient's administration with witnessed waste, a vial moved to the cart and destroyed, a
    loss (Form 106 pending), a daily count that opens cases, a biennial inventory."""
    witness = {
        "witness_username": members["prescriber"].user.username,
        "witness_code": totp_code(members["prescriber"].user),
    }
    for i in range(start, start + n):
        patient = make_patient(
            actor_for(members["prescriber"]), given_name=f"P{i}", address=f"{i} Elm St"
        )
        with scope(organization=org):
            row = receive(actor, stock["product"], stock["safe"], f"Q{i}", 2)
            first, second = Container.objects.filter(lot=row.lot).order_by("label")
            administration = recorded_administration(actor, patient)
            services.inventory_draw_for_administration(
                actor=actor,
                container=first,
                quantity_mg="40",
                administration_public_id=administration,
                patient=patient,
            )
            services.stock_waste(
                actor=actor,
                source="drawn_dose",
                administration_public_id=administration,
                quantity_mg="5",
                method="pouch",
                **witness,
            )
            services.stock_transfer(actor=actor, container=second, to_location=stock["cart"])
            services.stock_loss_report(
                actor=actor,
                kind="loss",
                lot=row.lot,
                location=stock["safe"],
                quantity_mg="10",
                reason="short",
                discovered_at=datetime.now(UTC) - timedelta(minutes=5),
                form_106={},
            )
            services.stock_destroy(
                actor=actor,
                container=second,
                document_ref=f"F41-{i}",
                form_41=FORM_41,
                **witness,
            )
            services.count_record(actor=actor, location=stock["safe"], kind="daily", lines=[])
            services.count_record(actor=actor, location=stock["cart"], kind="biennial", lines=[])


# Upper bounds: a failure means a missing select_related/prefetch_related, not a higher number.
UI_BOUNDS = {
    "/inventory/": 16,
    "/inventory/reports/": 10,
    "/inventory/reports/administration-log/": 11,
    "/inventory/reports/receipts/": 10,
    "/inventory/reports/waste-log/": 10,
    "/inventory/reports/destruction-loss/": 10,
    "/inventory/reports/receipts/?format=csv": 10,
    "/inventory/reports/inventories/{inventory}/": 14,
    "/inventory/dea-forms/{form}/": 11,
}
API_BOUNDS = {
    "/api/v1/inventory/containers": 4,
    "/api/v1/inventory/dea-forms": 3,
    "/api/v1/inventory/dea-forms?pending=true": 3,
    "/api/v1/inventory/cases": 3,
}


def measure(org: Any, members: Any, assert_max: Any) -> dict[str, int]:
    with scope(organization=org):
        inventory = InventoryCount.objects.filter(kind="biennial").first()
        form = DeaForm.objects.filter(kind="106").first()
    assert inventory is not None
    assert form is not None
    ui = staff_client(members["compliance"])
    api = api_client(members["compliance"])
    counts = {}
    for url, bound in UI_BOUNDS.items():
        path = url.format(inventory=inventory.public_id, form=form.public_id)
        with assert_max(bound) as captured:
            response = ui.get(path)
            assert response.status_code == 200
        assert b"No entries in this period." not in response.content, url
        counts[url] = len(captured)
    for url, bound in API_BOUNDS.items():
        with assert_max(bound) as captured:
            response = api.get(url)
            assert response.status_code == 200
        assert response.json(), url
        counts[url] = len(captured)
    return counts


def test_inventory_pages_and_lists_take_the_same_queries_for_n_and_3n_rows(
    org_a, members, nurse, stock, django_assert_max_num_queries
):
    populate(org_a, nurse, members, stock, 0, N)
    first = measure(org_a, members, django_assert_max_num_queries)
    populate(org_a, nurse, members, stock, N, 2 * N)
    with scope(organization=org_a):
        assert DeaForm.objects.filter(kind="106").count() == 3 * N
    again = measure(org_a, members, django_assert_max_num_queries)
    assert again == first
