"""The bearer-token interfaces (/api/, /fhir/) run a shorter middleware chain (core.routing);
everything a caller or an auditor relies on still applies there, and the staff UI is unchanged.
"""

from __future__ import annotations

from typing import Any

import pytest
from django.http import HttpResponse
from django.test import Client

from conftest import api_client, audit_count, staff_client
from ketaclinic.accounts.services import token_create
from ketaclinic.core.routing import TokenPathRouter

pytestmark = pytest.mark.django_db

SECURITY_HEADERS = {
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "Cross-Origin-Opener-Policy": "same-origin",
}


def _assert_secured(response: Any, name: str) -> None:
    for header, value in SECURITY_HEADERS.items():
        assert response[header] == value, (name, header)
    policy = response["Content-Security-Policy"]
    assert "default-src 'self'" in policy, name
    assert "frame-ancestors 'none'" in policy, name
    assert "no-store" in response["Cache-Control"], name


def test_api_fhir_and_ui_answers_carry_every_security_header(
    members: dict[str, Any], patient_a: Any
) -> None:
    api = api_client(members["prescriber"])
    ui = staff_client(members["prescriber"])
    answers = {
        "api read": api.get(f"/api/v1/patients/{patient_a.public_id}"),
        "api write": api.post(
            f"/api/v1/patients/{patient_a.public_id}/weights",
            {"value": "72.5", "unit": "kg"},
            content_type="application/json",
        ),
        "api refused (no token)": Client().get("/api/v1/patients"),
        "fhir read": api.get(f"/fhir/r4/Patient/{patient_a.public_id}"),
        "fhir refused (no token)": Client().get("/fhir/r4/Patient"),
        "ui chart": ui.get(f"/patients/{patient_a.public_id}/"),
    }
    expected = {"api write": 201, "api refused (no token)": 401, "fhir refused (no token)": 401}
    for name, response in answers.items():
        assert response.status_code == expected.get(name, 200), name
        _assert_secured(response, name)


def test_the_token_chain_is_the_one_that_answers_api_and_fhir(settings: Any) -> None:
    """Routing by path: /api/ and /fhir/ go down TOKEN_PATH_MIDDLEWARE, nothing else does."""
    seen: list[str] = []
    router = TokenPathRouter(lambda request: seen.append("ui") or HttpResponse())  # type: ignore[func-returns-value]
    router.token_chain = lambda request: seen.append("token") or HttpResponse()  # type: ignore[func-returns-value]
    from django.test import RequestFactory

    for path in ("/api/v1/patients", "/fhir/r4/metadata", "/patients/", "/apix", "/portal/"):
        router(RequestFactory().get(path))
    assert seen == ["token", "token", "ui", "ui", "ui"]
    names = [m.rsplit(".", 1)[1] for m in settings.TOKEN_PATH_MIDDLEWARE]
    assert "SessionMiddleware" not in " ".join(names)
    assert names == ["TokenPathMiddleware", "TenantMiddleware", "PhiAuditMiddleware"]


def _token_path_views() -> list[tuple[str, Any]]:
    """(route, view) of every URL pattern under /api/ and /fhir/."""
    from django.urls import URLPattern, URLResolver, get_resolver

    found: list[tuple[str, Any]] = []

    def walk(patterns: Any, prefix: str) -> None:
        for pattern in patterns:
            route = prefix + str(pattern.pattern)
            if isinstance(pattern, URLResolver):
                walk(pattern.url_patterns, route)
            elif isinstance(pattern, URLPattern) and route.startswith(("api/", "fhir/")):
                found.append((route, pattern.callback))

    walk(get_resolver().url_patterns, "")
    return found


# Views under /api/ and /fhir/ without the csrf_exempt mark: public documents that need no
# caller and change nothing (ninja's API description and home, SMART discovery, GET only).
PUBLIC_DOCUMENTS = {
    "api/v1/": "ninja's API home",
    "api/v1/openapi.json": "the OpenAPI description",
    "api/v1/docs": "the API's documentation page",
    "fhir/r4/.well-known/smart-configuration": "SMART discovery (405 to anything but GET)",
}


