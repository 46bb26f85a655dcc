"""Passkeys (WebAuthn) as a staff member's second factor, beside the authenticator code
(issue 12 item 2). The ceremonies are py_webauthn's (Duo Labs' `webauthn` package): this module
keeps the challenge in the session, checks whose credential it is, stores the public key and
the signature counter, and records every change in the audit trail.

Registration needs a verified staff session (one already proved with a code or a passkey).
Login is two steps: the password first (`login_options`: the same generic error and the same
lockout as the login form), then the passkey's signed assertion (`login_verify`), after which
the session is verified through django-otp exactly as a code would verify it.
"""

from __future__ import annotations

import json
from typing import Any

from django.conf import settings
from django.contrib.auth import authenticate
from django.contrib.auth.signals import user_login_failed
from django.db import transaction
from django.http import HttpRequest
from webauthn import (
    generate_authentication_options,
    generate_registration_options,
    options_to_json,
    verify_authentication_response,
    verify_registration_response,
)
from webauthn.helpers import base64url_to_bytes, bytes_to_base64url
from webauthn.helpers.exceptions import InvalidAuthenticationResponse, InvalidRegistrationResponse
from webauthn.helpers.structs import (
    AuthenticatorSelectionCriteria,
    PublicKeyCredentialDescriptor,
    ResidentKeyRequirement,
    UserVerificationRequirement,
)

from ketaclinic.accounts.audit import audit_record
from ketaclinic.accounts.models import User, WebAuthnCredential
from ketaclinic.core.errors import NotFound, ValidationFailed

REGISTRATION_KEY = "webauthn_registration_challenge"
LOGIN_KEY = "webauthn_login"
GENERIC_ERROR = (
    "The username, password or passkey is not correct (no passkey registered yet? log in with "
    "your authenticator code and add one)."
)


class PasskeyRefused(ValidationFailed):
    """One generic answer whatever failed, as on the login form."""

    def __init__(self) -> None:
        super().__init__(GENERIC_ERROR)


def _descriptors(user: User) -> list[PublicKeyCredentialDescriptor]:
    return [
        PublicKeyCredentialDescriptor(id=base64url_to_bytes(credential.credential_id))
        for credential in WebAuthnCredential.objects.filter(user=user, confirmed=True)
    ]


def registration_options(request: HttpRequest, user: User) -> str:
    """The options for navigator.credentials.create(), as JSON; the challenge stays here."""
    options = generate_registration_options(
        rp_id=settings.WEBAUTHN_RP_ID,
        rp_name="ketaclinic",
        user_id=user.public_id.bytes,
        user_name=user.username,
        user_display_name=user.display_name,
        exclude_credentials=_descriptors(user),
        authenticator_selection=AuthenticatorSelectionCriteria(
            resident_key=ResidentKeyRequirement.PREFERRED,
            user_verification=UserVerificationRequirement.PREFERRED,
        ),
    )
    request.session[REGISTRATION_KEY] = bytes_to_base64url(options.challenge)
    return options_to_json(options)


def passkey_register(
    *, request: HttpRequest, user: User, credential: dict[str, Any] | str, name: str = ""
) -> WebAuthnCredential:
    """Check the authenticator's answer to our challenge (once) and keep its public key."""
    challenge = request.session.pop(REGISTRATION_KEY, None)
    if challenge is None:
        raise ValidationFailed.for_field("credential", "Start the registration again.")
    try:
        verified = verify_registration_response(
            credential=credential,
            expected_challenge=base64url_to_bytes(challenge),
            expected_rp_id=settings.WEBAUTHN_RP_ID,
            expected_origin=settings.WEBAUTHN_ORIGIN,
        )
    except (InvalidRegistrationResponse, ValueError, KeyError, TypeError) as error:
        raise ValidationFailed.for_field(
            "credential", f"The passkey could not be registered: {error}"
        ) from None
    credential_id = bytes_to_base64url(verified.credential_id)
    if WebAuthnCredential.objects.filter(credential_id=credential_id).exists():
        raise ValidationFailed.for_field("credential", "This passkey is already registered.")
    name = (name or "").strip()[:64] or "Passkey"
    with transaction.atomic():
        device = WebAuthnCredential.objects.create(
            user=user,
            name=name,
            confirmed=True,
            credential_id=credential_id,
            public_key=verified.credential_public_key,
            sign_count=verified.sign_count,
        )
        audit_record(
            actor=getattr(request, "actor", None),
            user=user,
            action="accounts.passkey.registered",
            obj=user,
            channel="ui",
            detail={"name": name, "device_type": str(verified.credential_device_type)},
        )
    return device


