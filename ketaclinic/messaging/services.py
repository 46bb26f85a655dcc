"""Writes for messaging: the clinic's contact policy, a patient's consent to contact per channel,
queueing a message (producers call `message_send` in their own transaction), and delivering it.

Delivery runs in the worker: `message_deliver` claims one queued message with a conditional
UPDATE (two workers never send it twice), re-checks consent (an opt-out recorded after queueing
still stops it), sends it, and records the attempt. A temporary failure is retried with back-off
(backoff.py); a refusal or the last failure marks it failed, shown on the patient's page.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import Q
from django_scopes import scope, scopes_disabled

from ketaclinic.accounts.actor import Actor
from ketaclinic.accounts.audit import audit_record
from ketaclinic.accounts.models import Clinic, Membership, Organization, User
from ketaclinic.accounts.roles import Cap
from ketaclinic.core import clock
from ketaclinic.core.errors import FieldError, ValidationFailed
from ketaclinic.messaging import backoff, sealing, selectors
from ketaclinic.messaging.channels import DeliveryFailure, PermanentFailure, TransientFailure
from ketaclinic.messaging.channels.email import email_configured, email_connection, email_send
from ketaclinic.messaging.channels.sms import sms_provider
from ketaclinic.messaging.kinds import KINDS
from ketaclinic.messaging.models import (
    Channel,
    ContactPolicy,
    ContactPreference,
    DeliveryAttempt,
    Message,
)
from ketaclinic.messaging.rendering import render_outgoing
from ketaclinic.patients.models import Patient

log = logging.getLogger(__name__)
# A worker that died mid-send leaves a message "sending"; after this it is queued again.
STALE_CLAIM = timedelta(minutes=5)
DUE_BATCH = 500


def public_url(path: str) -> str:
    """An absolute URL for a link sent by the worker (no request to take the host from)."""
    return settings.KETACLINIC_PUBLIC_URL.rstrip("/") + path


# --- policy and consent -------------------------------------------------------------------------


def contact_policy_set(
    *,
    actor: Actor,
    email_allowed_by_default: bool,
    sms_allowed_by_default: bool,
    on_call_email: str = "",
    on_call_phone: str = "",
) -> ContactPolicy:
    actor.require(Cap.MESSAGING_POLICY_EDIT)
    on_call_email, on_call_phone = on_call_email.strip(), on_call_phone.strip()
    errors = []
    if on_call_email and ("@" not in on_call_email or len(on_call_email) > 254):
        errors.append(
            FieldError("on_call_email", "Enter an e-mail address like oncall@clinic.org.")
        )
    if on_call_phone and not _looks_like_phone(on_call_phone):
        errors.append(FieldError("on_call_phone", "Enter a phone number like +15555550100."))
    if errors:
        raise ValidationFailed("The contact policy is not valid.", errors)
    with transaction.atomic():
        policy, _ = ContactPolicy.objects.select_for_update().get_or_create(
            organization=actor.organization
        )
        policy.email_allowed_by_default = email_allowed_by_default
        policy.sms_allowed_by_default = sms_allowed_by_default
        policy.on_call_email = on_call_email
        policy.on_call_phone = on_call_phone
        policy.updated_by = actor.user
        policy.save()
        audit_record(
            actor=actor,
            action="messaging.policy.updated",
            obj=policy,
            detail={
                "email_allowed_by_default": email_allowed_by_default,
                "sms_allowed_by_default": sms_allowed_by_default,
                "on_call_email_set": bool(on_call_email),
                "on_call_phone_set": bool(on_call_phone),
            },
        )
    return policy


def _looks_like_phone(value: str) -> bool:
    digits = [c for c in value if c.isdigit()]
    return 7 <= len(digits) <= 15 and all(c.isdigit() or c in "+-() ." for c in value)


def contact_preference_set(
    *, actor: Actor, patient: Patient, channel: str, allowed: bool, note: str = ""
) -> ContactPreference:
    """Record the patient's answer for one channel (allowed or opted out), replacing the last."""
    actor.require(Cap.CONTACT_EDIT)
    if channel not in Channel.values:
        raise ValidationFailed.for_field("channel", "Choose email or sms.")
    with transaction.atomic():
        preference, _ = ContactPreference.objects.update_or_create(
            patient=patient,
            channel=channel,
            defaults={
                "organization": patient.organization,
                "allowed": allowed,
                "note": note.strip()[:200],
                "recorded_by": actor.user,
            },
        )
        if not allowed:
            # An opt-out stops what is already waiting, not only what comes later.
            Message.objects.filter(
                patient=patient, channel=channel, status=Message.Status.QUEUED
            ).update(
                status=Message.Status.SUPPRESSED,
                status_reason="the patient opted out",
                sealed_secret="",
                updated_at=clock.now(),
            )
        audit_record(
            actor=actor,
            action="messaging.contact.allowed" if allowed else "messaging.contact.opted_out",
            patient_id=patient.public_id,
            obj=preference,
            detail={"channel": channel},
        )
    return preference


