"""The set-up screens as a clinic admin uses them: each page renders, a refusal comes back next to
its field with nothing written, and other roles are kept out."""

from __future__ import annotations

from typing import Any

import pytest
from django_scopes import scopes_disabled

from conftest import staff_client
from ketaclinic.accounts.models import Chair, Clinic
from ketaclinic.inventory.models import Product, StorageLocation

pytestmark = pytest.mark.django_db
PAGES = [
    "",
    "clinics/",
    "chairs/",
    "products/",
    "locations/",
    "staff/",
    "escalation/",
    "patient-portal/",
]


@pytest.mark.parametrize("page", PAGES)
def test_pages_render_for_the_clinic_admin_only(members: Any, page: str) -> None:
    assert staff_client(members["clinic_admin"]).get(f"/setup/{page}").status_code == 200
    assert staff_client(members["nurse"]).get(f"/setup/{page}").status_code == 403


def test_a_chair_product_and_location_through_the_screens(members: Any, org_a: Any) -> None:
    client = staff_client(members["clinic_admin"])
    with scopes_disabled():
        clinic = Clinic.objects.get(organization=org_a)
    refused = client.post(
        "/setup/chairs/new/",
        {"new-clinic": clinic.public_id, "new-number": "1", "new-capabilities": ["oral"]},
    )
    assert refused.status_code == 409
    assert b"already has a chair 1" in refused.content
    added = client.post(
        "/setup/chairs/new/",
        {"new-clinic": clinic.public_id, "new-number": "7", "new-capabilities": ["oral"]},
    )
    assert added.status_code == 302
    with scopes_disabled():
        chair = Chair.objects.get(clinic=clinic, number=7)
    assert (
        client.post(f"/setup/chairs/{chair.public_id}/active/", {"is_active": "0"}).status_code
        == 302
    )
    chair.refresh_from_db()
    assert not chair.is_active

    bad = client.post(
        "/setup/products/new/",
        {"form": "vial", "strength_mg": "50", "units_per_container": "", "ndc": "x"},
    )
    assert bad.status_code == 400
    assert b"An NDC has digits" in bad.content
    with scopes_disabled():
        assert not Product.objects.exists()
    ok = client.post(
        "/setup/products/new/",
        {"form": "troche", "strength_mg": "100", "units_per_container": "30"},
    )
    assert ok.status_code == 302
    assert b"Ketamine HCl troche 100 mg" in client.get("/setup/products/").content

    ok = client.post(
        "/setup/locations/new/", {"clinic": clinic.public_id, "name": "Main safe", "kind": "safe"}
    )
    assert ok.status_code == 302
    with scopes_disabled():
        assert StorageLocation.objects.get().name == "Main safe"


def test_clinic_time_zone_and_escalation_through_the_screens(members: Any, org_a: Any) -> None:
    client = staff_client(members["clinic_admin"])
    with scopes_disabled():
        clinic = Clinic.objects.get(organization=org_a)
    prefix = f"c{clinic.pk}"
    data = {
        f"{prefix}-name": clinic.name,
        f"{prefix}-time_zone": "America/New_York",
        f"{prefix}-on_call_clinician": members["nurse"].user.username,
        f"{prefix}-rems_certified_on": "2099-01-01",
        f"{prefix}-rems_setting_id": "HCS-1",
    }
    refused = client.post(f"/setup/clinics/{clinic.public_id}/", data)
    assert refused.status_code == 400
    assert b"cannot be in the future" in refused.content
    data[f"{prefix}-rems_certified_on"] = "2025-06-01"
    assert client.post(f"/setup/clinics/{clinic.public_id}/", data).status_code == 302
    clinic.refresh_from_db()
    assert clinic.time_zone == "America/New_York"
    assert clinic.on_call_clinician == members["nurse"].user
    saved = client.post(
        "/setup/escalation/", {"escalation_minutes": "20", "escalation_role": "prescriber"}
    )
    assert saved.status_code == 302
    assert b"after 20 minutes" in client.get("/setup/escalation/").content


def test_the_today_page_checklist_costs_a_fixed_number_of_queries(
    members: Any, django_assert_max_num_queries: Any
) -> None:
    client = staff_client(members["clinic_admin"])
    client.get("/")
    with django_assert_max_num_queries(30):
        page = client.get("/")
    assert b'data-key="products"' in page.content
