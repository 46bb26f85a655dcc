"""Every staff and portal form keeps what was typed when the input is refused (issue 15 item 4).

Forms are enumerated, not listed: every page of the staff UI (from the URL resolver, with a small
world's real ids) and of the portal is read, and every POST form on it is sent back with input
that cannot be accepted: each text box holds something typed, one field is broken (letters in a
number or date box, or a required field left empty), choices are made. The answer must be the
same page again (no redirect), with every typed value and choice still in its field, the error
beside the broken field (`<id>-error`, the id its aria-describedby names), and nothing written.

Then the Django form classes of ketaclinic are enumerated too: each must have been exercised by
that walk, or be named in NOT_WALKED with the reason, so a new form cannot escape.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterator
from html.parser import HTMLParser
from typing import Any

import pytest
from django import forms
from django.apps import apps
from django.test import Client
from django_scopes import scope

from conftest import actor_for, make_patient, staff_client
from tests.test_phi_audit_routes import ROLE_ORDER, ui_routes

pytestmark = pytest.mark.django_db

# Form classes the walk cannot reach, each with the reason it is left out.
NOT_WALKED = {
    # Searches and filters are GET forms: nothing is written, the query stays in the URL.
    "ketaclinic.patients.forms.PatientSearchForm": "a GET search",
    "ketaclinic.accounts.audit_views.AuditFilterForm": "a GET filter",
    "ketaclinic.outcomes.forms.CohortFilterForm": "a GET filter",
    # A failed login counts toward the lockout (a write by design); tested in accounts/portal.
    "ketaclinic.accounts.forms.StaffLoginForm": "a failed login is recorded for the lockout",
    "ketaclinic.portal.auth_views.PortalLoginForm": "a failed login is recorded for the lockout",
    "ketaclinic.portal.sign_in_views.SignInLinkForm": (
        "on the login page; any address gets the same answer, so no one learns who is a patient"
    ),
    "ketaclinic.inventory.forms.PeriodForm": "a GET filter (report period)",
    # Nothing a person can get wrong: optional text or yes/no boxes only.
    "ketaclinic.protocols.forms.CloneForm": "one optional note",
    "ketaclinic.setup.forms.DeactivateForm": "one optional reason",
    "ketaclinic.sessions.forms.SideEffectsForm": "yes/no boxes and an optional note",
    "ketaclinic.setup.forms.ChairEditForm": "an optional name and yes/no boxes",
    # Shown only for a record the walk's small world does not make (to reach them: add the
    # record to World).
    "ketaclinic.accounts.token_views.TokenForm": "the token page (accounts/ is not walked)",
    "ketaclinic.consent.forms.RevokeForm": "a chart section (the walk fills no section name)",
    "ketaclinic.inventory.forms.CaseResolveForm": "needs a count that did not balance",
    "ketaclinic.inventory.forms.MarkFiledForm": "needs a loss or theft report",
    "ketaclinic.measures.forms.AcknowledgeForm": "needs an open safety alert",
    "ketaclinic.measures.forms.CorrectionForm": "needs a questionnaire response",
    "ketaclinic.patients.forms.EnteredInErrorForm": "needs the id of a chart measurement",
    "ketaclinic.protocols.forms.PhaseChangeForm": "the plan page (the walk fills no plan page)",
    "ketaclinic.protocols.forms.PhaseExtendForm": "the plan page (the walk fills no plan page)",
    "ketaclinic.protocols.forms.TitrateForm": "the plan page (the walk fills no plan page)",
    "ketaclinic.protocols.forms.PlanCreateForm": "the patient has an active plan already",
    "ketaclinic.protocols.forms.ProtocolDraftForm": "needs a draft protocol",
    "ketaclinic.scheduling.forms.WaitlistBookForm": "needs a waitlist entry",
    "ketaclinic.sessions.forms.PmfAnswersForm": "needs an esketamine session",
    "ketaclinic.sessions.forms.PmfSubmittedForm": "needs an esketamine session",
    "ketaclinic.sessions.forms.RemsEnrollForm": "needs an esketamine session",
    "ketaclinic.therapy.forms.AmendForm": "needs a signed therapy note",
    # Bases and field groups: never bound on their own.
    "ketaclinic.scheduling.forms.LocalTimeForm": "a base class",
    "ketaclinic.inventory.forms.WitnessFields": "a field group",
    "ketaclinic.inventory.forms.ApproverFields": "a field group",
    "ketaclinic.inventory.forms.RegistrantFields": "a field group",
    "ketaclinic.inventory.forms._StockForm": "a base class",
}

TEXTUAL = {"", "text", "email", "tel", "search", "url", "password"}
BREAKABLE = {"number", "date", "time", "datetime-local", "email", "url"}
CHOICE = {"select", "radio"}  # a checkbox is often a yes/no: any value is "yes"
SKIP_ACTIONS = ("/logout/", "/accounts/login/", "/portal/login/", "/dose-preview/")


class FormsOnPage(HTMLParser):
    """The POST forms of a page: action, fields (name, type, value, id, required), choices."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.forms: list[dict[str, Any]] = []
        self.current: dict[str, Any] | None = None
        self.select: dict[str, Any] | None = None
        self.textarea: dict[str, Any] | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = {k: v or "" for k, v in attrs}
        if tag == "form":
            if a.get("method", "get").lower() == "post":
                self.current = {"action": a.get("action", ""), "fields": []}
                self.forms.append(self.current)
            return
        if self.current is None:
            return
        if tag == "input":
            kind = a.get("type", "text").lower()
            field = {"tag": "input", "type": kind, **a, "required": "required" in a}
            self.current["fields"].append(field)
        elif tag == "textarea":
            self.textarea = {"tag": "textarea", "type": "textarea", **a, "text": ""}
            self.textarea["required"] = "required" in a
            self.current["fields"].append(self.textarea)
        elif tag == "select":
            self.select = {"tag": "select", "type": "select", **a, "options": [], "selected": []}
            self.select["required"] = "required" in a
            self.current["fields"].append(self.select)
        elif tag == "option" and self.select is not None:
            self.select["options"].append(a.get("value", ""))
            if "selected" in a:
                self.select["selected"].append(a.get("value", ""))

    def handle_data(self, data: str) -> None:
        if self.textarea is not None:
            self.textarea["text"] += data

    def handle_endtag(self, tag: str) -> None:
        if tag == "form":
            self.current = None
        elif tag == "select":
            self.select = None
        elif tag == "textarea":
            self.textarea = None


