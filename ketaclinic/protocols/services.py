"""Writes for protocols, treatment plans and the session safety policy.

Each: permission, validation, one transaction, one audit event. Published versions never change.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from datetime import date
from decimal import Decimal, InvalidOperation
from typing import Any

from django.db import IntegrityError, transaction
from django.db.models import Max

from ketaclinic.accounts.actor import Actor
from ketaclinic.accounts.audit import audit_record
from ketaclinic.accounts.models import Organization
from ketaclinic.accounts.roles import Cap
from ketaclinic.core import clock
from ketaclinic.core.errors import Conflict, FieldError, SafetyStop, ValidationFailed
from ketaclinic.core.formatting import plain_number
from ketaclinic.patients.models import Patient
from ketaclinic.protocols import selectors
from ketaclinic.protocols.catalog import STANDARD_TEMPLATES, DoseKind, ProtocolTemplate
from ketaclinic.protocols.dosing import DoseRefused, TitrationDirection, titrate
from ketaclinic.protocols.models import (
    PlanEvent,
    ProtocolVersion,
    SafetyPolicyVersion,
    TreatmentPlan,
)
from ketaclinic.screening.gates import screening_route_for, treatment_gate_require
from ketaclinic.sessions.policy import DEFAULT_POLICY, SessionSafetyPolicy

MIN_REASON = 10


def treatment_gate(*, patient: Patient, drug: str, route: str, setting: str, at: Any) -> None:
    """Screening decision and consent for this drug/route/setting, or SafetyStop naming what
    is missing. Plans, scheduling, check-in, dose orders and administrations all pass here."""
    screening_route = screening_route_for(drug, route, setting)
    if screening_route is None:
        raise SafetyStop.for_field(
            "route", f"No screening route covers {drug} {route} in the {setting} setting."
        )
    treatment_gate_require(patient=patient, route=str(screening_route), setting=setting, at=at)


# --- protocol versions ------------------------------------------------------------------------


def _version_row(
    organization: Organization, template: ProtocolTemplate, **fields: Any
) -> ProtocolVersion:
    return ProtocolVersion(
        organization=organization,
        protocol_id=template.protocol_id,
        version=template.version,
        title=template.title,
        drug=template.drug.value,
        route=template.route.value,
        setting=template.setting.value,
        definition=template.to_dict(),
        **fields,
    )


def protocol_catalog_seed(*, organization: Organization, actor: Actor | None = None) -> int:
    """Publish the standard catalog's templates the organization does not have yet."""
    if actor is not None:
        actor.require(Cap.PROTOCOL_MANAGE)
    existing = set(
        ProtocolVersion.objects.filter(organization=organization).values_list(
            "protocol_id", "version"
        )
    )
    now = clock.now()
    rows = [
        _version_row(
            organization,
            template,
            status=ProtocolVersion.Status.PUBLISHED,
            origin=ProtocolVersion.Origin.STANDARD,
            published_at=now,
        )
        for template in STANDARD_TEMPLATES
        if (template.protocol_id, template.version) not in existing
    ]
    if not rows:
        return 0
    with transaction.atomic():
        ProtocolVersion.objects.bulk_create(rows)
        audit_record(
            actor=actor,
            organization=organization,
            action="protocols.catalog.seeded",
            detail={"keys": [f"{r.protocol_id}@{r.version}" for r in rows]},
        )
    return len(rows)


def protocol_clone(*, actor: Actor, source: ProtocolVersion, note: str = "") -> ProtocolVersion:
    """A new draft version of the same protocol, copied from `source`, for the clinic to edit."""
    actor.require(Cap.PROTOCOL_MANAGE)
    with transaction.atomic():
        latest = ProtocolVersion.objects.filter(protocol_id=source.protocol_id).aggregate(
            v=Max("version")
        )["v"]
        definition = copy.deepcopy(source.definition)
        definition["version"] = (latest or 0) + 1
        draft = _version_row(
            actor.organization,
            ProtocolTemplate.from_dict(definition),
            status=ProtocolVersion.Status.DRAFT,
            origin=ProtocolVersion.Origin.CLINIC,
            based_on=source,
            change_note=note,
            created_by=actor.user,
        )
        draft.save()
        audit_record(
            actor=actor,
            action="protocols.protocol.cloned",
            obj=draft,
            detail={"from": source.key, "to": draft.key},
        )
    return draft


