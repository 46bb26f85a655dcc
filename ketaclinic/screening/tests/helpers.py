"""Chart set-ups shared by the screening and consent tests (database; call inside a scope)."""

from __future__ import annotations

from datetime import date
from typing import Any

from ketaclinic.accounts.actor import Actor
from ketaclinic.patients import services as chart
from ketaclinic.screening import rules, services
from ketaclinic.screening.models import ScreeningEvaluation

CLEAN_INTAKE: dict[str, Any] = dict(rules.CLEAN_INTAKE)


def chart_ready_for_screening(actor: Actor, patient: Any, **intake: Any) -> None:
    """A clean intake, a normal blood pressure today and two failed adequate trials (TRD)."""
    for drug in ("sertraline", "venlafaxine"):
        chart.medication_add(
            actor=actor,
            patient=patient,
            data={
                "drug_name": drug,
                "status": "stopped",
                "start_date": date(2025, 1, 1),
                "is_antidepressant_trial": True,
                "adequate_trial": True,
                "in_current_episode": True,
                "trial_outcome": "none",
            },
        )
    chart.vital_sign_record(
        actor=actor,
        patient=patient,
        kind="bp",
        value=118,
        value_diastolic=76,
        unit="mm[Hg]",
        code="85354-9",
    )
    services.intake_record(actor=actor, patient=patient, data={**CLEAN_INTAKE, **intake})


def screen_and_decide(
    actor: Actor,
    patient: Any,
    routes: tuple[str, ...] = ("intravenous",),
    decision: str = "eligible",
) -> ScreeningEvaluation:
    evaluation = services.screening_evaluate(actor=actor, patient=patient)
    for item in evaluation.decisions.filter(route__in=routes):
        services.screening_decision_review(
            actor=actor,
            decision=item,
            final_decision=decision,
            justification="Reviewed in person with the patient; benefits outweigh risks.",
        )
    return evaluation
