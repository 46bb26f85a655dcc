"""Screening reads: the clinic's current policy, the current intake, the chart snapshot the rules
read, and the current decision per route. All run inside the organization's scope."""

from __future__ import annotations

import json
import zoneinfo
from dataclasses import dataclass, fields
from datetime import date, datetime
from decimal import Decimal
from enum import Enum
from typing import Any

from ketaclinic.accounts.models import Clinic, Organization
from ketaclinic.patients.models import Condition, MedicationStatement, Patient, VitalSign
from ketaclinic.screening.condition_codes import flags_answered
from ketaclinic.screening.interactions import classify_medications
from ketaclinic.screening.models import (
    IntakeHistory,
    ScreeningDecision,
    ScreeningEvaluation,
    ScreeningPolicyVersion,
)
from ketaclinic.screening.policy import ScreeningPolicy
from ketaclinic.screening.rules import (
    YES_NO_QUESTIONS,
    BloodPressureReading,
    DiseaseStatus,
    HepaticImpairment,
    HypertensionStatus,
    ScreeningInputs,
    SuicidalIdeation,
)
from ketaclinic.screening.trd import AntidepressantTrial, TrialOutcome

# A coded chart diagnosis answers an intake question "yes" (never "no"): it cannot be outweighed
# by an intake form that missed it. The codes (ICD-10-CM and SNOMED CT) and their sources are in
# ketaclinic/screening/value_sets/conditions.json.

_TRIAL_OUTCOMES = {
    "response": TrialOutcome.RESPONSE,
    "partial": TrialOutcome.PARTIAL_RESPONSE,
    "none": TrialOutcome.NO_RESPONSE,
    "intolerance": TrialOutcome.STOPPED_FOR_INTOLERANCE,
    "unknown": TrialOutcome.UNKNOWN,
}


def organization_time_zone(organization: Organization) -> str:
    clinic = Clinic.objects.filter(organization=organization).order_by("pk").first()
    return clinic.time_zone if clinic else "UTC"


def local_date(organization: Organization, at: datetime) -> date:
    return at.astimezone(zoneinfo.ZoneInfo(organization_time_zone(organization))).date()


def screening_policy_current(organization: Organization) -> ScreeningPolicyVersion | None:
    return ScreeningPolicyVersion.objects.filter(organization=organization).first()


def screening_policy_versions() -> list[ScreeningPolicyVersion]:
    """Every published version of the clinic's policy, newest first, with who published it."""
    return list(ScreeningPolicyVersion.objects.select_related("published_by").order_by("-version"))


def policy_from_row(row: ScreeningPolicyVersion | None) -> ScreeningPolicy:
    return ScreeningPolicy.from_dict(row.data) if row else ScreeningPolicy()


def intake_current(patient: Patient) -> IntakeHistory | None:
    return IntakeHistory.objects.filter(patient=patient).order_by("-created_at", "-pk").first()


def intake_medications(patient: Patient) -> list[MedicationStatement]:
    """The medicines on the chart the patient is taking now: the list the intake reconciles."""
    return list(
        MedicationStatement.objects.in_use()
        .filter(patient=patient, status=MedicationStatement.Status.ACTIVE)
        .order_by("drug_name", "pk")
    )


@dataclass(frozen=True)
class Snapshot:
    """What the rules read, plus the chart rows it came from (to name what changed later)."""

    inputs: ScreeningInputs
    intake: IntakeHistory | None
    sources: dict[str, Any]
    unmatched_medications: tuple[str, ...]

    @property
    def inputs_json(self) -> dict[str, Any]:
        return inputs_as_json(self.inputs)


def _canonical(value: Any) -> Any:
    if value is None or isinstance(value, bool | int | str):
        return value
    if isinstance(value, Enum):
        return value.value
    if isinstance(value, Decimal):
        return format(value.normalize(), "f")
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, frozenset | set):
        return sorted(_canonical(v) for v in value)
    if isinstance(value, tuple | list):
        return sorted((_canonical(v) for v in value), key=json.dumps)
    if hasattr(value, "__dataclass_fields__"):
        return {f.name: _canonical(getattr(value, f.name)) for f in fields(value)}
    raise TypeError(f"cannot store a {type(value).__name__}")


def inputs_as_json(inputs: ScreeningInputs) -> dict[str, Any]:
    return {f.name: _canonical(getattr(inputs, f.name)) for f in fields(inputs)}


def _enum_or_none(enum: type[Enum], value: str) -> Any:
    return enum(value) if value else None


def _age(birth_date: date, on: date) -> int:
    return on.year - birth_date.year - ((on.month, on.day) < (birth_date.month, birth_date.day))


