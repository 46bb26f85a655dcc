"""The clinic floor board on a wall screen: a vitals entry recorded at the chair shows up, with its
alert, within 5 seconds, without reloading the page (htmx polling every 2 s)."""

from __future__ import annotations

from typing import Any

import pytest
from django_scopes import scope
from playwright.sync_api import expect

from conftest import actor_for, make_member, make_patient
from ketaclinic.accounts.services import organization_create
from ketaclinic.sessions import services
from ketaclinic.sessions.tests.builders import session_prechecked
from tests.browser.test_chart_flow import log_in

pytestmark = [pytest.mark.browser, pytest.mark.live, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def floor(transactional_db: Any) -> dict[str, Any]:
    organization = organization_create(
        name="Floor Clinic", clinic_name="Main", time_zone="America/Chicago"
    )
    membership = make_member(organization, "prescriber", username="browser-prescriber")
    actor = actor_for(membership)
    patient = make_patient(actor, given_name="Grace", family_name="Hopper")
    with scope(organization=organization):
        session = session_prechecked(actor, patient)
    return {"membership": membership, "actor": actor, "session": session}


def test_the_floor_board_shows_new_vitals_and_alert_within_5_seconds(
    page: Any, live_server: Any, floor: dict[str, Any], failed_responses: list[str]
) -> None:
    log_in(page, live_server.url, floor["membership"])
    page.goto(f"{live_server.url}/floor/")
    row = page.locator(f'tr[data-session="{floor["session"].public_id}"]')
    expect(row).to_contain_text("Grace Hopper")
    expect(row.locator(".last-vitals")).to_contain_text("122/78")
    with scope(organization=floor["actor"].organization):
        services.vitals_record(
            actor=floor["actor"],
            session=floor["session"],
            samples=[{"systolic": 186, "diastolic": 104, "heart_rate": 96, "spo2": 97}],
        )
    expect(row.locator(".last-vitals")).to_contain_text("186/104", timeout=5_000)
    expect(row.locator(".alert-cell")).to_contain_text("systolic 186", timeout=5_000)
    assert not failed_responses
