"""Reading configuration from the environment, failing loudly on bad values.

A misconfigured clinical system must not start half-working: every variable is parsed strictly and a
bad value stops the process with the variable's name and what was expected.
"""

from __future__ import annotations

import os
import secrets
from pathlib import Path

from django.core.exceptions import ImproperlyConfigured

_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off", ""}


def env_str(name: str, default: str) -> str:
    return os.environ.get(name, default)


def env_bool(name: str, default: bool) -> bool:
    raw = os.environ.get(name)
    if raw is None:
        return default
    value = raw.strip().lower()
    if value in _TRUE:
        return True
    if value in _FALSE:
        return False
    raise ImproperlyConfigured(f"{name}={raw!r}: expected one of 1/0, true/false, yes/no, on/off")


def env_int(name: str, default: int, *, minimum: int = 0, maximum: int | None = None) -> int:
    raw = os.environ.get(name)
    if raw is None:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ImproperlyConfigured(f"{name}={raw!r}: expected a whole number") from None
    if value < minimum or (maximum is not None and value > maximum):
        upper = "" if maximum is None else f" and at most {maximum}"
        raise ImproperlyConfigured(f"{name}={value}: must be at least {minimum}{upper}")
    return value


def env_choice(name: str, default: str, choices: tuple[str, ...]) -> str:
    value = os.environ.get(name, default).strip()
    if value not in choices:
        shown = ", ".join(repr(c) for c in choices)
        raise ImproperlyConfigured(f"{name}={value!r}: expected one of {shown}")
    return value


def env_list(name: str, default: list[str]) -> list[str]:
    raw = os.environ.get(name)
    if raw is None:
        return default
    return [item.strip() for item in raw.split(",") if item.strip()]


def secret_key(var_dir: Path) -> str:
    """SECRET_KEY from the environment, else from var/secret_key, generated there on first run."""
    from_env = os.environ.get("SECRET_KEY")
    if from_env is not None:
        if len(from_env) < 32:
            raise ImproperlyConfigured("SECRET_KEY: must be at least 32 characters")
        return from_env
    key_file = var_dir / "secret_key"
    if not key_file.exists():
        var_dir.mkdir(parents=True, exist_ok=True)
        key_file.write_text(secrets.token_urlsafe(50))
        key_file.chmod(0o600)
    return key_file.read_text().strip()


def fernet_keys(name: str, var_dir: Path) -> list[str]:
    """Comma-separated Fernet keys from the environment (the first encrypts, every one decrypts,
    so a key is rotated by putting the new one first). Unset: one key generated into
    var/<name lower-case> on first run, kept outside the database like the generated SECRET_KEY."""
    from cryptography.fernet import Fernet

    raw = os.environ.get(name)
    if raw is None:
        key_file = var_dir / name.lower()
        if not key_file.exists():
            var_dir.mkdir(parents=True, exist_ok=True)
            key_file.write_text(Fernet.generate_key().decode())
            key_file.chmod(0o600)
        raw = key_file.read_text()
    keys = [item.strip() for item in raw.split(",") if item.strip()]
    if not keys:
        raise ImproperlyConfigured(f"{name}: at least one Fernet key is needed")
    for number, key in enumerate(keys, start=1):
        try:
            Fernet(key.encode())
        except ValueError:
            raise ImproperlyConfigured(
                f"{name}: key {number} is not a Fernet key (32 url-safe base64-encoded bytes; "
                "make one with `python -c 'from cryptography.fernet import Fernet; "
                "print(Fernet.generate_key().decode())'`)"
            ) from None
    return keys
