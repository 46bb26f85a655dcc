"""Screens and JSON API: who may reach what, forms that refuse with the field named, the
dashboard panel."""

from __future__ import annotations

import pytest
from django_scopes import scope

from conftest import actor_for, api_client, staff_client, totp_code
from ketaclinic.accounts.roles import Cap, Role, role_can
from ketaclinic.inventory import services
from ketaclinic.inventory.models import Container, LedgerRow
from ketaclinic.sessions.tests.builders import recorded_administration

pytestmark = pytest.mark.django_db

SCREENS = [
    ("/inventory/", Cap.INVENTORY_VIEW),
    ("/inventory/receive/", Cap.INVENTORY_RECEIVE),
    ("/inventory/draw/", Cap.INVENTORY_DRAW),
    ("/inventory/waste/", Cap.INVENTORY_DRAW),
    ("/inventory/locations/{safe}/count/", Cap.INVENTORY_COUNT),
    ("/inventory/reports/", Cap.INVENTORY_REPORT),
    ("/inventory/reports/waste-log/", Cap.INVENTORY_REPORT),
    ("/inventory/reports/receipts/?format=csv", Cap.INVENTORY_REPORT),
]


@pytest.mark.parametrize("role", [r.value for r in Role])
@pytest.mark.parametrize(("url", "capability"), SCREENS)
def test_each_role_reaches_exactly_the_screens_of_its_capabilities(
    members, stock, role, url, capability
):
    response = staff_client(members[role]).get(url.format(safe=stock["safe"].public_id))
    assert response.status_code == (200 if role_can(role, capability) else 403)


def test_an_outsider_gets_404_for_another_organizations_location(outsider, stock):
    response = staff_client(outsider).get(f"/inventory/locations/{stock['safe'].public_id}/count/")
    assert response.status_code == 404


def test_receive_through_the_form(org_a, members, stock):
    response = staff_client(members["nurse"]).post(
        "/inventory/receive/",
        {
            "product": stock["product"].public_id,
            "location": stock["cart"].public_id,
            "lot_number": "K2",
            "expires_on": "2098-12-31",
            "containers": 2,
            "supplier_name": "McKesson",
            "supplier_address": "1 Way, TX",
            "supplier_dea_number": "RM7654321",
            "invoice_reference": "INV-9",
            "received_on": "2026-03-02",
        },
    )
    assert response.status_code == 302
    with scope(organization=org_a):
        assert LedgerRow.objects.filter(lot_ref="K2").get().quantity_mg == 1000


def test_the_waste_form_refuses_a_self_witness_and_names_the_field(
    org_a, members, nurse, stock, patient
):
    with scope(organization=org_a):
        administration = recorded_administration(nurse, patient)
        services.inventory_draw_for_administration(
            actor=nurse,
            container=Container.objects.first(),
            quantity_mg="40",
            administration_public_id=administration,
            patient=patient,
        )
    response = staff_client(members["nurse"]).post(
        "/inventory/waste/",
        {
            "source": "drawn_dose",
            "administration_id": administration,
            "quantity_mg": "5",
            "method": "pouch",
            "witness_username": members["nurse"].user.username,
            "witness_code": totp_code(members["nurse"].user),
        },
    )
    assert response.status_code == 400
    assert "different staff member" in response.context["form"].errors["witness_username"][0]


def test_api_draw_waste_and_reconciliation(org_a, members, stock, patient):
    client = api_client(members["nurse"])
    containers = client.get("/api/v1/inventory/containers").json()
    with scope(organization=org_a):
        administration = str(recorded_administration(actor_for(members["nurse"]), patient))
    response = client.post(
        "/api/v1/inventory/draws",
        {
            "container": containers[0]["id"],
            "quantity_mg": "40",
            "administration_id": administration,
            "patient": str(patient.public_id),
        },
        content_type="application/json",
    )
    assert response.status_code == 201, response.json()
    assert response.json()["balance_after_mg"] == "4960.0"
    refused = client.post(
        "/api/v1/inventory/wastes",
        {
            "source": "drawn_dose",
            "administration_id": administration,
            "quantity_mg": "5",
            "method": "pouch",
            "witness_username": members["prescriber"].user.username,
            "witness_code": "not-the-password",
        },
        content_type="application/json",
    )
    assert refused.status_code == 422
    assert refused.json()["errors"][0]["field"] == "witness_username"
    wasted = client.post(
        "/api/v1/inventory/wastes",
        {
            "source": "drawn_dose",
            "administration_id": administration,
            "quantity_mg": "5",
            "method": "pouch",
            "witness_username": members["prescriber"].user.username,
            "witness_code": totp_code(members["prescriber"].user),
        },
        content_type="application/json",
    )
    assert wasted.status_code == 201
    result = client.get(
        f"/api/v1/inventory/administrations/{administration}/reconciliation?administered_mg=35"
    ).json()
    assert result["balanced"] is True
    too_much = client.post(
        "/api/v1/inventory/draws",
        {
            "container": containers[0]["id"],
            "quantity_mg": "460.1",
            "administration_id": administration,
            "patient": str(patient.public_id),
        },
        content_type="application/json",
    )
    assert too_much.status_code == 422
    assert too_much.json()["errors"][0]["field"] == "quantity_mg"


def test_api_count_opens_a_case_that_shows_on_the_dashboard_until_compliance_resolves(
    members, stock
):
    count = api_client(members["nurse"]).post(
        "/api/v1/inventory/counts",
        {
            "location": str(stock["safe"].public_id),
            "kind": "shift",
            "lines": [{"product": stock["product"].code, "lot": "K1", "sealed_containers": 9}],
        },
        content_type="application/json",
    )
    assert count.status_code == 201
    assert count.json()["balanced"] is False
    case_id = count.json()["cases"][0]["id"]
    dashboard = staff_client(members["compliance"]).get("/")
    assert dashboard.status_code == 200
    assert "Count did not match" in dashboard.content.decode()
    assert (
        api_client(members["nurse"])
        .post(
            f"/api/v1/inventory/cases/{case_id}/resolve",
            {"note": "x"},
            content_type="application/json",
        )
        .status_code
        == 403
    )
    resolved = api_client(members["compliance"]).post(
        f"/api/v1/inventory/cases/{case_id}/resolve",
        {"note": "vial found in cart"},
        content_type="application/json",
    )
    assert resolved.json()["status"] == "resolved"
    assert (
        "Count did not match" not in staff_client(members["compliance"]).get("/").content.decode()
    )


def test_receive_through_the_api(org_a, members, stock):
    response = api_client(members["nurse"]).post(
        "/api/v1/inventory/receipts",
        {
            "product": stock["product"].code,
            "location": str(stock["cart"].public_id),
            "lot_number": "K3",
            "expires_at": "2098-12-31T00:00:00Z",
            "containers": 2,
            "supplier_name": "McKesson",
            "supplier_address": "1 Way, TX",
            "supplier_dea_number": "RM7654321",
            "invoice_reference": "INV-10",
            "received_on": "2026-03-02",
        },
        content_type="application/json",
    )
    assert response.status_code == 201, response.content
    with scope(organization=org_a):
        assert LedgerRow.objects.filter(lot_ref="K3").get().quantity_mg == 1000