def _trial_days(medication: MedicationStatement, as_of: date) -> int | None:
    """How long a trial ran by its dates: to its end date, or to today while still taken."""
    if medication.start_date is None:
        return None
    if medication.end_date is not None:
        end = medication.end_date
    elif medication.status == MedicationStatement.Status.ACTIVE:
        end = as_of
    else:
        return None  # stopped without an end date: the dates do not say
    return max((end - medication.start_date).days, 0)


def screening_snapshot(patient: Patient, *, as_of: date) -> Snapshot:
    """Build the rules' inputs from the intake and the chart, in a fixed number of queries."""
    intake = intake_current(patient)
    meds = list(MedicationStatement.objects.in_use().filter(patient=patient).order_by("pk"))
    conditions = list(Condition.objects.in_use().filter(patient=patient).order_by("pk"))
    bp_row = (
        VitalSign.objects.in_use()
        .filter(patient=patient, kind=VitalSign.Kind.BLOOD_PRESSURE)
        .order_by("-measured_at", "-pk")
        .first()
    )
    answers: dict[str, Any] = {}
    for name in YES_NO_QUESTIONS:
        answers[name] = getattr(intake, name) if intake else None
    charted: set[str] = set()
    for condition in conditions:
        charted |= flags_answered(condition.code_system, condition.code, condition.clinical_status)
    for flag in charted - {"hypertension"}:
        answers[flag] = True
    hypertension = _enum_or_none(HypertensionStatus, intake.hypertension if intake else "")
    chart_htn = "hypertension" in charted
    if chart_htn and hypertension in (None, HypertensionStatus.ABSENT):
        hypertension = None  # the chart and the intake disagree: not documented until resolved

    active_names = [m.drug_name for m in meds if m.status == MedicationStatement.Status.ACTIVE]
    classified = classify_medications(active_names)
    reconciled = bool(intake and intake.medications_reconciled)
    trials = tuple(
        AntidepressantTrial(
            drug=m.drug_name,
            adequate=m.adequate_trial,
            outcome=TrialOutcome.ONGOING
            if m.status == MedicationStatement.Status.ACTIVE and not m.trial_outcome
            else _TRIAL_OUTCOMES.get(m.trial_outcome, TrialOutcome.UNKNOWN),
            in_current_episode=m.in_current_episode,
            days=_trial_days(m, as_of),
        )
        for m in meds
        if m.is_antidepressant_trial
    )
    tz = zoneinfo.ZoneInfo(organization_time_zone(patient.organization))
    screening_bp = None
    if bp_row is not None and bp_row.value_diastolic is not None:
        screening_bp = BloodPressureReading(
            systolic_mmhg=int(bp_row.value),
            diastolic_mmhg=int(bp_row.value_diastolic),
            measured_on=bp_row.measured_at.astimezone(tz).date(),
        )
    inputs = ScreeningInputs(
        **answers,
        suicidal_ideation=_enum_or_none(
            SuicidalIdeation, intake.suicidal_ideation if intake else ""
        ),
        hypertension=hypertension,
        screening_bp=screening_bp,
        cardiovascular_disease=_enum_or_none(
            DiseaseStatus, intake.cardiovascular_disease if intake else ""
        ),
        cerebrovascular_disease=_enum_or_none(
            DiseaseStatus, intake.cerebrovascular_disease if intake else ""
        ),
        hepatic_impairment=_enum_or_none(
            HepaticImpairment, intake.hepatic_impairment if intake else ""
        ),
        interacting_medications=classified.classes if reconciled else None,
        benzodiazepine_lorazepam_equivalent_mg_per_day=(
            intake.benzodiazepine_lorazepam_equivalent_mg_per_day if intake else None
        ),
        antidepressant_trials=trials,
        age_years=_age(patient.birth_date, as_of),
    )
    sources = {
        "intake": str(intake.public_id) if intake else None,
        "medications": [[str(m.public_id), m.drug_name, m.status] for m in meds],
        "conditions": [
            [str(c.public_id), c.display or c.code, c.clinical_status] for c in conditions
        ],
        "bp": (
            [
                str(bp_row.public_id),
                f"{int(bp_row.value)}/{int(bp_row.value_diastolic)} mmHg",
                screening_bp.measured_on.isoformat(),
            ]
            if bp_row is not None and screening_bp is not None
            else None
        ),
    }
    return Snapshot(inputs, intake, sources, classified.unmatched)


def evaluation_latest(patient: Patient) -> ScreeningEvaluation | None:
    return (
        ScreeningEvaluation.objects.filter(patient=patient)
        .select_related("policy", "evaluated_by")
        .order_by("-created_at", "-pk")
        .first()
    )


