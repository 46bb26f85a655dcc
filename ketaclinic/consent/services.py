"""Consent writes: author and publish templates, sign, revoke, and patient portal accounts.

Each: permission, validation, one transaction, one audit event with the template version and its
content hash. The PDF copy is rendered before the transaction opens (it is slow) and stored with
the signature in it.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from django.contrib.auth.password_validation import validate_password
from django.core.exceptions import ValidationError
from django.db import transaction
from django.urls import reverse

from ketaclinic.accounts.actor import Actor
from ketaclinic.accounts.audit import audit_record
from ketaclinic.accounts.models import Organization, User
from ketaclinic.accounts.roles import Cap, role_can
from ketaclinic.consent import selectors
from ketaclinic.consent.defaults import DEFAULT_TEMPLATES
from ketaclinic.consent.models import (
    ConsentSignature,
    ConsentTemplate,
    ConsentTemplateVersion,
    PortalAccount,
)
from ketaclinic.consent.pdf import render_signature_pdf
from ketaclinic.core import clock
from ketaclinic.core.errors import Conflict, FieldError, Forbidden, ValidationFailed
from ketaclinic.core.links import link_consume, link_issue, link_resolve
from ketaclinic.messaging.patient_pages import crisis_lines
from ketaclinic.messaging.producers import send_link_message
from ketaclinic.patients.models import Patient
from ketaclinic.screening.policy import Route

TEMPLATE_FIELDS = ("kind", "route", "setting", "title", "body", "acknowledgements")
MAX_DRAWN_SIGNATURE = 300_000  # characters of data URL
PORTAL_INVITE_PURPOSE = "portal.invite"
PORTAL_INVITE_TTL = timedelta(days=7)
_KEY = re.compile(r"^[a-z][a-z0-9_]{1,40}$")


def content_hash(title: str, body: str, acknowledgements: list[dict[str, str]]) -> str:
    canonical = json.dumps(
        {"title": title, "body": body, "acknowledgements": acknowledgements},
        sort_keys=True,
        separators=(",", ":"),
        ensure_ascii=False,
    )
    return hashlib.sha256(canonical.encode()).hexdigest()


# --- templates ----------------------------------------------------------------------------


def _clean_template(data: Mapping[str, Any]) -> dict[str, Any]:
    unknown = sorted(set(data) - set(TEMPLATE_FIELDS))
    if unknown:
        raise ValidationFailed(
            "Unknown fields.", [FieldError(f, "This field does not exist.") for f in unknown]
        )
    values = dict(data)
    errors: list[FieldError] = []
    kind = values.get("kind", "")
    route = values.get("route", "") or ""
    setting = values.get("setting", "")
    if kind not in ConsentTemplate.Kind.values:
        errors.append(FieldError("kind", "Choose treatment, kap or research."))
    if setting not in ConsentTemplate.Setting.values:
        errors.append(FieldError("setting", "Choose clinic, home or any."))
    if kind == ConsentTemplate.Kind.TREATMENT:
        try:
            expected = "home" if Route(route).is_at_home else "clinic"
        except ValueError:
            errors.append(FieldError("route", "A treatment consent needs a screening route."))
        else:
            if setting != expected:
                errors.append(FieldError("setting", f"{route} is given at {expected}."))
    elif route:
        errors.append(FieldError("route", "Only treatment consents name a route."))
    for name in ("title", "body"):
        if not str(values.get(name, "")).strip():
            errors.append(FieldError(name, "This field is required."))
    acks = values.get("acknowledgements")
    if not isinstance(acks, list) or not acks:
        errors.append(FieldError("acknowledgements", "List at least one acknowledgement."))
    else:
        keys = [a.get("key") if isinstance(a, dict) else None for a in acks]
        if any(not isinstance(k, str) or not _KEY.match(k) for k in keys) or len(set(keys)) != len(
            keys
        ):
            errors.append(
                FieldError("acknowledgements", "Each item needs a unique key (a-z, 0-9, _).")
            )
        if any(not str(a.get("text", "")).strip() for a in acks if isinstance(a, dict)):
            errors.append(FieldError("acknowledgements", "Each item needs its text."))
    if errors or not isinstance(acks, list):
        raise ValidationFailed("The consent template is not valid.", errors)
    values["route"] = route
    values["acknowledgements"] = [{"key": a["key"], "text": a["text"].strip()} for a in acks]
    return values


def consent_template_create(*, actor: Actor, data: Mapping[str, Any]) -> ConsentTemplate:
    actor.require(Cap.CONSENT_TEMPLATE_MANAGE)
    values = _clean_template(data)
    duplicate = ConsentTemplate.objects.filter(
        kind=values["kind"], route=values["route"], setting=values["setting"], is_active=True
    ).exists()
    if duplicate:
        raise Conflict("An active template for this route and setting exists; edit it instead.")
    with transaction.atomic():
        template = ConsentTemplate.objects.create(organization=actor.organization, **values)
        audit_record(
            actor=actor,
            action="consent.template.created",
            obj=template,
            detail={"kind": template.kind, "route": template.route, "setting": template.setting},
        )
    return template


def consent_template_update(
    *, actor: Actor, template: ConsentTemplate, data: Mapping[str, Any]
) -> ConsentTemplate:
    """Edit the draft. Published versions are untouched; publish to make the edit current."""
    actor.require(Cap.CONSENT_TEMPLATE_MANAGE)
    merged = {name: getattr(template, name) for name in TEMPLATE_FIELDS}
    merged.update(data)
    values = _clean_template(merged)
    for fixed in ("kind", "route", "setting"):
        if values[fixed] != getattr(template, fixed):
            raise ValidationFailed.for_field(fixed, "Create a new template to change this.")
    with transaction.atomic():
        for name, value in values.items():
            setattr(template, name, value)
        template.save()
        audit_record(actor=actor, action="consent.template.edited", obj=template)
    return template


def consent_template_publish(*, actor: Actor, template: ConsentTemplate) -> ConsentTemplateVersion:
    """Freeze the draft as the next immutable version. Patients must then sign it again."""
    actor.require(Cap.CONSENT_TEMPLATE_MANAGE)
    return _publish(actor=actor, template=template, organization=actor.organization)


def _publish(
    *, actor: Actor | None, template: ConsentTemplate, organization: Organization
) -> ConsentTemplateVersion:
    digest = content_hash(template.title, template.body, template.acknowledgements)
    with transaction.atomic():
        template = ConsentTemplate.objects.select_for_update().get(pk=template.pk)
        latest = selectors.version_latest(template)
        if latest is not None and latest.content_hash == digest:
            raise Conflict(f"Nothing changed since version {latest.version}.")
        version = ConsentTemplateVersion.objects.create(
            organization=organization,
            template=template,
            version=(latest.version if latest else 0) + 1,
            title=template.title,
            body=template.body,
            acknowledgements=template.acknowledgements,
            content_hash=digest,
            published_by=actor.user if actor else None,
            published_at=clock.now(),
        )
        audit_record(
            actor=actor,
            organization=organization,
            action="consent.template.published",
            obj=version,
            detail={
                "template": str(template.public_id),
                "route": template.route,
                "setting": template.setting,
                "version": version.version,
                "content_hash": digest,
            },
        )
    return version


def consent_templates_seed_defaults(
    *, organization: Organization, actor: Actor | None = None
) -> list[ConsentTemplateVersion]:
    """Create and publish the default templates the organization does not have yet."""
    if actor is not None:
        actor.require(Cap.CONSENT_TEMPLATE_MANAGE)
    published = []
    # The default texts name the clinic's emergency number (a clinic setting, 911 by default).
    emergency_number = crisis_lines(organization).emergency_number
    with transaction.atomic():
        for default in DEFAULT_TEMPLATES:
            data = _with_emergency_number(default, emergency_number)
            exists = ConsentTemplate.objects.filter(
                organization=organization,
                kind=data["kind"],
                route=data["route"],
                setting=data["setting"],
                is_active=True,
            ).exists()
            if exists:
                continue
            template = ConsentTemplate.objects.create(organization=organization, **data)
            published.append(_publish(actor=actor, template=template, organization=organization))
    return published


def _with_emergency_number(template: dict[str, Any], number: str) -> dict[str, Any]:
    def filled(text: str) -> str:
        return text.replace("{emergency_number}", number)

    return {
        **template,
        "body": filled(template["body"]),
        "acknowledgements": [
            {**ack, "text": filled(ack["text"])} for ack in template["acknowledgements"]
        ],
    }


# --- signing ------------------------------------------------------------------------------


@dataclass(frozen=True, kw_only=True)
class SignatureInput:
    printed_name: str
    acknowledged: list[str]
    drawn_signature: str = ""
    client_address: str = ""
    user_agent: str = ""


def _normal_name(name: str) -> str:
    return " ".join(name.casefold().split())


def _check_drawn(data_url: str) -> str:
    if not data_url:
        return ""
    prefix = "data:image/png;base64,"
    if not data_url.startswith(prefix) or len(data_url) > MAX_DRAWN_SIGNATURE:
        raise ValidationFailed.for_field("drawn_signature", "The drawn signature is not valid.")
    try:
        raw = base64.b64decode(data_url[len(prefix) :], validate=True)
    except (binascii.Error, ValueError):
        raise ValidationFailed.for_field(
            "drawn_signature", "The drawn signature is not valid."
        ) from None
    if not raw.startswith(b"\x89PNG"):
        raise ValidationFailed.for_field("drawn_signature", "The drawn signature is not valid.")
    return data_url


def _validate_signature(
    patient: Patient, version: ConsentTemplateVersion, signature: SignatureInput
) -> None:
    template = version.template
    latest = selectors.version_latest(template)
    if not template.is_active or latest is None or latest.pk != version.pk:
        raise Conflict(
            "This consent form has been replaced by a newer version; reload and read it again."
        )
    errors = []
    expected = [item["key"] for item in version.acknowledgements]
    missing = [
        item["text"]
        for item in version.acknowledgements
        if item["key"] not in signature.acknowledged
    ]
    if missing or set(signature.acknowledged) - set(expected):
        errors += [FieldError("acknowledged", f"Not ticked: {text}") for text in missing]
        if not missing:
            errors.append(FieldError("acknowledged", "Unknown acknowledgement."))
    if _normal_name(signature.printed_name) != _normal_name(patient.full_name):
        errors.append(
            FieldError("printed_name", f"Type the patient's full name: {patient.full_name}.")
        )
    if errors:
        raise ValidationFailed("The consent is not complete.", errors)
    _check_drawn(signature.drawn_signature)


def _sign(
    *,
    patient: Patient,
    version: ConsentTemplateVersion,
    signature: SignatureInput,
    signed_by: User,
    witness: User | None,
    channel: str,
    actor: Actor | None,
) -> ConsentSignature:
    _validate_signature(patient, version, signature)
    now = clock.now()
    record = ConsentSignature(
        organization=patient.organization,
        patient=patient,
        template_version=version,
        kind=version.template.kind,
        route=version.template.route,
        setting=version.template.setting,
        channel=channel,
        signed_at=now,
        printed_name=signature.printed_name.strip(),
        acknowledged=[item["key"] for item in version.acknowledgements],
        drawn_signature=signature.drawn_signature,
        signed_by=signed_by,
        witness=witness,
        client_address=signature.client_address[:45],
        user_agent=signature.user_agent[:400],
        content_hash=version.content_hash,
    )
    # Render before the transaction: WeasyPrint takes a moment and must not hold the write lock.
    record.pdf = render_signature_pdf(
        {"signature": record, "version": version, "patient": patient},
        _clinic_time_zone(actor, patient),
    )
    record.pdf_sha256 = hashlib.sha256(record.pdf).hexdigest()
    with transaction.atomic():
        record.save()
        audit_record(
            actor=actor,
            organization=patient.organization,
            user=signed_by,
            channel="portal" if actor is None else "",
            client_address=signature.client_address[:45],
            action="consent.signed",
            patient_id=patient.public_id,
            obj=record,
            detail={
                "template": str(version.template.public_id),
                "title": version.title,
                "version": version.version,
                "content_hash": version.content_hash,
                "route": record.route,
                "setting": record.setting,
                "channel": channel,
                "meaning": record.meaning,
                "witness": witness.username if witness else None,
                "pdf_sha256": record.pdf_sha256,
            },
        )
    return record


def consent_sign(
    *,
    actor: Actor,
    patient: Patient,
    template_version: ConsentTemplateVersion,
    signature: SignatureInput,
    witness: User,
) -> ConsentSignature:
    """In-clinic signing on a tablet, handed over by staff; a staff witness is required."""
    actor.require(Cap.CONSENT_RECORD)
    membership = witness.memberships.filter(
        organization=patient.organization, is_active=True
    ).first()
    if membership is None or not role_can(membership.role, Cap.CONSENT_WITNESS):
        raise ValidationFailed.for_field(
            "witness", "The witness must be a staff member of this clinic who may witness consent."
        )
    return _sign(
        patient=patient,
        version=template_version,
        signature=signature,
        signed_by=actor.user,
        witness=witness,
        channel=ConsentSignature.Channel.CLINIC,
        actor=actor,
    )


def consent_sign_portal(
    *, account: PortalAccount, template_version: ConsentTemplateVersion, signature: SignatureInput
) -> ConsentSignature:
    """The patient signs in the portal, logged in to their own account."""
    if not account.is_active:
        raise Forbidden("This portal account is closed.")
    return _sign(
        patient=account.patient,
        version=template_version,
        signature=signature,
        signed_by=account.user,
        witness=None,
        channel=ConsentSignature.Channel.PORTAL,
        actor=None,
    )


def consent_revoke(
    *,
    signature: ConsentSignature,
    reason: str,
    actor: Actor | None = None,
    account: PortalAccount | None = None,
) -> ConsentSignature:
    """Withdraw a consent (by staff on the patient's word, or by the patient in the portal)."""
    if actor is not None:
        actor.require(Cap.CONSENT_RECORD)
        user = actor.user
    elif account is not None and account.is_active and account.patient_id == signature.patient_id:
        user = account.user
    else:
        raise Forbidden("Only the patient or the care team may revoke this consent.")
    reason = (reason or "").strip()
    if actor is not None and not reason:
        raise ValidationFailed.for_field("reason", "Record what the patient said.")
    with transaction.atomic():
        signature = ConsentSignature.objects.select_for_update().get(pk=signature.pk)
        if signature.revoked_at is not None:
            raise Conflict("This consent was already revoked.")
        signature.revoked_at = clock.now()
        signature.revoked_by = user
        signature.revocation_reason = reason or "Revoked by the patient in the portal."
        signature.save(
            update_fields=["revoked_at", "revoked_by", "revocation_reason", "updated_at"]
        )
        audit_record(
            actor=actor,
            organization=signature.organization,
            user=user,
            channel="portal" if actor is None else "",
            action="consent.revoked",
            patient_id=signature.patient.public_id,
            obj=signature,
            detail={
                "version": signature.template_version.version,
                "content_hash": signature.content_hash,
                "route": signature.route,
                "setting": signature.setting,
                "reason": signature.revocation_reason,
            },
        )
    return signature


# --- portal accounts ----------------------------------------------------------------------


def _send_invitation(patient: Patient, link: Any, token: str) -> None:
    """The consent request reaches the patient by e-mail or SMS where they allow it."""
    send_link_message(
        organization=patient.organization,
        patient=patient,
        kind="portal_invite",
        path=reverse("portal:invite", kwargs={"token": token}),
        expires_at=link.expires_at,
    )


def portal_invite(*, actor: Actor, patient: Patient) -> tuple[PortalAccount, str]:
    """Create the patient's portal account (no password yet) and a one-time invitation token."""
    actor.require(Cap.CONSENT_RECORD)
    if selectors.portal_account_for_patient(patient) is not None:
        raise Conflict("This patient already has a portal account.")
    now = clock.now()
    with transaction.atomic():
        # A name the patient can read back and type (their e-mail works at login too).
        username = selectors.portal_username_for(patient.given_name, patient.family_name)
        user = User(
            username=username,
            email=patient.email,
            first_name=patient.given_name,
            last_name=patient.family_name,
        )
        user.set_unusable_password()
        user.save()
        account = PortalAccount.objects.create(
            organization=patient.organization, patient=patient, user=user, invited_by=actor.user
        )
        link, token = link_issue(
            organization=patient.organization,
            purpose=PORTAL_INVITE_PURPOSE,
            target_type="PortalAccount",
            target_id=str(account.public_id),
            now=now,
            ttl=PORTAL_INVITE_TTL,
            created_by=actor.user,
        )
        _send_invitation(patient, link, token)
        audit_record(
            actor=actor,
            action="consent.portal.invited",
            patient_id=patient.public_id,
            obj=account,
            detail={"username": username},
        )
    return account, token


def portal_reinvite(*, actor: Actor, account: PortalAccount) -> str:
    actor.require(Cap.CONSENT_RECORD)
    with transaction.atomic():
        link, token = link_issue(
            organization=account.organization,
            purpose=PORTAL_INVITE_PURPOSE,
            target_type="PortalAccount",
            target_id=str(account.public_id),
            now=clock.now(),
            ttl=PORTAL_INVITE_TTL,
            created_by=actor.user,
        )
        _send_invitation(account.patient, link, token)
        audit_record(
            actor=actor,
            action="consent.portal.reinvited",
            patient_id=account.patient.public_id,
            obj=account,
        )
    return token


def portal_invitation_resolve(token: str) -> PortalAccount:
    """The account an invitation token opens (raises LinkRefused otherwise). Unscoped lookup."""
    from django_scopes import scopes_disabled

    with scopes_disabled():
        link = link_resolve(token, purpose=PORTAL_INVITE_PURPOSE, now=clock.now())
        return PortalAccount.objects.select_related("user", "patient", "organization").get(
            public_id=link.target_id
        )


def portal_activate(*, token: str, password: str, client_address: str = "") -> PortalAccount:
    """The patient chooses a password through the invitation link (single use)."""
    from django_scopes import scopes_disabled

    now = clock.now()
    with scopes_disabled():
        link = link_resolve(token, purpose=PORTAL_INVITE_PURPOSE, now=now)
        account = PortalAccount.objects.select_related("user", "patient", "organization").get(
            public_id=link.target_id
        )
        try:
            validate_password(password, account.user)
        except ValidationError as exc:
            raise ValidationFailed(
                "Choose a stronger password.", [FieldError("password", m) for m in exc.messages]
            ) from None
        with transaction.atomic():
            link_consume(link, now=now)
            account.user.set_password(password)
            account.user.save(update_fields=["password"])
            account.activated_at = now
            account.save(update_fields=["activated_at", "updated_at"])
            audit_record(
                actor=None,
                organization=account.organization,
                user=account.user,
                channel="portal",
                client_address=client_address,
                action="consent.portal.activated",
                patient_id=account.patient.public_id,
                obj=account,
            )
    return account


def _clinic_time_zone(actor: Actor | None, patient: Patient) -> str:
    """The signer's clinic (staff) or the organization's first clinic (portal)."""
    from ketaclinic.accounts.models import Clinic

    home = actor.membership.home_clinic if actor is not None else None
    clinic = home or Clinic.objects.filter(organization=patient.organization).order_by("pk").first()
    return clinic.time_zone if clinic else "UTC"
