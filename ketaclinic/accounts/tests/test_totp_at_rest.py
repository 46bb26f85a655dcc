"""Authenticator secrets are encrypted at rest with keys from the environment (issue 12 item 2).

Before: django-otp's TOTPDevice kept every staff member's shared secret as clear hex in the
database, so a copy of the database (a backup, a replica) was enough to mint their codes."""

from __future__ import annotations

import importlib
from io import StringIO
from pathlib import Path
from typing import Any

import pytest
from cryptography.fernet import Fernet
from django.apps import apps
from django.core.exceptions import ImproperlyConfigured
from django.core.management import call_command
from django.db import connection
from django.test import Client, override_settings
from django_otp.oath import TOTP
from django_otp.plugins.otp_totp.models import TOTPDevice as ClearTOTPDevice

from conftest import PASSWORD, make_member, totp_code
from ketaclinic.accounts.models import EncryptedTOTPDevice
from ketaclinic.accounts.services import totp_device_create

pytestmark = pytest.mark.django_db
KNOWN_KEY = "3132333435363738393031323334353637383930"  # RFC 6238's test secret, in hex


def _raw_rows() -> str:
    with connection.cursor() as cursor:
        cursor.execute("SELECT * FROM accounts_encryptedtotpdevice")
        return repr(cursor.fetchall())


def test_the_secret_is_not_in_the_database_in_clear(org_a: Any) -> None:
    member = make_member(org_a, "nurse")
    totp_device_create(user=member.user, key_hex=KNOWN_KEY)
    assert KNOWN_KEY not in _raw_rows()
    assert "GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ" not in _raw_rows()  # nor its base32 form
    assert not ClearTOTPDevice.objects.exists()
    device = EncryptedTOTPDevice.objects.get(user=member.user)
    assert device.bin_key.hex() == KNOWN_KEY
    assert "secret=GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ" in device.config_url  # enrolment still works


def test_a_staff_member_logs_in_with_the_code_of_the_encrypted_secret(org_a: Any) -> None:
    member = make_member(org_a, "nurse")
    client = Client()
    response = client.post(
        "/accounts/login/",
        {
            "username": member.user.username,
            "password": PASSWORD,
            "otp_token": totp_code(member.user),
        },
    )
    assert response.status_code == 302
    assert client.get("/patients/").status_code == 200


def test_keys_rotate_without_a_flag_day(org_a: Any) -> None:
    old, new = Fernet.generate_key().decode(), Fernet.generate_key().decode()
    with override_settings(TOTP_ENCRYPTION_KEYS=[old]):
        member = make_member(org_a, "nurse")
        code = totp_code(member.user)
    with override_settings(TOTP_ENCRYPTION_KEYS=[new, old]):
        assert totp_code(member.user) == code  # the old key still decrypts
        out = StringIO()
        call_command("rotate_totp_keys", stdout=out, stderr=StringIO())
        assert "re-encrypted" in out.getvalue()
    with override_settings(TOTP_ENCRYPTION_KEYS=[new]):
        assert totp_code(member.user) == code  # the old key is no longer needed
    with (
        override_settings(TOTP_ENCRYPTION_KEYS=[old]),
        pytest.raises(ImproperlyConfigured, match="cannot be decrypted"),
    ):
        totp_code(member.user)


def test_the_migration_encrypts_existing_clear_text_secrets(org_a: Any) -> None:
    member = make_member(org_a, "therapist")
    EncryptedTOTPDevice.objects.all().delete()
    ClearTOTPDevice.objects.create(user=member.user, name="default", key=KNOWN_KEY, last_t=7)
    migration = importlib.import_module("ketaclinic.accounts.migrations.0006_encrypted_totp_device")
    migration.encrypt_existing_secrets(apps, None)
    assert not ClearTOTPDevice.objects.exists()
    device = EncryptedTOTPDevice.objects.get(user=member.user)
    assert device.last_t == 7
    assert device.confirmed
    assert KNOWN_KEY not in _raw_rows()
    totp = TOTP(device.bin_key, device.step, device.t0, device.digits, device.drift)
    assert device.verify_token(f"{totp.token():06d}")


def test_a_bad_key_in_the_environment_is_named(monkeypatch: Any, tmp_path: Path) -> None:
    from config.settings.env import fernet_keys

    monkeypatch.setenv("TOTP_ENCRYPTION_KEYS", f"{Fernet.generate_key().decode()},not-a-key")
    with pytest.raises(ImproperlyConfigured, match="key 2 is not a Fernet key"):
        fernet_keys("TOTP_ENCRYPTION_KEYS", tmp_path)
    monkeypatch.delenv("TOTP_ENCRYPTION_KEYS")
    generated = fernet_keys("TOTP_ENCRYPTION_KEYS", tmp_path)  # dev/demo: one key in var/
    assert generated == fernet_keys("TOTP_ENCRYPTION_KEYS", tmp_path)
    assert (tmp_path / "totp_encryption_keys").stat().st_mode & 0o077 == 0
