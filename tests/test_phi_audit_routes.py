"""Generated from the URL resolver, the JSON API router and the FHIR registry: every request to a
patient-data route writes exactly one audit event, allowed or denied (issue 12 item 3).

Routes are enumerated, not listed, so a new route is held to the rule without anyone adding it
here. A route is patient data unless `ketaclinic.accounts.phi_audit.NOT_PHI` says, with its
reason, why it is not. For each PHI route:
- every route that answers GET is read with real ids (a patient, their session) as the first
  role that may read it, and with random ids (a denied lookup);
- a route that only takes writes is posted to with random ids (a denied lookup), so nothing is
  written;
and every request answered 200, 401, 403 or 404 must leave exactly one audit event (a refused
write, 400/409/422, shows no record and writes nothing: at most the one its service wrote).

If it fails for a new route: record the read (`audit_record` / `patient_chart_read`) once; if the
route records more than one event for one request, keep one; if it is not patient data, add its
path to NOT_PHI with the reason.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from django.test import Client
from django.urls import URLPattern, URLResolver, get_resolver
from django_scopes import scope

from conftest import api_client, audit_count, make_patient, staff_client
from ketaclinic.accounts.phi_audit import is_phi_path
from ketaclinic.fhir.registry import HANDLERS
from ketaclinic.sessions.tests.builders import session_checked_in

pytestmark = pytest.mark.django_db

ROLE_ORDER = (
    "prescriber",
    "compliance",
    "therapist",
    "nurse",
    "front_desk",
    "clinic_admin",
    "researcher",
)


def _walk(patterns: list[Any], prefix: str = "", namespace: str = "") -> Iterator[tuple[str, Any]]:
    for entry in patterns:
        if isinstance(entry, URLResolver):
            space = namespace
            if entry.namespace:
                space = f"{namespace}:{entry.namespace}" if namespace else entry.namespace
            yield from _walk(entry.url_patterns, prefix + str(entry.pattern), space)
        elif isinstance(entry, URLPattern):
            yield prefix + str(entry.pattern), entry


def ui_routes() -> list[str]:
    """Every route of the staff UI (the JSON API and FHIR are enumerated from their routers)."""
    found = []
    for route, _ in _walk(get_resolver().url_patterns):
        if route.startswith(("api/v1/", "fhir/r4/", "admin/")) or "(?P<" in route:
            continue
        found.append("/" + route)
    return sorted(set(found))


def _fill(route: str, ids: dict[str, str], real: bool) -> str:
    def value(match: re.Match[str] | None) -> str:
        assert match is not None
        converter, name = match.group(1) or "str", match.group(2)
        if real and name in ids:
            return ids[name]
        if converter == "uuid" or name.endswith("_id"):
            return str(uuid.uuid4())
        return {"name": "export.csv", "kind": "vitals", "token": "x" * 24}.get(name, "x")

    url = re.sub(r"<(?:(\w+):)?(\w+)>", value, route)
    return re.sub(r"\{(\w+)\}", lambda m: value(re.match(r"<()(\w+)>", f"<{m.group(1)}>")), url)


class World:
    """One organization's small world: every role's browser and token, a patient and a session."""

    def __init__(self, members: dict[str, Any]) -> None:
        prescriber = members["prescriber"]
        from conftest import actor_for

        actor = actor_for(prescriber)
        self.patient = make_patient(actor)
        with scope(organization=prescriber.organization):
            self.session = session_checked_in(actor, self.patient)
        self.ids = {
            "patient_id": str(self.patient.public_id),
            "session_id": str(self.session.public_id),
            "resource_id": str(self.patient.public_id),
        }
        self.browsers = {role: staff_client(members[role]) for role in ROLE_ORDER}
        self.tokens = {role: api_client(members[role]) for role in ROLE_ORDER}


def _one_request(client: Client, method: str, url: str, problems: list[str]) -> int:
    before = audit_count()
    response = getattr(client, method)(url)
    events = audit_count() - before
    expected = (1,) if response.status_code in (200, 401, 403, 404) else (0, 1)
    if events not in expected:
        problems.append(f"{method.upper()} {url} -> {response.status_code}: {events} audit events")
    return response.status_code


def _as_first_role_allowed(
    clients: dict[str, Client], method: str, url: str, problems: list[str]
) -> None:
    for role in ROLE_ORDER:
        if _one_request(clients[role], method, url, problems) not in (401, 403):
            return


def _report(problems: list[str], checked: int) -> None:
    assert checked > 20, "the enumeration found almost nothing: the walk is broken"
    assert not problems, (
        f"{len(problems)} PHI requests did not leave exactly one audit event "
        "(see this module's docstring):\n" + "\n".join(problems)
    )


def test_every_phi_screen_leaves_exactly_one_audit_event(
    members: dict[str, Any], traveller: Any
) -> None:
    world = World(members)
    problems: list[str] = []
    checked = 0
    for route in ui_routes():
        if not is_phi_path(_fill(route, {}, real=False)):
            continue
        checked += 1
        for real in (True, False):
            url = _fill(route, world.ids, real)
            status = _one_request(world.browsers["prescriber"], "get", url, problems)
            if status == 405:  # a write-only route: only the denied lookup, nothing written
                problems.pop() if problems and problems[-1].startswith(f"GET {url} ") else None
                if not real:
                    _as_first_role_allowed(world.browsers, "post", url, problems)
            elif status in (401, 403):
                _as_first_role_allowed(world.browsers, "get", url, problems)
    _report(problems, checked)


def _api_operations() -> list[tuple[str, str]]:
    from config.urls import api

    schema = api.get_openapi_schema()
    return sorted(
        (method, "/api/v1" + path.removeprefix("/api/v1"))
        for path, operations in schema["paths"].items()
        for method in operations
    )


def test_every_phi_api_route_leaves_exactly_one_audit_event(
    members: dict[str, Any], traveller: Any
) -> None:
    world = World(members)
    problems: list[str] = []
    checked = 0
    for method, path in _api_operations():
        if not is_phi_path(path):
            continue
        checked += 1
        if method == "get":
            _as_first_role_allowed(world.tokens, "get", _fill(path, world.ids, True), problems)
        if "{" in path:  # a denied lookup, for reads and writes alike (nothing is written)
            _as_first_role_allowed(world.tokens, method, _fill(path, {}, False), problems)
    _report(problems, checked)


def test_every_fhir_interaction_leaves_exactly_one_audit_event(
    members: dict[str, Any], traveller: Any
) -> None:
    world = World(members)
    problems: list[str] = []
    patient = world.ids["patient_id"]
    urls = ["/fhir/r4/", f"/fhir/r4/Patient/{patient}/$everything"]
    urls.append(f"/fhir/r4/Patient/{uuid.uuid4()}/$everything")
    for resource_type, handler in sorted(HANDLERS.items()):
        if "search-type" in handler.interactions:
            urls.append(f"/fhir/r4/{resource_type}")
            if "patient" in handler.search_params:
                urls.append(f"/fhir/r4/{resource_type}?patient={patient}")
        if "read" in handler.interactions:
            urls.append(f"/fhir/r4/{resource_type}/{uuid.uuid4()}")
    urls.append(f"/fhir/r4/Patient/{patient}")
    urls.append(f"/fhir/r4/Encounter/{world.ids['session_id']}")
    for url in urls:
        assert is_phi_path(url), url
        _as_first_role_allowed(world.tokens, "get", url, problems)
    _report(problems, len(urls))


def test_the_exceptions_are_few_and_reasoned() -> None:
    from ketaclinic.accounts.phi_audit import NOT_PHI

    assert all(len(reason) > 10 for reason in NOT_PHI.values())
    phi = [r for r in ui_routes() if is_phi_path(_fill(r, {}, real=False))]
    assert len(phi) > 60, "most staff screens show patient data"
    for screen in ("/patients/", "/sessions/<uuid:session_id>/", "/calendar/", "/therapy/"):
        assert screen in phi, screen
