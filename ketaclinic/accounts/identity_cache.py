"""Per-process cache of who is calling: bearer token -> membership, and for staff sessions the
user, their TOTP device and their membership.

Resolving identity on every request cost four queries and most of the CPU of a small write
(issue 13: the token -> membership ORM lookup alone was 17% of a JSON write). Here each worker
process keeps what it resolved for `IDENTITY_CACHE_SECONDS` (30 s by default).

What a cached entry may not outlive (docs/ARCHITECTURE.md, "Identity cache"):
- A token's expiry is checked on every request against the cached `expires_at`: at once.
- A revoked token, a deactivated membership or user, a changed role, password or authenticator:
  any save or delete of an ApiToken, Membership, User, TOTP device or passkey clears this
  process's cache at once (signals, on save and again on commit; `token_revoke`, which updates
  with a queryset, calls `forget()` itself). Other processes, which cannot see that save,
  drop their entry when its time is up: a revocation takes effect everywhere within the TTL.
- Only answers that let someone in are cached; a refused token is looked up again every time.
"""

from __future__ import annotations

import copy
import time
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.conf import settings
from django.contrib.auth import BACKEND_SESSION_KEY, HASH_SESSION_KEY, load_backend
from django.contrib.auth.backends import ModelBackend
from django.contrib.auth.models import AnonymousUser
from django.db import transaction
from django.db.models import Q
from django.db.models.signals import post_delete, post_save
from django.http import HttpRequest
from django.utils.crypto import constant_time_compare

from ketaclinic.accounts.models import ApiToken, Membership, User
from ketaclinic.accounts.services import TOKEN_PREFIX, token_hash
from ketaclinic.core import clock

MAX_ENTRIES = 10_000  # per kind; a full cache is emptied rather than grown
LAST_USED_EVERY_SECONDS = 60  # `last_used_at` is written at most once a minute per token


def ttl() -> float:
    return float(getattr(settings, "IDENTITY_CACHE_SECONDS", 30))


@dataclass(slots=True)
class _Token:
    deadline: float
    membership: Membership
    token_id: int
    expires_at: datetime
    last_used_at: datetime | None


_tokens: dict[str, _Token] = {}
_users: dict[int, tuple[float, User]] = {}
_devices: dict[str, tuple[float, Any]] = {}
_memberships: dict[tuple[int, int | None], tuple[float, Membership]] = {}


def clear() -> None:
    """Forget everything this process resolved (a token, membership, user or device changed)."""
    _tokens.clear()
    _users.clear()
    _devices.clear()
    _memberships.clear()


def _store(cache: dict, key: Any, value: Any) -> None:
    if len(cache) >= MAX_ENTRIES:
        cache.clear()
    cache[key] = value


# --- bearer tokens ----------------------------------------------------------------------------


def token_membership(secret: str) -> Membership | None:
    """The membership behind a valid, unexpired, unrevoked bearer token, else None."""
    if not secret.startswith(TOKEN_PREFIX) or len(secret) > 100:
        return None
    key = token_hash(secret)
    now = clock.now()
    entry = _tokens.get(key)
    if entry is None or entry.deadline <= time.monotonic():
        entry = _token_load(key, now)
        if entry is None:
            _tokens.pop(key, None)
            return None
        _store(_tokens, key, entry)
    if entry.expires_at <= now:
        _tokens.pop(key, None)
        return None
    last = entry.last_used_at
    if last is None or (now - last).total_seconds() > LAST_USED_EVERY_SECONDS:
        ApiToken.objects.filter(pk=entry.token_id).update(last_used_at=now)
        entry.last_used_at = now
    return entry.membership


def _token_load(key: str, now: datetime) -> _Token | None:
    token = (
        ApiToken.objects.select_related(
            "membership__user", "membership__organization", "membership__home_clinic"
        )
        .filter(key_hash=key, revoked_at__isnull=True, expires_at__gt=now)
        .filter(Q(membership__is_active=True) & Q(membership__user__is_active=True))
        .first()
    )
    if token is None:
        return None
    return _Token(
        deadline=time.monotonic() + ttl(),
        membership=token.membership,
        token_id=token.pk,
        expires_at=token.expires_at,
        last_used_at=token.last_used_at,
    )


# --- staff sessions ---------------------------------------------------------------------------

_MODEL_BACKEND = f"{ModelBackend.__module__}.{ModelBackend.__qualname__}"


def session_user(request: HttpRequest) -> Any:
    """django.contrib.auth.get_user, with the user row cached per process. The session's
    password hash is still compared on every request (a changed password logs other sessions
    out), against the cached row."""
    session = request.session
    try:
        user_id = User._meta.pk.to_python(session["_auth_user_id"])
        backend_path = session[BACKEND_SESSION_KEY]
    except (KeyError, ValueError):
        return AnonymousUser()
    if backend_path not in settings.AUTHENTICATION_BACKENDS:
        return AnonymousUser()
    if backend_path != _MODEL_BACKEND:
        from django.contrib.auth import get_user

        return get_user(request)
    hit = _users.get(user_id)
    if hit is None or hit[0] <= time.monotonic():
        user = load_backend(backend_path).get_user(user_id)
        if user is None:
            return AnonymousUser()
        hit = (time.monotonic() + ttl(), user)
        _store(_users, user_id, hit)
    # A copy per request: the OTP middleware sets per-request attributes (otp_device) on it.
    user = copy.copy(hit[1])
    session_hash = session.get(HASH_SESSION_KEY)
    if not session_hash or not constant_time_compare(session_hash, user.get_session_auth_hash()):
        from django.contrib.auth import get_user

        return get_user(request)  # Django's own path: fallback keys, flush on mismatch
    return user


def otp_device(persistent_id: str) -> Any:
    from django_otp.models import Device

    hit = _devices.get(persistent_id)
    if hit is None or hit[0] <= time.monotonic():
        device = Device.from_persistent_id(persistent_id)
        if device is None:
            return None
        hit = (time.monotonic() + ttl(), device)
        _store(_devices, persistent_id, hit)
    return hit[1]


def membership_for_user(user: User, membership_id: int | None) -> Membership | None:
    from ketaclinic.accounts.selectors import membership_active_for_user

    key = (user.pk, membership_id)
    hit = _memberships.get(key)
    if hit is None or hit[0] <= time.monotonic():
        membership = membership_active_for_user(user, membership_id)
        if membership is None:
            return None
        hit = (time.monotonic() + ttl(), membership)
        _store(_memberships, key, hit)
    return hit[1]


# --- invalidation -----------------------------------------------------------------------------


def forget() -> None:
    """A token, membership, user or device changed (called by the save signals, and by services
    that change those rows with a queryset update, which sends none)."""
    clear()
    # Again after commit: a request of this process that read the old row between the save and
    # the commit must not keep it.
    transaction.on_commit(clear)


def _changed(**_: Any) -> None:
    forget()


def connect_invalidation() -> None:
    from ketaclinic.accounts.models import EncryptedTOTPDevice, WebAuthnCredential

    for model in (ApiToken, Membership, User, EncryptedTOTPDevice, WebAuthnCredential):
        for signal in (post_save, post_delete):
            signal.connect(_changed, sender=model, dispatch_uid=f"identity-cache-{model.__name__}")