def decision_latest_for_route(patient: Patient, route: str) -> ScreeningDecision | None:
    return (
        ScreeningDecision.objects.filter(patient=patient, route=route)
        .select_related("evaluation", "decided_by")
        .order_by("-created_at", "-pk")
        .first()
    )


def decisions_of_evaluation(evaluation: ScreeningEvaluation) -> list[ScreeningDecision]:
    from ketaclinic.screening.policy import Route

    order = {route.value: i for i, route in enumerate(Route)}
    decisions = list(evaluation.decisions.select_related("decided_by"))
    return sorted(decisions, key=lambda d: order.get(d.route, 99))


# --- what changed since a decision --------------------------------------------------------

_SOFT_FIELDS = ("screening_bp", "age_years")  # change invalidates only if the findings change
_MEDICATION_FIELDS = (
    "interacting_medications",
    "benzodiazepine_lorazepam_equivalent_mg_per_day",
    "antidepressant_trials",
)
_FIELD_WORDS = {
    "pregnant": "pregnancy status changed",
    "breastfeeding": "breastfeeding status changed",
    "planning_pregnancy": "pregnancy planning changed",
    "hypertension": "the hypertension history changed",
}


def _rows_diff(before: list[list[str]], after: list[list[str]], noun: str) -> list[str]:
    old = {row[0]: row for row in before}
    new = {row[0]: row for row in after}
    changes = [f"a new {noun} was added ({new[key][1]})" for key in new if key not in old]
    changes += [
        f"a {noun} was removed or marked entered in error ({old[key][1]})"
        for key in old
        if key not in new
    ]
    changes += [
        f"a {noun}'s status changed ({new[key][1]}: {old[key][2]} -> {new[key][2]})"
        for key in new
        if key in old and old[key][2] != new[key][2]
    ]
    return changes


def evaluation_changes(
    evaluation: ScreeningEvaluation,
    snapshot: Snapshot,
    *,
    route: str,
    as_of: date,
) -> list[str]:
    """Plain-language reasons why `evaluation` no longer describes the chart for `route`.

    Any new, removed or changed medication or condition, and any changed intake answer,
    invalidates. A new blood pressure (or a birthday) invalidates only when it changes the
    route's findings: a session's routine pre-dose reading must not undo the screening.
    """
    from ketaclinic.screening.rules import evaluate, inputs_fingerprint

    if inputs_fingerprint(snapshot.inputs) == evaluation.inputs_fingerprint and (
        snapshot.sources.get("medications") == evaluation.sources.get("medications")
        and snapshot.sources.get("conditions") == evaluation.sources.get("conditions")
    ):
        return []
    changes = _rows_diff(
        evaluation.sources.get("medications", []), snapshot.sources["medications"], "medication"
    )
    changes += _rows_diff(
        evaluation.sources.get("conditions", []), snapshot.sources["conditions"], "condition"
    )
    stored, current = evaluation.inputs, snapshot.inputs_json
    for name, value in current.items():
        if name in _SOFT_FIELDS or stored.get(name) == value:
            continue
        if name in _MEDICATION_FIELDS:
            if not any("medication" in change for change in changes):
                changes.append("the medication history changed")
        elif name in _FIELD_WORDS:
            changes.append(_FIELD_WORDS[name])
        else:
            changes.append(f"the intake answer on {name.replace('_', ' ')} changed")
    if not changes and any(stored.get(n) != current.get(n) for n in _SOFT_FIELDS):
        policy = policy_from_row(evaluation.policy)
        from ketaclinic.screening.policy import Route

        fresh = evaluate(snapshot.inputs, policy, as_of=as_of).for_route(Route(route))
        now = (fresh.decision.value, sorted(f.rule_id for f in fresh.findings))
        before = evaluation.result["routes"].get(route, {})
        then = (before.get("decision"), sorted(f["rule_id"] for f in before.get("findings", [])))
        if now != then:
            if stored.get("screening_bp") != current.get("screening_bp"):
                bp = snapshot.sources.get("bp")
                shown = f" ({bp[1]} on {bp[2]})" if bp else ""
                changes.append(f"a new blood pressure{shown} changes the screening findings")
            else:
                changes.append("the patient's age changes the screening findings")
    return list(dict.fromkeys(changes))


def patients_with_intake(patient_ids: list[int]) -> set[int]:
    """Which of these patients have an intake history on file (one query; role homes)."""
    return set(
        IntakeHistory.objects.filter(patient_id__in=patient_ids)
        .values_list("patient_id", flat=True)
        .distinct()
    )
