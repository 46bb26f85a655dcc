"""Set-up writes that span apps: who safety alerts escalate to and after how long.

The escalation settings live in the measure policy (a versioned, published row): changing them
publishes a new version that keeps the current scoring values and alert thresholds.
"""

from __future__ import annotations

from typing import Any

from ketaclinic.accounts.actor import Actor
from ketaclinic.accounts.roles import Cap
from ketaclinic.core.errors import ValidationFailed
from ketaclinic.measures.models import MeasurePolicy
from ketaclinic.measures.services import measure_policy_current, measure_policy_publish


def escalation_current(actor: Actor) -> MeasurePolicy:
    return measure_policy_current(actor.organization)


def escalation_update(
    *, actor: Actor, escalation_minutes: Any, escalation_role: str, note: str = ""
) -> MeasurePolicy:
    """Publish a measure policy version with new escalation settings (one audit event)."""
    actor.require(Cap.SETUP_MANAGE)
    try:
        minutes = int(str(escalation_minutes).strip())
    except ValueError:
        raise ValidationFailed.for_field(
            "escalation_minutes", "Enter a whole number of minutes."
        ) from None
    current = measure_policy_current(actor.organization)
    return measure_policy_publish(
        actor=actor,
        scoring_values=current.scoring_values,
        total_alert_thresholds=current.total_alert_thresholds,
        escalation_minutes=minutes,
        escalation_role=escalation_role,
        note=note or "Escalation settings changed in set-up.",
    )
