"""Passkey pages and the two JSON steps of each WebAuthn ceremony (accounts.passkeys).

The browser half is static/js/passkeys.js (navigator.credentials.create/get); these views only
hand out challenges and check the answers."""

from __future__ import annotations

import json
from typing import Any

from django.contrib import messages
from django.contrib.auth import login
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import redirect
from django.template.response import TemplateResponse
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.http import require_POST
from django_otp import login as otp_login

from ketaclinic.accounts import passkeys
from ketaclinic.accounts.audit import audit_record
from ketaclinic.accounts.models import WebAuthnCredential
from ketaclinic.accounts.selectors import membership_active_for_user
from ketaclinic.core.decorators import staff_view
from ketaclinic.core.errors import DomainError
from ketaclinic.core.http import client_address


def _refused(error: DomainError) -> JsonResponse:
    return JsonResponse(
        {
            "detail": error.detail,
            "errors": [{"field": e.field, "message": e.message} for e in error.errors],
        },
        status=error.status,
    )


def _json_body(request: HttpRequest) -> dict[str, Any]:
    try:
        data = json.loads(request.body or b"{}")
    except ValueError:
        return {}
    return data if isinstance(data, dict) else {}


@staff_view()
def passkey_list(request: HttpRequest) -> HttpResponse:
    devices = WebAuthnCredential.objects.filter(user=request.user).order_by("created_at")
    return TemplateResponse(request, "accounts/passkeys.html", {"devices": devices})


@require_POST
@staff_view()
def passkey_register_options(request: HttpRequest) -> HttpResponse:
    options = passkeys.registration_options(request, request.user)  # type: ignore[arg-type]
    return HttpResponse(options, content_type="application/json")


@require_POST
@staff_view()
def passkey_register(request: HttpRequest) -> HttpResponse:
    data = _json_body(request)
    try:
        device = passkeys.passkey_register(
            request=request,
            user=request.user,  # type: ignore[arg-type]
            credential=data.get("credential") or {},
            name=str(data.get("name") or ""),
        )
    except DomainError as error:
        return _refused(error)
    return JsonResponse({"name": device.name}, status=201)


@require_POST
@staff_view()
def passkey_remove(request: HttpRequest, device_id: str) -> HttpResponse:
    passkeys.passkey_remove(request=request, user=request.user, device_id=device_id)  # type: ignore[arg-type]
    messages.success(request, "The passkey is removed.")
    return redirect("accounts:passkeys")


@require_POST
def login_options(request: HttpRequest) -> HttpResponse:
    """Step one of a passkey login: username and password, answered with the WebAuthn options."""
    username = str(request.POST.get("username", ""))[:150]
    try:
        options = passkeys.login_options(request, username, str(request.POST.get("password", "")))
    except DomainError as error:
        _audit_failure(request, username)
        return _refused(error)
    return HttpResponse(options, content_type="application/json")


@require_POST
def login_verify(request: HttpRequest) -> HttpResponse:
    """Step two: the passkey's signed answer; the session is then logged in and verified."""
    data = _json_body(request)
    try:
        device = passkeys.login_verify(request, data.get("credential") or {})
    except DomainError as error:
        _audit_failure(request, "")
        return _refused(error)
    user = device.user
    login(request, user)
    otp_login(request, device)
    membership = membership_active_for_user(user)
    audit_record(
        actor=None,
        user=user,
        organization=membership.organization if membership else None,
        channel="ui",
        client_address=client_address(request),
        action="accounts.login.succeeded",
        detail={"second_factor": "passkey"},
    )
    target = str(data.get("next") or "/")
    if not url_has_allowed_host_and_scheme(target, allowed_hosts={request.get_host()}):
        target = "/"
    return JsonResponse({"redirect": target})


def _audit_failure(request: HttpRequest, username: str) -> None:
    audit_record(
        actor=None,
        channel="ui",
        client_address=client_address(request),
        action="accounts.login.failed",
        outcome="denied",
        detail={"username": username, "second_factor": "passkey"},
    )
