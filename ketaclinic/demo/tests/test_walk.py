"""Issue 10 acceptance: every dose, volume and time on every page, API answer and PDF of a demo
day reads as a clinician writes it (no exponent, no trailing zero, a leading zero) and in the
clinic's local time with its zone (America/Chicago: CST or CDT), never UTC.

The test builds a small demo clinic, logs in as every role (and as a patient in the portal),
follows every link and htmx GET it is shown (a few of each kind of URL), reads every JSON API
list and the sessions of the day, and checks the visible text of each answer.
"""

from __future__ import annotations

import html
import re
from collections import Counter
from typing import Any

import pytest
from django.test import Client
from django_scopes import scopes_disabled

from conftest import api_client, staff_client
from ketaclinic.accounts.models import Membership
from ketaclinic.demo.generator import build_demo
from tests.pdf import pdf_text

pytestmark = pytest.mark.django_db

EXPONENT = re.compile(r"\b\d+(?:\.\d+)?E[+-]?\d+\b")
UNIT = r"(?:mg|mL|mL/h|mg/kg|mg/mL|kg)\b"
TRAILING_ZERO = re.compile(r"\b\d+\.\d*0\s?" + UNIT)
BARE_POINT = re.compile(r"(?<![\d.])\.\d+\s?" + UNIT)
TIME = re.compile(r"(?<![\d:])(\d{1,2}:\d{2})(:\d{2})?(?![\d:])")
# The zone follows the time, or the end of a range ("09:00–09:30 CST").
LOCAL_ZONE = re.compile(r"^(–\d{1,2}:\d{2})?(\s?[AP]M)?\s?(CST|CDT)\b")
UTC_TIME = re.compile(r"\d{1,2}:\d{2}(:\d{2})?\s?(UTC|GMT|Z\b|\+00:?00)")
LINK = re.compile(r'(?:href|hx-get)="(/[^"#]*)"')
ID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}|\d+")
SKIP = ("/accounts/logout", "/portal/logout", "/admin", "/static", "/media", "format=csv")
PER_KIND = 2  # pages visited per kind of URL (the same template with other ids adds nothing)
ROLES = (
    "prescriber",
    "nurse",
    "nurse2",
    "therapist",
    "frontdesk",
    "admin",
    "compliance",
    "researcher",
)


def visible_text(body: str) -> str:
    body = re.sub(r"<(script|style)\b.*?</\1>", " ", body, flags=re.S | re.I)
    body = re.sub(r"<[^>]+>", " ", body)
    return html.unescape(body)


def problems_in(text: str) -> list[str]:
    found = [f"exponent {m.group()!r}" for m in EXPONENT.finditer(text)]
    found += [f"trailing zero {m.group()!r}" for m in TRAILING_ZERO.finditer(text)]
    found += [f"no leading zero {m.group()!r}" for m in BARE_POINT.finditer(text)]
    found += [f"UTC time {m.group()!r}" for m in UTC_TIME.finditer(text)]
    for match in TIME.finditer(text):
        if not LOCAL_ZONE.match(text[match.end() :]):
            context = text[max(0, match.start() - 40) : match.end() + 12].replace("\n", " ")
            found.append(f"time without the clinic's zone: …{context.strip()}…")
    return found


def check_answer(url: str, response: Any, problems: dict[str, list[str]]) -> str:
    kind = response.get("Content-Type", "")
    if response.streaming or "csv" in kind:  # exports are data for other systems (UTC, exact)
        return ""
    if "application/pdf" in kind:
        text = pdf_text(response.content)
    elif "json" in kind:
        raw = response.content.decode()
        # JSON keeps exact values and ISO 8601 UTC timestamps (data, not display): only the
        # exponent is wrong there, in a number or in a message.
        bad = [f"exponent {m.group()!r}" for m in EXPONENT.finditer(raw)]
        if bad:
            problems[url] = bad
        return raw
    else:
        text = visible_text(response.content.decode())
    found = problems_in(text)
    if found:
        problems[url] = found
    return response.content.decode(errors="replace") if "html" in kind else ""


