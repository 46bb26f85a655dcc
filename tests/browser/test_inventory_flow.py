"""A day of controlled-substance stock in Chromium, through the inventory screens.

A nurse receives 10 vials of ketamine 50 mg/mL x 10 mL (500 mg each) into the safe, draws a
patient's dose from one vial (the link on the session's flowsheet carries the administration),
and wastes the rest of that vial with a second staff member witnessing by typing the code of their own
authenticator: a self-witness and more than the vial holds are refused on the page and write nothing.
The close-of-business count that matches the ledger opens no case; one vial short opens a
discrepancy case on the stock page, and the missing vial reported as a significant loss shows the
DEA Form 106 deadline. A compliance officer then sees the case to resolve, and the receipt and
the witnessed waste in the DEA logs. The administration itself is recorded through the sessions
services (test_session_flow drives that screen).
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from django_scopes import scope, scopes_disabled
from playwright.sync_api import expect

from conftest import actor_for, make_member, make_patient, totp_code
from ketaclinic.accounts.models import Clinic, User
from ketaclinic.accounts.services import organization_create
from ketaclinic.inventory import calendars, records
from ketaclinic.inventory import services as inventory
from ketaclinic.inventory.models import Container, DeaForm, DiscrepancyCase, LedgerRow
from ketaclinic.inventory.products import KETAMINE_50MG_PER_ML_10ML_VIAL
from ketaclinic.sessions import services as sessions
from ketaclinic.sessions.tests.builders import session_prechecked
from tests.browser.test_chart_flow import log_in

pytestmark = [pytest.mark.browser, pytest.mark.live, pytest.mark.django_db(transaction=True)]
CLINIC_TZ = ZoneInfo("America/Chicago")
VIAL = "Ketamine HCl injection 50 mg/mL, 10 mL vial"
EXPIRES_ON = date(2028, 6, 30)  # the last day of the lot's expiry month, as printed on the box


@pytest.fixture
def clinic(transactional_db: Any) -> dict[str, Any]:
    """A nurse, a prescriber (the witness) and a compliance officer; the safe; a patient checked
    in and pre-checked for an IV ketamine session (80 kg, so a 40 mg dose)."""
    organization = organization_create(
        name="Stock Clinic", clinic_name="Main", time_zone="America/Chicago"
    )
    nurse = make_member(organization, "nurse", username="stock-nurse")
    prescriber = make_member(organization, "prescriber", username="stock-prescriber")
    compliance = make_member(organization, "compliance", username="stock-compliance")
    doctor = actor_for(prescriber)
    patient = make_patient(doctor, given_name="Grace", family_name="Hopper")
    with scope(organization=organization):
        inventory.product_register(
            actor=actor_for(nurse), code=KETAMINE_50MG_PER_ML_10ML_VIAL.product_id
        )
        inventory.location_create(actor=actor_for(nurse), clinic=Clinic.objects.get(), name="Safe")
        session = session_prechecked(doctor, patient)
    return {
        "nurse": nurse,
        "prescriber": prescriber,
        "compliance": compliance,
        "session": session,
    }


def ledger(kind: str) -> list[LedgerRow]:
    with scopes_disabled():
        return list(LedgerRow.objects.filter(kind=kind).select_related("witness"))


def field_error(page: Any, name: str) -> Any:
    return page.locator(f"#id_{name}-error")


def test_receive_draw_waste_count_and_report_a_loss(
    page: Any, live_server: Any, clinic: dict[str, Any], failed_responses: list[str]
) -> None:
    base = live_server.url
    nurse = clinic["nurse"]
    log_in(page, base, nurse)
    page.get_by_role("navigation", name="Main").get_by_role(
        "link", name="Controlled substances"
    ).click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Controlled-substance stock")
    safe = page.get_by_role("region", name="Main · Safe")
    expect(safe).to_contain_text("No stock here.")

    # 1. Receive 10 vials of lot K1 into the safe.
    page.get_by_role("link", name="Receive stock").click()
    page.get_by_label("Product").select_option(label=VIAL)
    page.get_by_label("Location").select_option(label="Main · Safe")
    page.get_by_label("Lot number").fill("K1")
    page.get_by_label("Lot expiry date").fill(EXPIRES_ON.isoformat())
    page.get_by_label("Containers received").fill("10")
    page.get_by_label("Supplier name").fill("Henry Schein")
    page.get_by_label("Supplier address").fill("135 Duryea Rd, Melville NY")
    page.get_by_label("Supplier DEA number").fill("RH0123456")
    page.get_by_label("Invoice or packing slip").fill("INV-2026-001")
    page.get_by_label("Date actually received").fill(datetime.now(CLINIC_TZ).date().isoformat())
    page.get_by_role("button", name="Record").click()
    expect(page.get_by_role("status")).to_contain_text("Receipt recorded.")
    row = safe.locator("tbody tr").filter(has_text="K1")
    expect(row.locator("td").nth(0)).to_have_text(VIAL)
    expect(row.locator("td").nth(2)).to_have_text(EXPIRES_ON.isoformat())
    expect(row.locator("td").nth(3)).to_have_text("5000")  # 10 vials x 500 mg
    containers = row.locator("td").nth(4)
    for number in range(1, 11):
        expect(containers).to_contain_text(f"K1-{number:03d} (sealed, 500 mg)")

    # The patient is given 40 mg (the prescriber signs, the nurse records it on the flowsheet).
    session = clinic["session"]
    with scope(organization=session.organization):
        sessions.dose_order_sign(actor=actor_for(clinic["prescriber"]), session=session)
        given = sessions.dose_administer(
            actor=actor_for(nurse), session=session, dose_mg="40", lot_number="K1"
        )

    # 2. Draw the dose from vial K1-001, from the administration's link on the flowsheet.
    page.goto(f"{base}/sessions/{session.public_id}/")
    page.locator("#administrations").get_by_role("link", name="Draw from stock").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Draw a dose")
    expect(page.get_by_label("Administration id")).to_have_value(str(given.public_id))
    expect(page.get_by_label("Patient id")).to_have_value(str(given.patient.public_id))
    page.get_by_label("Container").select_option(label=f"K1-001 · {VIAL} · Safe · 500 mg")
    page.get_by_label("Dose drawn (mg)").fill("40")
    page.get_by_role("button", name="Record").click()
    expect(page.get_by_role("status")).to_contain_text("Drew 40 mg from K1.")
    expect(row.locator("td").nth(3)).to_have_text("4960")
    expect(containers).to_contain_text("K1-001 (opened, 460 mg)")

    # 3. Waste the rest of the opened vial, witnessed by the prescriber.
    page.goto(f"{base}/sessions/{session.public_id}/")
    page.locator("#administrations").get_by_role("link", name="Record waste").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Record witnessed waste")
    expect(page.get_by_label("Administration id")).to_have_value(str(given.public_id))
    page.get_by_label("Rest of the opened container").check()
    page.get_by_label("How it was made non-retrievable").fill(
        "Expelled into a drug-disposal container"
    )

    def witnessed_by(username: str, quantity: str = "") -> None:
        page.get_by_label("Quantity wasted (mg; blank = the whole remainder)").fill(quantity)
        page.get_by_label("Witness username").fill(username)
        # The witness types the current code of their own authenticator.
        witness_user = User.objects.get(username=username)
        page.get_by_label("Witness authenticator code (typed by the witness)").fill(
            totp_code(witness_user)
        )
        page.get_by_role("button", name="Record").click()

    # The nurse cannot witness her own waste...
    witnessed_by(nurse.user.username)
    expect(field_error(page, "witness_username")).to_have_text(
        "The witness must be a different staff member from the person recording."
    )
    assert ledger("waste") == []
    # ...nor waste more than the vial holds.
    witnessed_by(clinic["prescriber"].user.username, "500")
    expect(field_error(page, "quantity_mg")).to_contain_text("Container K1-001 holds 460 mg; 500")
    expect(field_error(page, "witness_username")).to_have_count(0)
    assert ledger("waste") == []
    # The whole remainder, witnessed by the prescriber.
    witnessed_by(clinic["prescriber"].user.username)
    expect(page.get_by_role("status")).to_contain_text("Witnessed waste recorded.")
    [wasted] = ledger("waste")
    assert wasted.quantity_mg == Decimal("460.0")
    assert wasted.witness == clinic["prescriber"].user
    expect(row.locator("td").nth(3)).to_have_text("4500")  # 9 sealed vials
    expect(containers).not_to_contain_text("K1-001")
    expect(containers).to_contain_text("K1-002 (sealed, 500 mg)")

    # 4. The close-of-business count: 9 sealed vials matches the ledger, no case.
    cases = page.get_by_role("region", name="Controlled-substance discrepancies")

    def count_sealed(vials: int) -> None:
        safe.get_by_role("link", name="Count this location").click()
        expect(page.get_by_role("heading", level=1)).to_have_text("Count Main · Safe")
        page.get_by_label("Kind of count").select_option(label="Daily count")
        page.get_by_label("Taken at").select_option(label="Close of business")
        page.get_by_label("Sealed containers of lot K1").fill(str(vials))
        page.get_by_role("button", name="Record count").click()

    count_sealed(9)
    expect(page.get_by_role("status")).to_contain_text("Count matches the ledger.")
    expect(cases).to_have_count(0)
    # One vial short: the discrepancy case appears on the stock page.
    count_sealed(8)
    expect(page.get_by_role("status")).to_contain_text("Count differs: a discrepancy case is open.")
    expect(cases).to_contain_text("lot K1")
    expect(cases).to_contain_text("(expected 4500 mg, counted 4000 mg)")
    with scopes_disabled():
        assert DiscrepancyCase.objects.count() == 1

    # 5. The missing vial (K1-010) reported as a significant loss: DEA Form 106 and its deadline.
    page.get_by_role("link", name="Report theft or loss").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Report theft or significant loss")
    discovered = datetime.now(CLINIC_TZ).replace(second=0, microsecond=0, tzinfo=None)
    page.get_by_label("Significant loss").check()
    page.get_by_label("Lot").select_option(
        label=f"{VIAL} · lot K1 · expires {EXPIRES_ON.isoformat()}"
    )
    page.get_by_label("Location", exact=True).select_option(label="Main · Safe")
    page.get_by_label("Container (if one vial or device is missing)").select_option(
        label=f"K1-010 · {VIAL} · Safe · 500 mg"
    )
    page.get_by_label("Quantity lost or stolen (mg)").fill("500")
    page.get_by_label("What happened").fill("One sealed vial missing at the close count")
    page.get_by_label("Discovered at (clinic time)").fill(discovered.strftime("%Y-%m-%dT%H:%M"))
    page.get_by_label("Date of the theft or loss (best estimate)").fill(
        discovered.date().isoformat()
    )
    page.get_by_label("County").fill("Cook")
    page.get_by_label("Thefts or losses in the past 24 months").fill("0")
    page.get_by_role("button", name="Record").click()

    local = discovered.replace(tzinfo=CLINIC_TZ)
    due = records.form_106_deadline(local, holidays=calendars.form_106_holidays(local.date()))
    due_text = due.due_by.astimezone(CLINIC_TZ).strftime("%Y-%m-%d %H:%M %Z")
    expect(page.get_by_role("heading", level=1)).to_have_text("DEA Form 106 (theft or loss)")
    expect(page.get_by_role("status")).to_contain_text(f"DEA Form 106 due by {due_text}")
    expect(page.locator("dl.meta")).to_contain_text(due_text)
    expect(page.locator("dl.meta")).to_contain_text(
        "Loss of 500 mg · " + VIAL + " · lot K1 · Main · Safe"
    )
    with scopes_disabled():
        form = DeaForm.objects.get()
        assert form.due_by == due.due_by.astimezone(UTC)
        assert form.row.kind == "loss"
        assert form.row.quantity_mg == Decimal("500.0")
        assert Container.objects.get(label="K1-010").status == Container.Status.EMPTY

    # Back on the stock page: the ledger now says 8 vials, and the Form 106 reminder stays.
    page.get_by_role("link", name="Back to stock").click()
    expect(row.locator("td").nth(3)).to_have_text("4000")
    expect(containers).not_to_contain_text("K1-010")
    expect(cases).to_contain_text("DEA Form 106 not yet filed")
    expect(cases).to_contain_text(f"Due by {due_text}")

    # Compliance, at another screen, sees the case to resolve and the day in the DEA logs.
    office = page.context.browser.new_context(viewport={"width": 1280, "height": 900})
    officer = office.new_page()
    officer.set_default_timeout(15_000)
    log_in(officer, base, clinic["compliance"])
    officer.goto(f"{base}/inventory/")
    officer_cases = officer.get_by_role("region", name="Controlled-substance discrepancies")
    expect(officer_cases.get_by_role("link", name="Resolve")).to_have_count(1)
    officer.get_by_role("link", name="Reports").click()
    officer.get_by_role("link", name="Receipts").click()
    receipt = officer.locator("tbody tr").filter(has_text="INV-2026-001")
    expect(receipt.locator("td").nth(6)).to_have_text("June 30, 2028")  # Lot expiry
    expect(receipt.locator("td").nth(7)).to_have_text("10")  # containers
    officer.go_back()
    officer.get_by_role("link", name="Waste log").click()
    waste_row = officer.locator("tbody tr").filter(has_text="K1")
    expect(waste_row.locator("td").nth(6)).to_have_text("460")
    expect(waste_row.locator("td").nth(9)).to_have_text(nurse.user.display_name)
    expect(waste_row.locator("td").nth(10)).to_have_text(clinic["prescriber"].user.display_name)
    office.close()
    # The two refused wastes (her own witness, more than the vial holds) were answered in their
    # form with 400 and the reasons; nothing else failed to load.
    refused = [
        r.split()[0] + " " + r.split()[1].split("?")[0].split("/", 3)[3] for r in failed_responses
    ]
    assert refused == ["400 inventory/waste/", "400 inventory/waste/"], failed_responses