# --- queueing -----------------------------------------------------------------------------------


def message_send(
    *,
    organization: Organization,
    kind: str,
    context: dict[str, Any],
    patient: Patient | None = None,
    staff_recipient: User | None = None,
    channel: str | None = None,
    to_address: str = "",
    secret: dict[str, Any] | None = None,
    attachments: Iterable[dict[str, str]] = (),
    dedupe_key: str | None = None,
) -> Message | None:
    """Queue one message; the worker delivers it after the caller's transaction commits.

    To a patient: on `channel`, or else the first channel they may be contacted on (e-mail,
    then SMS). When no channel is allowed the message is stored as not sent, with the reason,
    so staff see on the patient's page why nothing arrived. To staff: `channel` and
    `to_address` are required. Returns None when `dedupe_key` was already used.
    """
    if kind not in KINDS:
        raise ValueError(f"unknown message kind {kind!r}")
    status, reason = Message.Status.QUEUED, ""
    if patient is not None:
        statuses = selectors.contact_statuses(patient)
        candidates = [channel] if channel else [Channel.EMAIL.value, Channel.SMS.value]
        chosen = next((c for c in candidates if statuses[c].allowed), None)
        if chosen is None:
            channel = candidates[0]
            status = Message.Status.SUPPRESSED
            reason = "; ".join(f"{statuses[c].label}: {statuses[c].reason}" for c in candidates)
            to_address = statuses[channel].address
        else:
            channel, to_address = chosen, statuses[chosen].address
    elif not (channel and to_address):
        raise ValueError("a staff message needs a channel and an address")
    message = Message(
        organization=organization,
        patient=patient,
        staff_recipient=staff_recipient,
        kind=kind,
        channel=channel,
        to_address=to_address[:254],
        context=context,
        sealed_secret=sealing.seal(secret or {}) if status == Message.Status.QUEUED else "",
        attachments=list(attachments),
        status=status,
        status_reason=reason[:300],
        dedupe_key=dedupe_key,
    )
    try:
        with transaction.atomic():
            message.save()
    except IntegrityError:
        if dedupe_key is None:
            raise
        return None
    if status == Message.Status.QUEUED:
        public_id = str(message.public_id)
        transaction.on_commit(lambda: _enqueue_delivery(public_id))
    return message


def _enqueue_delivery(public_id: str) -> None:
    from ketaclinic.messaging.tasks import message_deliver_task

    try:
        message_deliver_task.enqueue(public_id)
    except Exception:
        # The periodic outbox job picks it up on the next round anyway.
        log.exception("could not enqueue delivery of message %s", public_id)


def patient_clinic(patient: Any) -> Clinic | None:
    """The clinic that sees the patient now: where their latest session or appointment is."""
    from ketaclinic.scheduling.models import Appointment
    from ketaclinic.sessions.models import TreatmentSession

    with scopes_disabled():
        latest = [
            row
            for row in (
                TreatmentSession.objects.filter(patient=patient)
                .order_by("-created_at", "-pk")
                .values_list("created_at", "clinic_id")
                .first(),
                Appointment.objects.filter(patient=patient)
                .order_by("-starts_at", "-pk")
                .values_list("starts_at", "clinic_id")
                .first(),
            )
            if row is not None
        ]
        if not latest:
            return None
        return Clinic.objects.filter(pk=max(latest)[1]).first()


