"""Screening writes: policy versions, intake history, evaluations and prescriber decisions.

Each service checks the capability, validates, writes in one transaction and records one audit
event per clinical write, with the policy and rule versions in its detail.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import fields
from decimal import Decimal, InvalidOperation
from enum import StrEnum
from typing import TYPE_CHECKING, Any

from django.db import transaction

from ketaclinic.accounts.actor import Actor
from ketaclinic.accounts.audit import audit_record
from ketaclinic.accounts.models import Organization, User
from ketaclinic.accounts.roles import Cap
from ketaclinic.core import clock
from ketaclinic.core.errors import Conflict, FieldError, Forbidden, SafetyStop, ValidationFailed
from ketaclinic.measures.services import alert_raise_for_intake
from ketaclinic.patients.models import Patient
from ketaclinic.screening import selectors
from ketaclinic.screening.models import (
    IntakeHistory,
    ScreeningDecision,
    ScreeningEvaluation,
    ScreeningPolicyVersion,
)
from ketaclinic.screening.policy import BloodPressureLimit, ScreeningPolicy
from ketaclinic.screening.rules import (
    RULES,
    DiseaseStatus,
    HepaticImpairment,
    HypertensionStatus,
    SuicidalIdeation,
    evaluate,
)

if TYPE_CHECKING:
    from ketaclinic.consent.models import PortalAccount

MIN_JUSTIFICATION = 20  # characters: a sentence, not "ok"
MAX_MEDICATION_CHANGES = 1000  # characters a patient may report in the portal
BP_LIMIT_FIELDS = frozenset({"bp_review_above", "bp_hold_above", "home_bp_limit_above"})

INTAKE_CHOICE_FIELDS: dict[str, type[StrEnum]] = {
    "suicidal_ideation": SuicidalIdeation,
    "hypertension": HypertensionStatus,
    "cardiovascular_disease": DiseaseStatus,
    "cerebrovascular_disease": DiseaseStatus,
    "hepatic_impairment": HepaticImpairment,
}
INTAKE_FIELDS = tuple(
    f.name
    for f in IntakeHistory._meta.get_fields()
    if f.concrete
    and f.name
    not in {
        "id",
        "created_at",
        "updated_at",
        "public_id",
        "organization",
        "patient",
        "recorded_by",
        "source",
        "external_id",
    }
)

# What a patient answers about themselves in the portal (see intake_record_portal).
PORTAL_INTAKE_FIELDS = tuple(
    name
    for name in INTAKE_FIELDS
    if name
    not in {"medications_reconciled", "benzodiazepine_lorazepam_equivalent_mg_per_day", "note"}
)


# Active suicidal ideation with intent or a plan is the rules' at-home exclusion
# (clinical-reference §3.2 [S] #53) and high risk on the C-SSRS screener (intent, Q4, or a plan
# with intent, Q5: §5.1 [C] #89, #90, #91). Answered in an intake, it alerts a clinician now,
# through the measures safety alerts, as a high-risk C-SSRS response does.
INTAKE_ALERT_LEVEL = SuicidalIdeation.ACTIVE_WITH_INTENT_OR_PLAN
INTAKE_ALERT_RULE = RULES["suicidal-ideation-active-with-intent-or-plan"]
C_SSRS_CITATION = "clinical-reference §5.1 C-SSRS [C] #89, #90, #91"


# --- policy -------------------------------------------------------------------------------


def _policy_store(
    *, actor: Actor | None, organization: Organization, policy: ScreeningPolicy, note: str
) -> ScreeningPolicyVersion:
    row = ScreeningPolicyVersion.objects.create(
        organization=organization,
        policy_id=policy.policy_id,
        version=policy.version,
        data=policy.to_dict(),
        note=note,
        published_by=actor.user if actor else None,
    )
    audit_record(
        actor=actor,
        organization=organization,
        action="screening.policy.published",
        obj=row,
        detail={"policy": policy.ref, "note": note},
    )
    return row


def screening_policy_publish(
    *, actor: Actor, changes: Mapping[str, Any], note: str
) -> ScreeningPolicyVersion:
    """Publish the next version of the clinic's policy: the current one with `changes` applied.

    The pure ScreeningPolicy decides what is allowed (label contraindications stay absolute,
    at least two failed trials for TRD, the hold threshold not below the review threshold...);
    each refusal names the field at fault.
    """
    actor.require(Cap.SCREENING_POLICY_EDIT)
    errors = [
        FieldError(name, "This cannot be changed.")
        for name in sorted(set(changes) & {"policy_id", "version"})
    ]
    for name in BP_LIMIT_FIELDS & set(changes):
        try:
            BloodPressureLimit(**changes[name])
        except (TypeError, ValueError):
            errors.append(FieldError(name, "Diastolic must be above 0 and below systolic."))
    if not note.strip():
        errors.append(FieldError("note", "Say why the policy changes."))
    if errors:
        raise ValidationFailed("The screening policy is not valid.", errors)
    with transaction.atomic():
        current = selectors.screening_policy_current(actor.organization)
        base = selectors.policy_from_row(current).to_dict()
        base.update(changes)
        base["version"] = (current.version if current else 0) + 1
        try:
            policy = ScreeningPolicy.from_dict(base)
        except (ValueError, TypeError, ArithmeticError) as exc:
            message = str(exc)
            raise ValidationFailed(
                f"The screening policy is not valid: {message}",
                [FieldError(_policy_field(message), message)],
            ) from None
        return _policy_store(actor=actor, organization=actor.organization, policy=policy, note=note)


def _policy_field(message: str) -> str:
    """The policy field a ScreeningPolicy refusal is about (its messages name them)."""
    if "hold threshold" in message:
        return "bp_hold_above"
    names = sorted((f.name for f in fields(ScreeningPolicy)), key=len, reverse=True)
    found = next((name for name in names if name in message), None)
    if found is None:
        return "severities"  # a label lock or a severity ladder, named by rule id
    return found


def _policy_for_use(actor: Actor) -> ScreeningPolicyVersion:
    row = selectors.screening_policy_current(actor.organization)
    if row is None:
        row = _policy_store(
            actor=actor,
            organization=actor.organization,
            policy=ScreeningPolicy(),
            note="Defaults from ketaclinic.screening.policy (clinical-reference citations).",
        )
    return row


# --- intake -------------------------------------------------------------------------------


def _clean_intake(data: Mapping[str, Any]) -> dict[str, Any]:
    unknown = sorted(set(data) - set(INTAKE_FIELDS))
    if unknown:
        raise ValidationFailed(
            "Unknown fields.", [FieldError(f, "This field does not exist.") for f in unknown]
        )
    errors: list[FieldError] = []
    values: dict[str, Any] = {}
    for name, value in data.items():
        if name in INTAKE_CHOICE_FIELDS:
            value = value or ""
            allowed = [item.value for item in INTAKE_CHOICE_FIELDS[name]]
            if value and value not in allowed:
                errors.append(FieldError(name, f"Choose one of: {', '.join(allowed)}."))
        elif name == "benzodiazepine_lorazepam_equivalent_mg_per_day":
            if value not in (None, ""):
                try:
                    value = Decimal(str(value))
                except InvalidOperation:
                    errors.append(FieldError(name, "Enter a number of mg a day."))
                else:
                    if not Decimal(0) <= value <= Decimal(100):
                        errors.append(FieldError(name, "Enter 0 to 100 mg a day."))
            else:
                value = None
        elif name == "note":
            value = str(value or "")[:5000]
        elif name == "medications_reconciled":
            value = bool(value)
        elif value is not None and not isinstance(value, bool):
            errors.append(FieldError(name, "Answer yes, no, or leave empty (not documented)."))
        values[name] = value
    if errors:
        raise ValidationFailed("Some intake answers are not valid.", errors)
    return values


def intake_record(
    *, actor: Actor, patient: Patient, data: Mapping[str, Any], source: str = "clinic"
) -> IntakeHistory:
    """Record the intake history as answered now (a new row; the previous one is kept)."""
    actor.require(Cap.SCREENING_RECORD)
    values = _clean_intake(data)
    return _intake_store(
        patient=patient,
        values=values,
        recorded_by=actor.user,
        source=source,
        actor=actor,
        # The clinician who recorded it answers the alert first, as for a measure they enter.
        alert_responsible=actor.user if actor.can(Cap.ALERT_ACKNOWLEDGE) else None,
    )


def intake_record_portal(
    *,
    account: PortalAccount,
    data: Mapping[str, Any],
    medication_changes: str = "",
    client_address: str = "",
) -> IntakeHistory:
    """The patient answers their own intake history in the portal.

    The same validation and storage as the staff path, so a changed answer invalidates a
    screening decision exactly as it does there. A patient answers only the questions in
    PORTAL_INTAKE_FIELDS: whether the medication list was reconciled, the benzodiazepine dose
    (a clinician's conversion) and the staff note stay with the care team. Medication changes the
    patient reports are added to the note, and mark the medication list as no longer reconciled,
    so the rules read the interacting medications as not documented until staff reconcile them.
    """
    if not account.is_active:
        raise Forbidden("This portal account is closed.")
    staff_only = sorted(set(data) - set(PORTAL_INTAKE_FIELDS))
    if staff_only:
        raise ValidationFailed(
            "Some answers are recorded by the care team only.",
            [FieldError(f, "This answer is recorded by the care team.") for f in staff_only],
        )
    values = _clean_intake(data)
    reported = " ".join((medication_changes or "").split())
    if len(reported) > MAX_MEDICATION_CHANGES:
        raise ValidationFailed.for_field(
            "medication_changes", f"Please keep this under {MAX_MEDICATION_CHANGES} characters."
        )
    patient = account.patient
    if reported:
        previous = selectors.intake_current(patient)
        today = selectors.local_date(patient.organization, clock.now()).isoformat()
        line = f"Medication changes reported by the patient in the portal on {today}: {reported}"
        note = f"{previous.note}\n{line}" if previous and previous.note else line
        values["note"] = note[-5000:]
        values["medications_reconciled"] = False
    return _intake_store(
        patient=patient,
        values=values,
        recorded_by=account.user,
        source="patient",
        actor=None,
        audit={"user": account.user, "channel": "portal", "client_address": client_address[:45]},
        detail={"medication_changes_reported": bool(reported)},
    )


def _intake_alert_finding(values: Mapping[str, Any], source: str) -> dict[str, str] | None:
    """The alert finding for answers given in this save, or None.

    Only an answer given now raises it (a partial save that carries the previous answer over
    does not): the patient or staff member said so at this moment.
    """
    if values.get("suicidal_ideation") != INTAKE_ALERT_LEVEL:
        return None
    who = (
        "reported by the patient in the portal"
        if source == "patient"
        else "recorded in the intake history"
    )
    return {
        "rule": INTAKE_ALERT_RULE.ref,
        "finding": INTAKE_ALERT_RULE.rule_id,
        "label": f"Intake: active suicidal ideation with intent or a plan ({who})",
        "source": f"{INTAKE_ALERT_RULE.citation}; {C_SSRS_CITATION}",
        "detail": f"suicidal_ideation answered {INTAKE_ALERT_LEVEL.value}",
    }


def _intake_store(
    *,
    patient: Patient,
    values: Mapping[str, Any],
    recorded_by: User,
    source: str,
    actor: Actor | None,
    audit: Mapping[str, Any] | None = None,
    detail: Mapping[str, Any] | None = None,
    alert_responsible: User | None = None,
) -> IntakeHistory:
    """Store the answers over the current intake as a new row, with one audit event.

    Active suicidal ideation with intent or a plan raises a clinician alert in the same
    transaction (unless an intake alert of the patient is still open); the audit event names it.
    """
    finding = _intake_alert_finding(values, source)
    previous = selectors.intake_current(patient)
    base = {name: getattr(previous, name) for name in INTAKE_FIELDS} if previous else {}
    base.update(values)
    with transaction.atomic():
        intake = IntakeHistory.objects.create(
            organization=patient.organization,
            patient=patient,
            recorded_by=recorded_by,
            source=source,
            **base,
        )
        raised = (
            alert_raise_for_intake(intake=intake, finding=finding, responsible=alert_responsible)
            if finding
            else None
        )
        changed = sorted(
            n for n in INTAKE_FIELDS if previous is None or getattr(previous, n) != base.get(n)
        )
        audit_record(
            actor=actor,
            organization=patient.organization,
            action="screening.intake.recorded",
            patient_id=patient.public_id,
            obj=intake,
            detail={
                "changed": changed,
                "source": source,
                "alert": str(raised.alert.public_id) if raised else None,
                "alert_rules": [finding["rule"]] if finding else [],
                "alert_already_open": bool(raised and not raised.created),
                **(detail or {}),
            },
            **(audit or {}),
        )
    # The alert this answer is on (new, or the open one that already covers it), for the view.
    intake.safety_alert = raised.alert if raised else None  # type: ignore[attr-defined]
    return intake


# --- evaluation and review ----------------------------------------------------------------


def screening_evaluate(*, actor: Actor, patient: Patient) -> ScreeningEvaluation:
    """Run the rules on the chart as it is now; store one pending decision per route."""
    actor.require(Cap.SCREENING_RECORD)
    as_of = selectors.local_date(patient.organization, clock.now())
    with transaction.atomic():
        policy_row = _policy_for_use(actor)
        policy = selectors.policy_from_row(policy_row)
        snapshot = selectors.screening_snapshot(patient, as_of=as_of)
        result = evaluate(snapshot.inputs, policy, as_of=as_of)
        evaluation = ScreeningEvaluation.objects.create(
            organization=patient.organization,
            patient=patient,
            policy=policy_row,
            intake=snapshot.intake,
            algorithm=result.algorithm,
            policy_ref=result.policy,
            inputs_fingerprint=result.inputs_fingerprint,
            inputs=snapshot.inputs_json,
            sources={**snapshot.sources, "unmatched": list(snapshot.unmatched_medications)},
            result=result.to_dict(),
            trd_status=result.trd.status.value,
            trd_rule=result.trd.rule,
            assessed_on=result.assessed_on,
            valid_until=result.valid_until,
            evaluated_by=actor.user,
        )
        ScreeningDecision.objects.bulk_create(
            [
                ScreeningDecision(
                    organization=patient.organization,
                    patient=patient,
                    evaluation=evaluation,
                    route=item.route.value,
                    computed_decision=item.decision.value,
                    findings=[finding.to_dict() for finding in item.findings],
                    rule_versions=sorted({finding.rule for finding in item.findings}),
                    policy_ref=result.policy,
                    inputs_fingerprint=result.inputs_fingerprint,
                    valid_until=result.valid_until,
                )
                for item in result.routes
            ]
        )
        audit_record(
            actor=actor,
            action="screening.evaluation.recorded",
            patient_id=patient.public_id,
            obj=evaluation,
            detail={
                "algorithm": result.algorithm,
                "policy": result.policy,
                "inputs_fingerprint": result.inputs_fingerprint,
                "trd": f"{result.trd.rule}:{result.trd.status.value}",
                "valid_until": result.valid_until.isoformat(),
                "decisions": {
                    item.route.value: {
                        "computed": item.decision.value,
                        "rules": sorted({f.rule for f in item.findings}),
                    }
                    for item in result.routes
                },
            },
        )
    return evaluation


def screening_decision_review(
    *, actor: Actor, decision: ScreeningDecision, final_decision: str, justification: str = ""
) -> ScreeningDecision:
    """A prescriber's decision for one route.

    `eligible` over relative findings is an override: it needs a written justification naming
    why. Absolute findings (contraindications) cannot be overridden. Deciding against the rules'
    `eligible` also needs a reason.
    """
    actor.require(Cap.SCREENING_DECIDE)
    justification = (justification or "").strip()
    if final_decision not in ("eligible", "ineligible"):
        raise ValidationFailed.for_field("final_decision", "Choose eligible or ineligible.")
    with transaction.atomic():
        decision = ScreeningDecision.objects.select_for_update().get(pk=decision.pk)
        latest = selectors.decision_latest_for_route(decision.patient, decision.route)
        if decision.status != ScreeningDecision.Status.PENDING or latest != decision:
            raise Conflict("This screening decision was already made or replaced; reload.")
        now = clock.now()
        as_of = selectors.local_date(decision.organization, now)
        if decision.valid_until < as_of:
            raise Conflict("This screening has expired; run the screening again.")
        snapshot = selectors.screening_snapshot(decision.patient, as_of=as_of)
        changes = selectors.evaluation_changes(
            decision.evaluation, snapshot, route=decision.route, as_of=as_of
        )
        if changes:
            raise Conflict(
                "The chart changed since this screening ("
                + "; ".join(changes)
                + "): run the screening again before deciding.",
                [FieldError("screening", change) for change in changes],
            )
        absolute = [f for f in decision.findings if f["severity"] == "absolute"]
        relative = [f for f in decision.findings if f["severity"] == "relative"]
        overridden: list[dict[str, Any]] = []
        if final_decision == "eligible" and absolute:
            raise SafetyStop(
                "A contraindication cannot be overridden: "
                + "; ".join(f["reason"] for f in absolute),
                [FieldError("final_decision", f"{f['rule']}: {f['reason']}") for f in absolute],
            )
        if final_decision == "eligible":
            overridden = relative
        needs_reason = bool(overridden) or (
            final_decision == "ineligible" and decision.computed_decision == "eligible"
        )
        if needs_reason and len(justification) < MIN_JUSTIFICATION:
            what = (
                "Overriding " + ", ".join(f["rule"] for f in overridden)
                if overridden
                else "Deciding against the rules' outcome"
            )
            raise ValidationFailed.for_field(
                "justification",
                f"{what} needs a written justification (at least {MIN_JUSTIFICATION} characters).",
            )
        decision.status = ScreeningDecision.Status.DECIDED
        decision.final_decision = final_decision
        decision.overridden = bool(overridden)
        decision.overridden_rules = [f["rule"] for f in overridden]
        decision.justification = justification
        decision.decided_by = actor.user
        decision.decided_at = now
        decision.save()
        audit_record(
            actor=actor,
            action="screening.decision.overridden" if overridden else "screening.decision.recorded",
            patient_id=decision.patient.public_id,
            obj=decision,
            detail={
                "route": decision.route,
                "computed": decision.computed_decision,
                "final": final_decision,
                "overridden_rules": decision.overridden_rules,
                "justification": justification,
                "policy": decision.policy_ref,
                "algorithm": decision.evaluation.algorithm,
                "rule_versions": decision.rule_versions,
                "inputs_fingerprint": decision.inputs_fingerprint,
                "valid_until": decision.valid_until.isoformat(),
            },
        )
    return decision


def intake_fields_for_form() -> list[str]:
    return [n for n in INTAKE_FIELDS if n != "note"] + ["note"]
