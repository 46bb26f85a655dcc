"""The set-up area through the JSON API and the screens: each object is created through its
service, refusals name the field and write nothing, every change is audited."""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Any

import pytest
from django_scopes import scopes_disabled

from conftest import actor_for, api_client, make_member, make_patient, staff_client
from ketaclinic.accounts.models import AuditEvent, Chair, Clinic
from ketaclinic.inventory.models import Product, StorageLocation
from ketaclinic.patients.models import VitalSign

pytestmark = pytest.mark.django_db


@pytest.fixture
def admin_api(members: Any) -> Any:
    return api_client(members["clinic_admin"])


def post(client: Any, url: str, body: dict[str, Any], method: str = "post") -> Any:
    return getattr(client, method)(url, json.dumps(body), content_type="application/json")


def assert_refused(response: Any, status: int, field: str) -> None:
    assert response.status_code == status, response.content
    body = response.json()
    assert body["detail"]
    assert field in [e["field"] for e in body["errors"]], body


def clinic_id(org: Any) -> str:
    with scopes_disabled():
        return str(Clinic.objects.get(organization=org).public_id)


def test_clinic_details_rems_and_on_call(admin_api: Any, members: Any, org_a: Any) -> None:
    url = f"/api/v1/setup/clinics/{clinic_id(org_a)}"
    before = AuditEvent.objects.count()
    assert_refused(post(admin_api, url, {"time_zone": "Mars/Olympus"}, "patch"), 400, "time_zone")
    assert_refused(
        post(admin_api, url, {"rems_certified_on": "2025-01-02"}, "patch"), 400, "rems_setting_id"
    )
    assert_refused(
        post(admin_api, url, {"on_call_clinician": members["front_desk"].user.username}, "patch"),
        400,
        "on_call_clinician",
    )
    assert AuditEvent.objects.count() == before  # refusals wrote nothing
    response = post(
        admin_api,
        url,
        {
            "time_zone": "America/Denver",
            "phone": "+1 303 555 0100",
            "rems_setting_id": "HCS-0042",
            "rems_certified_on": "2025-01-02",
            "on_call_clinician": members["prescriber"].user.username,
            "escalation_phone": "+1 303 555 0199",
        },
        "patch",
    )
    assert response.status_code == 200, response.content
    body = response.json()
    assert body["time_zone"] == "America/Denver"
    assert body["on_call_clinician"] == members["prescriber"].user.username
    [event] = AuditEvent.objects.filter(action="accounts.clinic.updated")
    assert set(event.detail) == {
        "time_zone",
        "phone",
        "rems_setting_id",
        "rems_certified_on",
        "on_call_clinician",
        "escalation_phone",
    }
    created = post(admin_api, "/api/v1/setup/clinics", {"name": "North", "time_zone": "UTC"})
    assert created.status_code == 201
    assert_refused(post(admin_api, "/api/v1/setup/clinics", {"name": "North"}), 409, "name")


def test_chairs_with_capabilities(admin_api: Any, org_a: Any) -> None:
    clinic = clinic_id(org_a)
    assert_refused(
        post(
            admin_api,
            "/api/v1/setup/chairs",
            {"clinic_id": clinic, "number": 9, "capabilities": []},
        ),
        422,
        "capabilities",
    )
    assert_refused(
        post(
            admin_api,
            "/api/v1/setup/chairs",
            {"clinic_id": clinic, "number": 1, "capabilities": ["oral"]},
        ),
        409,
        "number",
    )
    response = post(
        admin_api,
        "/api/v1/setup/chairs",
        {
            "clinic_id": clinic,
            "number": 9,
            "name": "Quiet room",
            "capabilities": ["oral", "iv_pump"],
        },
    )
    assert response.status_code == 201, response.content
    chair = response.json()
    assert chair["capabilities"] == ["iv_pump", "oral"]
    off = post(admin_api, f"/api/v1/setup/chairs/{chair['id']}", {"is_active": False}, "patch")
    assert off.json()["is_active"] is False
    assert AuditEvent.objects.filter(action="accounts.chair.deactivated").count() == 1
    with scopes_disabled():
        assert not Chair.objects.get(public_id=chair["id"]).is_active


