"""A patient signs a consent on a phone in the portal; the clinician sees it on the chart and
downloads the PDF, whose first page (rendered to PNG) carries the signature manifestation."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
from django_scopes import scope
from playwright.sync_api import expect

from conftest import PASSWORD, actor_for, make_member, make_patient
from ketaclinic.accounts.services import organization_create
from ketaclinic.consent import services as consent
from tests.browser.test_chart_flow import totp_code
from tests.pdf import first_page_png, pdf_text

pytestmark = [pytest.mark.browser, pytest.mark.live, pytest.mark.django_db(transaction=True)]

PATIENT_PASSWORD = "harbor-Plum-42-quiet"


@pytest.fixture
def clinic(transactional_db: Any) -> dict[str, Any]:
    organization = organization_create(
        name="Consent Clinic", clinic_name="Main", time_zone="America/Chicago"
    )
    membership = make_member(organization, "prescriber", username="consent-prescriber")
    actor = actor_for(membership)
    patient = make_patient(actor, given_name="Grace", family_name="Hopper", email="g@example.org")
    with scope(organization=organization):
        consent.consent_templates_seed_defaults(organization=organization)
        account, token = consent.portal_invite(actor=actor, patient=patient)
    return {"membership": membership, "patient": patient, "account": account, "token": token}


def test_patient_signs_in_portal_clinician_downloads_pdf(
    page: Any, live_server: Any, clinic: dict[str, Any], tmp_path: Path
) -> None:
    base = live_server.url
    phone = page.context.browser.new_context(viewport={"width": 390, "height": 844})
    patient_page = phone.new_page()
    patient_page.set_default_timeout(15_000)
    failed: list[str] = []
    patient_page.on("console", lambda m: failed.append(m.text))
    patient_page.on(
        "response", lambda r: failed.append(f"{r.status} {r.url}") if r.status >= 400 else None
    )

    # The patient accepts the invitation and chooses a password, then logs in (no TOTP).
    patient_page.goto(f"{base}/portal/invite/{clinic['token']}/")
    patient_page.fill("input[name=password]", PATIENT_PASSWORD)
    patient_page.fill("input[name=password_again]", PATIENT_PASSWORD)
    patient_page.get_by_role("button", name="Set my password").click()
    patient_page.fill("input[name=username]", clinic["account"].user.username)
    patient_page.fill("input[name=password]", PATIENT_PASSWORD)
    patient_page.get_by_role("button", name="Log in", exact=True).click()
    expect(patient_page.get_by_role("heading", name="Hello, Grace")).to_be_visible()

    patient_page.get_by_role("link", name="Consent to intravenous ketamine treatment").click()
    boxes = patient_page.locator("input[type=checkbox]")
    for index in range(boxes.count()):
        boxes.nth(index).check()
    patient_page.fill("input[name=printed_name]", "Grace Hopper")
    pad = patient_page.locator("#signature-pad")
    pad.scroll_into_view_if_needed()
    box = pad.bounding_box()
    assert box["width"] <= 390  # fits the phone
    patient_page.mouse.move(box["x"] + 20, box["y"] + 40)
    patient_page.mouse.down()
    for step in range(1, 12):
        patient_page.mouse.move(box["x"] + 20 + step * 25, box["y"] + 40 + (step % 3) * 15)
    patient_page.mouse.up()
    drawn = patient_page.eval_on_selector("#id_drawn_signature", "e => e.value")
    assert drawn.startswith("data:image/png;base64,"), (drawn[:40], failed)
    # No sideways scrolling on the phone.
    assert patient_page.evaluate("document.documentElement.scrollWidth") <= 390
    patient_page.get_by_role("button", name="Sign consent").click()
    expect(patient_page.get_by_text("Thank you. You signed")).to_be_visible()
    expect(patient_page.locator("#signed")).to_contain_text("Consent to intravenous ketamine")
    phone.close()
    from django_scopes import scopes_disabled

    from ketaclinic.consent.models import ConsentSignature

    with scopes_disabled():
        assert ConsentSignature.objects.get().drawn_signature.startswith("data:image/png;base64,")

    # The clinician logs in with password and TOTP and opens the chart's Consent section.
    page.goto(f"{base}/accounts/login/")
    page.fill("input[name=username]", "consent-prescriber")
    page.fill("input[name=password]", PASSWORD)
    page.fill("input[name=otp_token]", totp_code(clinic["membership"]))
    page.get_by_role("button", name="Log in", exact=True).click()
    expect(page.get_by_role("button", name="Log out")).to_be_visible()
    page.goto(f"{base}/patients/{clinic['patient'].public_id}/consent/")
    signed = page.locator("#consent-signatures")
    expect(signed).to_contain_text("signed by Grace Hopper")
    expect(signed).to_contain_text("Patient portal")
    with page.expect_download() as download_info:
        signed.get_by_role("link", name="Download PDF").click()
    pdf = tmp_path / "consent.pdf"
    download_info.value.save_as(pdf)

    png = first_page_png(pdf.read_bytes())
    assert png[:4] == b"\x89PNG"
    assert len(png) > 5000
    text = pdf_text(pdf.read_bytes())
    assert "Electronic signature" in text
    assert "Grace Hopper" in text
    assert "consent to treatment" in text
    assert "Patient portal" in text
    # Signed time in the clinic's zone (America/Chicago), with its abbreviation, never UTC.
    assert re.search(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d C[SD]T", text), text
    assert "UTC" not in text