def passkey_remove(*, request: HttpRequest, user: User, device_id: object) -> None:
    device = WebAuthnCredential.objects.filter(user=user, public_id=device_id).first()
    if device is None:
        raise NotFound("No such passkey.")
    with transaction.atomic():
        device.delete()
        audit_record(
            actor=getattr(request, "actor", None),
            user=user,
            action="accounts.passkey.removed",
            obj=user,
            channel="ui",
            detail={"name": device.name},
        )


def login_options(request: HttpRequest, username: str, password: str) -> str:
    """Step one of a passkey login: the password. The options for navigator.credentials.get()
    name only this user's passkeys. A wrong password counts toward the lockout (django-axes
    hears it through `authenticate`), and the answer is the same whatever was wrong."""
    user = authenticate(request, username=username, password=password)
    request.session.pop(LOGIN_KEY, None)
    descriptors = _descriptors(user) if user is not None else []
    if user is None or not descriptors:
        if user is not None:
            _count_failure(request, username)
        raise PasskeyRefused
    options = generate_authentication_options(
        rp_id=settings.WEBAUTHN_RP_ID,
        allow_credentials=descriptors,
        user_verification=UserVerificationRequirement.PREFERRED,
    )
    request.session[LOGIN_KEY] = {
        "user": user.pk,
        "challenge": bytes_to_base64url(options.challenge),
        "backend": getattr(user, "backend", ""),
    }
    return options_to_json(options)


def login_verify(request: HttpRequest, credential: dict[str, Any] | str) -> WebAuthnCredential:
    """Step two: the signed assertion of one of the user's passkeys, for our challenge, once.
    Returns the device (the caller logs the user in with it); refuses with the generic error."""
    pending = request.session.pop(LOGIN_KEY, None)
    if not pending:
        raise PasskeyRefused
    data = json.loads(credential) if isinstance(credential, str) else credential
    device = (
        WebAuthnCredential.objects.select_related("user")
        .filter(user_id=pending["user"], confirmed=True, credential_id=str(data.get("id", "")))
        .first()
    )
    if device is None or not device.user.is_active:
        _count_failure(request, device.user.username if device else "")
        raise PasskeyRefused
    try:
        verified = verify_authentication_response(
            credential=data,
            expected_challenge=base64url_to_bytes(pending["challenge"]),
            expected_rp_id=settings.WEBAUTHN_RP_ID,
            expected_origin=settings.WEBAUTHN_ORIGIN,
            credential_public_key=bytes(device.public_key),
            credential_current_sign_count=device.sign_count,
        )
    except (InvalidAuthenticationResponse, ValueError, KeyError, TypeError):
        _count_failure(request, device.user.username)
        raise PasskeyRefused from None
    device.sign_count = verified.new_sign_count
    device.set_last_used_timestamp(commit=False)
    device.save(update_fields=["sign_count", "last_used_at"])
    device.user.backend = pending["backend"]
    return device


def _count_failure(request: HttpRequest, username: str) -> None:
    """A failed second factor counts toward the lockout like a wrong password (as on the form)."""
    user_login_failed.send(sender=__name__, credentials={"username": username}, request=request)