def test_products_vials_troches_and_esketamine(admin_api: Any) -> None:
    url = "/api/v1/setup/products"
    assert_refused(
        post(
            admin_api,
            url,
            {"form": "vial", "strength_mg": "50", "units_per_container": "10", "ndc": "12-34"},
        ),
        400,
        "ndc",
    )
    assert_refused(post(admin_api, url, {"form": "troche", "strength_mg": "0"}), 400, "strength_mg")
    assert_refused(
        post(admin_api, url, {"form": "esketamine_device", "strength_mg": "56"}), 400, "strength_mg"
    )
    with scopes_disabled():
        assert not Product.objects.exists()
    vial = post(
        admin_api,
        url,
        {"form": "vial", "strength_mg": "50", "units_per_container": "10", "ndc": "0409-2051-05"},
    )
    assert vial.status_code == 201, vial.content
    assert vial.json()["strength"] == "50 mg/mL"
    assert vial.json()["ndc"] == "0409-2051-05"
    troche = post(
        admin_api, url, {"form": "troche", "strength_mg": "150", "units_per_container": "30"}
    )
    assert troche.status_code == 201
    assert troche.json()["dose_unit"] == "troche"
    assert troche.json()["compounded"] is True
    spravato = post(admin_api, url, {"form": "esketamine_device"})
    assert spravato.json()["ndc"] == "50458-028"
    assert_refused(post(admin_api, url, {"form": "esketamine_device"}), 409, "form")
    retired = post(admin_api, f"{url}/{troche.json()['id']}", {"is_active": False}, "patch")
    assert retired.json()["is_active"] is False
    assert [p["display_name"] for p in admin_api.get(url).json()][-1].startswith(
        "Ketamine HCl troche"
    )


def test_storage_locations(admin_api: Any, org_a: Any, org_b: Any) -> None:
    url = "/api/v1/setup/locations"
    assert_refused(
        post(admin_api, url, {"clinic_id": clinic_id(org_b), "name": "Safe"}), 404, "clinic_id"
    )
    response = post(
        admin_api, url, {"clinic_id": clinic_id(org_a), "name": "Main safe", "kind": "safe"}
    )
    assert response.status_code == 201, response.content
    assert_refused(
        post(admin_api, url, {"clinic_id": clinic_id(org_a), "name": "Main safe"}), 409, "name"
    )
    with scopes_disabled():
        assert StorageLocation.objects.count() == 1


def test_staff_through_the_api_and_a_nurse_is_refused(admin_api: Any, members: Any) -> None:
    created = post(admin_api, "/api/v1/setup/staff", {"username": "api-nurse", "role": "nurse"})
    assert created.status_code == 201, created.content
    body = created.json()
    assert body["awaiting_approval"] is False
    assert body["totp_url"].startswith("otpauth://")
    pending = post(admin_api, "/api/v1/setup/staff", {"username": "api-doc", "role": "prescriber"})
    assert pending.json()["awaiting_approval"] is True
    change = pending.json()["role_change"]["id"]
    assert_refused(
        post(admin_api, "/api/v1/setup/staff", {"username": "api-nurse", "role": "nurse"}),
        400,
        "username",
    )
    refused = admin_api.post(f"/api/v1/setup/role-changes/{change}/approve")
    assert refused.status_code == 403
    second_admin = make_member(members["clinic_admin"].organization, "clinic_admin", "admin-2")
    approved = api_client(second_admin).post(f"/api/v1/setup/role-changes/{change}/approve")
    assert approved.json()["status"] == "applied"
    nurse_api = api_client(members["nurse"])
    assert nurse_api.get("/api/v1/setup/staff").status_code == 403
    assert nurse_api.post(
        "/api/v1/setup/products", "{}", content_type="application/json"
    ).status_code in (403, 422)


def test_escalation_settings_publish_a_measure_policy_version(admin_api: Any) -> None:
    assert admin_api.get("/api/v1/setup/escalation").json()["escalation_minutes"] == 30
    assert_refused(
        post(
            admin_api,
            "/api/v1/setup/escalation",
            {"escalation_minutes": 0, "escalation_role": "nurse"},
            "put",
        ),
        422,
        "escalation_minutes",
    )
    response = post(
        admin_api,
        "/api/v1/setup/escalation",
        {"escalation_minutes": 15, "escalation_role": "nurse"},
        "put",
    )
    assert response.json() == {
        "policy_version": 1,
        "escalation_minutes": 15,
        "escalation_role": "nurse",
    }


def test_the_checklist_names_what_is_missing(admin_api: Any, members: Any) -> None:
    missing = {i["key"] for i in admin_api.get("/api/v1/setup/checklist").json() if not i["done"]}
    # The fixture clinic has chairs, a prescriber and a nurse; the rest is still to do.
    assert missing == {
        "products",
        "location",
        "stock",
        "on_call",
        "consent",
        "protocol",
        "rems",
    } | {
        "screening_policy",  # these the clinic may leave to its defaults for now
        "safety_policy",
        "contact",
        "hours",
    }
    page = staff_client(members["clinic_admin"]).get("/")
    assert b"Before the first session" in page.content
    assert b"A storage location" in page.content
    # Other roles do not see it.
    assert b"Before the first session" not in staff_client(members["nurse"]).get("/").content


