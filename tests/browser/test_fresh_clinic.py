"""A new clinic from a fresh checkout, with only the documented command line and the web UI
(issue 10, acceptance: "a fresh clone with only the documented CLI ... reaches a signed note of a
dosed session with the ledger balanced").

The commands run as real subprocesses on an empty SQLite database and var directory, exactly as
the README's "A new clinic from a fresh checkout" lists them: `ketaclinic migrate`,
`create-organization`, `create-user` (two clinic admins), `serve`. Everything after that is done
in Chromium against that server, as the clinic's staff would: set-up (chair, product, safe,
staff accounts with the second admin's approval of the prescriber, on-call clinician, consent
texts, protocols), receiving stock, registering and screening a patient, consent, a plan, and an
IV ketamine session: pre-checks, a signed dose order, the administration, the draw, monitoring,
discharge, the witnessed waste of the rest of the vial and the signed note. Then
`ketaclinic ledger-verify` and `audit-verify` pass.

The only thing not real is the server's clock during the 2-hour observation: the server is
stopped after dosing and started again with its clock 2 h 10 min ahead (time-machine in each
gunicorn worker, through GUNICORN_CMD_ARGS and a post_fork hook); nothing else changes.
"""

from __future__ import annotations

import base64
import os
import re
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlparse
from zoneinfo import ZoneInfo

import pytest
import requests
from django_otp.oath import TOTP

from tests.browser.conftest import CHROMIUM, CHROMIUM_ARGS, RESULTS_DIR

pytestmark = [pytest.mark.browser, pytest.mark.live]

REPO = Path(__file__).resolve().parents[2]
KETACLINIC = Path(sys.executable).with_name("ketaclinic")
CLINIC_TZ = "America/Chicago"
ADMIN_PASSWORD = "Fresh-clinic-admin-2026!"
OBSERVED = timedelta(hours=2, minutes=10)
VIAL = "Ketamine HCl injection 50 mg/mL, 10 mL vial"
CLOCK_HOOK = """
import os, time

def post_fork(server, worker):
    import time_machine

    shift = float(os.environ["KETACLINIC_TEST_CLOCK_SHIFT"])
    time_machine.travel(time.time() + shift, tick=True).start()
"""


class Clinic:
    """The clinic's machine: its environment, the CLI and the server process."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.port = _free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.shift = 0.0
        self.server: subprocess.Popen[bytes] | None = None
        env = {k: v for k, v in os.environ.items() if not k.startswith(("DJANGO_", "DATABASE_"))}
        env.update(
            KETACLINIC_VAR_DIR=str(root / "var"),
            DATABASE_URL=f"sqlite:///{root / 'var' / 'ketaclinic.sqlite3'}",
            WEB_WORKERS="1",
        )
        self.env = env
        (root / "var").mkdir()
        (root / "clock.py").write_text(CLOCK_HOOK)

    def cli(self, *args: str) -> str:
        result = subprocess.run(  # noqa: S603 - our own arguments
            [str(KETACLINIC), *args],
            env=self.env,
            cwd=REPO,
            capture_output=True,
            text=True,
            timeout=600,
            check=False,
        )
        assert result.returncode == 0, f"ketaclinic {args[0]}: {result.stderr[-2000:]}"
        return result.stdout

    def serve(self, shift: timedelta = timedelta(0)) -> None:
        self.shift = shift.total_seconds()
        env = dict(self.env)
        if self.shift:
            env["KETACLINIC_TEST_CLOCK_SHIFT"] = str(self.shift)
            env["GUNICORN_CMD_ARGS"] = f"--config {self.root / 'clock.py'}"
        with (self.root / "serve.log").open("ab") as log:
            self.server = subprocess.Popen(  # noqa: S603
                [str(KETACLINIC), "serve", "--port", str(self.port), "--workers", "1"],
                env=env,
                cwd=REPO,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            assert self.server.poll() is None, (self.root / "serve.log").read_text()[-3000:]
            try:
                if requests.get(f"{self.base}/healthz", timeout=10).status_code == 200:
                    return
            except requests.RequestException:
                pass
            time.sleep(0.5)
        raise AssertionError("ketaclinic serve did not answer within 2 minutes")

    def stop(self) -> None:
        if self.server is not None and self.server.poll() is None:
            self.server.send_signal(signal.SIGTERM)
            try:
                self.server.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.server.kill()
                self.server.wait()
        self.server = None

    def now(self) -> datetime:
        return datetime.now(UTC) + timedelta(seconds=self.shift)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _secret_of(text: str) -> str:
    """The base32 key of the otpauth:// URL a command or a page shows once."""
    url = re.search(r"otpauth://\S+", text)
    assert url, text
    return parse_qs(urlparse(url.group(0).replace("&amp;", "&")).query)["secret"][0]