def kind_of(url: str) -> str:
    return ID.sub("{id}", url.split("?")[0]) + ("?" + url.split("?")[1] if "?" in url else "")


def walk(client: Client, start: list[str], problems: dict[str, list[str]], seen: set[str]) -> int:
    queue, kinds, visited = list(start), Counter[str](), 0
    while queue and visited < 400:
        url = queue.pop(0)
        if url in seen or any(s in url for s in SKIP):
            continue
        kind = kind_of(url)
        if kinds[kind] >= PER_KIND:
            continue
        kinds[kind] += 1
        seen.add(url)
        response = client.get(url, headers={"HX-Request": "true"} if "partial" in url else {})
        visited += 1
        assert response.status_code < 500, f"{url} answered {response.status_code}"
        if response.status_code != 200:
            continue
        body = check_answer(url, response, problems)
        queue += [html.unescape(link) for link in LINK.findall(body)]
    return visited


@pytest.mark.long
@pytest.mark.screens_walk
def test_every_number_and_time_of_a_demo_day_reads_as_a_clinician_writes_it(settings, tmp_path):
    settings.VAR_DIR = tmp_path
    result = build_demo(patients=8, seed=5)
    with scopes_disabled():
        members = {
            m.user.username: m
            for m in Membership.objects.select_related("user", "organization", "home_clinic")
        }
    _a_clinic_in_the_middle_of_its_life(result.organization, members)
    _finished_background_jobs(result.organization, members)
    problems: dict[str, list[str]] = {}
    visited = 0
    everywhere: set[str] = set()
    for role in ROLES:
        seen: set[str] = set()
        visited += walk(staff_client(members[role]), ["/"], problems, seen)
        everywhere |= seen
    for page in (r"/outcomes/reports/{id}/", r"/outcomes/reports/{id}/pdf",
                 r"/outcomes/exports/fhir/{id}/"):  # fmt: skip
        assert page in {kind_of(url) for url in everywhere}, f"the walk never reached {page}"
    portal = Client()
    with scopes_disabled():
        from ketaclinic.consent.models import PortalAccount

        account = PortalAccount.objects.filter(organization=result.organization).first()
    assert account is not None, "the demo has a patient with a portal account"
    portal.force_login(account.user)
    visited += walk(portal, ["/portal/"], problems, set())
    visited += _api(members, problems)
    assert visited > 60, f"only {visited} answers were read"
    assert not problems, "\n".join(f"{url}: {found}" for url, found in problems.items())


def _api(members: dict[str, Membership], problems: dict[str, list[str]]) -> int:
    """Every JSON API list readable without a path parameter, and one of each kind of detail
    answer that names a session or patient of the day, as the prescriber and the nurse."""
    from ketaclinic.patients.models import Patient
    from ketaclinic.sessions.models import TreatmentSession

    with scopes_disabled():
        session_ids = [
            str(s.public_id) for s in TreatmentSession.objects.order_by("-scheduled_at")[:6]
        ]
        patient_ids = [str(p.public_id) for p in Patient.objects.order_by("mrn")[:3]]
    visited = 0
    for role in ("prescriber", "nurse", "compliance"):
        client = api_client(members[role])
        schema = client.get("/api/v1/openapi.json").json()
        for path, operations in schema["paths"].items():
            if "get" not in operations:
                continue
            urls = [path]
            if "{" in path:
                ids = session_ids if "session" in path else patient_ids if "patient" in path else []
                name = re.findall(r"\{(\w+)\}", path)
                if len(name) != 1 or not ids:
                    continue
                urls = [path.replace("{" + name[0] + "}", value) for value in ids[:2]]
            for url in urls:
                response = client.get(url)
                visited += 1
                assert response.status_code < 500, f"{url} answered {response.status_code}"
                if response.status_code == 200:
                    check_answer(url, response, problems)
    return visited


