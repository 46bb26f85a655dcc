"""Staff authenticator (TOTP) secrets, encrypted at rest (issue 12 item 2).

django-otp's own `TOTPDevice` keeps its shared secret in a plain hex column: whoever reads the
database (a backup, a replica, an SQL injection) could mint every staff member's codes. The
secret is what a second factor rests on, so it is stored here as a Fernet token (AES-128-CBC with
an HMAC-SHA256, from `cryptography`) under keys that live outside the database, in
`TOTP_ENCRYPTION_KEYS` (comma-separated; the first encrypts, all decrypt: `MultiFernet`, so keys
rotate with `ketaclinic rotate-totp-keys` without a flag day).

Why a device model of our own rather than an encrypted-field package over django-otp's table:
django-otp's model is concrete and its `key` column is a 80-character hex field, so no field
swap fits a ciphertext without patching a third-party table. `EncryptedTOTPDevice` is a django-otp
`Device` (its throttling and timestamp mixins included) whose verification and `config_url` are
django-otp's own functions, unchanged; only `bin_key` differs: it decrypts. django-otp's login
machinery (`match_token`, `OTPMiddleware`, `django_otp.login`) finds it like any device.
`django_otp.plugins.otp_totp` stays installed for those functions and for the data migration
that moved its rows here (accounts 0006); its table is left empty and its admin unregistered.
"""

from __future__ import annotations

import functools

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured


@functools.cache
def _fernet(keys: tuple[str, ...]) -> MultiFernet:
    if not keys:
        raise ImproperlyConfigured("TOTP_ENCRYPTION_KEYS: at least one Fernet key is needed")
    return MultiFernet([Fernet(key.encode()) for key in keys])


def fernet() -> MultiFernet:
    return _fernet(tuple(settings.TOTP_ENCRYPTION_KEYS))


def seal(hex_key: str) -> str:
    return fernet().encrypt(hex_key.encode()).decode()


def unseal(token: str) -> str:
    try:
        return fernet().decrypt(token.encode()).decode()
    except InvalidToken:
        raise ImproperlyConfigured(
            "An authenticator secret cannot be decrypted with TOTP_ENCRYPTION_KEYS: a key that "
            "encrypted it is missing (keep the old key after the new one until "
            "`ketaclinic rotate-totp-keys` has run)."
        ) from None


def reseal(token: str) -> str:
    """The same secret encrypted under the first (newest) key."""
    return fernet().rotate(token.encode()).decode()
