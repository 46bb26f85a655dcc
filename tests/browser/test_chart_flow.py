"""A clinician's first minutes in a real browser: log in with password and authenticator code,
find a patient, open the chart, record a weight in pounds and read it back in kilograms.
Plus: the screens fit a phone and a tablet without sideways scrolling."""

from __future__ import annotations

import re
from typing import Any

import pytest
from django_otp.oath import TOTP
from playwright.sync_api import expect

from conftest import PASSWORD, actor_for, make_member, make_patient
from ketaclinic.accounts.models import EncryptedTOTPDevice, Membership
from ketaclinic.accounts.services import organization_create

pytestmark = [pytest.mark.browser, pytest.mark.live, pytest.mark.django_db(transaction=True)]

USERNAME = "browser-prescriber"


@pytest.fixture
def clinic(transactional_db: Any) -> dict[str, Any]:
    organization = organization_create(
        name="Browser Clinic", clinic_name="Main", time_zone="America/Chicago"
    )
    membership = make_member(organization, "prescriber", username=USERNAME)
    actor = actor_for(membership)
    grace = make_patient(actor, given_name="Grace", family_name="Hopper")
    make_patient(actor, given_name="Ada", family_name="Lovelace")
    return {"membership": membership, "grace": grace}


def totp_code(membership: Membership) -> str:
    device = EncryptedTOTPDevice.objects.get(user=membership.user)
    token = TOTP(device.bin_key, device.step, device.t0, device.digits).token()
    return str(token).zfill(device.digits)


def log_in(page: Any, base_url: str, membership: Membership) -> None:
    page.goto(f"{base_url}/accounts/login/")
    page.fill("input[name=username]", membership.user.username)
    page.fill("input[name=password]", PASSWORD)
    page.fill("input[name=otp_token]", totp_code(membership))
    page.get_by_role("button", name="Log in", exact=True).click()
    expect(page.get_by_role("button", name="Log out")).to_be_visible()


def test_find_patient_and_record_weight_in_pounds(
    page: Any, live_server: Any, clinic: dict[str, Any], failed_responses: list[str]
) -> None:
    log_in(page, live_server.url, clinic["membership"])
    # The stylesheet loaded and applies (the top bar is dark, not the browser default).
    top_bar = page.locator("header.topbar")
    expect(top_bar).to_have_css("background-color", "rgb(18, 38, 63)")

    page.get_by_role("navigation", name="Main").get_by_role("link", name="Patients").click()
    results = page.locator("#patient-results")
    expect(results.get_by_role("link", name="Lovelace, Ada")).to_be_visible()

    # htmx search as you type: the results narrow to the one patient.
    page.fill("#id_q", "Hopp")
    expect(results.get_by_role("link", name="Lovelace, Ada")).to_have_count(0)
    results.get_by_role("link", name="Hopper, Grace").click()

    expect(page.get_by_role("heading", level=1)).to_contain_text("Grace Hopper")
    expect(page.locator("#latest-weight")).to_have_text("not recorded")

    form = page.get_by_role("form", name="Record weight")
    form.get_by_label("Weight").fill("165")
    form.get_by_label("Unit").select_option("lb")
    form.get_by_role("button", name="Record weight").click()

    # 165 lb x 0.45359237 kg/lb = 74.84 kg
    expect(page.get_by_role("status")).to_contain_text("Weight recorded.")
    expect(page.locator("#latest-weight")).to_contain_text("74.84 kg")
    row = page.locator("#weights-table tbody tr").first
    expect(row).to_contain_text("74.84")
    expect(row).to_contain_text(re.compile(r"165(\.0+)? lb"))
    assert page.url.rstrip("/").endswith(str(clinic["grace"].public_id))
    assert failed_responses == []


@pytest.mark.parametrize(
    ("device", "width", "height"),
    [("phone", 375, 740), ("tablet", 768, 1024)],
)
def test_screens_fit_small_viewports_without_sideways_scrolling(
    page: Any,
    live_server: Any,
    clinic: dict[str, Any],
    failed_responses: list[str],
    device: str,
    width: int,
    height: int,
) -> None:
    page.set_viewport_size({"width": width, "height": height})
    page.goto(f"{live_server.url}/accounts/login/")
    assert_no_horizontal_overflow(page, f"{device} login")

    log_in(page, live_server.url, clinic["membership"])
    for path in ("/", "/patients/", f"/patients/{clinic['grace'].public_id}/"):
        page.goto(f"{live_server.url}{path}")
        expect(page.locator("main")).to_be_visible()
        assert_no_horizontal_overflow(page, f"{device} {path}")
    assert failed_responses == []


def assert_no_horizontal_overflow(page: Any, where: str) -> None:
    widths = page.evaluate(
        "() => ({scroll: document.documentElement.scrollWidth,"
        " client: document.documentElement.clientWidth})"
    )
    wide = page.evaluate(
        """() => [...document.querySelectorAll('body *')]
            .filter(e => e.getBoundingClientRect().right > document.documentElement.clientWidth + 1)
            .slice(0, 5).map(e => e.tagName + (e.id ? '#' + e.id : '') + '.' + e.className)"""
    )
    assert widths["scroll"] <= widths["client"], f"{where}: page scrolls sideways {widths}; {wide}"
