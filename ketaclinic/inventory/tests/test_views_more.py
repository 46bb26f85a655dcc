"""Screens and JSON API for transfer, return, destruction, theft/loss (DEA Form 106 with its
deadline and reminder), marking a DEA form filed, and adjustment: who may reach them, what they
record, and how they refuse (field named, nothing written)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
from django_scopes import scope

from conftest import actor_for, api_client, audit_count, staff_client, totp_code
from ketaclinic.accounts.roles import Cap, Role, role_can
from ketaclinic.inventory import services
from ketaclinic.inventory.models import Container, DeaForm, LedgerRow
from ketaclinic.inventory.tests.conftest import receive
from ketaclinic.sessions.tests.builders import recorded_administration

pytestmark = pytest.mark.django_db

JSON = {"content_type": "application/json"}
REGISTRANT = {
    "dea_registration_number": "FA1234563",
    "telephone": "555-0100",
    "registered_address": "1 Main St, Springfield IL",
}
FORM_106 = {
    "theft_or_loss_date": "2026-11-09",
    "theft_or_loss_type": "employee pilferage",
    "principal_business": "Clinic",
    "county": "Sangamon",
    "reported_to_police": True,
    "police_department": "Springfield PD, 217-555-0199",
    "thefts_or_losses_past_24_months": 0,
    "registrant_address": "1 Main St, Springfield IL",
    "telephone": "555-0100",
    "dea_registration_number": "FA1234563",
}


def vials(org: Any, lot: Any) -> list[Container]:
    with scope(organization=org):
        return list(Container.objects.filter(lot=lot).order_by("label"))


def rows(org: Any, **filters: Any) -> int:
    with scope(organization=org):
        return LedgerRow.objects.filter(**filters).count()


def forms_count(org: Any) -> int:
    with scope(organization=org):
        return DeaForm.objects.count()


def drawn(org: Any, actor: Any, stock: dict[str, Any], patient: Any, mg: str) -> uuid.UUID:
    with scope(organization=org):
        administration = recorded_administration(actor, patient)
        services.inventory_draw_for_administration(
            actor=actor,
            container=vials(org, stock["lot"])[0],
            quantity_mg=mg,
            administration_public_id=administration,
            patient=patient,
        )
    return administration


def errors_of(response: Any) -> dict[str, str]:
    return {e["field"]: e["message"] for e in response.json()["errors"]}


SCREENS = [
    ("/inventory/transfer/", Cap.INVENTORY_RECEIVE),
    ("/inventory/return/", Cap.INVENTORY_DRAW),
    ("/inventory/destroy/", Cap.INVENTORY_COUNT),
    ("/inventory/loss/", Cap.INVENTORY_COUNT),
    ("/inventory/adjust/", Cap.INVENTORY_COUNT),
]


@pytest.mark.parametrize("role", [r.value for r in Role])
@pytest.mark.parametrize(("url", "capability"), SCREENS)
def test_each_role_reaches_exactly_the_new_screens_of_its_capabilities(
    members, stock, role, url, capability
):
    response = staff_client(members[role]).get(url)
    assert response.status_code == (200 if role_can(role, capability) else 403)


API_WRITES = [
    ("/api/v1/inventory/transfers", Cap.INVENTORY_RECEIVE),
    ("/api/v1/inventory/destructions", Cap.INVENTORY_COUNT),
    ("/api/v1/inventory/losses", Cap.INVENTORY_COUNT),
    ("/api/v1/inventory/adjustments", Cap.INVENTORY_COUNT),
]


# Roles that hold the capability are covered by the behaviour tests.
API_WRITES_REFUSED = [
    (role.value, url, capability)
    for url, capability in API_WRITES
    for role in Role
    if not role_can(role.value, capability)
]


@pytest.mark.parametrize(("role", "url", "capability"), API_WRITES_REFUSED)
def test_a_role_without_the_capability_gets_403_from_the_api_and_nothing_is_written(
    org_a, members, stock, role, url, capability
):
    container = vials(org_a, stock["lot"])[0]
    payloads = {
        "/api/v1/inventory/transfers": {
            "container": str(container.public_id),
            "to_location": str(stock["cart"].public_id),
        },
        "/api/v1/inventory/destructions": {
            "container": str(container.public_id),
            "disposal": "on_site",
            "document_ref": "F41-1",
            "witness_username": members["prescriber"].user.username,
            "witness_code": totp_code(members["prescriber"].user),
        },
        "/api/v1/inventory/losses": {
            "kind": "loss",
            "lot": str(stock["lot"].public_id),
            "location": str(stock["safe"].public_id),
            "quantity_mg": "10",
            "reason": "short",
            "discovered_at": "2026-11-10T16:00:00Z",
            "form_106": FORM_106,
        },
        "/api/v1/inventory/adjustments": {
            "lot": str(stock["lot"].public_id),
            "location": str(stock["safe"].public_id),
            "quantity_mg": "-10",
            "reason": "keyed wrong",
            "approver_username": members["compliance"].user.username,
            "approver_code": totp_code(members["compliance"].user),
        },
    }
    response = api_client(members[role]).post(url, payloads[url], **JSON)
    assert response.status_code == 403
    assert rows(org_a) == 1


# --- Transfer ---------------------------------------------------------------------------------


def test_transfer_through_the_form_moves_the_vial_and_is_audited(org_a, members, stock):
    vial = vials(org_a, stock["lot"])[0]
    before = audit_count(action="inventory.stock.transferred")
    response = staff_client(members["nurse"]).post(
        "/inventory/transfer/",
        {"container": vial.public_id, "to_location": stock["cart"].public_id},
    )
    assert response.status_code == 302
    with scope(organization=org_a):
        vial.refresh_from_db()
        assert vial.location == stock["cart"]
        assert LedgerRow.objects.get(kind="transfer_in").balance_after_mg == Decimal("500.0")
    assert audit_count(action="inventory.stock.transferred") == before + 1


def test_the_transfer_form_refuses_the_same_location_and_writes_nothing(org_a, members, stock):
    vial = vials(org_a, stock["lot"])[0]
    response = staff_client(members["nurse"]).post(
        "/inventory/transfer/",
        {"container": vial.public_id, "to_location": stock["safe"].public_id},
    )
    assert response.status_code == 400
    assert "already there" in response.context["form"].errors["to_location"][0]
    assert rows(org_a) == 1


def test_the_transfer_form_names_missing_fields(org_a, members, stock):
    response = staff_client(members["nurse"]).post("/inventory/transfer/", {})
    assert set(response.context["form"].errors) == {"container", "to_location"}
    assert rows(org_a) == 1


def test_api_transfer_and_its_refusals(org_a, members, stock, outsider):
    client = api_client(members["nurse"])
    vial = vials(org_a, stock["lot"])[0]
    same = client.post(
        "/api/v1/inventory/transfers",
        {"container": str(vial.public_id), "to_location": str(stock["safe"].public_id)},
        **JSON,
    )
    assert same.status_code == 400
    assert "to_location" in errors_of(same)
    elsewhere = api_client(outsider).post(
        "/api/v1/inventory/transfers",
        {"container": str(vial.public_id), "to_location": str(stock["cart"].public_id)},
        **JSON,
    )
    assert elsewhere.status_code == 404
    assert rows(org_a) == 1
    moved = client.post(
        "/api/v1/inventory/transfers",
        {"container": str(vial.public_id), "to_location": str(stock["cart"].public_id)},
        **JSON,
    )
    assert moved.status_code == 201, moved.json()
    body = moved.json()
    assert body["transfer_out"]["balance_after_mg"] == "4500.0"
    assert body["transfer_in"]["balance_after_mg"] == "500.0"
    assert body["transfer_in"]["location"] == str(stock["cart"].public_id)


def test_an_emptied_vial_cannot_be_transferred(org_a, members, nurse, stock, patient):
    with scope(organization=org_a):
        vial = vials(org_a, stock["lot"])[0]
        services.inventory_draw_for_administration(
            actor=nurse,
            container=vial,
            quantity_mg="500",
            administration_public_id=recorded_administration(nurse, patient),
            patient=patient,
        )
    response = api_client(members["nurse"]).post(
        "/api/v1/inventory/transfers",
        {"container": str(vial.public_id), "to_location": str(stock["cart"].public_id)},
        **JSON,
    )
    assert response.status_code == 422
    assert "container" in errors_of(response)


# --- Return of an undrawn dose ----------------------------------------------------------------


def test_return_through_the_form_puts_the_dose_back(org_a, members, nurse, stock, patient):
    administration = drawn(org_a, nurse, stock, patient, "40")
    response = staff_client(members["nurse"]).post(
        "/inventory/return/", {"administration_id": administration, "quantity_mg": "10"}
    )
    assert response.status_code == 302
    with scope(organization=org_a):
        row = LedgerRow.objects.get(kind="return")
        assert row.balance_after_mg == Decimal("4970.0")
        assert vials(org_a, stock["lot"])[0].remaining_mg == Decimal("470.0")


def test_the_return_form_refuses_more_than_was_drawn(org_a, members, nurse, stock, patient):
    administration = drawn(org_a, nurse, stock, patient, "40")
    response = staff_client(members["nurse"]).post(
        "/inventory/return/", {"administration_id": administration, "quantity_mg": "40.1"}
    )
    assert response.status_code == 400
    assert "not yet wasted or returned" in response.context["form"].errors["quantity_mg"][0]
    assert rows(org_a, kind="return") == 0


def test_the_return_form_refuses_an_administration_with_no_draw(org_a, members, stock):
    response = staff_client(members["nurse"]).post(
        "/inventory/return/", {"administration_id": uuid.uuid4(), "quantity_mg": "5"}
    )
    assert "Nothing was drawn" in response.context["form"].errors["administration_id"][0]
    assert rows(org_a) == 1


def test_front_desk_cannot_return_through_the_api(org_a, members, nurse, stock, patient):
    administration = drawn(org_a, nurse, stock, patient, "40")
    response = api_client(members["front_desk"]).post(
        "/api/v1/inventory/returns",
        {"administration_id": str(administration), "quantity_mg": "10"},
        **JSON,
    )
    assert response.status_code == 403
    assert rows(org_a, kind="return") == 0


# --- Expired lots are refused at the draw (UI and API) -----------------------------------------


@pytest.fixture
def expired_vial(org_a, nurse, stock) -> Container:
    """A lot received two days ago that expired yesterday."""
    now = datetime.now(UTC)
    with scope(organization=org_a):
        row = receive(
            nurse,
            stock["product"],
            stock["safe"],
            "OLD",
            1,
            expires_at=now - timedelta(days=1),
            occurred_at=now - timedelta(days=2),
        )
        return Container.objects.get(lot=row.lot)


def test_the_draw_form_and_the_api_refuse_an_expired_lot(org_a, members, expired_vial, patient):
    with scope(organization=org_a):
        given = recorded_administration(actor_for(members["nurse"]), patient)
    response = staff_client(members["nurse"]).post(
        "/inventory/draw/",
        {
            "container": expired_vial.public_id,
            "quantity_mg": "20",
            "administration_id": given,
            "patient_id": patient.public_id,
        },
    )
    assert response.status_code == 400
    # The draw form has no lot field: the refusal is shown above the form.
    assert "expired" in str(response.context["form"].non_field_errors())
    api = api_client(members["nurse"]).post(
        "/api/v1/inventory/draws",
        {
            "container": str(expired_vial.public_id),
            "quantity_mg": "20",
            "administration_id": str(given),
            "patient": str(patient.public_id),
        },
        **JSON,
    )
    assert api.status_code == 422
    assert "expired" in errors_of(api)["lot"]
    assert rows(org_a, kind="draw") == 0


# --- Destruction ------------------------------------------------------------------------------


def destroy_post(stock: dict[str, Any], container: Container, **overrides: Any) -> dict[str, Any]:
    data = {
        "container": container.public_id,
        "disposal": "on_site",
        "document_ref": "F41-2026-1",
        "destruction_method": "chemical digestion (Rx Destroyer)",
        **REGISTRANT,
    }
    data.update(overrides)
    return data


def test_on_site_destruction_through_the_form_records_form_41_with_both_witnesses(
    org_a, members, stock, witness
):
    vial = vials(org_a, stock["lot"])[0]
    before = audit_count(action="inventory.stock.destroyed")
    response = staff_client(members["nurse"]).post(
        "/inventory/destroy/", destroy_post(stock, vial, **witness)
    )
    assert response.status_code == 302
    with scope(organization=org_a):
        row = LedgerRow.objects.get(kind="destruction")
        data = row.dea_form.data
        vial.refresh_from_db()
    assert response["Location"] == f"/inventory/dea-forms/{row.dea_form.public_id}/"
    assert row.balance_after_mg == Decimal("4500.0")
    assert row.witness == members["prescriber"].user
    assert vial.status == Container.Status.EMPTY
    assert data["second_witness_name"] == members["prescriber"].user.display_name
    assert data["first_witness_name"] == members["nurse"].user.display_name
    assert data["registrant_name"] == "Clinic A"
    assert data["items"][0]["full_packages"] == 1
    assert audit_count(action="inventory.stock.destroyed") == before + 1
    page = staff_client(members["nurse"]).get(response["Location"])
    assert b"DEA Form 41" in page.content


def test_the_destroy_form_refuses_the_recorder_as_witness_and_writes_nothing(org_a, members, stock):
    vial = vials(org_a, stock["lot"])[0]
    response = staff_client(members["nurse"]).post(
        "/inventory/destroy/",
        destroy_post(
            stock,
            vial,
            witness_username=members["nurse"].user.username,
            witness_code=totp_code(members["nurse"].user),
        ),
    )
    assert response.status_code == 400
    assert "different staff member" in response.context["form"].errors["witness_username"][0]
    assert rows(org_a) == 1
    assert forms_count(org_a) == 0


def test_the_destroy_form_names_a_form_41_field_the_clinic_has_no_record_of(
    org_a, members, stock, witness
):
    vial = vials(org_a, stock["lot"])[0]
    response = staff_client(members["nurse"]).post(
        "/inventory/destroy/",
        destroy_post(stock, vial, dea_registration_number="", **witness),
    )
    assert response.status_code == 400
    assert "DEA Form 41" in response.context["form"].errors["dea_registration_number"][0]
    assert rows(org_a) == 1


def test_a_reverse_distributor_needs_its_name_address_and_dea_number(
    org_a, members, stock, witness
):
    vial = vials(org_a, stock["lot"])[0]
    response = staff_client(members["nurse"]).post(
        "/inventory/destroy/",
        destroy_post(stock, vial, disposal="reverse_distributor", **witness),
    )
    assert set(response.context["form"].errors) == {
        "reverse_distributor_name",
        "reverse_distributor_address",
        "reverse_distributor_dea_number",
    }
    assert rows(org_a) == 1


def test_api_destruction_to_a_reverse_distributor_and_a_self_witness_refusal(
    org_a, members, stock, witness
):
    client = api_client(members["nurse"])
    vial = vials(org_a, stock["lot"])[0]
    payload = {
        "container": str(vial.public_id),
        "disposal": "reverse_distributor",
        "document_ref": "RD-INV-77",
        "form_41": {
            "dea_registration_number": "FA1234563",
            "registered_address": "1 Main St",
            "reverse_distributor_name": "Return Solutions",
            "reverse_distributor_address": "5 Dock Rd, Columbus OH",
            "reverse_distributor_dea_number": "RR1234567",
        },
        "witness_username": members["nurse"].user.username,
        "witness_code": totp_code(members["nurse"].user),
    }
    refused = client.post("/api/v1/inventory/destructions", payload, **JSON)
    assert refused.status_code == 422
    assert "witness_username" in errors_of(refused)
    incomplete = client.post(
        "/api/v1/inventory/destructions", {**payload, **witness, "form_41": {}}, **JSON
    )
    assert incomplete.status_code == 400
    assert "form_41.reverse_distributor_name" in errors_of(incomplete)
    assert rows(org_a) == 1
    done = client.post("/api/v1/inventory/destructions", {**payload, **witness}, **JSON)
    assert done.status_code == 201, done.json()
    body = done.json()
    assert body["row"]["kind"] == "destruction"
    assert body["form"]["kind"] == "41"
    assert body["form"]["data"]["disposal"] == "reverse_distributor"
    assert body["form"]["data"]["invoice_reference"] == "RD-INV-77"
    again = client.post("/api/v1/inventory/destructions", {**payload, **witness}, **JSON)
    assert again.status_code == 422
    assert "container" in errors_of(again)


# --- Theft or significant loss (DEA Form 106) -------------------------------------------------


def loss_post(stock: dict[str, Any], **overrides: Any) -> dict[str, Any]:
    data = {
        "kind": "theft",
        "lot": stock["lot"].public_id,
        "location": stock["safe"].public_id,
        "quantity_mg": "500",
        "reason": "vial missing at the close count",
        "discovered_at": "2026-11-10T10:00",
        **FORM_106,
        "reported_to_police": "on",
    }
    data.update(overrides)
    return data


def test_a_theft_reported_through_the_form_shows_its_deadline_until_marked_filed(
    org_a, members, stock
):
    nurse_ui = staff_client(members["nurse"])
    response = nurse_ui.post("/inventory/loss/", loss_post(stock))
    assert response.status_code == 302, response.context["form"].errors
    with scope(organization=org_a):
        form = DeaForm.objects.get()
    assert response["Location"] == f"/inventory/dea-forms/{form.public_id}/"
    # Tuesday 10 November 2026, 10:00 in Chicago; Wednesday 11 November is Veterans Day.
    assert form.due_by == datetime(2026, 11, 12, 16, 0, tzinfo=UTC)
    assert form.data["county"] == "Sangamon"
    assert form.data["registrant_name"] == "Clinic A"
    page = nurse_ui.get(response["Location"]).content.decode()
    assert "2026-11-12 10:00" in page
    assert "within one business day of discovery" in page
    for url in ("/inventory/", "/"):
        reminder = nurse_ui.get(url).content.decode()
        assert "DEA Form 106 not yet filed" in reminder
        assert "overdue" in reminder
    filed = nurse_ui.post(response["Location"], {"filed_at": "2026-11-11T09:30"})
    assert filed.status_code == 302
    with scope(organization=org_a):
        form.refresh_from_db()
    assert form.filed_at == datetime(2026, 11, 11, 15, 30, tzinfo=UTC)
    assert "DEA Form 106 not yet filed" not in nurse_ui.get("/inventory/").content.decode()
    assert "DEA Form 106 not yet filed" not in nurse_ui.get("/").content.decode()


def test_the_loss_form_refuses_more_than_the_balance_and_writes_nothing(org_a, members, stock):
    response = staff_client(members["nurse"]).post(
        "/inventory/loss/", loss_post(stock, quantity_mg="5000.1")
    )
    assert response.status_code == 400
    assert "never goes below zero" in response.context["form"].errors["quantity_mg"][0]
    assert rows(org_a) == 1
    assert forms_count(org_a) == 0


def test_the_loss_form_wants_the_police_department_when_police_were_told(org_a, members, stock):
    response = staff_client(members["nurse"]).post(
        "/inventory/loss/", loss_post(stock, police_department="")
    )
    assert "police department" in response.context["form"].errors["police_department"][0]
    assert forms_count(org_a) == 0


def test_the_loss_form_refuses_a_discovery_in_the_future(org_a, members, stock):
    tomorrow = (datetime.now(UTC) + timedelta(days=2)).strftime("%Y-%m-%dT%H:%M")
    response = staff_client(members["nurse"]).post(
        "/inventory/loss/", loss_post(stock, discovered_at=tomorrow)
    )
    assert "future" in response.context["form"].errors["discovered_at"][0]
    assert forms_count(org_a) == 0


def loss_payload(stock: dict[str, Any], **overrides: Any) -> dict[str, Any]:
    data = {
        "kind": "loss",
        "lot": str(stock["lot"].public_id),
        "location": str(stock["safe"].public_id),
        "quantity_mg": "250",
        "reason": "count short after shift change",
        "discovered_at": "2026-07-02T15:00:00-05:00",
        "form_106": FORM_106,
    }
    data.update(overrides)
    return data


def test_api_loss_report_deadline_skips_the_observed_holiday_and_filing_ends_the_reminder(
    org_a, members, stock
):
    client = api_client(members["nurse"])
    created = client.post("/api/v1/inventory/losses", loss_payload(stock), **JSON)
    assert created.status_code == 201, created.json()
    form = created.json()["form"]
    # Thursday 2 July 2026; Friday 3 July is Independence Day (observed): due Monday 6 July.
    due_by = datetime.fromisoformat(form["due_by"])
    assert due_by == datetime(2026, 7, 6, 20, 0, tzinfo=UTC)
    assert form["due_rule"] == "dea-form-106-deadline@1"
    assert created.json()["row"]["balance_after_mg"] == "4750.0"
    pending = client.get("/api/v1/inventory/dea-forms?pending=true").json()
    assert [f["id"] for f in pending] == [form["id"]]
    assert pending[0]["overdue"] is True
    filed = client.post(f"/api/v1/inventory/dea-forms/{form['id']}/filed", {}, **JSON)
    assert filed.status_code == 200, filed.json()
    assert filed.json()["filed_at"] is not None
    assert client.get("/api/v1/inventory/dea-forms?pending=true").json() == []
    twice = client.post(f"/api/v1/inventory/dea-forms/{form['id']}/filed", {}, **JSON)
    assert twice.status_code == 409


def test_api_loss_refusals_name_the_field_and_write_nothing(org_a, members, stock):
    client = api_client(members["nurse"])
    no_county = {k: v for k, v in FORM_106.items() if k != "county"}
    missing = client.post(
        "/api/v1/inventory/losses", loss_payload(stock, form_106=no_county), **JSON
    )
    assert missing.status_code == 422
    assert "form_106.county" in errors_of(missing)
    police = client.post(
        "/api/v1/inventory/losses",
        loss_payload(stock, form_106={**FORM_106, "police_department": ""}),
        **JSON,
    )
    assert police.status_code == 422
    assert "form_106.police_department" in errors_of(police)
    too_much = client.post(
        "/api/v1/inventory/losses", loss_payload(stock, quantity_mg="5000.1"), **JSON
    )
    assert too_much.status_code == 422
    assert "quantity_mg" in errors_of(too_much)
    future = (datetime.now(UTC) + timedelta(days=1)).isoformat()
    later = client.post(
        "/api/v1/inventory/losses", loss_payload(stock, discovered_at=future), **JSON
    )
    assert later.status_code == 400
    assert "discovered_at" in errors_of(later)
    assert rows(org_a) == 1
    assert forms_count(org_a) == 0


def test_an_incomplete_form_106_cannot_be_marked_filed(org_a, members, nurse, stock):
    with scope(organization=org_a):
        _, form = services.stock_loss_report(
            actor=nurse,
            kind="loss",
            lot=stock["lot"],
            location=stock["safe"],
            quantity_mg="10",
            reason="short",
            discovered_at=datetime.now(UTC) - timedelta(hours=1),
            form_106={},
        )
    response = api_client(members["nurse"]).post(
        f"/api/v1/inventory/dea-forms/{form.public_id}/filed", {}, **JSON
    )
    assert response.status_code == 400
    assert "form_106.county" in errors_of(response)
    page = staff_client(members["nurse"]).post(f"/inventory/dea-forms/{form.public_id}/", {})
    assert page.status_code == 400
    assert "County: required" in str(page.context["form"].non_field_errors())
    with scope(organization=org_a):
        form.refresh_from_db()
    assert form.filed_at is None


def test_only_inventory_counters_mark_a_form_filed_and_outsiders_see_nothing(
    org_a, members, nurse, stock, outsider
):
    with scope(organization=org_a):
        _, form = services.stock_loss_report(
            actor=nurse,
            kind="loss",
            lot=stock["lot"],
            location=stock["safe"],
            quantity_mg="10",
            reason="short",
            discovered_at=datetime.now(UTC) - timedelta(hours=1),
            form_106={},
        )
    url = f"/inventory/dea-forms/{form.public_id}/"
    assert staff_client(members["clinic_admin"]).get(url).status_code == 200
    assert staff_client(members["clinic_admin"]).post(url, {}).status_code == 403
    api_url = f"/api/v1/inventory/dea-forms/{form.public_id}/filed"
    assert api_client(members["clinic_admin"]).post(api_url, {}, **JSON).status_code == 403
    assert staff_client(outsider).get(url).status_code == 404
    assert (
        api_client(outsider).get(f"/api/v1/inventory/dea-forms/{form.public_id}").status_code == 404
    )


# --- Adjustment -------------------------------------------------------------------------------


def adjust_post(stock: dict[str, Any], approver: Any, **overrides: Any) -> dict[str, Any]:
    data = {
        "lot": stock["lot"].public_id,
        "location": stock["safe"].public_id,
        "quantity_mg": "-10",
        "reason": "receipt keyed as 10 vials; one was broken in the box (photo on file)",
        "approver_username": approver.user.username,
        "approver_code": totp_code(approver.user),
    }
    data.update(overrides)
    return data


def test_an_adjustment_through_the_form_with_a_compliance_approver(org_a, members, stock):
    before = audit_count(action="inventory.stock.adjusted")
    response = staff_client(members["nurse"]).post(
        "/inventory/adjust/", adjust_post(stock, members["compliance"])
    )
    assert response.status_code == 302
    with scope(organization=org_a):
        row = LedgerRow.objects.get(kind="adjustment")
    assert row.approver == members["compliance"].user
    assert row.balance_after_mg == Decimal("4990.0")
    assert audit_count(action="inventory.stock.adjusted") == before + 1


def test_the_adjust_form_refuses_an_approver_who_is_not_compliance(org_a, members, stock):
    response = staff_client(members["nurse"]).post(
        "/inventory/adjust/", adjust_post(stock, members["prescriber"])
    )
    assert response.status_code == 400
    assert "may not act as approver" in response.context["form"].errors["approver_username"][0]
    assert rows(org_a, kind="adjustment") == 0


def test_compliance_cannot_approve_its_own_adjustment(org_a, members, stock):
    response = staff_client(members["compliance"]).post(
        "/inventory/adjust/", adjust_post(stock, members["compliance"])
    )
    assert "different staff member" in response.context["form"].errors["approver_username"][0]
    assert rows(org_a, kind="adjustment") == 0


def test_the_adjust_form_needs_a_reason_and_refuses_a_negative_balance(org_a, members, stock):
    client = staff_client(members["nurse"])
    no_reason = client.post(
        "/inventory/adjust/", adjust_post(stock, members["compliance"], reason="")
    )
    assert "reason" in no_reason.context["form"].errors
    negative = client.post(
        "/inventory/adjust/", adjust_post(stock, members["compliance"], quantity_mg="-5000.1")
    )
    assert "never goes below zero" in negative.context["form"].errors["quantity_mg"][0]
    assert rows(org_a, kind="adjustment") == 0


def test_api_adjustment_without_compliance_approval_is_refused(org_a, members, stock):
    client = api_client(members["nurse"])
    payload = {
        "lot": str(stock["lot"].public_id),
        "location": str(stock["safe"].public_id),
        "quantity_mg": "-10",
        "reason": "keyed wrong",
        "approver_username": members["compliance"].user.username,
        "approver_code": "000000",
    }
    wrong = client.post("/api/v1/inventory/adjustments", payload, **JSON)
    assert wrong.status_code == 422
    assert "approver_username" in errors_of(wrong)
    missing = client.post(
        "/api/v1/inventory/adjustments",
        {k: v for k, v in payload.items() if not k.startswith("approver")},
        **JSON,
    )
    assert missing.status_code == 422
    assert {"approver_username", "approver_code"} <= set(errors_of(missing))
    negative = client.post(
        "/api/v1/inventory/adjustments",
        {
            **payload,
            "approver_code": totp_code(members["compliance"].user),
            "quantity_mg": "-5000.1",
        },
        **JSON,
    )
    assert negative.status_code == 422
    assert "quantity_mg" in errors_of(negative)
    assert rows(org_a, kind="adjustment") == 0
    done = client.post(
        "/api/v1/inventory/adjustments",
        {**payload, "approver_code": totp_code(members["compliance"].user)},
        **JSON,
    )
    assert done.status_code == 201, done.json()
    assert done.json()["balance_after_mg"] == "4990.0"
