"""The chart's Consent section: each template with the patient's standing and signed copies."""

from __future__ import annotations

from typing import Any

from django import template

from ketaclinic.consent import selectors

register = template.Library()


@register.inclusion_tag("consent/chart_section.html", takes_context=True)
def consent_section(context: Any, patient: Any) -> dict[str, Any]:
    caps = context.get("caps", set())
    allowed = "consent.view" in caps
    return {
        "patient": patient,
        "caps": caps,
        "allowed": allowed,
        "rows": selectors.consent_rows(patient) if allowed else [],
        "signatures": selectors.signatures_for_patient(patient) if allowed else [],
        "portal_account": selectors.portal_account_for_patient(patient) if allowed else None,
        "csrf_token": context.get("csrf_token"),
    }


@register.inclusion_tag("consent/withdrawals_panel.html", takes_context=True)
def consent_withdrawals_panel(context: Any) -> dict[str, Any]:
    """Today page: consents patients withdrew in the portal in the last 14 days, as an alert."""
    caps = context.get("caps", set())
    allowed = "consent.view" in caps
    return {"allowed": allowed, "withdrawals": selectors.withdrawals_recent() if allowed else []}
