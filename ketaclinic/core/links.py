"""One-time links: signed, expiring, single use, no account needed. No domain knowledge here.

A link's secret is 32 random bytes; the URL carries it signed with the site's key (so a garbled or
forged token is refused before any database lookup) and the database keeps only its SHA-256.
`link_consume` marks a link used with a conditional UPDATE, so two submissions racing each other
cannot both succeed. Callers record their own audit event in the same transaction.
"""

from __future__ import annotations

import hashlib
import secrets
from datetime import datetime, timedelta
from typing import Any

from django.core import signing
from django_scopes import scopes_disabled

from ketaclinic.core.errors import DomainError
from ketaclinic.core.models import OneTimeLink

SALT = "ketaclinic.core.links"


class LinkRefused(DomainError):
    """The link cannot be used. `reason`: "invalid", "expired" or "used"."""

    code = "link-refused"

    def __init__(self, reason: str, detail: str, link: OneTimeLink | None = None) -> None:
        super().__init__(detail)
        self.reason = reason
        self.status = 404 if reason == "invalid" else 410
        self.link = link  # the link found, when it was used or has expired (for the audit)


def _hash(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def link_issue(
    *,
    organization: Any,
    purpose: str,
    target_type: str,
    target_id: str,
    now: datetime,
    ttl: timedelta,
    payload: dict[str, Any] | None = None,
    created_by: Any = None,
) -> tuple[OneTimeLink, str]:
    """Create a link; returns it and the URL token. The token is shown once and never stored."""
    if ttl <= timedelta(0):
        raise ValueError("a link must expire in the future")
    secret = secrets.token_urlsafe(32)
    link = OneTimeLink.objects.create(
        organization=organization,
        purpose=purpose,
        token_hash=_hash(secret),
        target_type=target_type,
        target_id=str(target_id),
        payload=payload or {},
        created_by=created_by,
        expires_at=now + ttl,
    )
    return link, signing.Signer(salt=SALT).sign(secret)


def link_resolve(token: str, *, purpose: str, now: datetime) -> OneTimeLink:
    """The usable link behind a token, or LinkRefused saying why it cannot be used."""
    try:
        secret = signing.Signer(salt=SALT).unsign(token)
    except signing.BadSignature:
        raise LinkRefused("invalid", "This link is not valid.") from None
    # The token is the only credential here and names no tenant yet: look it up unscoped, by
    # its hash only, then every later query runs in the link's organization.
    with scopes_disabled():
        link = (
            OneTimeLink.objects.select_related("organization")
            .filter(token_hash=_hash(secret), purpose=purpose)
            .first()
        )
    if link is None:
        raise LinkRefused("invalid", "This link is not valid.")
    if link.used_at is not None:
        raise LinkRefused("used", "This link has already been used. Each link works once.", link)
    if link.expires_at <= now:
        raise LinkRefused(
            "expired", "This link has expired. Please ask the clinic for a new one.", link
        )
    return link


def link_consume(link: OneTimeLink, *, now: datetime) -> None:
    """Mark the link used; refuse if it was used (or expired) meanwhile. Call in a transaction."""
    with scopes_disabled():
        updated = OneTimeLink.objects.filter(
            pk=link.pk, used_at__isnull=True, expires_at__gt=now
        ).update(used_at=now)
    if updated != 1:
        raise LinkRefused("used", "This link has already been used. Each link works once.")
    link.used_at = now
