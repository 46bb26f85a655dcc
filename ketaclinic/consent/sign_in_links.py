"""Portal sign-in by a link e-mailed on request, where the clinic allows it (off by default;
messaging.patient_pages). Decisions (docs/sources/portal.md, "Sign-in links"):

- The link works once and for SIGN_IN_TTL (15 minutes); only its SHA-256 is stored (core.links).
- `sign_in_link_request` answers the same way whatever the address: the caller shows one page
  whether the address is a patient's, belongs to a clinic that does not offer links, or is
  unknown, so nobody learns who is a patient. Each request is audited with what happened.
- At most RATE_LIMIT requests per address in RATE_WINDOW, counted on a hash of the address
  before anything else is looked up; a request over the limit sends nothing (and is audited).
- The link goes to the e-mail address the clinic has on file for the patient, through the
  messaging outbox, and only where the patient may be contacted by e-mail.
- Using a link checks again that the clinic still offers sign-in links; an expired or used link
  is refused and the attempt audited.
- Patients have no second factor in ketaclinic (only staff do), so the link is the whole sign-in;
  if one is added for patients, the link must stand for the password only.
"""

from __future__ import annotations

import hashlib
from datetime import datetime, timedelta
from typing import Any

from django.db import transaction
from django.urls import reverse
from django_scopes import scope, scopes_disabled

from ketaclinic.accounts.audit import audit_record
from ketaclinic.accounts.models import AuditEvent
from ketaclinic.consent.models import PortalAccount, SignInLinkRequest
from ketaclinic.core import clock
from ketaclinic.core.errors import ValidationFailed
from ketaclinic.core.links import LinkRefused, link_consume, link_issue, link_resolve
from ketaclinic.core.models import OneTimeLink
from ketaclinic.messaging.patient_pages import patient_pages_policy
from ketaclinic.messaging.producers import send_link_message

SIGN_IN_PURPOSE = "portal.sign_in"
SIGN_IN_TTL = timedelta(minutes=15)
RATE_LIMIT = 3
RATE_WINDOW = timedelta(minutes=15)
KEEP_REQUESTS = timedelta(days=1)  # rows older than this are deleted as new requests come in
MAX_ADDRESS = 254


class SignInNotOffered(LinkRefused):
    def __init__(self) -> None:
        super().__init__(
            "invalid",
            "Your clinic does not offer sign-in links now. Log in with your password, or call "
            "the clinic.",
        )
        self.status = 403


def address_hash(address: str) -> str:
    return hashlib.sha256(address.strip().lower().encode()).hexdigest()


def _audit(action: str, *, outcome: str, client_address: str, **fields: Any) -> None:
    audit_record(
        actor=None,
        action=action,
        outcome=outcome,
        channel="portal",
        client_address=client_address,
        **fields,
    )


def sign_in_link_request(*, address: str, client_address: str = "") -> None:
    """Send a sign-in link to each active portal account whose patient has this e-mail address
    on file, at clinics that offer sign-in links. Returns nothing, on purpose: see the module."""
    typed = address.strip()
    if "@" not in typed or len(typed) > MAX_ADDRESS:
        raise ValidationFailed.for_field(
            "email", "Enter your e-mail address, like ana@example.org."
        )
    now = clock.now()
    hashed = address_hash(typed)
    tag = {"address_hash": hashed[:16]}
    with transaction.atomic():
        SignInLinkRequest.objects.filter(requested_at__lt=now - KEEP_REQUESTS).delete()
        recent = SignInLinkRequest.objects.filter(
            address_hash=hashed, requested_at__gt=now - RATE_WINDOW
        ).count()
        SignInLinkRequest.objects.create(address_hash=hashed, requested_at=now)
        if recent >= RATE_LIMIT:
            _audit(
                "portal.sign_in_link.rate_limited",
                outcome=AuditEvent.Outcome.DENIED,
                client_address=client_address,
                detail={**tag, "requests_in_window": recent + 1},
            )
            return
        with scopes_disabled():
            accounts = list(
                PortalAccount.objects.select_related("organization", "patient", "user").filter(
                    is_active=True, user__is_active=True, patient__email__iexact=typed
                )
            )
        if not accounts:
            _audit(
                "portal.sign_in_link.requested",
                outcome=AuditEvent.Outcome.DENIED,
                client_address=client_address,
                detail={**tag, "result": "no portal account has this address"},
            )
            return
        for account in accounts:
            _send(account, now=now, tag=tag, client_address=client_address)