def on_call_recipients(
    organization: Organization, role: str, *, clinic: Clinic | None = None
) -> list[tuple[str, str, User | None]]:
    """(channel, address, user) for the on-call contact, most specific first: the addresses set in
    the organization's contact policy; else the on-call clinician and phone of `clinic` (the
    patient's), when it names them; else those of every clinic; else the e-mail of every active
    member with the escalation role."""
    policy = selectors.contact_policy(organization)
    recipients: list[tuple[str, str, User | None]] = []
    if policy.on_call_email:
        recipients.append((Channel.EMAIL.value, policy.on_call_email, None))
    if policy.on_call_phone:
        recipients.append((Channel.SMS.value, policy.on_call_phone, None))
    if recipients:
        return recipients
    # The clinician each clinic names on call (Set-up > Clinics), and the number given for them.
    with scopes_disabled():
        clinics = list(
            Clinic.objects.filter(organization=organization).select_related("on_call_clinician")
        )
    own = [c for c in clinics if clinic is not None and c.pk == clinic.pk]
    for candidates in (own, clinics):
        for each in candidates:
            clinician = each.on_call_clinician
            if clinician is not None and clinician.is_active and clinician.email:
                recipients.append((Channel.EMAIL.value, clinician.email, clinician))
            if each.escalation_phone:
                recipients.append((Channel.SMS.value, each.escalation_phone, clinician))
        if recipients:
            return recipients
    members = Membership.objects.filter(
        organization=organization, role=role, is_active=True, user__is_active=True
    ).select_related("user")
    return [(Channel.EMAIL.value, m.user.email, m.user) for m in members if m.user.email]


# --- delivery -----------------------------------------------------------------------------------


@dataclass
class DeliveryResult:
    sent: int = 0
    retrying: int = 0
    failed: int = 0
    suppressed: int = 0


def _claim(message_pk: int, now: datetime) -> bool:
    return bool(
        Message.objects.filter(pk=message_pk, status=Message.Status.QUEUED)
        .filter(Q(next_attempt_at__isnull=True) | Q(next_attempt_at__lte=now))
        .update(status=Message.Status.SENDING, claimed_at=now, updated_at=now)
    )


def _finish(message: Message, now: datetime, **fields: Any) -> None:
    fields.setdefault("claimed_at", None)
    fields["updated_at"] = now
    Message.objects.filter(pk=message.pk).update(**fields)
    for name, value in fields.items():
        setattr(message, name, value)


def _still_allowed(message: Message) -> str:
    """Why a patient message may no longer go out ("" when it may)."""
    if message.patient is None:
        return ""
    status = selectors.contact_statuses(message.patient)[message.channel]
    if not status.allowed:
        return status.reason
    if status.address != message.to_address:
        return "the patient's address changed after the message was queued"
    return ""


def _attempt(
    message: Message, now: datetime, connection: Any
) -> tuple[dict[str, Any], DeliveryAttempt | None]:
    """Try one claimed message; returns the fields to store and the attempt row (unsaved), so a
    batch records all its outcomes in one transaction."""
    reason = _still_allowed(message)
    if reason:
        return {
            "status": Message.Status.SUPPRESSED,
            "status_reason": reason,
            "sealed_secret": "",
        }, None
    started = time.monotonic()
    try:
        outgoing = render_outgoing(
            kind=message.kind,
            channel=message.channel,
            to=message.to_address,
            context=message.context,
            secret=sealing.unseal(message.sealed_secret),
            attachments=message.attachments,
        )
        provider_id = _send(message.channel, outgoing, connection)
    except TransientFailure as failure:
        return _failed_attempt(message, now, failure, started, permanent=False)
    except (PermanentFailure, ValueError) as failure:
        detail = failure.detail if isinstance(failure, DeliveryFailure) else str(failure)
        return _failed_attempt(message, now, PermanentFailure(detail), started, permanent=True)
    fields: dict[str, Any] = {
        "status": Message.Status.SENT,
        "status_reason": "",
        "sent_at": now,
        "provider_message_id": provider_id,
        "sealed_secret": "",
        "attempt_count": message.attempt_count + 1,
        "next_attempt_at": None,
    }
    return fields, _attempt_row(message, now, DeliveryAttempt.Outcome.SENT, "", started)


def message_deliver(*, message: Message, now: datetime, connection: Any = None) -> str:
    """Try to deliver one queued message now; returns its status afterwards."""
    if not _claim(message.pk, now):
        return Message.objects.filter(pk=message.pk).values_list("status", flat=True).first() or ""
    fields, attempt = _attempt(message, now, connection)
    with transaction.atomic():
        if attempt is not None:
            attempt.save()
        _finish(message, now, **fields)
    return message.status


def _send(channel: str, outgoing: Any, connection: Any) -> str:
    if channel == Channel.EMAIL:
        if not email_configured():
            raise PermanentFailure("no e-mail server is configured (EMAIL_HOST)")
        return email_send(outgoing, connection=connection)
    provider = sms_provider()
    if provider is None:
        raise PermanentFailure("no SMS provider is configured (SMS_PROVIDER)")
    return provider.send(outgoing)


