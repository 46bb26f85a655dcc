"""Reads for messaging: whether a patient may be contacted on each channel, their messages, and
which channels this installation has configured."""

from __future__ import annotations

from dataclasses import dataclass

from django.db.models import Prefetch

from ketaclinic.accounts.models import Organization
from ketaclinic.messaging.channels.email import email_configured
from ketaclinic.messaging.channels.sms import sms_provider
from ketaclinic.messaging.models import (
    Channel,
    ContactPolicy,
    ContactPreference,
    DeliveryAttempt,
    Message,
)
from ketaclinic.patients.models import Patient


@dataclass(frozen=True)
class ContactStatus:
    channel: str
    label: str
    address: str
    allowed: bool
    reason: str  # why, in words a front desk reads
    explicit: bool  # the patient's own answer rather than the clinic's default


def contact_policy(organization: Organization) -> ContactPolicy:
    """The clinic's row, or unsaved conservative defaults (nobody contacted without agreeing)."""
    return ContactPolicy.objects.filter(organization=organization).first() or ContactPolicy(
        organization=organization
    )


def patient_address(patient: Patient, channel: str) -> str:
    return (patient.email if channel == Channel.EMAIL else patient.phone).strip()


def contact_statuses(
    patient: Patient, *, policy: ContactPolicy | None = None
) -> dict[str, ContactStatus]:
    policy = policy or contact_policy(patient.organization)
    answers = {p.channel: p for p in ContactPreference.objects.filter(patient=patient)}
    statuses = {}
    for channel, label in Channel.choices:
        address = patient_address(patient, channel)
        answer = answers.get(channel)
        default = (
            policy.email_allowed_by_default
            if channel == Channel.EMAIL
            else policy.sms_allowed_by_default
        )
        if not address:
            allowed, reason = False, "no address on file"
        elif answer is not None:
            allowed = answer.allowed
            reason = "allowed by the patient" if allowed else "the patient opted out"
        elif default:
            allowed, reason = True, "allowed by the clinic's default"
        else:
            allowed, reason = False, "not yet agreed (the clinic asks first)"
        statuses[channel] = ContactStatus(
            channel, label, address, allowed, reason, explicit=answer is not None
        )
    return statuses


def messages_for_patient(patient: Patient, *, limit: int = 20) -> list[Message]:
    return list(
        Message.objects.filter(patient=patient)
        .prefetch_related(
            Prefetch("attempts", queryset=DeliveryAttempt.objects.order_by("attempted_at", "pk"))
        )
        .order_by("-created_at", "-pk")[:limit]
    )


def messages_failed_count(patient: Patient) -> int:
    return Message.objects.filter(patient=patient, status=Message.Status.FAILED).count()


def channels_configured() -> dict[str, bool]:
    return {Channel.EMAIL.value: email_configured(), Channel.SMS.value: sms_provider() is not None}
