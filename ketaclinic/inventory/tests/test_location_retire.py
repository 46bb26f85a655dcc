"""A storage location can be retired once empty: it keeps its history, takes no new stock, and
the refusal while it still holds stock says how much and what to do."""

from __future__ import annotations

import json
from typing import Any

import pytest
from django_scopes import scope

from conftest import api_client, audit_count, staff_client
from ketaclinic.core.errors import Conflict, ValidationFailed
from ketaclinic.inventory import services
from ketaclinic.inventory.models import Container, StorageLocation
from ketaclinic.inventory.tests.conftest import receive

pytestmark = pytest.mark.django_db


def test_a_location_holding_stock_cannot_be_retired(nurse: Any, stock: dict[str, Any]) -> None:
    before = audit_count(action="inventory.location.retired")
    with scope(organization=nurse.organization), pytest.raises(Conflict) as refused:
        services.location_set_active(actor=nurse, location=stock["safe"], is_active=False)
    assert refused.value.errors[0].field == "is_active"
    assert "5000 mg in 1 lot" in refused.value.detail
    with scope(organization=nurse.organization):
        assert StorageLocation.objects.get(pk=stock["safe"].pk).is_active
    assert audit_count(action="inventory.location.retired") == before


def test_an_emptied_location_is_retired_and_takes_no_more_stock(
    nurse: Any, stock: dict[str, Any]
) -> None:
    safe, cart = stock["safe"], stock["cart"]
    with scope(organization=nurse.organization):
        for container in Container.objects.filter(location=safe):
            services.stock_transfer(actor=nurse, container=container, to_location=cart)
        retired = services.location_set_active(actor=nurse, location=safe, is_active=False)
        assert retired.is_active is False
        assert audit_count(action="inventory.location.retired") == 1
        with pytest.raises(ValidationFailed) as receiving:
            receive(nurse, stock["product"], retired, "K2", 1)
        assert receiving.value.errors[0].field == "location"
        back = Container.objects.filter(location=cart).first()
        assert back is not None
        with pytest.raises(ValidationFailed) as moving:
            services.stock_transfer(actor=nurse, container=back, to_location=retired)
        assert moving.value.errors[0].field == "to_location"
        assert Container.objects.filter(location=retired).count() == 0
        in_use = services.location_set_active(actor=nurse, location=retired, is_active=True)
        receive(nurse, stock["product"], in_use, "K2", 1)
        assert audit_count(action="inventory.location.reactivated") == 1


def test_retiring_through_the_api_and_the_set_up_screen(
    members: Any, stock: dict[str, Any]
) -> None:
    url = f"/api/v1/setup/locations/{stock['cart'].public_id}"
    admin = api_client(members["clinic_admin"])
    retired = admin.patch(url, json.dumps({"is_active": False}), content_type="application/json")
    assert retired.status_code == 200, retired.content
    assert retired.json()["is_active"] is False
    full = admin.patch(
        f"/api/v1/setup/locations/{stock['safe'].public_id}",
        json.dumps({"is_active": False}),
        content_type="application/json",
    )
    assert full.status_code == 409
    assert full.json()["errors"][0]["field"] == "is_active"

    screen = staff_client(members["clinic_admin"])
    page = screen.post(
        f"/setup/locations/{stock['safe'].public_id}/active/", {"is_active": "0"}, follow=True
    )
    assert "still holds 5000 mg" in page.content.decode()
    page = screen.post(
        f"/setup/locations/{stock['cart'].public_id}/active/", {"is_active": "1"}, follow=True
    )
    assert "Cart back in use" in page.content.decode()