class Person:
    def __init__(self, username: str, password: str, secret: str) -> None:
        self.username, self.password, self.secret = username, password, secret
        self.last_step = -1

    def code(self, clinic: Clinic) -> str:
        key = base64.b32decode(self.secret + "=" * (-len(self.secret) % 8))
        totp = TOTP(key)
        totp.time = clinic.now().timestamp()
        # A code is accepted once; a second log-in in the same 30 s waits for the next one.
        while totp.t() <= self.last_step:
            time.sleep(1)
            totp.time = clinic.now().timestamp()
        self.last_step = totp.t()
        return str(totp.token()).zfill(6)


@pytest.fixture
def clinic(tmp_path: Path) -> Iterator[Clinic]:
    machine = Clinic(tmp_path)
    yield machine
    machine.stop()


@pytest.fixture
def browser(clinic: Clinic, request: pytest.FixtureRequest) -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


def open_as(browser: Any, clinic: Clinic, person: Person, failed: list[str]) -> Any:
    from playwright.sync_api import expect

    context = browser.new_context(viewport={"width": 1280, "height": 900})
    context.set_default_timeout(20_000)
    page = context.new_page()
    page.on(
        "response",
        lambda r: failed.append(f"{r.status} {r.url}") if r.status >= 400 else None,
    )
    page.goto(f"{clinic.base}/accounts/login/")
    page.fill("input[name=username]", person.username)
    page.fill("input[name=password]", person.password)
    page.fill("input[name=otp_token]", person.code(clinic))
    page.get_by_role("button", name="Log in", exact=True).click()
    expect(page.get_by_role("button", name="Log out")).to_be_visible()
    return page


def missing_items(page: Any, clinic: Clinic) -> list[str]:
    page.goto(f"{clinic.base}/")
    panel = page.locator("#first-run-checklist")
    return [item.get_attribute("data-key") for item in panel.locator(":scope > ul > li").all()]


def create_staff(
    page: Any, clinic: Clinic, username: str, role: str, first: str, last: str
) -> Person:
    from playwright.sync_api import expect

    page.goto(f"{clinic.base}/setup/staff/")
    form = page.locator("#staff-add-form")
    form.locator("[name=new-username]").fill(username)
    form.locator("[name=new-first_name]").fill(first)
    form.locator("[name=new-last_name]").fill(last)
    form.locator("[name=new-role]").select_option(role)
    form.get_by_role("button", name="Create account").click()
    expect(page.get_by_role("heading", level=1)).to_have_text(f"Account created: {username}")
    expect(page.locator("#totp-qr svg")).to_be_visible()
    password = page.locator("#new-password").inner_text()
    secret = page.locator("#totp-secret").inner_text()
    return Person(username, password, secret)


@pytest.mark.long
def test_a_fresh_clinic_reaches_a_signed_note_through_the_cli_and_the_ui(
    clinic: Clinic, browser: Any
) -> None:
    from playwright.sync_api import expect

    failed: list[str] = []
    pages: list[Any] = []
    try:
        _run_the_clinic(clinic, browser, failed, pages, expect)
    except BaseException:
        RESULTS_DIR.mkdir(exist_ok=True)
        for number, page in enumerate(pages):
            try:
                page.screenshot(
                    path=str(RESULTS_DIR / f"fresh_clinic_{number}.png"), full_page=True
                )
            except Exception:  # noqa: BLE001 - a screenshot is a courtesy
                pass
        log = clinic.root / "serve.log"
        if log.exists():
            print(log.read_text()[-5000:])  # noqa: T201 - shown with the failure
        raise


