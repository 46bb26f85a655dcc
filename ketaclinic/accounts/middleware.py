"""Request-level identity: who is acting, in which organization, with which second factor."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from django.conf import settings
from django.contrib.auth import logout
from django.contrib.auth.middleware import AuthenticationMiddleware
from django.contrib.sessions.middleware import SessionMiddleware
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect
from django.utils import timezone
from django.utils.functional import SimpleLazyObject
from django_otp.middleware import OTPMiddleware
from django_scopes import scope, scopes_disabled

from ketaclinic.accounts import identity_cache
from ketaclinic.accounts.actor import Actor
from ketaclinic.accounts.models import Membership
from ketaclinic.core.http import client_address

TOKEN_PATHS = ("/api/", "/fhir/")
OPEN_PATHS = ("/accounts/login/", "/accounts/logout/", "/static/", "/healthz", "/portal/")


def _verified(user: Any) -> bool:
    """django-otp's OTPMiddleware gives request.user an is_verified() (it ships no types)."""
    return bool(user.is_verified())


# A staff session's idle timeout is renewed at most this often: between renewals a request writes
# nothing, so the session times out between SESSION_IDLE_MINUTES less this and
# SESSION_IDLE_MINUTES after the last request (never later than configured).
SESSION_RENEW_SECONDS = 60
_RENEWED_KEY = "_renewed_at"


class IdleSessionMiddleware(SessionMiddleware):
    """Django's SessionMiddleware, renewing a live session's expiry at most once a minute
    instead of saving it on every request (SESSION_SAVE_EVERY_REQUEST): a page view that changed
    nothing writes nothing (issue 13: the chart page made two write transactions per GET)."""

    def process_response(self, request: HttpRequest, response: HttpResponse) -> HttpResponse:
        session = getattr(request, "session", None)
        if session is not None and session.accessed and not session.modified:
            if not session.is_empty() and session.session_key:
                now = int(time.time())
                if now - session.get(_RENEWED_KEY, 0) >= SESSION_RENEW_SECONDS:
                    session[_RENEWED_KEY] = now
        return super().process_response(request, response)


class CachedAuthenticationMiddleware(AuthenticationMiddleware):
    """`request.user` from the per-process identity cache (accounts.identity_cache)."""

    def process_request(self, request: HttpRequest) -> None:
        super().process_request(request)
        # A lazy user, as Django's own middleware sets (django-stubs types the attribute eagerly).
        request.user = SimpleLazyObject(lambda: identity_cache.session_user(request))  # type: ignore[assignment]


class CachedOTPMiddleware(OTPMiddleware):
    """django-otp's middleware with the verified device read from the identity cache."""

    def _device_from_persistent_id(self, persistent_id: str) -> object:
        return identity_cache.otp_device(self._normalize_persistent_id(persistent_id))


class StaffTwoFactorMiddleware:
    """Staff sessions without a verified second factor are logged out, wherever they came from.

    A patient's portal session has no second factor and no staff membership: it is left alone
    on every path (the browser's own /favicon.ico, a static file), so a patient is not logged
    out mid-intake. It still opens no staff page (TenantMiddleware finds no membership)."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        user = request.user
        if (
            settings.KETACLINIC_REQUIRE_2FA
            and user.is_authenticated
            and not _verified(user)
            and not request.path.startswith(OPEN_PATHS + TOKEN_PATHS)
            and _is_staff(user)
        ):
            logout(request)
            return redirect(settings.LOGIN_URL)
        return self.get_response(request)


def _is_staff(user: Any) -> bool:
    with scopes_disabled():
        return Membership.objects.filter(user=user).exists()


class TenantMiddleware:
    """Sets `request.actor` and runs the request inside its organization's query scope.

    Any query on a tenant-scoped model outside a scope raises, so a forgotten filter is loud.
    Bearer tokens are resolved here too, so API and FHIR requests are scoped the same way.
    """

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        request.actor = None  # type: ignore[attr-defined]
        membership = None
        channel = "ui"
        authorization = request.META.get(
            "HTTP_AUTHORIZATION", ""
        )  # request.headers builds a dict of all
        if request.path.startswith(TOKEN_PATHS):
            channel = "fhir" if request.path.startswith("/fhir/") else "api"
            if authorization[:7].lower() == "bearer ":
                membership = identity_cache.token_membership(authorization[7:].strip())
        elif request.user.is_authenticated:
            membership = identity_cache.membership_for_user(
                request.user,
                request.session.get("membership_id"),
            )
        if membership is None:
            return self.get_response(request)
        request.actor = Actor(  # type: ignore[attr-defined]
            membership=membership, channel=channel, client_address=client_address(request)
        )
        # Times are stored in UTC and shown in the clinic's zone (docs/sources/display.md).
        with (
            scope(organization=membership.organization),
            timezone.override(clinic_time_zone(membership)),
        ):
            return self.get_response(request)


def clinic_time_zone(membership: Membership) -> str:
    """The zone a staff member's screens show times in: their home clinic's (preloaded with the
    membership), else the server's (UTC) for an organization without a clinic yet."""
    clinic = membership.home_clinic
    return clinic.time_zone if clinic is not None else settings.TIME_ZONE
