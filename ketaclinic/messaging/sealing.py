"""Seal the one secret a message carries (a one-time link's URL) while it waits in the outbox.

The link token is the patient's credential: the database must never hold it in clear (only its
hash is stored by core.links). It is encrypted with a key derived from SECRET_KEY (Fernet:
AES-128-CBC with an HMAC) and the ciphertext is erased once the message is sent or gives up.
"""

from __future__ import annotations

import base64
import hashlib
import json
from typing import Any

from cryptography.fernet import Fernet, InvalidToken
from django.conf import settings

_PURPOSE = b"ketaclinic.messaging.sealed-secret"


def _fernet() -> Fernet:
    digest = hashlib.sha256(_PURPOSE + settings.SECRET_KEY.encode()).digest()
    return Fernet(base64.urlsafe_b64encode(digest))


def seal(values: dict[str, Any]) -> str:
    if not values:
        return ""
    return _fernet().encrypt(json.dumps(values).encode()).decode()


def unseal(sealed: str) -> dict[str, Any]:
    """The sealed values, or {} when there were none; raises ValueError when unreadable (for
    example after SECRET_KEY changed), so the message fails instead of going out without its link."""
    if not sealed:
        return {}
    try:
        return dict(json.loads(_fernet().decrypt(sealed.encode())))
    except InvalidToken:
        raise ValueError("the message's link cannot be read (was SECRET_KEY changed?)") from None