# Fields a clinic may change in a draft (dotted paths into the definition).
EDITABLE_FIELDS = (
    "title",
    "caps.max_mg_per_kg",
    "caps.max_mg",
    "caps.max_infusion_rate_mg_per_kg_per_h",
    "dose.starting_amount",
    "dose.minimum_amount",
    "infusion.default_minutes",
    "infusion.min_minutes",
    "infusion.max_minutes",
    "titration.step",
    "titration.min_sessions_at_current_amount",
    "titration.max_adverse_event_grade_for_increase",
    "monitoring.minimum_observation_minutes",
    "monitoring.vitals_minutes_after_dose",
)


def protocol_draft_update(
    *, actor: Actor, protocol: ProtocolVersion, changes: Mapping[str, Any]
) -> ProtocolVersion:
    actor.require(Cap.PROTOCOL_MANAGE)
    if protocol.status != ProtocolVersion.Status.DRAFT:
        raise Conflict("A published protocol version never changes; clone it to a new version.")
    unknown = sorted(set(changes) - set(EDITABLE_FIELDS))
    if unknown:
        raise ValidationFailed(
            "These fields cannot be edited.", [FieldError(f, "not editable") for f in unknown]
        )
    definition = copy.deepcopy(protocol.definition)
    for path, value in changes.items():
        head, _, tail = path.partition(".")
        if not tail:
            definition[head] = value
            continue
        if definition.get(head) is None:
            raise ValidationFailed.for_field(path, f"This protocol has no {head} section.")
        definition[head][tail] = None if value in ("", None) else value
    template = _template_or_invalid(definition)
    if template.drug.value == "esketamine":
        minimum = template.monitoring.minimum_observation_minutes
        if minimum < DEFAULT_POLICY.minimum_observation_minutes_esketamine:
            raise SafetyStop.for_field(
                "monitoring.minimum_observation_minutes",
                "Esketamine needs at least 120 minutes of observation (label).",
            )
    with transaction.atomic():
        protocol.definition = template.to_dict()
        protocol.title = template.title
        protocol.save(update_fields=["definition", "title", "updated_at"])
        audit_record(
            actor=actor,
            action="protocols.protocol.edited",
            obj=protocol,
            detail={"changes": {k: str(v) for k, v in changes.items()}},
        )
    return protocol


def _template_or_invalid(definition: dict[str, Any]) -> ProtocolTemplate:
    try:
        return ProtocolTemplate.from_dict(definition)
    except (ValueError, TypeError, InvalidOperation, KeyError) as error:
        raise ValidationFailed.for_field("definition", f"Not a valid protocol: {error}") from None


def protocol_publish(*, actor: Actor, protocol: ProtocolVersion) -> ProtocolVersion:
    actor.require(Cap.PROTOCOL_MANAGE)
    with transaction.atomic():
        protocol = ProtocolVersion.objects.select_for_update().get(pk=protocol.pk)
        if protocol.status != ProtocolVersion.Status.DRAFT:
            raise Conflict(f"{protocol.key} is already {protocol.status}.")
        _template_or_invalid(protocol.definition)
        protocol.status = ProtocolVersion.Status.PUBLISHED
        protocol.published_at = clock.now()
        protocol.published_by = actor.user
        protocol.save(update_fields=["status", "published_at", "published_by", "updated_at"])
        audit_record(actor=actor, action="protocols.protocol.published", obj=protocol)
    return protocol


# --- safety policy ----------------------------------------------------------------------------


def safety_policy_publish(
    *, actor: Actor, changes: Mapping[str, Any], note: str = ""
) -> SafetyPolicyVersion:
    """A new policy version: the current one with `changes` applied, validated by the pure core."""
    actor.require(Cap.SAFETY_POLICY_EDIT)
    row, current = selectors.safety_policy_current(actor.organization)
    data = {**current.to_dict(), **dict(changes)}
    data["version"] = (row.version if row else current.version) + 1
    policy = SessionSafetyPolicy.from_dict(data)  # PolicyInvalid names each bad field
    try:
        with transaction.atomic():
            stored = SafetyPolicyVersion.objects.create(
                organization=actor.organization,
                version=policy.version,
                data=policy.to_dict(),
                note=note,
                published_by=actor.user,
                published_at=clock.now(),
            )
            audit_record(
                actor=actor,
                action="sessions.policy.published",
                obj=stored,
                detail={"version": policy.version, "changes": dict(changes), "note": note},
            )
    except IntegrityError:
        raise Conflict("Another policy version was published at the same time; reload.") from None
    return stored


# --- treatment plans ----------------------------------------------------------------------------


