from datetime import timedelta

import pytest
import time_machine
from django.test import Client
from django.urls import reverse
from django.utils import timezone
from django_otp.oath import TOTP

from conftest import PASSWORD, audit_count, staff_client

pytestmark = pytest.mark.django_db


def current_code(user, at=None) -> str:
    device = user.encryptedtotpdevice_set.get()
    totp = TOTP(device.bin_key, device.step, device.t0, device.digits, device.drift)
    if at is not None:
        totp.time = at.timestamp()
    return f"{totp.token():06d}"


def login(client: Client, username: str, password: str, code: str):
    return client.post(
        reverse("accounts:login"), {"username": username, "password": password, "otp_token": code}
    )


def test_staff_log_in_with_password_and_authenticator_code(members):
    user = members["nurse"].user
    client = Client()
    response = login(client, user.username, PASSWORD, current_code(user))
    assert response.status_code == 302
    assert client.get(reverse("core:dashboard")).status_code == 200
    assert audit_count(action="accounts.login.succeeded", actor=user) == 1


def test_password_alone_is_not_enough(members):
    user = members["nurse"].user
    client = Client()
    response = login(client, user.username, PASSWORD, "")
    assert response.status_code == 200
    assert b"token" in response.content.lower() or b"code" in response.content.lower()
    assert client.get(reverse("core:dashboard")).status_code == 302


def test_a_wrong_code_is_refused(members):
    user = members["nurse"].user
    good = current_code(user)
    wrong = f"{(int(good) + 1) % 1_000_000:06d}"
    response = login(Client(), user.username, PASSWORD, wrong)
    assert response.status_code == 200
    assert audit_count(action="accounts.login.failed") == 1


def test_repeated_failures_lock_the_account(members, settings):
    user = members["prescriber"].user
    client = Client()
    for _ in range(settings.AXES_FAILURE_LIMIT):
        login(client, user.username, "wrong-password", "000000")
    # Even the right password and code are refused now.
    response = login(client, user.username, PASSWORD, current_code(user))
    assert response.status_code == 429
    assert b"locked" in response.content.lower()
    assert client.get(reverse("core:dashboard")).status_code == 302


def test_a_session_without_a_verified_second_factor_is_logged_out(members):
    client = Client()
    client.force_login(members["nurse"].user)  # password only, no TOTP verification
    response = client.get(reverse("core:dashboard"))
    assert response.status_code == 302
    assert reverse("accounts:login") in response["Location"]


def test_an_idle_session_expires_after_the_configured_minutes(members, settings):
    client = staff_client(members["nurse"])
    start = timezone.now()
    with time_machine.travel(start, tick=False):
        assert client.get(reverse("core:dashboard")).status_code == 200
    with time_machine.travel(
        start + timedelta(minutes=settings.SESSION_IDLE_MINUTES - 1), tick=False
    ):
        assert client.get(reverse("core:dashboard")).status_code == 200  # activity renews it
    later = start + timedelta(minutes=2 * settings.SESSION_IDLE_MINUTES)
    with time_machine.travel(later, tick=False):
        response = client.get(reverse("core:dashboard"))
    assert response.status_code == 302
    assert reverse("accounts:login") in response["Location"]


def _error_text(response) -> str:
    return " ".join(str(e) for e in response.context["form"].non_field_errors())


def test_one_generic_error_whatever_was_wrong(members):
    """A wrong code used to get its own message, telling an attacker the password was right."""
    user = members["nurse"].user
    good = current_code(user)
    wrong_code = f"{(int(good) + 1) % 1_000_000:06d}"
    wrong_password = login(Client(), user.username, "wrong-password", good)
    wrong_code_only = login(Client(), user.username, PASSWORD, wrong_code)
    no_code = login(Client(), user.username, PASSWORD, "")
    unknown_user = login(Client(), "nobody-here", PASSWORD, good)
    messages = {_error_text(r) for r in (wrong_password, wrong_code_only, no_code, unknown_user)}
    assert len(messages) == 1, messages
    assert "username, password or authenticator code" in messages.pop()


def test_wrong_codes_count_toward_the_lockout(members, settings):
    user = members["prescriber"].user
    good = current_code(user)
    wrong = f"{(int(good) + 1) % 1_000_000:06d}"
    client = Client()
    assert login(client, user.username, PASSWORD, wrong).status_code == 200
    for _ in range(settings.AXES_FAILURE_LIMIT - 1):
        login(client, user.username, PASSWORD, wrong)
    response = login(client, user.username, PASSWORD, current_code(user))
    assert response.status_code == 429
