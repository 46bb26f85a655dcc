"""What producers in other apps call to send a message with a one-time link or to staff: the
clinic's facts every message names, times in the clinic's zone, and absolute URLs.

Kept here (not in each producer) so that every link message treats its token the same way: it is
passed in the sealed secret only, never into `context`, the audit trail or a log.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from django.urls import reverse

from ketaclinic.accounts.models import Clinic, Organization
from ketaclinic.messaging.models import Message
from ketaclinic.messaging.patient_pages import crisis_lines
from ketaclinic.messaging.services import (
    message_send,
    on_call_recipients,
    patient_clinic,
    public_url,
)
from ketaclinic.patients.models import Patient


def clinic_for(organization: Organization, clinic: Clinic | None = None) -> Clinic | None:
    return clinic or Clinic.objects.filter(organization=organization).order_by("pk").first()


def local_time_text(moment: datetime, time_zone: str) -> str:
    """ "Monday 2 March 2026 at 9:00 AM CST": what a patient reads, in the clinic's zone."""
    local = moment.astimezone(ZoneInfo(time_zone))
    hour = local.strftime("%I").lstrip("0")
    return f"{local:%A} {local.day} {local:%B %Y} at {hour}:{local:%M %p} {local.tzname()}"


def clinic_context(organization: Organization, clinic: Clinic | None = None) -> dict[str, Any]:
    clinic = clinic_for(organization, clinic)
    return {
        "clinic_name": clinic.name if clinic else organization.name,
        "clinic_phone": clinic.phone if clinic else "",
        "address": clinic.address if clinic else "",
        "time_zone": clinic.time_zone if clinic else "UTC",
        # The clinic's own crisis numbers (Set-up > Patient portal), in the words of every page.
        "crisis_sentence": crisis_lines(organization).sentence(),
    }


def send_link_message(
    *,
    organization: Organization,
    patient: Patient,
    kind: str,
    path: str,
    expires_at: datetime,
    channel: str | None = None,
) -> Message | None:
    """Send a one-time link (a questionnaire, a portal invitation) to the patient, if allowed;
    on `channel` only when given (a sign-in link goes by e-mail only)."""
    context = clinic_context(organization)
    context["expires"] = local_time_text(expires_at, context["time_zone"])
    return message_send(
        organization=organization,
        patient=patient,
        kind=kind,
        context=context,
        channel=channel,
        secret={"url": public_url(path)},
    )


def send_alert_escalation(
    *,
    organization: Organization,
    alert_public_id: Any,
    severity: str,
    minutes: int,
    role: str,
    patient: Any = None,
) -> int:
    """Tell the clinician on call that an alert waits; no patient detail leaves ketaclinic."""
    context = clinic_context(organization)
    context.update(
        severity=severity,
        minutes=minutes,
        url=public_url(reverse("measures:alert-detail", kwargs={"alert_id": alert_public_id})),
    )
    sent = 0
    clinic = patient_clinic(patient) if patient is not None else None
    for channel, address, user in on_call_recipients(organization, role, clinic=clinic):
        message = message_send(
            organization=organization,
            kind="alert_escalation",
            channel=channel,
            to_address=address,
            staff_recipient=user,
            context=context,
            dedupe_key=f"alert-escalation:{alert_public_id}:{channel}:{address}"[:120],
        )
        sent += message is not None
    return sent
