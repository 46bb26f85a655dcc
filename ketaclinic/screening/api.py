"""JSON API for screening and the treatment gate (mounted at /api/v1/)."""

from __future__ import annotations

import uuid
from datetime import date, datetime
from typing import Any, Literal

from ninja import Body, Field, Router, Schema, Status

from ketaclinic.accounts.actor import ActorRequest
from ketaclinic.accounts.audit import audit_record
from ketaclinic.accounts.roles import Cap
from ketaclinic.core import clock
from ketaclinic.core.api import ERROR_RESPONSES
from ketaclinic.core.errors import NotFound
from ketaclinic.patients.selectors import patient_chart_read, patient_get_for_actor
from ketaclinic.screening import selectors, services
from ketaclinic.screening.gates import treatment_gate_require
from ketaclinic.screening.models import ScreeningDecision

router = Router(tags=["screening"])

RouteName = Literal[
    "intravenous",
    "intramuscular",
    "intranasal_esketamine",
    "sublingual_oral_in_clinic",
    "sublingual_at_home",
]


class EligibilityIn(Schema):
    route: RouteName
    setting: Literal["clinic", "home"]


class EligibilityOut(Schema):
    ok: bool
    route: str
    setting: str
    decision_id: uuid.UUID | None = None
    consent_id: uuid.UUID | None = None


@router.post(
    "/patients/{patient_id}/treatment-eligibility-check",
    response={200: EligibilityOut, **ERROR_RESPONSES},
)
def treatment_eligibility_check(
    request: ActorRequest, patient_id: str, payload: EligibilityIn
) -> Any:
    """200 when treatment by the route in the setting may go ahead; 422 naming what is missing."""
    from ketaclinic.screening.gates import treatment_gate_check

    actor = request.auth
    actor.require(Cap.CLINICAL_VIEW)
    patient = patient_get_for_actor(actor, patient_id)
    now = clock.now()
    gate = treatment_gate_check(
        patient=patient, route=payload.route, setting=payload.setting, at=now
    )
    audit_record(
        actor=actor,
        action="screening.gate.checked",
        patient_id=patient.public_id,
        detail={
            "route": payload.route,
            "setting": payload.setting,
            "ok": gate.ok,
            "missing": gate.missing,
        },
    )
    if not gate.ok:
        treatment_gate_require(
            patient=patient, route=payload.route, setting=payload.setting, at=now
        )
    return {
        "ok": True,
        "route": payload.route,
        "setting": payload.setting,
        "decision_id": gate.decision.public_id if gate.decision else None,
        "consent_id": gate.signature.public_id if gate.signature else None,
    }


class FindingOut(Schema):
    rule: str
    severity: str
    reason: str
    citation: str


class DecisionOut(Schema):
    id: uuid.UUID = Field(..., alias="public_id")
    route: str
    computed_decision: str
    status: str
    final_decision: str
    overridden: bool
    justification: str
    findings: list[FindingOut]
    rule_versions: list[str]
    policy_ref: str
    inputs_fingerprint: str
    valid_until: date
    decided_at: datetime | None


class EvaluationOut(Schema):
    id: uuid.UUID = Field(..., alias="public_id")
    algorithm: str
    policy_ref: str
    inputs_fingerprint: str
    assessed_on: date
    valid_until: date
    trd_status: str
    trd_rule: str
    decisions: list[DecisionOut]


def _evaluation_out(evaluation: Any) -> dict[str, Any]:
    out = {f: getattr(evaluation, f) for f in EvaluationOut.model_fields if f != "decisions"}
    out["public_id"] = evaluation.public_id
    out["decisions"] = selectors.decisions_of_evaluation(evaluation)
    return out


@router.get("/patients/{patient_id}/screening", response={200: EvaluationOut, **ERROR_RESPONSES})
def screening_latest(request: ActorRequest, patient_id: str) -> Any:
    actor = request.auth
    actor.require(Cap.CLINICAL_VIEW)
    patient = patient_chart_read(actor, patient_id, action="screening.api.read")
    evaluation = selectors.evaluation_latest(patient)
    if evaluation is None:
        raise NotFound("No screening recorded for this patient.")
    return _evaluation_out(evaluation)


@router.post("/patients/{patient_id}/screening", response={201: EvaluationOut, **ERROR_RESPONSES})
def screening_run(request: ActorRequest, patient_id: str) -> Any:
    actor = request.auth
    actor.require(Cap.SCREENING_RECORD)
    patient = patient_get_for_actor(actor, patient_id)
    return Status(201, _evaluation_out(services.screening_evaluate(actor=actor, patient=patient)))


@router.post("/patients/{patient_id}/intake", response={201: dict, **ERROR_RESPONSES})
def intake_post(request: ActorRequest, patient_id: str, payload: Body[dict[str, Any]]) -> Any:
    """The intake answers as the JSON body (they used to be read from a query parameter)."""
    actor = request.auth
    actor.require(Cap.SCREENING_RECORD)
    patient = patient_get_for_actor(actor, patient_id)
    intake = services.intake_record(actor=actor, patient=patient, data=payload)
    return Status(201, {"id": str(intake.public_id)})


class DecideIn(Schema):
    final_decision: Literal["eligible", "ineligible"]
    justification: str = Field("", max_length=5000)


@router.post(
    "/screening-decisions/{decision_id}/decide", response={200: DecisionOut, **ERROR_RESPONSES}
)
def decision_decide(request: ActorRequest, decision_id: uuid.UUID, payload: DecideIn) -> Any:
    actor = request.auth
    actor.require(Cap.SCREENING_DECIDE)
    decision = (
        ScreeningDecision.objects.select_related("patient", "evaluation")
        .filter(public_id=decision_id)
        .first()
    )
    if decision is None:
        raise NotFound("No such screening decision.")
    return services.screening_decision_review(
        actor=actor,
        decision=decision,
        final_decision=payload.final_decision,
        justification=payload.justification,
    )


# --- the clinic's screening policy ----------------------------------------------------------


class PolicyOut(Schema):
    policy_id: str
    version: int
    data: dict[str, Any]
    note: str


class PolicyChangeIn(Schema):
    changes: dict[str, Any] = Field(
        ..., description="Policy fields to change, by name (the rest is kept); see GET"
    )
    note: str = Field(..., max_length=2000, description="Why the policy changes")


@router.get("/screening/policy", response={200: PolicyOut, **ERROR_RESPONSES})
def screening_policy_read(request: ActorRequest) -> Any:
    """The clinic's current policy: every threshold and each rule's severity per route."""
    actor = request.auth
    actor.require(Cap.SCREENING_POLICY_EDIT)
    row = selectors.screening_policy_current(actor.organization)
    policy = selectors.policy_from_row(row)
    return {
        "policy_id": policy.policy_id,
        "version": policy.version,
        "data": policy.to_dict(),
        "note": row.note if row else "",
    }


@router.post("/screening/policy", response={201: PolicyOut, **ERROR_RESPONSES})
def screening_policy_publish(request: ActorRequest, payload: PolicyChangeIn) -> Any:
    """Publish the next version: the current policy with these changes, validated as a whole
    (label contraindications stay absolute, TRD needs at least two trials...)."""
    row = services.screening_policy_publish(
        actor=request.auth, changes=payload.changes, note=payload.note
    )
    return Status(
        201,
        {"policy_id": row.policy_id, "version": row.version, "data": row.data, "note": row.note},
    )
