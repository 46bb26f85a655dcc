"""Issue 15 acceptance in a real browser, on a small demo clinic (8 patients).

One walk: every role's main pages (its Today page with the role's home, every page its
navigation offers, a chart, the
screening page, a session flowsheet) and the patient's portal pages, at 1366 px and at 390 px:
- nothing overflows sideways;
- axe-core (vendored, tests/browser/vendor/axe-core-4.14.1) finds no serious or critical
  violation;
- no internal id or code is readable outside a <details> disclosure;
- no Content-Security-Policy violation (axe is served from the app's own origin, not inlined);
- with KETACLINIC_WALK_SHOTS=1, a screenshot of each page lands in test-results/screenshots/
  (an artefact for review).
Then a patient withdraws a consent in the portal (asked to confirm first) and the prescriber's
Today page shows it; finally the key screens are shot again into screenshots/after/.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any

import pytest
from django.conf import settings
from django.test import Client
from django_scopes import scope, scopes_disabled
from playwright.sync_api import expect

from ketaclinic.accounts.models import Membership
from ketaclinic.demo.generator import build_demo
from tests.browser.shots import DESKTOP, PHONE, SHOTS_DIR, demo_targets, key_screens, staff_page

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

AXE = Path(__file__).parent / "vendor" / "axe-core-4.14.1" / "axe.min.js"
AXE_URL = "/__test__/axe.min.js"  # answered by the test (page.route), same origin for the CSP
ROLES = ("prescriber", "nurse", "therapist", "frontdesk", "admin", "compliance", "researcher")
# Each role's home on its Today page (issue 15 item 6): the panel that pictures its day.
HOMES = {
    "prescriber": "#day-panel",
    "nurse": "#arrivals-panel",
    "therapist": "#therapy-day",
    "frontdesk": "#arrivals-panel",
    "admin": "#first-run-checklist",
    "compliance": "#compliance-day",
    "researcher": "#research-home",
}
# Pages reached from a page's own sub-navigation rather than the main navigation.
EXTRA = {"admin": ("/setup/patient-portal/",)}
# What people must not have to read (issue 15): rule ids and versioned keys, enum codes, document
# references, fingerprints, snake_case field codes and record ids.
INTERNAL = {
    "document reference": re.compile(r"ARCHITECTURE\s*§"),
    "versioned rule id": re.compile(r"\b[a-z][a-z0-9]*(?:-[a-z0-9]+)+@\d+\b"),
    "enum code": re.compile(r"\b[A-Z]{2,}_[A-Z_]{2,}\b"),
    "fingerprint": re.compile(r"\binputs [0-9a-f]{8,}"),
    "snake_case code": re.compile(r"(?<![\w@./-])[a-z]+_[a-z]+(?:_[a-z]+)*(?![\w@.-])"),
    "uuid": re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}"),
    "truncated id": re.compile(r"\b[0-9a-f]{8}(?:…|\.\.\.)"),
}
VISIBLE_TEXT = """() => {
  const copy = document.body.cloneNode(true);
  copy.querySelectorAll('details, script, style, template, [hidden], [aria-hidden=true]')
      .forEach(e => e.remove());
  return copy.textContent.replace(/\\s+/g, ' ');
}"""
AXE_RUN = """async () => {
  const result = await axe.run(document, {resultTypes: ['violations']});
  return result.violations
    .filter(v => v.impact === 'serious' || v.impact === 'critical')
    .map(v => `${v.impact} ${v.id}: ${v.help} (${v.nodes.slice(0, 3).map(n => n.target.join(' ')).join(' | ')})`);
}"""


def internal_codes(text: str) -> list[str]:
    return [f"{name} {m.group()!r}" for name, rx in INTERNAL.items() for m in rx.finditer(text)]


@pytest.fixture
def demo(settings: Any, tmp_path: Path) -> dict[str, Any]:
    settings.VAR_DIR = tmp_path
    build_demo(patients=8, seed=5)
    with scopes_disabled():
        members = {
            m.user.username: m
            for m in Membership.objects.select_related("user", "organization", "home_clinic")
        }
    return {"members": members, **demo_targets(members["prescriber"].organization)}


def serve_axe(context: Any, base_url: str) -> None:
    body = AXE.read_bytes()
    context.route(
        f"{base_url}{AXE_URL}",
        lambda route: route.fulfill(status=200, content_type="text/javascript", body=body),
    )


def watch_csp(page: Any, errors: list[str]) -> None:
    def seen(message: Any) -> None:
        if "Content Security" in message.text:
            errors.append(f"{page.url}: {message.text[:90]}")

    page.on("console", seen)


# A full-page screenshot of every page walked (about 130 of them) is review material for a person
# looking at the screens, and a sixth of this test's time; the key screens at its end are always
# taken. KETACLINIC_WALK_SHOTS=1 takes them all (test-results/screenshots/).
EVERY_PAGE_SHOT = os.environ.get("KETACLINIC_WALK_SHOTS") == "1"


class Walk:
    def __init__(self, base_url: str) -> None:
        self.base_url = base_url
        self.problems: list[str] = []
        self.visited = 0

    def check(self, page: Any, path: str, label: str, *, login_page: bool = False) -> None:
        response = page.goto(f"{self.base_url}{path}")
        if response is None or response.status != 200:
            return
        if "/login/" in page.url and not login_page:  # sent to log in: not the page asked for
            return
        self.visited += 1
        width = page.viewport_size["width"]
        where = f"{label} {path} @{width}"
        scroll = page.evaluate("document.documentElement.scrollWidth")
        if scroll > width:
            self.problems.append(f"{where}: {scroll} px wide (overflows sideways)")
        page.add_script_tag(url=f"{self.base_url}{AXE_URL}")
        for violation in page.evaluate(AXE_RUN):
            self.problems.append(f"{where}: axe {violation}")
        for found in internal_codes(page.evaluate(VISIBLE_TEXT)):
            self.problems.append(f"{where}: shows {found}")
        if EVERY_PAGE_SHOT:
            name = re.sub(r"[^a-z0-9]+", "-", f"{label}{path}".lower()).strip("-")
            page.screenshot(path=str(SHOTS_DIR / f"{name}-{width}.png"), full_page=True)


def allow_sign_in_links(admin: Any, account: Any) -> str:
    """Turn on e-mailed sign-in links for the demo clinic; the path of one link for `account`."""
    from conftest import actor_for
    from ketaclinic.consent.sign_in_links import SIGN_IN_PURPOSE, SIGN_IN_TTL
    from ketaclinic.core import clock
    from ketaclinic.core.links import link_issue
    from ketaclinic.messaging.patient_pages import (
        patient_pages_policy,
        patient_pages_policy_publish,
    )

    actor = actor_for(admin)
    with scope(organization=actor.organization):
        current = patient_pages_policy(actor.organization)
        patient_pages_policy_publish(
            actor=actor,
            sign_in_links_allowed=True,
            crisis_line_number=current.crisis_line_number,
            crisis_line_name=current.crisis_line_name,
            crisis_line_takes_texts=current.crisis_line_takes_texts,
            emergency_number=current.emergency_number,
            crisis_line_name_es=current.crisis_line_name_es,
        )
        _, token = link_issue(
            organization=actor.organization,
            purpose=SIGN_IN_PURPOSE,
            target_type="PortalAccount",
            target_id=str(account.public_id),
            now=clock.now(),
            ttl=SIGN_IN_TTL,
        )
    return f"/portal/sign-in/{token}/"


def nav_paths(page: Any) -> list[str]:
    hrefs = page.eval_on_selector_all(
        "nav[aria-label=Main] a", "links => links.map(a => a.pathname)"
    )
    return [h for h in hrefs if not h.startswith("/admin")]


@pytest.mark.long
def test_every_role_walks_its_main_pages_on_desktop_and_phone(
    page: Any, live_server: Any, demo: dict[str, Any]
) -> None:
    browser, base = page.context.browser, live_server.url
    SHOTS_DIR.mkdir(parents=True, exist_ok=True)
    walk = Walk(base)
    csp_errors: list[str] = []
    patient, session = demo["patient"].public_id, demo["session"]
    clinical = [f"/patients/{patient}/", f"/screening/patients/{patient}/"]
    if session is not None:
        clinical.append(f"/sessions/{session.public_id}/")
    for role in ROLES:
        staff = staff_page(browser, base, demo["members"][role], DESKTOP)
        serve_axe(staff.context, base)
        watch_csp(staff, csp_errors)
        staff.goto(f"{base}/")
        expect(staff.locator(HOMES[role])).to_be_visible()
        paths = list(dict.fromkeys(["/", *nav_paths(staff), *clinical, *EXTRA.get(role, ())]))
        for viewport in (DESKTOP, PHONE):
            staff.set_viewport_size(viewport)
            for path in paths:
                walk.check(staff, path, role)
        staff.context.close()

    # The patient's portal, logged in as the demo patient with a portal account.
    from ketaclinic.consent.models import PortalAccount

    with scopes_disabled():
        account = PortalAccount.objects.select_related("user").filter(is_active=True).first()
    assert account is not None
    client = Client()
    client.force_login(account.user)
    context = browser.new_context(viewport=PHONE, is_mobile=True, has_touch=True)
    serve_axe(context, base)
    context.add_cookies(
        [
            {
                "name": settings.SESSION_COOKIE_NAME,
                "value": client.cookies[settings.SESSION_COOKIE_NAME].value,
                "url": base,
            }
        ]
    )
    portal = context.new_page()
    watch_csp(portal, csp_errors)
    for viewport in (PHONE, DESKTOP):
        portal.set_viewport_size(viewport)
        for path in ("/portal/", "/portal/appointments/", "/portal/intake/"):
            walk.check(portal, path, "patient")

    # Signing in with an e-mailed link, where the clinic allows it: the login page offering it
    # and the page a link opens (not logged in). The page after asking for a link is checked in
    # test_portal_sign_in_link.
    sign_in_path = allow_sign_in_links(demo["members"]["admin"], account)
    visitor = browser.new_context(viewport=PHONE, is_mobile=True, has_touch=True)
    serve_axe(visitor, base)
    stranger = visitor.new_page()
    watch_csp(stranger, csp_errors)
    for viewport in (PHONE, DESKTOP):
        stranger.set_viewport_size(viewport)
        walk.check(stranger, "/portal/login/", "visitor", login_page=True)
        walk.check(stranger, sign_in_path, "visitor")
    visitor.close()

    assert walk.visited >= 64, f"only {walk.visited} pages were checked"
    assert not walk.problems + csp_errors, "\n".join(walk.problems + csp_errors)

    # Withdrawing a consent: asked to confirm, told what happens next, seen by the prescriber.
    portal.set_viewport_size(PHONE)
    portal.goto(f"{base}/portal/")
    withdraw = portal.locator("a.withdraw-link").first
    title = withdraw.locator("xpath=..").inner_text().split(" (version")[0].strip()
    withdraw.tap()
    expect(portal.get_by_role("heading", level=1)).to_have_text("Withdraw your consent?")
    expect(portal.locator("#what-next")).to_contain_text("Treatments that need this consent")
    portal.get_by_role("button", name="Yes, withdraw this consent").tap()
    expect(portal.locator(".messages")).to_contain_text("Your consent was withdrawn")
    context.close()
    today = staff_page(browser, base, demo["members"]["prescriber"], DESKTOP)
    today.goto(f"{base}/")
    panel = today.locator("#consent-withdrawals")
    expect(panel).to_contain_text(account.patient.full_name)
    expect(panel).to_contain_text(title)
    expect(panel).to_contain_text("Consent withdrawn")
    today.context.close()

    shots = key_screens(browser, base, demo["members"], SHOTS_DIR / "after")
    assert all(p.exists() for p in shots)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("See ARCHITECTURE §6", ["document reference"]),
        ("screening-bp-missing-or-stale@1 failed", ["versioned rule id"]),
        ("status NOT_MET", ["enum code"]),
        ("inputs bcc1821a33c0", ["fingerprint"]),
        ("role monitoring_hcp", ["snake_case code"]),
        ("patient 67ee07a1…", ["truncated id"]),
        ("Grace Hopper, 35 mg at 09:00 CST, ada@example.org, e-mail on_call@x.org", []),
    ],
)
def test_the_walk_recognises_internal_codes(text: str, expected: list[str]) -> None:
    assert [f.split(" '")[0] for f in internal_codes(text)] == expected