def _decimal(value: Any, field: str) -> Decimal:
    try:
        number = Decimal(str(value))
    except (InvalidOperation, ValueError):
        raise ValidationFailed.for_field(field, "Enter a number.") from None
    if not number.is_finite() or number <= 0:
        raise ValidationFailed.for_field(field, "Enter a positive number.")
    return number


def check_amount_within_caps(template: ProtocolTemplate, amount: Decimal) -> None:
    """A plan's amount must be a dose the protocol allows; the per-session calculator checks
    again with the weight on the day."""
    rule, caps = template.dose, template.caps
    if amount < rule.minimum_amount:
        raise DoseRefused(
            "current_amount",
            f"{plain_number(amount)} {rule.unit} is below the minimum "
            f"{plain_number(rule.minimum_amount)}.",
        )
    if rule.allowed_amounts and amount not in rule.allowed_amounts:
        allowed = " or ".join(plain_number(a) for a in rule.allowed_amounts)
        raise DoseRefused(
            "current_amount",
            f"{plain_number(amount)} mg is not a dose of this protocol ({allowed}).",
        )
    cap = caps.max_mg_per_kg if rule.kind is DoseKind.PER_KG else caps.max_mg
    if cap is not None and amount > cap:
        raise DoseRefused(
            "current_amount",
            f"{plain_number(amount)} {rule.unit} is above the cap of {plain_number(cap)}.",
        )


def plan_create(
    *,
    actor: Actor,
    patient: Patient,
    protocol: ProtocolVersion,
    start_date: date,
    current_amount: Any = None,
    infusion_minutes: int | None = None,
    concentration_mg_per_ml: Any = None,
    diluent_volume_ml: Any = 0,
    titration: Mapping[str, Any] | None = None,
    plan_measures: list[str] | None = None,
    childbearing_potential: bool = False,
    note: str = "",
) -> TreatmentPlan:
    actor.require(Cap.PLAN_PRESCRIBE)
    if protocol.status != ProtocolVersion.Status.PUBLISHED:
        raise ValidationFailed.for_field("protocol", "Only a published protocol can be prescribed.")
    template = protocol.template
    treatment_gate(
        patient=patient,
        drug=template.drug.value,
        route=template.route.value,
        setting=template.setting.value,
        at=clock.now(),
    )
    amount = (
        template.dose.starting_amount
        if current_amount in (None, "")
        else _decimal(current_amount, "current_amount")
    )
    check_amount_within_caps(template, amount)
    if infusion_minutes is not None:
        if template.infusion is None:
            raise ValidationFailed.for_field("infusion_minutes", "This protocol is not infused.")
        if not template.infusion.min_minutes <= infusion_minutes <= template.infusion.max_minutes:
            raise DoseRefused(
                "infusion_minutes",
                f"{infusion_minutes} min is outside {template.infusion.min_minutes}-"
                f"{template.infusion.max_minutes} min.",
            )
    first_phase = template.phases[0].name if template.phases else ""
    plan = TreatmentPlan(
        organization=actor.organization,
        patient=patient,
        recorded_by=actor.user,
        protocol=protocol,
        protocol_key=protocol.key,
        prescriber=actor.user,
        phase=first_phase,
        current_amount=amount,
        infusion_minutes=infusion_minutes,
        concentration_mg_per_ml=(
            _decimal(concentration_mg_per_ml, "concentration_mg_per_ml")
            if concentration_mg_per_ml not in (None, "")
            else None
        ),
        diluent_volume_ml=Decimal(str(diluent_volume_ml or 0)),
        titration=dict(titration or {}),
        plan_measures=list(plan_measures or []),
        childbearing_potential=childbearing_potential,
        start_date=start_date,
        note=note,
    )
    with transaction.atomic():
        plan.save()
        audit_record(
            actor=actor,
            action="protocols.plan.created",
            patient_id=patient.public_id,
            obj=plan,
            detail={"protocol": protocol.key, "parameters": plan.custom_parameters()},
        )
    return plan


