"""Writes for organizations, clinics, users and tokens. Each is one transaction with an audit event."""

from __future__ import annotations

import hashlib
import secrets
import uuid
from datetime import timedelta

from django.conf import settings
from django.contrib.auth.password_validation import validate_password
from django.core.exceptions import ValidationError
from django.db import transaction
from django_otp.util import random_hex
from django_scopes import scope, scopes_disabled

from ketaclinic.accounts.actor import Actor
from ketaclinic.accounts.audit import audit_record
from ketaclinic.accounts.chairs import ChairCapability
from ketaclinic.accounts.models import (
    ApiToken,
    Chair,
    Clinic,
    EncryptedTOTPDevice,
    Membership,
    Organization,
    User,
)
from ketaclinic.accounts.roles import Cap, Role
from ketaclinic.core import clock
from ketaclinic.core.errors import Conflict, FieldError, NotFound, ValidationFailed

TOKEN_PREFIX = "kc_"


def organization_create(
    *, name: str, clinic_name: str = "", time_zone: str = "UTC", chairs: int = 0
) -> Organization:
    """A tenant with its first clinic. `chairs` numbered chairs that can host every route are
    created with it (the setup screen adds chairs with exactly what each can host)."""
    name = name.strip()
    if not name:
        raise ValidationFailed.for_field("name", "An organization needs a name.")
    with transaction.atomic():
        organization = Organization.objects.create(name=name)
        clinic = None
        if clinic_name:
            with scope(organization=organization):
                clinic = _clinic_create(organization, clinic_name, time_zone)
                for number in range(1, chairs + 1):
                    Chair.objects.create(
                        organization=organization,
                        clinic=clinic,
                        number=number,
                        capabilities=[c.value for c in ChairCapability],
                    )
        audit_record(
            actor=None,
            organization=organization,
            channel="cli",
            action="accounts.organization.created",
            obj=organization,
            detail={"name": name, "clinic": clinic.name if clinic else None, "chairs": chairs},
        )
    return organization


def _clinic_create(organization: Organization, name: str, time_zone: str) -> Clinic:
    clinic = Clinic(organization=organization, name=name, time_zone=time_zone)
    try:
        clinic.full_clean(exclude=["organization"])
    except ValidationError as exc:
        raise ValidationFailed(
            "The clinic is not valid.",
            [FieldError(f, "; ".join(m)) for f, m in exc.message_dict.items()],
        ) from None
    clinic.save()
    return clinic


def user_create(
    *,
    organization: Organization,
    username: str,
    role: str,
    password: str | None = None,
    first_name: str = "",
    last_name: str = "",
    email: str = "",
    validate: bool = True,
    audit: bool = True,
) -> tuple[User, Membership, str]:
    """Create a user with a role in `organization`. Returns the user, membership and password.

    When no password is given a strong one is generated and returned once.
    """
    errors = []
    if not username or not username.strip():
        errors.append(FieldError("username", "A username is required."))
    try:
        role = Role(role).value
    except ValueError:
        allowed = ", ".join(r.value for r in Role)
        errors.append(FieldError("role", f"Unknown role {role!r}; choose one of: {allowed}."))
    if User.objects.filter(username=username).exists():
        errors.append(FieldError("username", f"The username {username!r} is taken."))
    generated = password is None
    password = password or secrets.token_urlsafe(18)
    if validate and not generated:
        try:
            validate_password(password, User(username=username, email=email))
        except ValidationError as exc:
            errors.append(FieldError("password", " ".join(exc.messages)))
    if errors:
        raise ValidationFailed("The user could not be created.", errors)
    with transaction.atomic():
        user = User.objects.create_user(
            username=username,
            password=password,
            first_name=first_name,
            last_name=last_name,
            email=email,
        )
        with scopes_disabled():
            home = Clinic.objects.filter(organization=organization).first()
        membership = Membership.objects.create(
            user=user, organization=organization, role=role, home_clinic=home
        )
        if audit:  # the staff screen's service records its own event, with who acted
            audit_record(
                actor=None,
                organization=organization,
                channel="cli",
                action="accounts.user.created",
                obj=user,
                detail={"username": username, "role": role},
            )
    return user, membership, password


def totp_device_create(
    *, user: User, key_hex: str | None = None, name: str = "default", audit: bool = True
) -> EncryptedTOTPDevice:
    """Give `user` a confirmed TOTP authenticator (replacing any previous one). The secret is
    stored encrypted (accounts.totp); `device.config_url` shows it once for enrolment.

    `audit=False` when the caller's own event records the enrolment (the staff screen's)."""
    with transaction.atomic():
        EncryptedTOTPDevice.objects.filter(user=user).delete()
        device = EncryptedTOTPDevice(user=user, name=name, confirmed=True)
        device.set_key(key_hex or random_hex(20))
        device.save()
        if not audit:
            return device
        audit_record(
            actor=None,
            user=user,
            organization=_first_organization(user),
            channel="cli",
            action="accounts.totp.enrolled",
            obj=user,
        )
    return device