def post_forms(html: str) -> list[dict[str, Any]]:
    parser = FormsOnPage()
    parser.feed(html)
    return parser.forms


def _visible(field: dict[str, Any]) -> bool:
    # tabindex -1: out of a person's reach (the front door's trap for bots stays empty)
    return (
        bool(field.get("name"))
        and field["type"] not in ("hidden", "submit", "button")
        and field.get("tabindex") != "-1"
    )


def bad_input(form: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any], str] | None:
    """(data to send, what must come back per field name, the broken field's name), or None
    for a form with nothing to fill in (a button). The broken field is, in this order: a number,
    date or e-mail box given letters; a choice given a value it does not offer; a required box
    left empty. Every other box gets typed text and every other choice its last option."""
    fields = [f for f in form["fields"] if f.get("name")]
    visible = [f for f in fields if _visible(f)]
    if not visible:
        return None
    broken = next((f for f in visible if f["type"] in BREAKABLE), None)
    if broken is None:
        broken = next((f for f in visible if f["type"] in CHOICE), None)
    if broken is None:
        broken = next(
            (f for f in visible if f["required"] and f["type"] in TEXTUAL | {"textarea"}), None
        )
    if broken is None:
        return None
    data: dict[str, Any] = {}
    expected: dict[str, Any] = {}
    for n, f in enumerate(fields):
        name, kind = f["name"], f["type"]
        if kind == "hidden":
            data[name] = f.get("value", "")
        elif not _visible(f):
            continue
        elif kind in ("submit", "button", "file"):
            continue
        elif name == broken["name"] and kind in CHOICE:
            data[name] = "not-a-choice"
        elif f is broken:
            data[name] = f"Typed{n}x" if kind in BREAKABLE else ""
            if data[name]:
                expected[name] = data[name]
        elif kind in TEXTUAL | BREAKABLE | {"textarea"}:
            typed = f"Typed{n}x" if kind != "password" else ""
            data[name] = typed
            if typed:
                expected[name] = typed
        elif kind == "select":
            choices = [o for o in f["options"] if o]
            if choices:
                data[name] = choices[-1]
                expected[name] = choices[-1]
        elif kind == "radio":  # the last choice of each group
            data[name] = f.get("value", "on")
            expected[name] = data[name]
        elif kind == "checkbox":  # every box ticked
            data.setdefault(name, []).append(f.get("value", "on"))
            expected.setdefault(name, f.get("value", "on"))
    return data, expected, broken["name"]


def _again(html: str, action: str) -> list[dict[str, Any]]:
    return [f for f in post_forms(html) if f["action"] in ("", action)]


