"""Request-level identity: who is acting, in which organization, with which second factor."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from django.conf import settings
from django.contrib.auth import logout
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect
from django.utils import timezone
from django_scopes import scope, scopes_disabled

from ketaclinic.accounts.actor import Actor
from ketaclinic.accounts.models import Membership
from ketaclinic.accounts.selectors import membership_active_for_user, token_membership
from ketaclinic.core.http import client_address

TOKEN_PATHS = ("/api/", "/fhir/")
OPEN_PATHS = ("/accounts/login/", "/accounts/logout/", "/static/", "/healthz", "/portal/")


def _verified(user: Any) -> bool:
    """django-otp's OTPMiddleware gives request.user an is_verified() (it ships no types)."""
    return bool(user.is_verified())


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
        authorization = request.headers.get("Authorization", "")
        if request.path.startswith(TOKEN_PATHS):
            channel = "fhir" if request.path.startswith("/fhir/") else "api"
            if authorization[:7].lower() == "bearer ":
                membership = token_membership(authorization[7:].strip())
        elif request.user.is_authenticated:
            membership = membership_active_for_user(
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