def _finished_background_jobs(organization: Any, members: dict[str, Membership]) -> None:
    """A progress report the prescriber asked for and a FHIR bulk export compliance ran, both
    finished by the worker's code, so the walk reads their pages (reached from the dashboard and
    the exports log), the report's PDF and the export's files table."""
    from django_scopes import scope

    from conftest import actor_for
    from ketaclinic.fhir.bulk_export import bulk_export_request
    from ketaclinic.outcomes import services
    from ketaclinic.patients.models import Patient

    with scope(organization=organization):
        patient = Patient.objects.order_by("mrn").first()
        assert patient is not None
        job = services.report_request(
            actor=actor_for(members["prescriber"]),
            kind="progress",
            patient_id=str(patient.public_id),
            run_in_background=False,
        )
        export = bulk_export_request(
            actor=actor_for(members["compliance"], channel="fhir"),
            level="system",
            types="Patient",
            run_in_background=False,
        )
    assert services.report_run(job=job).status == "done"
    assert services.data_export_run(export=export).status == "done"


def _a_clinic_in_the_middle_of_its_life(organization: Any, members: dict[str, Membership]) -> None:
    """What issue 10 asks the demo to show the first time anyone looks."""
    from ketaclinic.consent.models import ConsentSignature
    from ketaclinic.core.models import OneTimeLink
    from ketaclinic.inventory import selectors as inventory_selectors
    from ketaclinic.inventory.models import LedgerRow
    from ketaclinic.measures.models import QuestionnaireResponse, SafetyAlert
    from ketaclinic.protocols.models import ProtocolVersion, TreatmentPlan
    from ketaclinic.sessions.models import DoseAdministration, SessionNote, TreatmentSession

    with scopes_disabled():
        states = Counter(TreatmentSession.objects.values_list("state", flat=True))
        assert states["dosing"] + states["monitoring"] == 2, states  # two on the floor now
        assert states["discharged"] >= 20, states
        assert SessionNote.objects.filter(signed_at__isnull=False).count() == states["discharged"]
        assert {p.phase for p in TreatmentPlan.objects.all()} >= {"induction", "maintenance"}
        assert ProtocolVersion.objects.filter(status="published").exists()
        assert ConsentSignature.objects.count() >= 7
        alert = SafetyAlert.objects.get()  # the open item-9 alert
        assert alert.acknowledged_at is None
        totals = {
            instrument: sorted(
                total
                for total in QuestionnaireResponse.objects.filter(
                    instrument_id=instrument
                ).values_list("total", flat=True)
                if total is not None
            )
            for instrument in ("phq9", "gad7")
        }
        assert totals["phq9"][0] < 10 <= totals["phq9"][-1]  # responders and non-responders
        assert totals["gad7"]
        assert OneTimeLink.objects.filter(used_at__isnull=True).exists()  # a pending questionnaire
        kinds = Counter(LedgerRow.objects.values_list("kind", flat=True))
        assert kinds["receipt"] >= 2, kinds
        assert kinds["draw"] >= 20, kinds
        assert kinds["waste"] >= 1, kinds
    from django_scopes import scope

    with scope(organization=organization):
        assert [b.location.name for b in inventory_selectors.biennial_inventories_due()] == [
            "Main safe"
        ]
        for given in DoseAdministration.objects.filter(session__state="discharged"):
            account = inventory_selectors.administration_reconciliation(given.public_id)
            assert account.balanced, account  # drawn = given + wasted, dose by dose
    dashboard = staff_client(members["nurse"]).get("/").content.decode()
    assert re.search(r"Biennial inventory of [^<]*Main safe[^<]* due by", dashboard)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Given 35 mg at 09:00 CST", []),
        ("signed 2026-12-06 09:00:05 CDT", []),
        ("Given 1E+2 mg", ["exponent"]),
        ("Order 35.0 mg", ["trailing zero"]),
        ("Order .5 mg", ["no leading zero"]),
        ("earliest discharge 09:45 UTC", ["UTC time", "time without"]),
        ("checked 15:00", ["time without"]),
        ("booked 09:00–09:30 CST", []),
    ],
)
def test_the_walk_recognises_what_a_clinician_would_misread(text: str, expected: list[str]) -> None:
    found = problems_in(text)
    assert [next(k for k in expected if f.startswith(k)) for f in found] == expected, found
