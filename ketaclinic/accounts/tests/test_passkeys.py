"""Passkeys (WebAuthn) as a second factor (issue 12 item 2), exercised with a software
authenticator holding a real P-256 key (tests/softauthn.py): registration, login, and the
refusals a stolen password, a replayed or cloned authenticator, or another site would meet."""

from __future__ import annotations

import json
from typing import Any

import pytest
from django.conf import settings
from django.test import Client

from conftest import PASSWORD, audit_count, make_member, staff_client
from ketaclinic.accounts.models import WebAuthnCredential
from ketaclinic.accounts.tests.softauthn import SoftAuthenticator

pytestmark = pytest.mark.django_db


def _register(browser: Client, authenticator: SoftAuthenticator, name: str = "laptop") -> Any:
    options = browser.post("/accounts/passkeys/options").json()
    assert options["rp"]["id"] == settings.WEBAUTHN_RP_ID
    answer = authenticator.create(options)
    return browser.post(
        "/accounts/passkeys/register",
        json.dumps({"name": name, "credential": answer}),
        content_type="application/json",
    )


def _login_options(client: Client, username: str, password: str = PASSWORD) -> Any:
    return client.post(
        "/accounts/login/passkey/options", {"username": username, "password": password}
    )


def _verify(client: Client, answer: dict[str, Any]) -> Any:
    return client.post(
        "/accounts/login/passkey/verify",
        json.dumps({"credential": answer, "next": "/patients/"}),
        content_type="application/json",
    )


@pytest.fixture
def authenticator() -> SoftAuthenticator:
    return SoftAuthenticator(settings.WEBAUTHN_RP_ID, settings.WEBAUTHN_ORIGIN)


def test_a_nurse_registers_a_passkey_and_logs_in_with_it_instead_of_the_code(
    org_a: Any, authenticator: SoftAuthenticator
) -> None:
    nurse = make_member(org_a, "nurse")
    browser = staff_client(nurse)
    response = _register(browser, authenticator)
    assert response.status_code == 201, response.content
    assert audit_count(action="accounts.passkey.registered") == 1
    assert b"laptop" in browser.get("/accounts/passkeys/").content

    client = Client()
    options = _login_options(client, nurse.user.username)
    assert options.status_code == 200, options.content
    allowed = [c["id"] for c in options.json()["allowCredentials"]]
    assert allowed == [WebAuthnCredential.objects.get(user=nurse.user).credential_id]
    answer = authenticator.get(options.json())
    verified = _verify(client, answer)
    assert verified.status_code == 200, verified.content
    assert verified.json()["redirect"] == "/patients/"
    # Logged in and verified: the two-factor gate lets the nurse through to patient data.
    assert client.get("/patients/").status_code == 200
    assert audit_count(action="accounts.login.succeeded", detail__second_factor="passkey") == 1
    # A replay of the same signed answer is refused (the challenge is single-use).
    assert _verify(Client(), answer).status_code == 400


def test_the_password_alone_is_not_enough_and_every_refusal_is_the_same(
    org_a: Any, authenticator: SoftAuthenticator
) -> None:
    nurse = make_member(org_a, "nurse")
    _register(staff_client(nurse), authenticator)
    wrong_password = _login_options(Client(), nurse.user.username, "not-the-password")
    no_passkey = _login_options(Client(), make_member(org_a, "therapist").user.username)
    assert wrong_password.status_code == no_passkey.status_code == 400
    assert wrong_password.json()["detail"] == no_passkey.json()["detail"]
    assert "is not correct" in wrong_password.json()["detail"]

    # Another key answering the challenge (a stolen password, someone else's passkey).
    client = Client()
    options = _login_options(client, nurse.user.username).json()
    impostor = SoftAuthenticator(settings.WEBAUTHN_RP_ID, settings.WEBAUTHN_ORIGIN)
    impostor.credential_id = authenticator.credential_id
    assert _verify(client, impostor.get(options)).status_code == 400
    assert client.get("/patients/").status_code == 302  # not logged in

    # A phishing site's origin: the signature is real but bound to the wrong origin.
    client = Client()
    options = _login_options(client, nurse.user.username).json()
    phished = authenticator.get(options, origin="https://ketac1inic.example")
    assert _verify(client, phished).status_code == 400
    assert audit_count(action="accounts.login.failed", detail__second_factor="passkey") >= 4


def test_a_cloned_authenticator_is_caught_by_its_counter(
    org_a: Any, authenticator: SoftAuthenticator
) -> None:
    nurse = make_member(org_a, "nurse")
    _register(staff_client(nurse), authenticator)
    client = Client()
    options = _login_options(client, nurse.user.username).json()
    assert _verify(client, authenticator.get(options, counter_step=5)).status_code == 200
    authenticator.sign_count = 1  # a copy of the key that has signed less often
    client = Client()
    options = _login_options(client, nurse.user.username).json()
    assert _verify(client, authenticator.get(options)).status_code == 400


def test_registration_needs_our_challenge_and_a_verified_session(
    org_a: Any, authenticator: SoftAuthenticator
) -> None:
    nurse = make_member(org_a, "nurse")
    browser = staff_client(nurse)
    options = browser.post("/accounts/passkeys/options").json()
    options["challenge"] = "AAAAAAAAAAAAAAAAAAAAAA"
    forged = browser.post(
        "/accounts/passkeys/register",
        json.dumps({"credential": authenticator.create(options)}),
        content_type="application/json",
    )
    assert forged.status_code == 400
    assert not WebAuthnCredential.objects.exists()
    # Logged in with the password only (no second factor): no passkey can be added.
    half = Client()
    half.force_login(nurse.user)
    assert half.post("/accounts/passkeys/options").status_code == 302
    # Removing one is audited and it no longer logs in.
    _register(browser, authenticator)
    device = WebAuthnCredential.objects.get(user=nurse.user)
    browser.post(f"/accounts/passkeys/{device.public_id}/remove")
    assert audit_count(action="accounts.passkey.removed") == 1
    assert _login_options(Client(), nurse.user.username).status_code == 400