def test_resting_blood_pressure_on_the_chart(members: Any) -> None:
    nurse = members["nurse"]
    patient = make_patient(actor_for(members["prescriber"]))
    api = api_client(nurse)
    url = f"/api/v1/patients/{patient.public_id}/blood-pressures"
    assert_refused(post(api, url, {"systolic": 120, "diastolic": 130}), 400, "diastolic")
    assert_refused(post(api, url, {"systolic": 900, "diastolic": 80}), 400, "systolic")
    response = post(api, url, {"systolic": 128, "diastolic": 82})
    assert response.status_code == 201, response.content
    assert response.json()["systolic"] in ("128", "128.00", 128)
    client = staff_client(nurse)
    form_url = f"/patients/{patient.public_id}/blood-pressures/new/"
    refused = client.post(form_url, {"systolic": "80", "diastolic": "95"})
    assert refused.status_code == 400
    assert b"below the systolic" in refused.content
    assert client.post(form_url, {"systolic": "132", "diastolic": "84"}).status_code == 302
    with scopes_disabled():
        readings = VitalSign.objects.filter(patient=patient, kind="bp").order_by("measured_at")
        pairs = [(r.value, r.value_diastolic) for r in readings]
        assert pairs == [(Decimal(128), Decimal(82)), (Decimal(132), Decimal(84))]
    assert api.get(url).json()["count"] == 2


def test_escalations_reach_the_on_call_clinician_named_in_set_up(members: Any, org_a: Any) -> None:
    from ketaclinic.accounts.site_setup import clinic_update
    from ketaclinic.messaging.services import on_call_recipients

    doctor = members["prescriber"].user
    doctor.email = "dr.oncall@clinic.example"
    doctor.save(update_fields=["email"])
    with scopes_disabled():
        clinic = Clinic.objects.get(organization=org_a)
    admin = actor_for(members["clinic_admin"])
    from django_scopes import scope

    with scope(organization=org_a):
        clinic_update(
            actor=admin,
            clinic=clinic,
            data={"on_call_clinician": doctor.username, "escalation_phone": "+13125550142"},
        )
    with scope(organization=org_a):
        recipients = on_call_recipients(org_a, "nurse")
    assert recipients == [
        ("email", "dr.oncall@clinic.example", doctor),
        ("sms", "+13125550142", doctor),
    ]


def test_a_wrong_resting_blood_pressure_is_marked_entered_in_error(members: Any) -> None:
    nurse = members["nurse"]
    patient = make_patient(actor_for(members["prescriber"]))
    api = api_client(nurse)
    url = f"/api/v1/patients/{patient.public_id}/blood-pressures"
    reading = post(api, url, {"systolic": 182, "diastolic": 104}).json()
    assert api.delete(f"/api/v1/vitals/{reading['id']}?reason=another+patient").status_code == 204
    assert api.get(url).json()["count"] == 0
    assert api.delete(f"/api/v1/vitals/{reading['id']}").status_code in (404, 409)
    assert AuditEvent.objects.filter(action__contains="entered_in_error").count() == 1


def test_setup_lists_cost_a_fixed_number_of_queries(
    admin_api: Any, members: Any, org_a: Any, django_assert_max_num_queries: Any
) -> None:
    for number in range(5):
        make_member(org_a, "nurse", f"extra-nurse-{number}")
    for url in ("staff", "chairs", "clinics", "products", "locations", "role-changes"):
        with django_assert_max_num_queries(6):
            assert admin_api.get(f"/api/v1/setup/{url}").status_code == 200


def test_troches_defined_in_set_up_can_be_received(
    admin_api: Any, members: Any, org_a: Any
) -> None:
    """Regression (issue 10): no screen or API could add a troche product, so troches could never
    be stocked."""
    from datetime import UTC, datetime

    from django_scopes import scope

    from ketaclinic.inventory import services as inventory

    troche = post(
        admin_api,
        "/api/v1/setup/products",
        {"form": "troche", "strength_mg": "150", "units_per_container": "30"},
    ).json()
    location = post(
        admin_api, "/api/v1/setup/locations", {"clinic_id": clinic_id(org_a), "name": "Safe"}
    ).json()
    nurse = actor_for(members["nurse"])
    with scope(organization=org_a):
        row = inventory.stock_receive(
            actor=nurse,
            product=Product.objects.get(public_id=troche["id"]),
            location=StorageLocation.objects.get(public_id=location["id"]),
            lot_number="T-1",
            expires_at=datetime(2099, 1, 1, tzinfo=UTC),
            containers=2,
            supplier_name="Compounding pharmacy",
            supplier_address="1 Main St",
            supplier_dea_number="FC1234567",
            invoice_reference="RX-1",
        )
    assert row.quantity_mg == 9000  # 2 bottles x 30 troches x 150 mg