def _run_the_clinic(
    clinic: Clinic, browser: Any, failed: list[str], pages: list[Any], expect: Any
) -> None:
    # --- 1. The documented command line ---------------------------------------------------------
    clinic.cli("migrate", "--noinput")
    organization = clinic.cli(
        "create-organization", "Fresh Ketamine", "--clinic", "Fresh Main", "--time-zone", CLINIC_TZ
    ).strip()
    admins = []
    for username in ("admin1", "admin2"):
        output = clinic.cli(
            "create-user",
            "--organization",
            organization,
            "--username",
            username,
            "--role",
            "clinic_admin",
            "--password",
            ADMIN_PASSWORD,
        )
        admins.append(Person(username, ADMIN_PASSWORD, _secret_of(output)))
    clinic.serve()  # collects the static files itself: pages must not answer 500

    # --- 2. Set-up by the clinic admin -------------------------------------------------------------
    admin = open_as(browser, clinic, admins[0], failed)
    pages.append(admin)
    expect(admin.locator("header.topbar")).to_have_css("background-color", "rgb(18, 38, 63)")
    assert set(missing_items(admin, clinic)) >= {"chairs", "products", "location", "prescriber"}

    admin.goto(f"{clinic.base}/setup/chairs/")
    form = admin.locator("#chair-add-form")
    form.locator("[name=new-number]").fill("1")
    form.locator("[name=new-name]").fill("Window bay")
    form.get_by_label("IV infusion (pump)").check()
    form.get_by_role("button", name="Add chair").click()
    expect(admin.locator("#chairs-table")).to_contain_text("Chair 1 (Window bay)")

    admin.goto(f"{clinic.base}/setup/products/")
    form = admin.locator("#product-add-form")
    form.get_by_label("Product").select_option("vial")
    form.get_by_label("Strength (mg)").fill("50")
    form.get_by_label("Per container").fill("10")
    form.get_by_label("NDC").fill("0409-2051-05")
    form.get_by_role("button", name="Add product").click()
    expect(admin.locator("#products-table")).to_contain_text("50 mg/mL")

    admin.goto(f"{clinic.base}/setup/locations/")
    form = admin.locator("#location-add-form")
    form.get_by_label("Name").fill("Main safe")
    form.get_by_role("button", name="Add location").click()
    expect(admin.locator("#locations-table")).to_contain_text("Main safe")

    nurse = create_staff(admin, clinic, "nina", "nurse", "Nina", "Park")
    doctor = create_staff(admin, clinic, "drlee", "prescriber", "Sam", "Lee")
    expect(admin.locator("#awaiting-approval")).to_be_visible()
    admin.goto(f"{clinic.base}/setup/staff/")
    expect(admin.get_by_role("button", name="Approve drlee as Prescriber")).to_have_count(0)

    second = open_as(browser, clinic, admins[1], failed)
    pages.append(second)
    second.goto(f"{clinic.base}/setup/staff/")
    second.get_by_role("button", name="Approve drlee as Prescriber").click()
    expect(second.get_by_role("status")).to_contain_text("Sam Lee is now Prescriber")
    second.context.close()

    admin.goto(f"{clinic.base}/setup/clinics/")
    clinic_form = admin.locator("form[aria-label='Edit Fresh Main']")
    clinic_form.get_by_label("On-call clinician").select_option("drlee")
    clinic_form.get_by_label("On-call phone").fill("+1 312 555 0142")
    clinic_form.get_by_role("button", name="Save Fresh Main").click()
    expect(admin.get_by_role("status")).to_contain_text("Fresh Main saved")

    admin.goto(f"{clinic.base}/consent/templates/")
    admin.get_by_role("button", name=re.compile("default", re.I)).click()
    admin.goto(f"{clinic.base}/protocols/")
    admin.get_by_role("button", name=re.compile("catalog|standard", re.I)).first.click()
    assert missing_items(admin, clinic) == ["stock"]

    # --- 3. The nurse receives the first delivery ------------------------------------------------
    floor = open_as(browser, clinic, nurse, failed)
    pages.append(floor)
    floor.goto(f"{clinic.base}/inventory/receive/")
    floor.get_by_label("Product").select_option(label=VIAL)
    floor.get_by_label("Location").select_option(label="Fresh Main · Main safe")
    floor.get_by_label("Lot number").fill("K1")
    floor.get_by_label("Lot expiry date").fill(
        (clinic.now() + timedelta(days=400)).date().isoformat()
    )
    floor.get_by_label("Containers received").fill("2")
    floor.get_by_label("Supplier name").fill("Henry Schein")
    floor.get_by_label("Supplier address").fill("135 Duryea Rd, Melville NY")
    floor.get_by_label("Supplier DEA number").fill("RH0123456")
    floor.get_by_label("Invoice or packing slip").fill("INV-1")
    floor.get_by_label("Date actually received").fill(
        clinic.now().astimezone(ZoneInfo(CLINIC_TZ)).date().isoformat()
    )
    floor.get_by_role("button", name="Record").click()
    expect(floor.get_by_role("status")).to_contain_text("Receipt recorded.")
    assert missing_items(admin, clinic) == []
    expect(admin.locator("#first-run-checklist")).to_contain_text(
        "Everything a first session needs"
    )
    admin.context.close()

    # --- 4. The prescriber registers, screens and consents a patient, and writes the plan --------
    doc = open_as(browser, clinic, doctor, failed)
    pages.append(doc)
    doc.goto(f"{clinic.base}/patients/new/")
    doc.fill("[name=given_name]", "Grace")
    doc.fill("[name=family_name]", "Hopper")
    doc.fill("[name=birth_date]", "1980-12-09")
    doc.locator("[name=sex_at_birth]").select_option("female")
    doc.get_by_role("button", name=re.compile("Register|Save")).click()
    expect(doc.get_by_role("status")).to_contain_text("registered")
    chart = doc.url.split("/patients/")[1].split("/")[0]
    chart_url = f"{clinic.base}/patients/{chart}/"

    doc.fill("#weight-value", "80")
    doc.get_by_role("button", name="Record weight").click()
    expect(doc.locator("#weights-table")).to_contain_text("80")
    doc.get_by_role("link", name="Record resting blood pressure").click()
    doc.get_by_label("Systolic (mm Hg)").fill("118")
    doc.get_by_label("Diastolic (mm Hg)").fill("76")
    doc.get_by_role("button", name="Save").click()
    expect(doc.locator("#vitals-table")).to_contain_text("118/76")

    for drug in ("sertraline 200 mg daily", "venlafaxine 225 mg daily"):
        doc.goto(f"{chart_url}medications/new/")
        doc.fill("[name=drug_name]", drug.split()[0])
        doc.fill("[name=dose_text]", " ".join(drug.split()[1:]))
        doc.locator("[name=status]").select_option("stopped")
        doc.fill("[name=start_date]", "2025-01-06")
        doc.fill("[name=end_date]", "2025-04-28")
        doc.check("[name=is_antidepressant_trial]")
        doc.locator("[name=adequate_trial]").select_option("true")
        doc.locator("[name=in_current_episode]").select_option("true")
        doc.locator("[name=trial_outcome]").select_option("none")
        doc.get_by_role("button", name="Save").click()
        expect(doc.get_by_role("status")).to_contain_text("Medication added")

    doc.goto(f"{clinic.base}/screening/patients/{chart}/intake/")
    intake = doc.locator("form.stacked-form, form").filter(
        has=doc.locator("[name=suicidal_ideation]")
    )
    for select in intake.locator("select").all():
        name = select.get_attribute("name")
        options = [o.get_attribute("value") for o in select.locator("option").all()]
        choice = {"suicidal_ideation": "none", "hepatic_impairment": "none"}.get(name or "")
        if choice is None:
            choice = "false" if "false" in options else ("absent" if "absent" in options else None)
        if choice in options:
            select.select_option(choice)
    intake.locator("[name=medications_reconciled]").check()
    intake.get_by_role("button").last.click()
    expect(doc.get_by_role("status")).to_contain_text("Intake history saved")
    doc.get_by_role("button", name=re.compile("Run", re.I)).first.click()
    decision = doc.locator("#route-intravenous form")
    decision.get_by_label("Eligible", exact=True).check()
    decision.locator("[name$=justification]").fill(
        "Reviewed in person: two failed adequate trials, no contraindication."
    )
    decision.get_by_role("button").click()
    expect(doc.locator("#route-intravenous")).to_contain_text("Eligible")

    doc.goto(f"{chart_url}consent/")
    doc.locator("tr", has_text=re.compile("intravenous|IV", re.I)).get_by_role(
        "link", name="Sign on tablet"
    ).first.click()
    for box in doc.locator("input[type=checkbox]").all():
        box.check()
    doc.fill("[name=printed_name]", "Grace Hopper")
    doc.get_by_role("button", name=re.compile("Sign", re.I)).last.click()
    expect(doc.get_by_role("status")).to_contain_text(re.compile("signed", re.I))

    doc.goto(f"{chart_url}plan/")
    plan = doc.locator("#plan-create-form")
    protocol = plan.get_by_label("Protocol (published)")
    option = protocol.locator("option", has_text=re.compile("IV racemic ketamine")).first
    protocol.select_option(option.get_attribute("value"))
    plan.get_by_label("Concentration (mg/mL)").fill("10")
    plan.get_by_label("Diluent volume (mL)").fill("100")
    plan.get_by_role("button", name="Create plan").click()
    expect(doc.locator("#plan-section")).to_contain_text("created")

    # --- 5. The session: pre-checks, order, administration, draw, monitoring ----------------------
    floor.goto(f"{chart_url}sessions/")
    schedule = floor.locator("#schedule-form")
    local = clinic.now().astimezone(ZoneInfo(CLINIC_TZ)) + timedelta(minutes=2)
    schedule.locator("input[name=scheduled_at]").fill(local.strftime("%Y-%m-%dT%H:%M"))
    schedule.locator("input[name=chair]").fill("1")
    schedule.get_by_role("button", name="Schedule session").click()
    state = floor.locator("#session-state")
    expect(state).to_have_text("Scheduled")
    flowsheet = floor.url
    floor.get_by_role("button", name="Check in").click()
    expect(state).to_have_text("Checked in")
    prechecks = floor.locator("#precheck-form")
    for box in prechecks.locator("input[type=checkbox]").all():
        box.check()
    for name, value in (
        ("systolic", "122"),
        ("diastolic", "78"),
        ("heart_rate", "72"),
        ("spo2", "98"),
        ("respiratory_rate", "14"),
    ):
        prechecks.locator(f"input[name={name}]").fill(value)
    prechecks.get_by_role("button", name="Record pre-checks").click()
    expect(state).to_have_text("Prechecks passed")

    doc.goto(flowsheet)
    doc.get_by_role("button", name="Sign dose order").click()
    expect(doc.locator("#dose-calculation")).to_contain_text("80")

    floor.reload()
    administer = floor.locator("#administer-form")
    expect(administer.locator("input[name=dose_mg]")).to_have_value(re.compile(r"^40(\.0)?$"))
    administer.locator("input[name=lot_number]").fill("K1")
    administer.get_by_role("button", name="Record administration").click()
    expect(state).to_have_text("Dosing")

    floor.locator("#administrations").get_by_role("link", name="Draw from stock").click()
    floor.get_by_label("Container").select_option(index=1)
    floor.get_by_label("Dose drawn (mg)").fill("40")
    floor.get_by_role("button", name="Record").click()
    expect(floor.get_by_role("status")).to_contain_text("Drew 40 mg from K1.")

    def record_vitals(page: Any) -> None:
        form = page.locator("#vitals-panel form")
        rows = page.locator("#vitals-table tbody tr").count()
        for name, value in (
            ("systolic", "124"),
            ("diastolic", "80"),
            ("heart_rate", "74"),
            ("spo2", "98"),
            ("respiratory_rate", "14"),
        ):
            form.locator(f"input[name={name}]").fill(value)
        form.get_by_role("button", name="Record vitals").click()
        expect(page.locator("#vitals-table tbody tr")).to_have_count(rows + 1)

    floor.goto(flowsheet)
    record_vitals(floor)
    floor.get_by_role("button", name="Dosing finished").click()
    expect(state).to_have_text("Monitoring")

    # --- 6. Two hours later (the server's clock moves on): discharge, waste, the signed note -----
    for page in pages:
        page.context.close()
    pages.clear()
    clinic.stop()
    clinic.serve(shift=OBSERVED)
    floor = open_as(browser, clinic, nurse, failed)
    pages.append(floor)
    floor.goto(flowsheet)
    state = floor.locator("#session-state")
    expect(state).to_have_text("Monitoring")
    record_vitals(floor)
    discharge = floor.locator("#discharge-panel form").first
    for box in discharge.locator("input[type=checkbox]").all():
        box.check()
    discharge.get_by_role("button", name="Check discharge criteria").click()
    expect(floor.locator("#discharge-panel")).to_contain_text("Ready for discharge")
    floor.get_by_role("button", name="Discharge patient").click()
    expect(state).to_have_text("Discharged")

    floor.locator("#administrations").get_by_role("link", name="Record waste").click()
    floor.get_by_label("Rest of the opened container").check()
    floor.get_by_label("How it was made non-retrievable").fill(
        "Expelled into a drug-disposal container"
    )
    floor.get_by_label("Witness username").fill(doctor.username)
    floor.get_by_label("Witness authenticator code (typed by the witness)").fill(
        doctor.code(clinic)
    )
    floor.get_by_role("button", name="Record").click()
    expect(floor.get_by_role("status")).to_contain_text("Witnessed waste recorded.")

    floor.goto(flowsheet)
    note = floor.locator("#note-form")
    note.locator("textarea[name=text]").fill("Tolerated the infusion; mild dissociation resolved.")
    note.get_by_role("button", name="Sign note").click()
    expect(floor.locator("#note-signed")).to_be_visible()
    assert not [f for f in failed if f.startswith("5")], failed

    clinic.stop()
    assert "ok" in clinic.cli("ledger-verify").lower()
    assert "ok" in clinic.cli("audit-verify").lower()
