"""Messaging pieces other templates include: the patient's contact and delivery panel (chart) and
the Today page's notice when no delivery channel is configured. Fixed query counts."""

from __future__ import annotations

from typing import Any

from django import template

from ketaclinic.accounts.models import Clinic
from ketaclinic.messaging import selectors

register = template.Library()


@register.inclusion_tag("messaging/patient_panel.html", takes_context=True)
def messaging_patient_panel(context: Any, patient: Any) -> dict[str, Any]:
    caps = context.get("caps", set())
    allowed = "messaging.view" in caps
    messages = selectors.messages_for_patient(patient) if allowed else []
    return {
        "allowed": allowed,
        "can_edit": "messaging.contact.edit" in caps,
        "patient": patient,
        "statuses": list(selectors.contact_statuses(patient).values()) if allowed else [],
        "messages": messages,
        "failed": [m for m in messages if m.status == "failed"],
        "time_zone": _clinic_time_zone(patient) if allowed else "UTC",
        "csrf_token": context.get("csrf_token"),
    }


@register.inclusion_tag("messaging/failed_banner.html", takes_context=True)
def messaging_failed_banner(context: Any, patient: Any) -> dict[str, Any]:
    """One query on every chart page: a message that did not arrive must not go unnoticed."""
    caps = context.get("caps", set())
    failed = selectors.messages_failed_count(patient) if "messaging.view" in caps else 0
    return {"failed": failed, "patient": patient}


def _clinic_time_zone(patient: Any) -> str:
    zones = Clinic.objects.filter(organization=patient.organization).order_by("pk")
    return zones.values_list("time_zone", flat=True).first() or "UTC"


@register.inclusion_tag("messaging/channels_notice.html", takes_context=True)
def messaging_channels_notice(context: Any) -> dict[str, Any]:
    caps = context.get("caps", set())
    configured = selectors.channels_configured()
    return {
        "show": "messaging.policy.edit" in caps and not any(configured.values()),
        "configured": configured,
    }


@register.simple_tag
def crisis_lines(organization: Any) -> Any:
    """The clinic's crisis numbers (Set-up > Patient portal; US defaults until it sets its own):
    `{% crisis_lines organization as crisis %}`. One query."""
    from ketaclinic.messaging.patient_pages import crisis_lines as lines_for

    return lines_for(organization)