def _send(
    account: PortalAccount, *, now: datetime, tag: dict[str, str], client_address: str
) -> None:
    organization, patient = account.organization, account.patient
    with scope(organization=organization):
        if not patient_pages_policy(organization).sign_in_links_allowed:
            _audit(
                "portal.sign_in_link.requested",
                outcome=AuditEvent.Outcome.DENIED,
                client_address=client_address,
                organization=organization,
                patient_id=patient.public_id,
                obj=account,
                detail={**tag, "result": "the clinic does not offer sign-in links"},
            )
            return
        link, token = link_issue(
            organization=organization,
            purpose=SIGN_IN_PURPOSE,
            target_type="PortalAccount",
            target_id=str(account.public_id),
            now=now,
            ttl=SIGN_IN_TTL,
        )
        message = send_link_message(
            organization=organization,
            patient=patient,
            kind="portal_sign_in",
            path=reverse("portal:sign-in", kwargs={"token": token}),
            expires_at=link.expires_at,
            channel="email",
        )
        sent = message is not None and message.status == message.Status.QUEUED
        _audit(
            "portal.sign_in_link.requested",
            outcome=AuditEvent.Outcome.SUCCESS if sent else AuditEvent.Outcome.DENIED,
            client_address=client_address,
            organization=organization,
            patient_id=patient.public_id,
            obj=account,
            detail={
                **tag,
                "result": "link sent by e-mail"
                if sent
                else "not sent: the patient may not be contacted by e-mail",
                "expires_at": link.expires_at.isoformat(),
                "link": str(link.public_id),
            },
        )


def _refuse(refused: LinkRefused, client_address: str) -> LinkRefused:
    """Audit a refused link (expired, used, or its clinic stopped offering links) and return it."""
    link = refused.link
    if link is None:
        return refused
    action = {
        "expired": "portal.sign_in_link.expired",
        "used": "portal.sign_in_link.reused",
    }.get(refused.reason, "portal.sign_in_link.refused")
    with transaction.atomic():
        _audit(
            action,
            outcome=AuditEvent.Outcome.DENIED,
            client_address=client_address,
            organization=link.organization,
            detail={"link": str(link.public_id), "reason": refused.reason},
        )
    return refused


def _account(token: str, now: datetime, client_address: str) -> tuple[OneTimeLink, PortalAccount]:
    try:
        link = link_resolve(token, purpose=SIGN_IN_PURPOSE, now=now)
    except LinkRefused as refused:
        raise _refuse(refused, client_address) from None
    with scopes_disabled():
        account = (
            PortalAccount.objects.select_related("organization", "patient", "user")
            .filter(public_id=link.target_id, is_active=True, user__is_active=True)
            .first()
        )
    if account is None:
        raise LinkRefused("invalid", "This link is not valid.")
    if not patient_pages_policy(account.organization).sign_in_links_allowed:
        not_offered = SignInNotOffered()
        not_offered.link = link
        raise _refuse(not_offered, client_address)
    return link, account


def sign_in_link_check(token: str, *, client_address: str = "") -> PortalAccount:
    """The account a sign-in link opens, without using it (the page before the button)."""
    return _account(token, clock.now(), client_address)[1]


def sign_in_link_use(token: str, *, client_address: str = "") -> PortalAccount:
    """Use the link (once): the caller then logs the returned account's user in."""
    now = clock.now()
    link, account = _account(token, now, client_address)
    try:
        with transaction.atomic():
            link_consume(link, now=now)
            _record_use(link, account, client_address)
    except LinkRefused as refused:  # used by a second tab or click meanwhile
        refused.link = link
        raise _refuse(refused, client_address) from None
    return account


def _record_use(link: OneTimeLink, account: PortalAccount, client_address: str) -> None:
    _audit(
        "portal.sign_in_link.used",
        outcome=AuditEvent.Outcome.SUCCESS,
        client_address=client_address,
        organization=account.organization,
        user=account.user,
        patient_id=account.patient.public_id,
        obj=account,
        detail={"link": str(link.public_id)},
    )