def plan_phase_change(
    *, actor: Actor, plan: TreatmentPlan, to_phase: str, reason: str = ""
) -> PlanEvent:
    actor.require(Cap.PLAN_PRESCRIBE)
    names = [phase.name for phase in plan.protocol.template.phases]
    if to_phase not in names:
        raise ValidationFailed.for_field("to_phase", f"Choose one of: {', '.join(names)}.")
    if to_phase == plan.phase:
        raise Conflict(f"The plan is already in {to_phase}.")
    with transaction.atomic():
        event = PlanEvent.objects.create(
            organization=plan.organization,
            plan=plan,
            kind=PlanEvent.Kind.PHASE,
            from_value=plan.phase,
            to_value=to_phase,
            reason=reason,
            recorded_by=actor.user,
            recorded_at=clock.now(),
        )
        plan.phase = to_phase
        plan.save(update_fields=["phase", "updated_at"])
        audit_record(
            actor=actor,
            action="protocols.plan.phase_changed",
            patient_id=plan.patient.public_id,
            obj=plan,
            detail={"from": event.from_value, "to": to_phase, "reason": reason},
        )
    return event


MAX_EXTENSION_SESSIONS = 12


def plan_sessions_extend(
    *, actor: Actor, plan: TreatmentPlan, extra_sessions: int, reason: str
) -> PlanEvent:
    """A prescriber adds dosing sessions to the plan's current phase beyond what it planned.

    Without this, the dose of a session past the planned count is refused (sessions.frequency).
    """
    actor.require(Cap.PLAN_PRESCRIBE)
    if plan.status != TreatmentPlan.Status.ACTIVE:
        raise Conflict("The treatment plan is not active.")
    if isinstance(extra_sessions, bool) or not isinstance(extra_sessions, int):
        raise ValidationFailed.for_field("extra_sessions", "Enter a whole number of sessions.")
    if not 1 <= extra_sessions <= MAX_EXTENSION_SESSIONS:
        raise ValidationFailed.for_field(
            "extra_sessions", f"Add between 1 and {MAX_EXTENSION_SESSIONS} sessions at a time."
        )
    reason = (reason or "").strip()
    if len(reason) < MIN_REASON:
        raise ValidationFailed.for_field(
            "reason", "Write why the phase needs more sessions (a clinical justification)."
        )
    with transaction.atomic():
        event = PlanEvent.objects.create(
            organization=plan.organization,
            plan=plan,
            kind=PlanEvent.Kind.EXTENSION,
            from_value=plan.phase,
            to_value=str(extra_sessions),
            reason=reason,
            recorded_by=actor.user,
            recorded_at=clock.now(),
        )
        audit_record(
            actor=actor,
            action="protocols.plan.extended",
            patient_id=plan.patient.public_id,
            obj=plan,
            detail={"phase": plan.phase, "extra_sessions": extra_sessions, "reason": reason},
        )
    return event


def plan_titrate(
    *,
    actor: Actor,
    plan: TreatmentPlan,
    direction: str,
    reason: str,
    sessions_at_current_amount: int,
    worst_adverse_event_grade: int | None,
    weight_kg: Decimal | None = None,
) -> PlanEvent:
    """One protocol step up or down (dose-titration@1); never above a cap."""
    actor.require(Cap.PLAN_PRESCRIBE)
    if len((reason or "").strip()) < MIN_REASON:
        raise ValidationFailed.for_field("reason", "Say why the dose changes.")
    now = clock.now()
    last = plan.events.filter(kind=PlanEvent.Kind.DOSE).order_by("-recorded_at").first()
    result = titrate(
        protocol=plan.protocol.template,
        current_amount=Decimal(plan.current_amount).normalize(),
        direction=TitrationDirection(direction),
        now=now,
        sessions_at_current_amount=sessions_at_current_amount,
        worst_adverse_event_grade=worst_adverse_event_grade,
        last_changed_at=last.recorded_at if last else None,
        weight_kg=weight_kg,
        infusion_minutes=plan.infusion_minutes,
    )
    with transaction.atomic():
        event = PlanEvent.objects.create(
            organization=plan.organization,
            plan=plan,
            kind=PlanEvent.Kind.DOSE,
            from_value=plain_number(result.previous_amount),  # never "1E+2" in the history
            to_value=plain_number(result.new_amount),
            reason=reason,
            algorithm=result.algorithm,
            result={
                "direction": result.direction.value,
                "unit": result.unit,
                "limited_by": result.limited_by,
                "protocol": plan.protocol_key,
            },
            recorded_by=actor.user,
            recorded_at=now,
        )
        plan.current_amount = result.new_amount
        plan.save(update_fields=["current_amount", "updated_at"])
        audit_record(
            actor=actor,
            action="protocols.plan.titrated",
            patient_id=plan.patient.public_id,
            obj=plan,
            detail={
                "from": event.from_value,
                "to": event.to_value,
                "algorithm": result.algorithm,
                "reason": reason,
            },
        )
    return event
