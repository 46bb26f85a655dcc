"""SMART on FHIR: discovery at the FHIR base, a staff app through authorization code + PKCE
(SMART v2 user/*.rs), and a backend service through client credentials with a private_key_jwt
assertion, driven by the independent SMART client `fhirclient`. Tokens are the organization's,
limited to their scopes, and audited; classic bearer tokens keep working."""

from __future__ import annotations

import base64
import hashlib
import json
import secrets
import time
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

import pytest
from django.test import Client
from django_scopes import scope
from joserfc import jwt
from joserfc.jwk import RSAKey

from conftest import actor_for, api_client, audit_count, make_member, staff_client
from ketaclinic.fhir.smart.services import smart_client_register
from ketaclinic.fhir.tests.helpers import FHIR, patient_json, post, weight_json

BASE = "/fhir/r4/"
REDIRECT = "https://app.example.org/callback"


def _register_staff_app(admin: Any, scope_text: str = "user/*.rs") -> Any:
    with scope(organization=admin.organization):
        return smart_client_register(
            actor=actor_for(admin),
            name="Chart viewer",
            kind="public",
            scope=scope_text,
            redirect_uris=[REDIRECT],
        )


def _pkce() -> tuple[str, str]:
    verifier = secrets.token_urlsafe(48)
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest())
    return verifier, challenge.decode().rstrip("=")


def test_discovery_at_the_fhir_base_advertises_what_clients_need(db: Any) -> None:
    response = Client().get(BASE + ".well-known/smart-configuration")
    assert response.status_code == 200
    config = response.json()
    assert config["authorization_endpoint"] == "http://testserver/oauth/authorize"
    assert config["token_endpoint"] == "http://testserver/oauth/token"
    assert {"authorization_code", "client_credentials"} <= set(config["grant_types_supported"])
    assert config["code_challenge_methods_supported"] == ["S256"]
    assert "private_key_jwt" in config["token_endpoint_auth_methods_supported"]
    for capability in ("launch-standalone", "client-confidential-asymmetric", "permission-v2"):
        assert capability in config["capabilities"]


@pytest.mark.django_db
def test_a_staff_app_gets_a_read_only_token_with_pkce(members: dict[str, Any]) -> None:
    app = _register_staff_app(members["clinic_admin"])
    nurse = members["prescriber"]  # may create patients with a classic token
    patient = post(api_client(nurse), BASE + "Patient", patient_json()).json()
    verifier, challenge = _pkce()
    browser = staff_client(nurse)
    query = {
        "response_type": "code",
        "client_id": app.client_id,
        "redirect_uri": REDIRECT,
        "scope": "user/*.rs openid",
        "state": "s-1",
        "aud": "http://testserver/fhir/r4",
        "code_challenge": challenge,
        "code_challenge_method": "S256",
    }
    page = browser.get("/oauth/authorize?" + urlencode(query))
    assert page.status_code == 200
    assert "Chart viewer" in page.content.decode()
    assert "read, search: every record type" in page.content.decode()
    answer = browser.post("/oauth/authorize?" + urlencode(query), {"decision": "allow"})
    assert answer.status_code == 302
    back = parse_qs(urlsplit(answer["Location"]).query)
    assert answer["Location"].startswith(REDIRECT)
    assert back["state"] == ["s-1"]

    exchange = {
        "grant_type": "authorization_code",
        "code": back["code"][0],
        "redirect_uri": REDIRECT,
        "client_id": app.client_id,
    }
    without = Client().post("/oauth/token", exchange)
    assert without.status_code == 400  # PKCE is required
    granted = Client().post("/oauth/token", {**exchange, "code_verifier": verifier})
    assert granted.status_code == 200, granted.content
    token = granted.json()
    assert token["token_type"].lower() == "bearer"
    assert token["scope"] == "user/*.rs"
    assert audit_count(action="fhir.smart.token_issued") == 1
    # The code is used once.
    again = Client().post("/oauth/token", {**exchange, "code_verifier": verifier})
    assert again.status_code == 400

    app_client = Client(headers={"Authorization": f"Bearer {token['access_token']}"})
    assert app_client.get(BASE + f"Patient/{patient['id']}").status_code == 200
    assert app_client.get(BASE + "Patient").json()["total"] == 1
    refused = post(app_client, BASE + "Patient", patient_json())
    assert refused.status_code == 403  # the scope reads and searches only
    assert "user/*.rs" in refused.json()["issue"][0]["diagnostics"]
    # A classic bearer token of the same nurse still writes.
    assert post(api_client(nurse), BASE + "Patient", patient_json()).status_code == 201