def _first_organization(user: User) -> Organization | None:
    membership = user.memberships.select_related("organization").first()
    return membership.organization if membership else None


def token_create(
    *, username: str, days: int | None = None, name: str = "", actor: Actor | None = None
) -> tuple[ApiToken, str]:
    """Issue a bearer token for the user's membership. The secret is returned once, never stored.

    With an actor (the UI, the API, the CLI's `--as`): one's own token needs `tokens.own`, a token
    for someone else `tokens.manage` in the same organization. Without one, only code that runs as
    the operator (tests, bench, the durability script) issues tokens.
    """
    days = settings.API_TOKEN_DEFAULT_DAYS if days is None else days
    maximum = settings.API_TOKEN_MAX_DAYS
    if days < 1 or days > maximum:
        raise ValidationFailed.for_field("days", f"A token must live between 1 and {maximum} days.")
    if len(name) > 100:
        raise ValidationFailed.for_field("name", "A token's name has at most 100 characters.")
    memberships = Membership.objects.select_related("user", "organization").filter(
        user__username=username, is_active=True
    )
    if actor is not None:
        own = actor.user.username == username
        actor.require(
            Cap.API_TOKEN_OWN if own else Cap.API_TOKEN_MANAGE, action="accounts.token.refused"
        )
        memberships = memberships.filter(organization=actor.organization)
    membership = memberships.first()
    if membership is None:
        raise NotFound.for_field("username", f"No active user {username!r}.")
    secret = TOKEN_PREFIX + secrets.token_urlsafe(32)
    with transaction.atomic():
        token = ApiToken.objects.create(
            membership=membership,
            name=name,
            prefix=secret[:10],
            key_hash=token_hash(secret),
            expires_at=clock.now() + timedelta(days=days),
        )
        audit_record(
            actor=actor,
            organization=membership.organization,
            user=actor.user if actor else membership.user,
            channel=actor.channel if actor else "cli",
            action="accounts.token.created",
            obj=token,
            detail={
                "days": days,
                "prefix": token.prefix,
                "owner": membership.user.username,
                "name": name,
            },
        )
    return token, secret


def token_list(*, actor: Actor, everyone: bool = False) -> list[ApiToken]:
    """The actor's own tokens, or (`tokens.manage`) every token of the organization; newest first."""
    actor.require(Cap.API_TOKEN_MANAGE if everyone else Cap.API_TOKEN_OWN)
    tokens = ApiToken.objects.select_related("membership__user").filter(
        membership__organization=actor.organization
    )
    if not everyone:
        tokens = tokens.filter(membership__user=actor.user)
    return list(tokens.order_by("-created_at", "-pk"))


def token_get(*, actor: Actor, public_id: object) -> ApiToken:
    """One token the actor may manage: their own, or any of the organization's with
    `tokens.manage`. Anything else (another's token, another organization's, a random id) is 404."""
    actor.require(Cap.API_TOKEN_OWN)
    try:
        key = uuid.UUID(str(public_id))
    except ValueError:
        key = None
    tokens = ApiToken.objects.select_related("membership__user", "membership__organization")
    token = (
        tokens.filter(public_id=key, membership__organization=actor.organization).first()
        if key is not None
        else None
    )
    if token is not None and token.membership.user_id != actor.user.pk:
        token = token if actor.can(Cap.API_TOKEN_MANAGE) else None
    if token is None:
        raise NotFound("No such token.")
    return token


def token_hash(secret: str) -> str:
    # Tokens carry 256 bits of randomness, so a fast hash is enough (no dictionary to attack).
    return hashlib.sha256(secret.encode()).hexdigest()


def token_revoke(*, token: ApiToken, actor: Actor) -> ApiToken:
    """Revoke a token at once (the next request with it answers 401). Owner or `tokens.manage`."""
    if token.membership.organization_id != actor.organization.pk:
        raise NotFound("No such token.")
    if token.membership.user_id != actor.user.pk:
        actor.require(Cap.API_TOKEN_MANAGE, action="accounts.token.refused")
    if token.revoked_at is not None:
        raise Conflict("The token is already revoked.")
    with transaction.atomic():
        updated = ApiToken.objects.filter(pk=token.pk, revoked_at__isnull=True).update(
            revoked_at=clock.now()
        )
        if not updated:
            raise Conflict("The token is already revoked.")
        # A queryset update sends no save signal: this process forgets the token itself (the
        # others within IDENTITY_CACHE_SECONDS).
        from ketaclinic.accounts import identity_cache

        identity_cache.forget()
        token.refresh_from_db(fields=["revoked_at"])
        audit_record(
            actor=actor,
            action="accounts.token.revoked",
            obj=token,
            detail={"prefix": token.prefix, "owner": token.membership.user.username},
        )
    return token
