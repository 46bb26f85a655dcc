"""A clinic admin clones a standard protocol, lowers its per-kg cap and publishes the new version;
a prescriber then creates a treatment plan from it on the chart, where a dose above the new cap
is refused. In Chromium, through the staff screens only."""

from __future__ import annotations

from typing import Any

import pytest
from django_scopes import scope, scopes_disabled
from playwright.sync_api import expect

from conftest import actor_for, make_member, make_patient
from ketaclinic.accounts.services import organization_create
from ketaclinic.protocols import services as protocols
from ketaclinic.protocols.models import ProtocolVersion
from ketaclinic.sessions.tests.builders import make_treatable
from tests.browser.test_chart_flow import log_in

pytestmark = [pytest.mark.browser, pytest.mark.live, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def clinic(transactional_db: Any) -> dict[str, Any]:
    organization = organization_create(
        name="Protocol Clinic", clinic_name="Main", time_zone="America/Chicago"
    )
    admin = make_member(organization, "clinic_admin", username="protocol-admin")
    prescriber = make_member(organization, "prescriber", username="protocol-prescriber")
    actor = actor_for(prescriber)
    patient = make_patient(actor, given_name="Grace", family_name="Hopper")
    with scope(organization=organization):
        protocols.protocol_catalog_seed(organization=organization)
        make_treatable(actor, patient, "iv-ketamine-induction")
    return {"admin": admin, "prescriber": prescriber, "patient": patient}


def test_admin_publishes_a_clinic_version_and_a_prescriber_plans_from_it(
    page: Any, live_server: Any, clinic: dict[str, Any], failed_responses: list[str]
) -> None:
    base = live_server.url
    log_in(page, base, clinic["admin"])
    page.get_by_role("navigation", name="Main").get_by_role("link", name="Protocols").click()
    page.get_by_role(
        "link", name="IV racemic ketamine, 0.5 mg/kg over 40 min, six-infusion"
    ).click()
    expect(page.get_by_text("Highest dose some patients needed, §1.1 [C] #20")).to_be_visible()

    page.get_by_label("Why a new version?").fill("Our medical director caps at 0.6 mg/kg")
    page.get_by_role("button", name="Clone to a new draft").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Edit draft iv-ketamine-induction@2")
    page.fill('[name="caps.max_mg_per_kg"]', "0.6")
    page.get_by_role("button", name="Save draft").click()
    expect(page.get_by_role("status")).to_contain_text("saved (not yet published)")
    row = page.locator('tr[data-path="caps.max_mg_per_kg"]')
    expect(row).to_contain_text("0.6 mg/kg")
    expect(row).to_contain_text("standard: 0.75 mg/kg")
    page.get_by_role("button", name="Publish iv-ketamine-induction@2").click()
    expect(page.locator("#protocol-status")).to_have_text("Published")
    expect(page.get_by_role("link", name="Edit draft")).to_have_count(0)
    page.get_by_role("button", name="Log out").click()

    log_in(page, base, clinic["prescriber"])
    page.goto(f"{base}/patients/{clinic['patient'].public_id}/")
    page.get_by_role("navigation", name="Chart sections").get_by_role("link", name="Plan").click()
    form = page.locator("#plan-create-form")
    with scopes_disabled():
        version = ProtocolVersion.objects.get(protocol_id="iv-ketamine-induction", version=2)
    form.get_by_label("Protocol (published)").select_option(str(version.public_id))
    form.get_by_label("Dose per session").fill("0.7")
    form.get_by_role("button", name="Create plan").click()
    expect(page.locator("#plan-create-form")).to_contain_text("0.7 mg/kg is above the cap of 0.6.")

    form = page.locator("#plan-create-form")
    form.get_by_label("Dose per session").fill("0.6")
    form.get_by_role("button", name="Create plan").click()
    expect(page.locator("#plan-section")).to_contain_text("Plan iv-ketamine-induction@2 created")
    plan = page.locator("#plan-section section.plan")
    expect(plan.locator(".plan-phase")).to_have_text("induction")
    expect(plan.locator(".plan-amount")).to_have_text("0.6 mg/kg")
    # The one 4xx is the refused dose (422), answered in the form.
    assert [r for r in failed_responses if not r.startswith("422 ")] == []