@pytest.mark.django_db
def test_a_denied_or_wrong_request_issues_no_code(members: dict[str, Any]) -> None:
    app = _register_staff_app(members["clinic_admin"])
    browser = staff_client(members["nurse"])
    verifier, challenge = _pkce()
    query = {
        "response_type": "code",
        "client_id": app.client_id,
        "redirect_uri": REDIRECT,
        "scope": "user/*.rs",
        "state": "x",
        "code_challenge": challenge,
        "code_challenge_method": "S256",
    }
    denied = browser.post("/oauth/authorize?" + urlencode(query), {"decision": "deny"})
    assert "error=access_denied" in denied["Location"]
    plain = {**query, "code_challenge_method": "plain"}
    assert browser.get("/oauth/authorize?" + urlencode(plain)).status_code == 400
    elsewhere = {**query, "redirect_uri": "https://evil.example/cb"}
    assert browser.get("/oauth/authorize?" + urlencode(elsewhere)).status_code == 400
    anonymous = Client().get("/oauth/authorize?" + urlencode(query))
    assert anonymous.status_code == 302
    assert "/accounts/login/" in anonymous["Location"]


def _backend(
    org_admin: Any, service_member: Any, scope_text: str = "system/*.rs"
) -> tuple[Any, RSAKey]:
    key = RSAKey.generate_key(2048, parameters={"kid": "k1", "alg": "RS384"})
    with scope(organization=org_admin.organization):
        client = smart_client_register(
            actor=actor_for(org_admin),
            name="Registry feed",
            kind="backend",
            scope=scope_text,
            jwks={"keys": [key.as_dict(private=False)]},
            membership=service_member,
        )
    return client, key


def _assertion(client_id: str, key: RSAKey, audience: str) -> str:
    now = int(time.time())
    claims = {
        "iss": client_id,
        "sub": client_id,
        "aud": audience,
        "exp": now + 240,
        "iat": now,
        "jti": secrets.token_hex(16),
    }
    return jwt.encode(
        {"alg": "RS384", "kid": "k1", "typ": "JWT"}, claims, key, algorithms=["RS384"]
    )


def backend_client(live_server: Any, app: Any, key: RSAKey, scope_text: str, request: Any) -> Any:
    """fhirclient as a backend service of the live server, prepared (it has read the
    CapabilityStatement, whose SMART oauth-uris name the endpoints), not yet authorised."""
    from fhirclient import client as smart_client

    token_url = f"{live_server.url}/oauth/token"
    smart = smart_client.FHIRClient(
        settings={
            "app_id": app.client_id,
            "api_base": f"{live_server.url}/fhir/r4/",
            "scope": scope_text,
            "jwt_token": _assertion(app.client_id, key, token_url),
        }
    )
    smart.wants_patient = False
    # Its kept-alive HTTP connection holds a live-server thread and that thread's database
    # connection until closed (PostgreSQL then cannot drop the test database).
    request.addfinalizer(smart.server.session.close)
    smart.prepare()
    return smart


@pytest.mark.live
@pytest.mark.django_db(transaction=True)
def test_fhirclient_backend_service_discovers_gets_a_token_and_reads(
    live_server: Any, org_a: Any, request: Any
) -> None:
    from fhirclient.models.observation import Observation
    from fhirclient.models.patient import Patient
    from fhirclient.server import FHIRPermissionDeniedException

    admin = make_member(org_a, "clinic_admin", username="smart-admin")
    service = make_member(org_a, "prescriber", username="registry-feed")
    app, key = _backend(admin, service)
    writer = api_client(service)
    writer.defaults["SERVER_NAME"] = "testserver"
    patient = post(writer, BASE + "Patient", patient_json()).json()
    assert post(writer, BASE + "Observation", weight_json(patient["id"], 170)).status_code == 201

    token_url = f"{live_server.url}/oauth/token"
    smart = backend_client(live_server, app, key, "system/*.rs", request)
    assert smart.server.auth._token_uri == token_url
    smart.authorize()  # client_credentials with the signed assertion
    assert smart.ready
    assert smart.server.auth.access_token.startswith("kc_")

    read = Patient.read(patient["id"], smart.server)
    assert read.name[0].family == "Curie"
    found = Observation.where(struct={"patient": patient["id"]}).perform_resources_iter(
        smart.server
    )
    assert [o.valueQuantity.code for o in found] == ["[lb_av]"]  # returned as sent
    with pytest.raises(FHIRPermissionDeniedException):  # system/*.rs: no writes
        Patient(patient_json()).create(smart.server)
    assert audit_count(action="fhir.smart.token_issued") == 1

    # An assertion is accepted once; a wrong key or audience gets no token.
    import requests

    replay = requests.post(
        token_url,
        data={
            "grant_type": "client_credentials",
            "scope": "system/*.rs",
            "client_assertion_type": "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
            "client_assertion": smart.jwt_token,
        },
        timeout=10,
    )
    assert replay.status_code in (400, 401)
    other = RSAKey.generate_key(2048, parameters={"kid": "k1"})
    forged = requests.post(
        token_url,
        data={
            "grant_type": "client_credentials",
            "client_assertion_type": "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
            "client_assertion": _assertion(app.client_id, other, token_url),
        },
        timeout=10,
    )
    assert forged.status_code in (400, 401)
    assert json.loads(forged.content)["error"] == "invalid_client"
    assert FHIR  # the API answers FHIR JSON to the client