def error_beside(html: str, action: str, name: str) -> bool:
    """The re-rendered field called `name` has its error element (`<id>-error`)."""
    ids = [
        f.get("id", "")
        for form in _again(html, action)
        for f in form["fields"]
        if f.get("name") == name
    ]
    # A choice group's inputs are <id>_0, <id>_1...; its error belongs to the group's <id>.
    ids += [re.sub(r"_\d+$", "", i) for i in ids]
    return any(i and f'id="{i}-error"' in html for i in ids)


def kept(html: str, action: str, expected: dict[str, Any]) -> list[str]:
    """Which of the expected values the re-rendered form lost."""
    again = _again(html, action)
    values: dict[str, set[str]] = {}
    for form in again:
        for f in form["fields"]:
            name = f.get("name")
            if not name:
                continue
            if f["type"] == "select":
                values.setdefault(name, set()).update(f["selected"])
            elif f["type"] == "textarea":
                values.setdefault(name, set()).add(f["text"].strip())
            elif f["type"] in ("radio", "checkbox"):
                if "checked" in f:
                    values.setdefault(name, set()).add(f.get("value", "on"))
            else:
                values.setdefault(name, set()).add(f.get("value", ""))
    return [
        f"{name}={value!r}"
        for name, value in expected.items()
        if value not in values.get(name, set())
    ]


def row_counts() -> dict[str, int]:
    """Rows of every ketaclinic table (the audit trail aside), in one query."""
    from django.db import connection

    skip = {"accounts.auditevent", "accounts.auditchainhead"}
    tables = sorted(
        {
            model._meta.db_table
            for model in apps.get_models()
            if model.__module__.startswith("ketaclinic.")
            and model._meta.label_lower not in skip
            and not model._meta.proxy
        }
    )
    quote = connection.ops.quote_name
    sql = " UNION ALL ".join(f"SELECT '{t}', COUNT(*) FROM {quote(t)}" for t in tables)
    with connection.cursor() as cursor:
        cursor.execute(sql)
        return dict(cursor.fetchall())


def form_classes() -> set[str]:
    def walk(cls: type) -> Iterator[type]:
        subclasses: list[type] = cls.__subclasses__()
        for sub in subclasses:
            yield sub
            yield from walk(sub)

    return {
        f"{cls.__module__}.{cls.__qualname__}"
        for cls in walk(forms.BaseForm)
        if cls.__module__.startswith("ketaclinic.") and ".tests" not in cls.__module__
    }


class World:
    """A small clinic: a checked-in session, a booked visit, a therapy visit, stock."""

    def __init__(self, members: dict[str, Any]) -> None:
        from ketaclinic.consent.models import ConsentSignature, ConsentTemplateVersion
        from ketaclinic.consent.services import portal_activate, portal_invite
        from ketaclinic.measures.services import measure_link_create
        from ketaclinic.protocols.models import ProtocolVersion
        from ketaclinic.scheduling import services as scheduling
        from ketaclinic.scheduling.tests.helpers import open_every_day, types
        from ketaclinic.sessions.tests.builders import receive_stock, session_checked_in
        from ketaclinic.therapy import services as therapy

        prescriber = actor_for(members["prescriber"])
        org = prescriber.organization
        self.patient = make_patient(prescriber)
        with scope(organization=org):
            self.session = session_checked_in(prescriber, self.patient)
            receive_stock(actor_for(members["nurse"]))
            open_every_day(actor_for(members["clinic_admin"]), members["prescriber"])
            other = make_patient(prescriber, given_name="Ben", family_name="Okafor", mrn="W2")
            visit = scheduling.appointment_book(
                actor=prescriber,
                patient=other,
                appointment_type=types(org)["consult"],
                starts_at=self.session.scheduled_at.replace(hour=20),
                clinician=members["prescriber"],
                notify=False,
            )
            therapy_visit = therapy.visit_create(
                actor=actor_for(members["therapist"]), patient=self.patient, kind="preparation"
            )
            version = ConsentTemplateVersion.objects.order_by("pk").first()
            protocol = ProtocolVersion.objects.order_by("pk").first()
            signature = ConsentSignature.objects.order_by("pk").first()
            link = measure_link_create(actor=prescriber, patient=self.patient, instrument_id="phq9")
            account, invitation = portal_invite(actor=prescriber, patient=other)
            self.portal = Client()
            self.portal.force_login(
                portal_activate(
                    token=portal_invite(actor=prescriber, patient=self.patient)[1],
                    password="Tq8#vx-pl2-zzk-49",
                ).user
            )
        self.tokens = {"/portal/m/": link.token, "/portal/invite/": invitation}
        self.ids = {
            "clinic_id": str(visit.clinic.public_id),
            "plan_id": str(self.session.plan.public_id),
            "template_id": str(version.template.public_id) if version else "",
            "signature_id": str(signature.public_id) if signature else "",
            "patient_id": str(self.patient.public_id),
            "session_id": str(self.session.public_id),
            "appointment_id": str(visit.public_id),
            "visit_id": str(therapy_visit.public_id),
            "version_id": str(version.public_id) if version else "",
            "protocol_id": str(protocol.public_id) if protocol else "",
            "user_id": str(members["nurse"].user.public_id),
        }
        self.browsers = {role: staff_client(members[role]) for role in ROLE_ORDER}