def test_no_csrf_middleware_is_needed_on_the_token_paths(members: dict[str, Any]) -> None:
    """The token chain has no CsrfViewMiddleware: it only ever checks a view that is not
    csrf_exempt, and every view under /api/ and /fhir/ is (no cookie authenticates there, see
    the test below), except public documents that change nothing. A view added there without
    the mark fails here: give it the mark (if it is bearer-only) or put CSRF back into
    TOKEN_PATH_MIDDLEWARE."""
    views = _token_path_views()
    assert len(views) > 100  # the JSON API and FHIR are both there
    assert any(route.startswith("fhir/") for route, _ in views)
    unmarked = {route for route, view in views if not getattr(view, "csrf_exempt", False)}
    assert unmarked == set(PUBLIC_DOCUMENTS)
    # A cross-site form post with the staff member's session reaches none of them as anyone.
    ui = staff_client(members["prescriber"])
    ui.handler.enforce_csrf_checks = True
    before = audit_count()
    assert ui.post("/fhir/r4/.well-known/smart-configuration", {}).status_code == 405
    assert ui.post("/api/v1/patients", {"given_name": "X"}).status_code == 401
    assert audit_count() == before


def test_a_bad_host_and_a_redirect_on_the_token_chain_carry_every_security_header(
    members: dict[str, Any],
) -> None:
    """Answers made before the view (a refused Host, a slash redirect) get the same headers as
    the view's own (the merged TokenPathMiddleware adds them to every answer)."""
    api = api_client(members["prescriber"])
    refused = api.get("/api/v1/patients", headers={"Host": "evil.example"})
    assert refused.status_code == 400
    _assert_secured(refused, "bad host")
    redirected = api.get("/api/v1")  # APPEND_SLASH: /api/v1/ is the API's home
    assert redirected.status_code == 301
    assert redirected["Location"] == "/api/v1/"
    _assert_secured(redirected, "slash redirect")


def test_a_session_cookie_neither_authenticates_nor_is_touched_on_the_api(
    members: dict[str, Any], patient_a: Any
) -> None:
    """A logged-in browser calling the API without a token is refused (and audited nothing
    about a patient); its session is not read, renewed or re-sent."""
    ui = staff_client(members["prescriber"])
    before = audit_count(patient_id=patient_a.public_id)
    response = ui.get(f"/api/v1/patients/{patient_a.public_id}")
    assert response.status_code == 401
    assert "sessionid" not in response.cookies
    assert "Cookie" not in response.get("Vary", "")
    fhir = ui.post("/fhir/r4/Observation", "{}", content_type="application/fhir+json")
    assert fhir.status_code == 401
    assert audit_count(patient_id=patient_a.public_id) == before
    # The same browser still reaches its screens: the UI chain still has the session.
    assert ui.get(f"/patients/{patient_a.public_id}/").status_code == 200


def test_csrf_still_guards_the_ui_and_not_the_token_api(
    members: dict[str, Any], patient_a: Any
) -> None:
    """CSRF protects cookie-authenticated forms; bearer-token calls carry no ambient credential
    and need no CSRF token (before and after the split)."""
    ui = staff_client(members["prescriber"])
    ui.handler.enforce_csrf_checks = True
    url = f"/patients/{patient_a.public_id}/weights/new/"
    refused = ui.post(url, {"value": "70", "unit": "kg"})
    assert refused.status_code == 403
    assert b"CSRF" in refused.content
    _, secret = token_create(username=members["prescriber"].user.username)
    api = Client(enforce_csrf_checks=True, headers={"Authorization": f"Bearer {secret}"})
    created = api.post(
        f"/api/v1/patients/{patient_a.public_id}/weights",
        {"value": "70", "unit": "kg"},
        content_type="application/json",
    )
    assert created.status_code == 201


def test_tenancy_and_the_phi_audit_still_apply_on_the_token_chain(
    members: dict[str, Any], outsider: Any, patient_a: Any
) -> None:
    other = api_client(outsider)
    assert other.get(f"/api/v1/patients/{patient_a.public_id}").status_code == 404
    assert other.get(f"/fhir/r4/Patient/{patient_a.public_id}").status_code == 404
    assert audit_count(organization=outsider.organization, outcome="denied") == 2
    mine = api_client(members["prescriber"])
    created = mine.post(
        f"/api/v1/patients/{patient_a.public_id}/weights",
        {"value": "70", "unit": "kg"},
        content_type="application/json",
    )
    assert created.status_code == 201
    assert audit_count(action="patients.weight.recorded", patient_id=patient_a.public_id) == 1


def test_an_unknown_host_is_refused_on_the_token_chain(members: dict[str, Any]) -> None:
    api = api_client(members["prescriber"])
    assert api.get("/api/v1/patients", headers={"Host": "evil.example"}).status_code == 400
    assert api.get("/fhir/r4/metadata", headers={"Host": "evil.example"}).status_code == 400