def _attempt_row(
    message: Message, now: datetime, outcome: str, detail: str, started: float
) -> DeliveryAttempt:
    return DeliveryAttempt(
        message=message,
        attempted_at=now,
        outcome=outcome,
        detail=detail[:300],
        duration_ms=int((time.monotonic() - started) * 1000),
    )


def _failed_attempt(
    message: Message, now: datetime, failure: DeliveryFailure, started: float, *, permanent: bool
) -> tuple[dict[str, Any], DeliveryAttempt]:
    attempts = message.attempt_count + 1
    delay = None if permanent else backoff.retry_delay(attempts)
    if delay is not None:
        row = _attempt_row(message, now, DeliveryAttempt.Outcome.RETRY, failure.detail, started)
        fields = {
            "status": Message.Status.QUEUED,
            "status_reason": failure.detail,
            "attempt_count": attempts,
            "next_attempt_at": now + delay,
        }
        return fields, row
    outcome = DeliveryAttempt.Outcome.BOUNCED if permanent else DeliveryAttempt.Outcome.GAVE_UP
    row = _attempt_row(message, now, outcome, failure.detail, started)
    reason = failure.detail if permanent else f"gave up after {attempts} attempts: {failure.detail}"
    fields = {
        "status": Message.Status.FAILED,
        "status_reason": reason[:300],
        "attempt_count": attempts,
        "next_attempt_at": None,
        "sealed_secret": "",
    }
    return fields, row


CLAIM_BATCH = 100


def outbox_deliver_due(*, now: datetime, limit: int = DUE_BATCH) -> DeliveryResult:
    """Deliver every queued message whose time has come (all organizations) over one SMTP
    connection. Messages are claimed and their outcomes recorded a hundred at a time (two short
    transactions per hundred, not three per message); a message another worker claimed first is
    skipped. A worker dying mid-batch leaves claims that are released after STALE_CLAIM, so a
    message is delivered at least once."""
    result = DeliveryResult()
    with scopes_disabled():
        Message.objects.filter(
            status=Message.Status.SENDING, claimed_at__lt=now - STALE_CLAIM
        ).update(status=Message.Status.QUEUED, claimed_at=None, updated_at=now)
        due = list(
            Message.objects.select_related("organization", "patient")
            .filter(status=Message.Status.QUEUED)
            .filter(Q(next_attempt_at__isnull=True) | Q(next_attempt_at__lte=now))
            .order_by("pk")[:limit]
        )
    if not due:
        return result
    connection = email_connection() if email_configured() else None
    try:
        if connection is not None:
            try:
                connection.open()
            except OSError:
                connection = None  # each send reports the outage on its own message
        for first in range(0, len(due), CLAIM_BATCH):
            _deliver_batch(due[first : first + CLAIM_BATCH], now, connection, result)
    finally:
        if connection is not None:
            connection.close()
    return result


def _deliver_batch(
    batch: list[Message], now: datetime, connection: Any, result: DeliveryResult
) -> None:
    pks = [m.pk for m in batch]
    with scopes_disabled(), transaction.atomic():
        Message.objects.filter(pk__in=pks, status=Message.Status.QUEUED).filter(
            Q(next_attempt_at__isnull=True) | Q(next_attempt_at__lte=now)
        ).update(status=Message.Status.SENDING, claimed_at=now, updated_at=now)
        claimed = set(
            Message.objects.filter(
                pk__in=pks, status=Message.Status.SENDING, claimed_at=now
            ).values_list("pk", flat=True)
        )
    outcomes = []
    for message in batch:
        if message.pk not in claimed:
            continue
        with scope(organization=message.organization):
            outcomes.append((message, *_attempt(message, now, connection)))
    with scopes_disabled(), transaction.atomic():
        DeliveryAttempt.objects.bulk_create([row for _, _, row in outcomes if row is not None])
        for message, fields, _ in outcomes:
            _finish(message, now, **fields)
            _count(result, message.status)


def _count(result: DeliveryResult, status: str) -> None:
    if status == Message.Status.SENT:
        result.sent += 1
    elif status == Message.Status.QUEUED:
        result.retrying += 1
    elif status == Message.Status.FAILED:
        result.failed += 1
    elif status == Message.Status.SUPPRESSED:
        result.suppressed += 1