def _fill(route: str, ids: dict[str, str]) -> str:
    def value(match: re.Match[str]) -> str:
        name = match.group(2)
        return ids.get(name) or str(uuid.uuid4())

    return re.sub(r"<(?:(\w+):)?(\w+)>", value, route)


def _pages(world: World) -> Iterator[tuple[str, str, str]]:
    """(who read it, url, html) for every page of the staff UI and the portal."""
    for route in ui_routes():
        if route.startswith(("/accounts/", "/oauth/")) or route.endswith(
            (".ics", ".csv", ".pdf", "/pdf/", "/files/<str:name>")
        ):
            continue
        if route.startswith("/c/"):  # the clinic's public front door
            url = _fill(route, world.ids)
            response = Client().get(url)
            if response.status_code == 200:
                yield "anonymous", url, response.content.decode()
            continue
        if route.startswith("/portal/"):
            token = next((t for p, t in world.tokens.items() if route.startswith(p)), None)
            url = re.sub(r"<str:token>", token, route) if token else _fill(route, world.ids)
            client = Client() if token else world.portal
            response = client.get(url)
            if response.status_code == 200 and "text/html" in response.get("Content-Type", ""):
                yield ("anonymous" if token else "patient"), url, response.content.decode()
            continue
        url = _fill(route, world.ids)
        # As every role that may read it: a page offers each role the forms of its own work.
        for role in ROLE_ORDER:
            response = world.browsers[role].get(url)
            if response.status_code == 200 and "text/html" in response.get("Content-Type", ""):
                yield role, url, response.content.decode()
            elif response.status_code not in (401, 403):
                break


def _post(world: World, reader: str, action: str, data: dict[str, Any]) -> Any:
    """As the page's reader, or, when the write needs another role, the first that may."""
    if reader == "anonymous":
        return Client().post(action, data)
    if reader == "patient":
        return world.portal.post(action, data)
    response = world.browsers[reader].post(action, data)
    for role in ROLE_ORDER:
        if response.status_code not in (401, 403):
            break
        response = world.browsers[role].post(action, data)
    return response


@pytest.mark.screens_walk
def test_every_form_keeps_what_was_typed_and_says_what_to_fix(
    members: dict[str, Any], traveller: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    world = World(members)
    bound: set[str] = set()
    original = forms.BaseForm.full_clean

    def recording(self: forms.BaseForm) -> None:
        if self.is_bound:
            bound.add(f"{type(self).__module__}.{type(self).__qualname__}")
        original(self)

    monkeypatch.setattr(forms.BaseForm, "full_clean", recording)
    problems: list[str] = []
    tried: set[tuple[str, frozenset[str]]] = set()
    checked = 0
    for reader, url, html in _pages(world):
        for form in post_forms(html):
            action = form["action"] or url
            if any(part in action for part in SKIP_ACTIONS):
                continue
            names = frozenset(f["name"] for f in form["fields"] if f.get("name"))
            if (action, names) in tried:
                continue
            tried.add((action, names))
            made = bad_input(form)
            if made is None:
                continue
            data, expected, broken = made
            before = row_counts()
            response = _post(world, reader, action, data)
            checked += 1
            where = f"{action} (form on {url})"
            if response.status_code in (301, 302, 303):
                problems.append(f"{where}: redirected to {response['Location']}, input dropped")
                continue
            if response.status_code != 400:
                problems.append(f"{where}: answered {response.status_code}, not 400")
            body = response.content.decode()
            lost = kept(body, form["action"], expected)
            if lost:
                problems.append(f"{where}: lost {', '.join(lost[:4])}")
            if not error_beside(body, form["action"], broken):
                problems.append(f"{where}: no error beside the {broken!r} field")
            after = row_counts()
            changed = [k for k in after if after[k] != before.get(k)]
            if changed:
                problems.append(f"{where}: wrote {', '.join(changed)}")
    assert checked > 30, f"only {checked} forms were tried: the walk is broken"
    assert not problems, f"{len(problems)} forms drop input:\n" + "\n".join(sorted(problems))
    missing = form_classes() - bound - set(NOT_WALKED)
    assert not missing, (
        "forms no page of the walk reached (reach them, or say why in NOT_WALKED):\n"
        + "\n".join(sorted(missing))
    )
