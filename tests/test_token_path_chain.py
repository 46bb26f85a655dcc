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
from ketaclinic.core.routing import TokenPathRouter, _TokenPathHandler

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
    for kept in ("SecurityMiddleware", "CsrfViewMiddleware", "TenantMiddleware",
                 "PhiAuditMiddleware", "AxesMiddleware", "XFrameOptionsMiddleware"):  # fmt: skip
        assert kept in names
    assert _TokenPathHandler(settings.TOKEN_PATH_MIDDLEWARE)._view_middleware  # CSRF's process_view


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
