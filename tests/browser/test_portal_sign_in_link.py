"""Issue 15: on a 390 px phone, a patient whose clinic offers sign-in links asks for one on the
portal's login page, reads the e-mail the worker really sent (a local SMTP server), opens the link,
taps "Sign in" and lands on the portal home. Each page passes the clinic walk's checks: no
sideways overflow, no serious or critical axe violation, no internal code on screen."""

from __future__ import annotations

import re
from typing import Any

import pytest
from django_scopes import scope
from playwright.sync_api import expect

from conftest import actor_for, make_member, make_patient
from ketaclinic.accounts.services import organization_create
from ketaclinic.consent import services as consent
from ketaclinic.messaging import services as messaging
from ketaclinic.messaging.patient_pages import patient_pages_policy_publish
from tests.browser.shots import PHONE, SHOTS_DIR, shot
from tests.browser.test_clinic_walk import AXE_RUN, AXE_URL, VISIBLE_TEXT, internal_codes, serve_axe

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]
ADDRESS = "iris@example.org"


@pytest.fixture
def clinic(transactional_db: Any) -> Any:
    organization = organization_create(
        name="Link Clinic", clinic_name="Main", time_zone="America/Chicago"
    )
    admin = actor_for(make_member(organization, "clinic_admin", username="link-admin"))
    prescriber = actor_for(make_member(organization, "prescriber", username="link-prescriber"))
    patient = make_patient(prescriber, given_name="Iris", family_name="Murdoch", email=ADDRESS)
    with scope(organization=organization):
        messaging.contact_policy_set(
            actor=admin, email_allowed_by_default=True, sms_allowed_by_default=False
        )
        patient_pages_policy_publish(
            actor=admin,
            sign_in_links_allowed=True,
            crisis_line_number="988",
            crisis_line_name="Suicide & Crisis Lifeline",
            crisis_line_takes_texts=True,
            emergency_number="911",
        )
        consent.portal_invite(actor=prescriber, patient=patient)
    return organization


def assert_fit_for_a_phone(page: Any, base: str) -> None:
    width = page.viewport_size["width"]
    assert page.evaluate("document.documentElement.scrollWidth") <= width, page.url
    page.add_script_tag(url=f"{base}{AXE_URL}")
    assert page.evaluate(AXE_RUN) == [], page.url
    assert internal_codes(page.evaluate(VISIBLE_TEXT)) == [], page.url


def test_a_patient_signs_in_with_an_emailed_link_on_a_phone(
    page: Any, live_server: Any, clinic: Any, smtp_inbox: Any
) -> None:
    base = live_server.url
    phone_context = page.context.browser.new_context(viewport=PHONE, is_mobile=True, has_touch=True)
    serve_axe(phone_context, base)
    phone = phone_context.new_page()
    phone.set_default_timeout(15_000)

    phone.goto(f"{base}/portal/login/")
    expect(phone.locator("#sign-in-link")).to_contain_text("It works once, for 15 minutes.")
    assert_fit_for_a_phone(phone, base)
    shot(phone, SHOTS_DIR, "portal-login-with-link-390")
    phone.get_by_label("Your e-mail address").fill(ADDRESS)
    phone.get_by_role("button", name="E-mail me a sign-in link").tap()
    expect(phone.get_by_role("heading", level=1)).to_have_text("Check your e-mail")
    assert_fit_for_a_phone(phone, base)

    [mail] = smtp_inbox.to(ADDRESS)
    assert mail["Subject"] == "Your sign-in link for Main"
    url = re.search(r"https?://\S+(/portal/sign-in/\S+/)", mail.get_content())
    assert url is not None, mail.get_content()
    phone.goto(f"{base}{url.group(1)}")
    expect(phone.get_by_role("heading", level=1)).to_have_text("Sign in to your patient portal")
    assert_fit_for_a_phone(phone, base)
    shot(phone, SHOTS_DIR, "portal-sign-in-390")
    phone.get_by_role("button", name="Sign in").tap()
    expect(phone.get_by_role("heading", level=1)).to_have_text("Hello, Iris")
    assert phone.url == f"{base}/portal/"
    assert_fit_for_a_phone(phone, base)

    # The link worked once: opened again, it says so and offers a new one.
    phone.goto(f"{base}{url.group(1)}")
    expect(phone.locator("main")).to_contain_text("already been used")
    phone_context.close()
