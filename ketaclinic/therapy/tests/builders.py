"""Set-ups for the therapy tests: a KAP patient with a plan and a therapist on the team."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from ketaclinic.accounts.actor import Actor
from ketaclinic.core import clock
from ketaclinic.therapy import services
from ketaclinic.therapy.notes import MENTAL_STATUS

MENTAL_STATUS_OK = {field.key: "Within normal limits" for field in MENTAL_STATUS}
CONTENT: dict[str, dict[str, Any]] = {
    "preparation": {
        "intentions": "Understand the grief that keeps returning.",
        "set_and_setting": "Quiet room, eye mask, chosen music.",
        "expectations": "Afraid of losing control.",
        "safety_plan": "Sister drives home; crisis line card given.",
    },
    "dosing_support": {
        "interventions": "Grounding, breath cues at the peak.",
        "reported_experience": "Vivid memories of childhood home, then calm.",
        "post_session_checklist": ["felt_safe", "meaningful_content"],
    },
    "integration": {
        "themes": "Loss and self-compassion.",
        "insights": "Grief is not a failure.",
        "behaviour_changes": "Walked daily, called a friend.",
        "homework": "Journal three evenings.",
    },
}


def complete_note(
    actor: Actor, visit: Any, *, risk_level: str = "none", risk_notes: str = ""
) -> Any:
    return services.visit_save(
        actor=actor,
        visit=visit,
        content=CONTENT[visit.kind],
        mental_status=MENTAL_STATUS_OK,
        risk_level=risk_level,
        risk_notes=risk_notes,
        narrative="Engaged and open throughout.",
        ended_at=visit.ended_at or clock.now(),
    )


def signed_visit(actor: Actor, patient: Any, kind: str = "preparation", **kw: Any) -> Any:
    visit = services.visit_create(
        actor=actor,
        patient=patient,
        kind=kind,
        started_at=clock.now() - timedelta(minutes=55),
        **kw,
    )
    complete_note(actor, visit)
    return services.visit_sign(actor=actor, visit=visit)
