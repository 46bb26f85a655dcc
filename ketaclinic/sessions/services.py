"""Writes of the monitored treatment session. Each service: permission, the safety rules as hard
stops, one transaction, one audit event (`sessions.<thing>.<verb>`), side effects on commit.

The pure core decides (calculate_dose, check_predose_gate, classify_vitals, evaluate_discharge,
next_state, requires_escalation, pmf_missing_fields); this module loads inputs, stores the result
beside the rule id/version, and moves the state machine.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping
from dataclasses import asdict
from datetime import datetime, timedelta
from decimal import Decimal, InvalidOperation
from typing import Any

from django.db import IntegrityError, transaction

from ketaclinic.accounts.actor import Actor
from ketaclinic.accounts.audit import audit_record
from ketaclinic.accounts.models import Clinic
from ketaclinic.accounts.roles import Cap
from ketaclinic.core import clock
from ketaclinic.core.errors import Conflict, FieldError, SafetyStop, ValidationFailed
from ketaclinic.inventory import selectors as inventory_selectors
from ketaclinic.patients.models import BodyWeight, Patient
from ketaclinic.protocols import selectors as protocol_selectors
from ketaclinic.protocols.catalog import DoseKind
from ketaclinic.protocols.dosing import (
    DoseInput,
    DoseRefused,
    DoseResult,
    WeightMeasurement,
    calculate_dose,
    select_current_weight,
)
from ketaclinic.protocols.models import TreatmentPlan
from ketaclinic.protocols.services import treatment_gate
from ketaclinic.sessions import rems
from ketaclinic.sessions.adverse_events import ADVERSE_EVENTS_BY_CODE, RULE_ESCALATION
from ketaclinic.sessions.adverse_events import requires_escalation as _requires_escalation
from ketaclinic.sessions.discharge import DischargeAssessment, evaluate_discharge
from ketaclinic.sessions.models import (
    AdverseEvent,
    DischargeCheck,
    DoseAdministration,
    DoseOrder,
    Intervention,
    NoteAmendment,
    PatientMonitoringForm,
    Precheck,
    RemsEnrollment,
    SessionNote,
    SessionObservation,
    SessionTransition,
    TreatmentSession,
    VitalsEntry,
)
from ketaclinic.sessions.policy import DEFAULT_POLICY, SessionSafetyPolicy
from ketaclinic.sessions.vitals import (
    RULE_VITALS_ALERTS,
    PrescriberOverride,
    VitalsSample,
    check_predose_gate,
    classify_vitals,
)
from ketaclinic.sessions.workflow import (
    RULE_CHECKLIST,
    SessionEvent,
    SessionState,
    checklist_for,
    next_state,
    unmet_checklist_items,
)

MIN_REASON = 10
VITAL_FIELDS = ("systolic", "diastolic", "heart_rate", "spo2", "respiratory_rate")
# Items the service decides itself; the nurse ticks the others.
COMPUTED_ITEMS = ("screening_current", "consent_valid", "weight_current", "predose_vitals_gate")
CADSS_MAX = Decimal("92")  # 23 items scored 0-4 (cadss@1)
MOAAS_RANGE = (Decimal("0"), Decimal("5"))


# --- helpers ----------------------------------------------------------------------------------


def session_policy(session: TreatmentSession) -> SessionSafetyPolicy:
    if session.policy_version_id is None:
        return DEFAULT_POLICY
    return session.policy_version.policy  # type: ignore[union-attr]


def _aware(value: datetime | None, field: str, *, now: datetime) -> datetime:
    if value is None:
        return now
    if value.tzinfo is None:
        raise ValidationFailed.for_field(field, "Give the time with its time zone.")
    if value > now + timedelta(minutes=2):
        raise ValidationFailed.for_field(field, "The time is in the future.")
    return value


def _locked(session: TreatmentSession) -> TreatmentSession:
    """Re-read the session under a row lock: two nurses on one session serialize here."""
    return (
        TreatmentSession.objects.select_for_update(of=("self",))
        .select_related("patient", "plan", "protocol", "clinic", "policy_version")
        .get(pk=session.pk)
    )


def _move(
    actor: Actor, session: TreatmentSession, event: SessionEvent, *, at: datetime, reason: str = ""
) -> None:
    before = SessionState(session.state)
    after = next_state(before, event, reason=reason or None)
    SessionTransition.objects.create(
        organization=session.organization,
        session=session,
        event=event.value,
        from_state=before.value,
        to_state=after.value,
        reason=reason,
        at=at,
        by=actor.user,
    )
    session.state = after.value
    session.state_changed_at = at


def _save(session: TreatmentSession, *fields: str) -> None:
    session.save(update_fields=[*fields, "state", "state_changed_at", "updated_at"])


def _audit(
    actor: Actor, action: str, session: TreatmentSession, obj: Any = None, **detail: Any
) -> None:
    audit_record(
        actor=actor,
        action=action,
        patient_id=session.patient.public_id,
        obj=obj if obj is not None else session,
        detail={"session": str(session.public_id), **detail},
    )


def _require_state(session: TreatmentSession, *states: SessionState, doing: str) -> None:
    if session.state not in states:
        allowed = ", ".join(s.value for s in states)
        raise Conflict(
            f"Cannot {doing} while the session is {session.state} (needs: {allowed}).",
            [FieldError("state", session.state)],
        )


def _gate(session: TreatmentSession, at: datetime) -> None:
    treatment_gate(
        patient=session.patient,
        drug=session.drug,
        route=session.route,
        setting=session.setting,
        at=at,
    )


def _weights(patient: Patient) -> tuple[WeightMeasurement, ...]:
    # A weight marked entered-in-error is never used: the previous valid one is, or none.
    rows = BodyWeight.objects.in_use().filter(patient=patient).order_by("-measured_at")[:5]
    return tuple(WeightMeasurement(r.weight_kg, "kg", r.measured_at) for r in rows)


def _decimal(value: Any, field: str) -> Decimal:
    try:
        number = Decimal(str(value))
    except (InvalidOperation, ValueError):
        raise ValidationFailed.for_field(field, "Enter a number.") from None
    if not number.is_finite() or number <= 0:
        raise ValidationFailed.for_field(field, "Enter a positive number.")
    return number


def _sample(data: Mapping[str, Any], taken_at: datetime) -> VitalsSample:
    values: dict[str, int | None] = {}
    for name in VITAL_FIELDS:
        raw = data.get(name)
        if raw in (None, ""):
            values[name] = None
            continue
        try:
            values[name] = int(str(raw))
        except ValueError:
            raise ValidationFailed.for_field(name, "Enter a whole number.") from None
    if all(v is None for v in values.values()):
        raise ValidationFailed.for_field("systolic", "Enter at least one vital sign.")
    if (values["systolic"] is None) != (values["diastolic"] is None):
        raise ValidationFailed.for_field("diastolic", "A blood pressure needs both values.")
    try:
        return VitalsSample(taken_at=taken_at, **values)
    except ValueError as error:
        raise ValidationFailed.for_field("systolic", str(error).capitalize() + ".") from None


def _sample_of(entry: VitalsEntry) -> VitalsSample:
    return VitalsSample(
        taken_at=entry.taken_at, **{name: getattr(entry, name) for name in VITAL_FIELDS}
    )


def _alert_dicts(sample: VitalsSample, policy: SessionSafetyPolicy) -> list[dict[str, Any]]:
    return [
        {**asdict(alert), "severity": alert.severity.value, "message": alert.message}
        for alert in classify_vitals(sample, policy)
    ]


def _entry(
    actor: Actor,
    session: TreatmentSession,
    sample: VitalsSample,
    policy: SessionSafetyPolicy,
    *,
    predose: bool = False,
) -> VitalsEntry:
    alerts = _alert_dicts(sample, policy)
    return VitalsEntry(
        organization=session.organization,
        session=session,
        recorded_by=actor.user,
        taken_at=sample.taken_at,
        predose=predose,
        alerts=alerts,
        severity=alerts[0]["severity"] if alerts else "",
        rule=RULE_VITALS_ALERTS,
        policy_key=policy.policy_key,
        **{name: getattr(sample, name) for name in VITAL_FIELDS},
    )


def _remember_last(session: TreatmentSession, entry: VitalsEntry) -> None:
    session.last_vitals = {
        "taken_at": entry.taken_at.isoformat(),
        "bp": entry.bp,
        "heart_rate": entry.heart_rate,
        "spo2": entry.spo2,
        "respiratory_rate": entry.respiratory_rate,
        "alerts": [a["message"] for a in entry.alerts],
    }
    session.last_alert_severity = entry.severity


# --- schedule, check in, abort ----------------------------------------------------------------


def session_schedule(
    *,
    actor: Actor,
    plan: TreatmentPlan,
    scheduled_at: datetime,
    clinic: Clinic | None = None,
    chair: int | None = None,
) -> TreatmentSession:
    actor.require(Cap.SESSION_RUN)
    if plan.status != TreatmentPlan.Status.ACTIVE:
        raise Conflict("The treatment plan is not active.")
    if scheduled_at.tzinfo is None:
        raise ValidationFailed.for_field("scheduled_at", "Give the time with its time zone.")
    clinic = clinic or actor.membership.home_clinic or Clinic.objects.order_by("pk").first()
    if clinic is None:
        raise ValidationFailed.for_field("clinic", "The organization has no clinic.")
    if chair is not None and not 1 <= chair <= clinic.chairs:
        raise ValidationFailed.for_field("chair", f"{clinic.name} has chairs 1-{clinic.chairs}.")
    template = plan.protocol.template
    now = clock.now()
    session = TreatmentSession(
        organization=actor.organization,
        patient=plan.patient,
        recorded_by=actor.user,
        plan=plan,
        protocol=plan.protocol,
        protocol_key=plan.protocol_key,
        clinic=clinic,
        chair=chair,
        drug=template.drug.value,
        route=template.route.value,
        setting=template.setting.value,
        scheduled_at=scheduled_at,
        state=SessionState.SCHEDULED,
        state_changed_at=now,
    )
    _gate(session, now)
    row, policy = protocol_selectors.safety_policy_current(actor.organization)
    session.policy_version = row
    session.policy_key = policy.policy_key
    with transaction.atomic():
        previous = TreatmentSession.objects.filter(plan=plan).exclude(state=SessionState.ABORTED)
        session.session_number = previous.count() + 1
        session.save()
        _audit(
            actor,
            "sessions.session.scheduled",
            session,
            scheduled_at=scheduled_at.isoformat(),
            protocol=plan.protocol_key,
            policy=policy.policy_key,
        )
    return session


def session_check_in(
    *, actor: Actor, session: TreatmentSession, chair: int | None = None
) -> TreatmentSession:
    actor.require(Cap.SESSION_RUN)
    now = clock.now()
    with transaction.atomic():
        session = _locked(session)
        _gate(session, now)
        if chair is not None:
            session.chair = chair
        _move(actor, session, SessionEvent.CHECK_IN, at=now)
        session.checked_in_at = now
        _save(session, "chair", "checked_in_at")
        _audit(actor, "sessions.session.checked_in", session, chair=session.chair)
    return session


def session_abort(*, actor: Actor, session: TreatmentSession, reason: str) -> TreatmentSession:
    actor.require(Cap.SESSION_RUN)
    now = clock.now()
    with transaction.atomic():
        session = _locked(session)
        _move(actor, session, SessionEvent.ABORT, at=now, reason=(reason or "").strip())
        session.abort_reason = reason.strip()
        _save(session, "abort_reason")
        _audit(actor, "sessions.session.aborted", session, reason=reason)
    return session


# --- pre-session checks -----------------------------------------------------------------------


def precheck_record(
    *,
    actor: Actor,
    session: TreatmentSession,
    checklist: Mapping[str, bool],
    vitals: Mapping[str, Any],
    taken_at: datetime | None = None,
    override_reason: str = "",
) -> Precheck:
    """The checklist, the treatment gates, weight currency and the pre-dose BP gate, together.

    Everything is recorded (the pre-dose vitals too) and the session moves to prechecks_passed
    only when every item is met; otherwise SafetyStop lists each unmet item after the record is
    kept. A BP above the gate passes only with a prescriber's override, where policy allows one.
    """
    actor.require(Cap.SESSION_RUN)
    now = clock.now()
    override_reason = (override_reason or "").strip()
    override = None
    if override_reason:
        if not actor.can(Cap.DOSE_ORDER):
            raise SafetyStop.for_field(
                "override_reason", "Only a prescriber may override the pre-dose gate."
            )
        if len(override_reason) < MIN_REASON:
            raise ValidationFailed.for_field(
                "override_reason", "Justify the override (at least 10 characters)."
            )
        override = PrescriberOverride(str(actor.user.public_id), override_reason)
    sample = _sample(vitals, _aware(taken_at, "taken_at", now=now))
    with transaction.atomic():
        session = _locked(session)
        _require_state(session, SessionState.CHECKED_IN, doing="record pre-checks")
        policy = session_policy(session)
        plan = session.plan
        items = checklist_for(
            drug=session.drug,
            setting=session.setting,
            childbearing_potential=plan.childbearing_potential,
            plan_measures=plan.plan_measures,
        )
        ticked = {k: bool(v) for k, v in checklist.items() if k not in COMPUTED_ITEMS}
        reasons: dict[str, str] = {}
        try:
            _gate(session, now)
            ticked["screening_current"] = ticked["consent_valid"] = True
        except SafetyStop as stop:
            for error in stop.errors:
                code = "consent_valid" if error.field == "consent" else "screening_current"
                reasons[code] = error.message
        weight: dict[str, Any] = {}
        try:
            selected = select_current_weight(
                _weights(session.patient), now=now, max_age_days=policy.weight_max_age_days
            )
            weight = {
                "weight_kg": str(selected.weight_kg),
                "measured_at": selected.measured_at.isoformat(),
                "entered_as": selected.entered_as,
                "max_age_days": policy.weight_max_age_days,
            }
            ticked["weight_current"] = True
        except DoseRefused as refused:
            needs_weight = (
                plan.protocol.template.dose.kind is DoseKind.PER_KG
                or policy.require_current_weight_for_fixed_doses
            )
            if needs_weight:
                reasons["weight_current"] = refused.reason
            else:
                ticked["weight_current"] = True
        gate = check_predose_gate(sample, policy, now=now, override=override)
        if gate.may_dose:
            ticked["predose_vitals_gate"] = True
        else:
            reasons["predose_vitals_gate"] = " ".join(gate.reasons)
        unmet = unmet_checklist_items(items, ticked)
        entry = _entry(actor, session, sample, policy, predose=True)
        entry.save()
        _remember_last(session, entry)
        precheck = Precheck.objects.create(
            organization=session.organization,
            session=session,
            recorded_by=actor.user,
            checklist=ticked,
            items=[{"code": i.code, "label": i.label, "source": i.source} for i in items],
            unmet=[{"code": c, "reason": reasons.get(c, "Not confirmed.")} for c in unmet],
            weight=weight,
            gate={
                "outcome": gate.outcome.value,
                "reasons": list(gate.reasons),
                "policy": gate.policy_key,
                "rule": gate.rule,
                "vitals_entry": str(entry.public_id),
            },
            override_by=actor.user if gate.override else None,
            override_reason=override_reason if gate.override else "",
            passed=not unmet,
            rule=RULE_CHECKLIST,
            recorded_at=now,
        )
        if not unmet:
            _move(actor, session, SessionEvent.COMPLETE_PRECHECKS, at=now)
        _save(session, "last_vitals", "last_alert_severity")
        _audit(
            actor,
            "sessions.precheck.recorded",
            session,
            precheck,
            passed=precheck.passed,
            unmet=unmet,
            gate=gate.outcome.value,
            override=bool(gate.override),
            override_reason=precheck.override_reason,
        )
    if unmet:
        raise SafetyStop(
            "Pre-checks not passed: "
            + " ".join(f"{c}: {reasons.get(c, 'not confirmed')}." for c in unmet),
            [FieldError(c, reasons.get(c, "Not confirmed.")) for c in unmet],
        )
    return precheck


# --- dose order and administration ------------------------------------------------------------


def _dose_input(
    session: TreatmentSession,
    *,
    prescribed_amount: Any = None,
    concentration_mg_per_ml: Any = None,
    infusion_minutes: int | None = None,
    diluent_volume_ml: Any = None,
) -> DoseInput:
    plan = session.plan
    template = session.protocol.template
    amount = plan.current_amount if prescribed_amount in (None, "") else prescribed_amount
    concentration = (
        concentration_mg_per_ml
        if concentration_mg_per_ml not in (None, "")
        else plan.concentration_mg_per_ml
    )
    diluent = diluent_volume_ml if diluent_volume_ml not in (None, "") else plan.diluent_volume_ml
    minutes = infusion_minutes if infusion_minutes is not None else plan.infusion_minutes
    return DoseInput(
        prescribed_amount=_decimal(amount, "prescribed_amount").normalize()
        if template.dose.kind is not DoseKind.PER_KG
        else _decimal(amount, "prescribed_amount"),
        weights=_weights(session.patient),
        concentration_mg_per_ml=_decimal(concentration, "concentration_mg_per_ml")
        if concentration is not None
        else None,
        infusion_minutes=minutes if template.infusion is not None else None,
        diluent_volume_ml=Decimal(str(diluent or 0))
        if template.infusion is not None
        else Decimal(0),
        session_number=session.session_number,
    )


def _calculate(session: TreatmentSession, dose_input: DoseInput, now: datetime) -> DoseResult:
    return calculate_dose(
        dose_input, protocol=session.protocol.template, policy=session_policy(session), now=now
    )


def dose_order_sign(
    *,
    actor: Actor,
    session: TreatmentSession,
    prescribed_amount: Any = None,
    concentration_mg_per_ml: Any = None,
    infusion_minutes: int | None = None,
    diluent_volume_ml: Any = None,
) -> DoseOrder:
    """A prescriber signs the dose the calculator computes; above any cap it is refused."""
    actor.require(Cap.DOSE_ORDER)
    now = clock.now()
    with transaction.atomic():
        session = _locked(session)
        _require_state(session, SessionState.PRECHECKS_PASSED, doing="sign a dose order")
        _gate(session, now)
        dose_input = _dose_input(
            session,
            prescribed_amount=prescribed_amount,
            concentration_mg_per_ml=concentration_mg_per_ml,
            infusion_minutes=infusion_minutes,
            diluent_volume_ml=diluent_volume_ml,
        )
        result = _calculate(session, dose_input, now)
        DoseOrder.objects.filter(session=session, status=DoseOrder.Status.SIGNED).update(
            status=DoseOrder.Status.VOIDED
        )
        order = DoseOrder.objects.create(
            organization=session.organization,
            session=session,
            recorded_by=actor.user,
            protocol=session.protocol,
            protocol_key=session.protocol_key,
            algorithm=result.algorithm,
            policy_key=session.policy_key,
            prescribed_amount=result.prescribed_amount,
            prescribed_unit=result.prescribed_unit,
            dose_mg=result.dose_mg,
            device_count=result.device_count,
            result=result.to_dict(),
            signed_at=now,
        )
        _audit(
            actor,
            "sessions.dose.ordered",
            session,
            order,
            dose_mg=str(result.dose_mg),
            algorithm=result.algorithm,
            protocol=session.protocol_key,
        )
    return order


def dose_administer(
    *,
    actor: Actor,
    session: TreatmentSession,
    dose_mg: Any,
    lot_number: str,
    started_at: datetime | None = None,
    ended_at: datetime | None = None,
    device_count: int | None = None,
    note: str = "",
) -> DoseAdministration:
    """A nurse records the dose given. Every gate is checked again at the moment of dosing."""
    actor.require(Cap.DOSE_ADMINISTER)
    now = clock.now()
    started = _aware(started_at, "started_at", now=now)
    ended = _aware(ended_at, "ended_at", now=now) if ended_at is not None else None
    if ended is not None and ended < started:
        raise ValidationFailed.for_field("ended_at", "The end is before the start.")
    given = _decimal(dose_mg, "dose_mg")
    lot_number = (lot_number or "").strip()
    if not lot_number:
        raise ValidationFailed.for_field("lot_number", "Every administration names its lot.")
    with transaction.atomic():
        session = _locked(session)
        _require_state(session, SessionState.PRECHECKS_PASSED, doing="record a dose")
        order = DoseOrder.objects.filter(session=session, status=DoseOrder.Status.SIGNED).first()
        if order is None:
            raise SafetyStop.for_field("order", "No signed dose order: a prescriber signs first.")
        _gate(session, started)
        policy = session_policy(session)
        # The pre-dose BP gate, again at the moment of dosing (freshness and override included).
        precheck = Precheck.objects.filter(session=session, passed=True).order_by("-pk").first()
        predose = (
            VitalsEntry.objects.filter(session=session, predose=True, systolic__isnull=False)
            .order_by("-taken_at", "-pk")
            .first()
        )
        override = (
            PrescriberOverride(str(precheck.override_by.public_id), precheck.override_reason)
            if precheck and precheck.override_by
            else None
        )
        gate = check_predose_gate(
            _sample_of(predose) if predose else None, policy, now=started, override=override
        )
        if not gate.may_dose:
            raise SafetyStop(
                " ".join(gate.reasons), [FieldError("predose_vitals_gate", r) for r in gate.reasons]
            )
        # The order's dose, recomputed now: a weight gone stale or a changed cap refuses.
        stored = order.result
        recomputed = _calculate(
            session,
            DoseInput(
                prescribed_amount=Decimal(stored["prescribed_amount"]),
                weights=_weights(session.patient),
                concentration_mg_per_ml=Decimal(stored["concentration_mg_per_ml"])
                if stored.get("concentration_mg_per_ml")
                else None,
                infusion_minutes=stored.get("infusion_minutes"),
                diluent_volume_ml=Decimal(stored.get("diluent_volume_ml") or 0),
                session_number=stored.get("session_number"),
            ),
            started,
        )
        if given > recomputed.dose_mg or given > order.dose_mg:
            raise DoseRefused(
                "dose_mg", f"{given} mg is more than the signed order of {order.dose_mg} mg."
            )
        template = session.protocol.template
        if template.dose.kind is DoseKind.DEVICE:
            device_mg = template.dose.device_mg or Decimal(28)
            if given % device_mg != 0:
                raise DoseRefused(
                    "dose_mg", f"Esketamine is given in whole {device_mg} mg devices."
                )
            expected = int(given / device_mg)
            if device_count is None:
                device_count = expected
            if device_count != expected:
                raise DoseRefused(
                    "device_count", f"{device_count} devices do not deliver {given} mg."
                )
        elif device_count is not None:
            raise ValidationFailed.for_field("device_count", "Only nasal devices are counted.")
        administration = DoseAdministration.objects.create(
            organization=session.organization,
            session=session,
            recorded_by=actor.user,
            order=order,
            patient=session.patient,
            drug=session.drug,
            route=session.route,
            dose_mg=given,
            device_count=device_count,
            lot_number=lot_number[:40],
            started_at=started,
            ended_at=ended,
            note=note,
        )
        _move(actor, session, SessionEvent.START_DOSING, at=started)
        session.dose_started_at = started
        if ended is not None:
            _move(actor, session, SessionEvent.COMPLETE_DOSING, at=ended)
            session.dose_ended_at = ended
        _save(session, "dose_started_at", "dose_ended_at")
        _audit(
            actor,
            "sessions.dose.administered",
            session,
            administration,
            dose_mg=str(given),
            lot_number=lot_number,
            device_count=device_count,
            order=str(order.public_id),
        )
    return administration


def dose_complete(
    *, actor: Actor, session: TreatmentSession, ended_at: datetime | None = None
) -> TreatmentSession:
    """The infusion (or the last device) is finished: monitoring starts."""
    actor.require(Cap.DOSE_ADMINISTER)
    now = clock.now()
    ended = _aware(ended_at, "ended_at", now=now)
    with transaction.atomic():
        session = _locked(session)
        _require_state(session, SessionState.DOSING, doing="complete the dose")
        if session.dose_started_at and ended < session.dose_started_at:
            raise ValidationFailed.for_field("ended_at", "The end is before the start.")
        DoseAdministration.objects.filter(session=session, ended_at__isnull=True).update(
            ended_at=ended
        )
        _move(actor, session, SessionEvent.COMPLETE_DOSING, at=ended)
        session.dose_ended_at = ended
        _save(session, "dose_ended_at")
        _audit(actor, "sessions.dose.completed", session, ended_at=ended.isoformat())
    return session


# --- monitoring -------------------------------------------------------------------------------


def vitals_record(
    *, actor: Actor, session: TreatmentSession, samples: Iterable[Mapping[str, Any]]
) -> list[VitalsEntry]:
    """One or more flowsheet rows (a monitor may send a batch); alerts classified and stored."""
    actor.require(Cap.SESSION_RUN)
    now = clock.now()
    parsed = []
    for index, data in enumerate(samples):
        try:
            parsed.append(_sample(data, _aware(data.get("taken_at"), "taken_at", now=now)))
        except ValidationFailed as error:
            raise ValidationFailed(
                error.detail,
                [FieldError(f"samples[{index}].{e.field}", e.message) for e in error.errors],
            ) from None
    if not parsed:
        raise ValidationFailed.for_field("samples", "Send at least one sample.")
    with transaction.atomic():
        session = _locked(session)
        if session.is_final or session.state == SessionState.SCHEDULED:
            raise Conflict(f"Vitals cannot be added to a session that is {session.state}.")
        policy = session_policy(session)
        # Before the dose starts a reading is a pre-dose one: dose_administer gates on the latest.
        predose = session.state in (SessionState.CHECKED_IN, SessionState.PRECHECKS_PASSED)
        entries = [_entry(actor, session, sample, policy, predose=predose) for sample in parsed]
        VitalsEntry.objects.bulk_create(entries)
        latest = max(entries, key=lambda e: e.taken_at)
        _remember_last(session, latest)
        critical = any(e.severity == "critical" for e in entries)
        if critical and session.state == SessionState.READY_FOR_DISCHARGE:
            _move(actor, session, SessionEvent.RESUME_MONITORING, at=now)
        _save(session, "last_vitals", "last_alert_severity")
        _audit(
            actor,
            "sessions.vitals.recorded",
            session,
            count=len(entries),
            alerts=[a["message"] for e in entries for a in e.alerts],
        )
    return entries


def observation_record(
    *,
    actor: Actor,
    session: TreatmentSession,
    kind: str,
    score: Any = None,
    data: Mapping[str, Any] | None = None,
    observed_at: datetime | None = None,
    note: str = "",
) -> SessionObservation:
    actor.require(Cap.SESSION_RUN)
    now = clock.now()
    if kind not in SessionObservation.Kind.values:
        raise ValidationFailed.for_field(
            "kind", f"Choose one of {', '.join(SessionObservation.Kind.values)}."
        )
    value = None
    instrument = ""
    clean: dict[str, Any] = dict(data or {})
    if kind == SessionObservation.Kind.CADSS:
        value = Decimal(str(score)) if score not in (None, "") else None
        if value is None or not Decimal(0) <= value <= CADSS_MAX:
            raise ValidationFailed.for_field("score", "A CADSS total is 0-92.")
        instrument = "cadss@1"
    elif kind == SessionObservation.Kind.SEDATION:
        value = Decimal(str(score)) if score not in (None, "") else None
        if value is None or not MOAAS_RANGE[0] <= value <= MOAAS_RANGE[1] or value % 1:
            raise ValidationFailed.for_field("score", "MOAA/S is a whole number 0-5.")
        instrument = "moaa-s@1"
    else:
        unknown = sorted(set(clean) - set(ADVERSE_EVENTS_BY_CODE))
        if unknown:
            raise ValidationFailed.for_field("data", f"Unknown side effects: {', '.join(unknown)}.")
        clean = {k: bool(v) for k, v in clean.items()}
    with transaction.atomic():
        session = _locked(session)
        if session.state in (SessionState.SCHEDULED, SessionState.ABORTED):
            raise Conflict(f"Nothing can be observed in a session that is {session.state}.")
        row = SessionObservation.objects.create(
            organization=session.organization,
            session=session,
            recorded_by=actor.user,
            kind=kind,
            observed_at=_aware(observed_at, "observed_at", now=now),
            score=value,
            data=clean,
            instrument=instrument,
            note=note,
        )
        _audit(actor, "sessions.observation.recorded", session, row, kind=kind, score=str(value))
    return row


def adverse_event_record(
    *,
    actor: Actor,
    session: TreatmentSession,
    event_code: str,
    grade: int,
    serious: bool = False,
    onset_at: datetime | None = None,
    action_taken: str = "",
    outcome: str = AdverseEvent.Outcome.ONGOING,
    description: str = "",
) -> AdverseEvent:
    actor.require(Cap.SESSION_RUN)
    now = clock.now()
    if event_code not in ADVERSE_EVENTS_BY_CODE:
        raise ValidationFailed.for_field("event_code", "Choose an adverse event from the list.")
    if event_code == "other" and not description.strip():
        raise ValidationFailed.for_field("description", "Describe the event.")
    if outcome not in AdverseEvent.Outcome.values:
        raise ValidationFailed.for_field("outcome", "Choose an outcome.")
    try:
        escalate = _requires_escalation(int(grade), bool(serious), event_code=event_code)
    except (ValueError, TypeError):
        raise ValidationFailed.for_field("grade", "The grade is 1 to 5 (CTCAE).") from None
    with transaction.atomic():
        session = _locked(session)
        if session.state in (SessionState.SCHEDULED,):
            raise Conflict("The session has not started.")
        event = AdverseEvent.objects.create(
            organization=session.organization,
            session=session,
            recorded_by=actor.user,
            patient=session.patient,
            event_code=event_code,
            description=description,
            grade=int(grade),
            serious=bool(serious),
            onset_at=_aware(onset_at, "onset_at", now=now),
            action_taken=action_taken,
            outcome=outcome,
            escalated=escalate,
            escalation_rule=RULE_ESCALATION,
        )
        _audit(
            actor,
            "sessions.adverse_event.recorded",
            session,
            event,
            code=event_code,
            grade=int(grade),
            serious=bool(serious),
            escalated=escalate,
        )
        if escalate:
            from ketaclinic.sessions.tasks import adverse_event_escalate

            public_id = str(event.public_id)
            transaction.on_commit(lambda: adverse_event_escalate.enqueue(public_id))
    return event


def intervention_record(
    *,
    actor: Actor,
    session: TreatmentSession,
    drug_name: str,
    dose_text: str,
    route: str,
    reason: str,
    rxnorm_code: str = "",
    given_at: datetime | None = None,
    adverse_event: AdverseEvent | None = None,
) -> Intervention:
    """A medication given in the session (antiemetic, antihypertensive...)."""
    actor.require(Cap.DOSE_ADMINISTER)
    now = clock.now()
    missing = [
        n
        for n, v in (
            ("drug_name", drug_name),
            ("dose_text", dose_text),
            ("route", route),
            ("reason", reason),
        )
        if not (v or "").strip()
    ]
    if missing:
        raise ValidationFailed(
            "Some fields are missing.", [FieldError(n, "Required.") for n in missing]
        )
    with transaction.atomic():
        session = _locked(session)
        if session.state in (SessionState.SCHEDULED, SessionState.ABORTED, SessionState.DISCHARGED):
            raise Conflict(f"Cannot record a medication in a session that is {session.state}.")
        row = Intervention.objects.create(
            organization=session.organization,
            session=session,
            recorded_by=actor.user,
            drug_name=drug_name.strip(),
            rxnorm_code=rxnorm_code,
            dose_text=dose_text.strip(),
            route=route.strip(),
            reason=reason.strip(),
            given_at=_aware(given_at, "given_at", now=now),
            adverse_event=adverse_event,
        )
        _audit(actor, "sessions.intervention.recorded", session, row, drug=row.drug_name)
    return row


# --- discharge ----------------------------------------------------------------------------------

ASSESSMENT_FIELDS = tuple(DischargeAssessment.__dataclass_fields__)


def _assessment(data: Mapping[str, Any]) -> DischargeAssessment:
    return DischargeAssessment(**{name: bool(data.get(name)) for name in ASSESSMENT_FIELDS})


def _evaluate(
    session: TreatmentSession,
    assessment: DischargeAssessment,
    now: datetime,
    override: PrescriberOverride | None,
) -> Any:
    if session.dose_started_at is None:
        raise Conflict("No dose was given in this session.")
    vitals = [_sample_of(e) for e in VitalsEntry.objects.filter(session=session, predose=False)]
    return evaluate_discharge(
        drug=session.drug,
        dose_started_at=session.dose_started_at,
        now=now,
        vitals=vitals,
        assessment=assessment,
        policy=session_policy(session),
        protocol_minimum_observation_minutes=session.protocol.template.monitoring.minimum_observation_minutes,
        vitals_override=override,
    )


def _discharge_json(result: Any) -> dict[str, Any]:
    return {
        "ready": result.ready,
        "unmet": [asdict(u) for u in result.unmet],
        "deviations": [asdict(u) for u in result.deviations],
        "earliest_discharge_at": result.earliest_discharge_at.isoformat(),
        "observed_minutes": result.observed_minutes,
        "vitals_override": asdict(result.vitals_override) if result.vitals_override else None,
        "policy": result.policy_key,
        "rule": result.rule,
    }


def discharge_check(
    *,
    actor: Actor,
    session: TreatmentSession,
    assessment: Mapping[str, Any],
    vitals_override_reason: str = "",
) -> DischargeCheck:
    """Evaluate every discharge criterion now; ready moves the session to ready_for_discharge."""
    actor.require(Cap.SESSION_RUN)
    now = clock.now()
    override = None
    if vitals_override_reason.strip():
        if not actor.can(Cap.DOSE_ORDER):
            raise SafetyStop.for_field("vitals_override_reason", "Only a prescriber may override.")
        override = PrescriberOverride(str(actor.user.public_id), vitals_override_reason.strip())
    with transaction.atomic():
        session = _locked(session)
        _require_state(
            session,
            SessionState.MONITORING,
            SessionState.READY_FOR_DISCHARGE,
            doing="check discharge",
        )
        parsed = _assessment(assessment)
        result = _evaluate(session, parsed, now, override)
        check = DischargeCheck.objects.create(
            organization=session.organization,
            session=session,
            recorded_by=actor.user,
            assessment=asdict(parsed),
            result=_discharge_json(result),
            ready=result.ready,
            rule=result.rule,
            checked_at=now,
        )
        if result.ready and session.state == SessionState.MONITORING:
            _move(actor, session, SessionEvent.MEET_DISCHARGE_CRITERIA, at=now)
        elif not result.ready and session.state == SessionState.READY_FOR_DISCHARGE:
            _move(actor, session, SessionEvent.RESUME_MONITORING, at=now)
        _save(session)
        _audit(
            actor,
            "sessions.discharge.checked",
            session,
            check,
            ready=result.ready,
            unmet=list(result.unmet_codes),
        )
    return check


def session_discharge(*, actor: Actor, session: TreatmentSession) -> TreatmentSession:
    """Discharge: every criterion is evaluated again now, from the last bedside assessment."""
    actor.require(Cap.SESSION_RUN)
    now = clock.now()
    with transaction.atomic():
        session = _locked(session)
        _require_state(
            session, SessionState.MONITORING, SessionState.READY_FOR_DISCHARGE, doing="discharge"
        )
        last = DischargeCheck.objects.filter(session=session).order_by("-checked_at", "-pk").first()
        if last is None:
            raise SafetyStop.for_field("discharge", "Check the discharge criteria first.")
        stored_override = (last.result or {}).get("vitals_override")
        override = PrescriberOverride(**stored_override) if stored_override else None
        result = _evaluate(session, _assessment(last.assessment), now, override)
        if not result.ready:
            raise SafetyStop(
                "The patient may not leave yet: " + " ".join(u.detail for u in result.unmet),
                [FieldError(u.code, u.detail) for u in result.unmet],
            )
        if session.state == SessionState.MONITORING:
            _move(actor, session, SessionEvent.MEET_DISCHARGE_CRITERIA, at=now)
        _move(actor, session, SessionEvent.DISCHARGE, at=now)
        session.discharged_at = now
        _save(session, "discharged_at")
        if session.drug == "esketamine":
            _pmf_refresh(session)
        _audit(
            actor,
            "sessions.session.discharged",
            session,
            observed_minutes=result.observed_minutes,
            deviations=[d.code for d in result.deviations],
        )
    return session


# --- the note -----------------------------------------------------------------------------------


def note_save(*, actor: Actor, session: TreatmentSession, text: str) -> SessionNote:
    actor.require(Cap.SESSION_RUN)
    with transaction.atomic():
        session = _locked(session)
        note = SessionNote.objects.filter(session=session).first()
        if note is not None and note.signed_at is not None:
            raise Conflict(
                "The note is signed and cannot change; add an amendment.",
                [FieldError("text", "signed")],
            )
        if note is None:
            note = SessionNote(
                organization=session.organization, session=session, recorded_by=actor.user
            )
        note.text = text
        note.save()
        _audit(actor, "sessions.note.saved", session, note, length=len(text))
    return note


def _mg_text(value: Decimal) -> str:
    normal = Decimal(value).normalize()
    return "0" if normal == 0 else format(normal, "f")


def _require_ledger_balanced(session: TreatmentSession) -> None:
    """drawn = administered + wasted + returned in the inventory ledger, for every
    administration of the session (issue 7); otherwise SafetyStop naming each one."""
    errors = []
    administrations = DoseAdministration.objects.filter(session=session).order_by(
        "started_at", "pk"
    )
    for administration in administrations:
        account = inventory_selectors.administration_reconciliation(
            administration.public_id, administered_mg=administration.dose_mg
        )
        if account.balanced:
            continue
        difference = account.difference_mg
        gap = (
            f"{_mg_text(difference)} mg unaccounted"
            if difference > 0
            else f"{_mg_text(-difference)} mg more accounted for than drawn"
        )
        errors.append(
            FieldError(
                f"administration.{administration.public_id}",
                f"Administration {administration.public_id} (lot {administration.lot_number}): "
                f"drawn {_mg_text(account.drawn_mg)} mg, "
                f"administered {_mg_text(account.administered_mg)} mg, "
                f"wasted {_mg_text(account.wasted_mg)} mg, "
                f"returned {_mg_text(account.returned_mg)} mg: {gap}.",
            )
        )
    if errors:
        raise SafetyStop(
            "The controlled-substance ledger does not balance: "
            + " ".join(error.message for error in errors),
            errors,
        )


def note_sign(*, actor: Actor, session: TreatmentSession) -> SessionNote:
    """Sign the note. An esketamine session's REMS form must be complete first, and every
    administration must balance in the controlled-substance ledger (unless the clinic's safety
    policy turns that off)."""
    actor.require(Cap.SESSION_RUN)
    now = clock.now()
    with transaction.atomic():
        session = _locked(session)
        if not session.is_final:
            raise Conflict("Sign the note after discharge (or abort).")
        note = SessionNote.objects.select_for_update().filter(session=session).first()
        if note is None or not note.text.strip():
            raise ValidationFailed.for_field("text", "Write the note before signing it.")
        if note.signed_at is not None:
            raise Conflict("The note is already signed; add an amendment.")
        if session.drug == "esketamine" and session.state == SessionState.DISCHARGED:
            pmf = _pmf_refresh(session)
            if pmf.missing or pmf.problems:
                raise SafetyStop(
                    "The REMS Patient Monitoring Form is incomplete: "
                    + ", ".join(pmf.missing + pmf.problems),
                    [FieldError(f"pmf.{key}", "Required by the REMS form.") for key in pmf.missing]
                    + [FieldError("pmf", problem) for problem in pmf.problems],
                )
        if session_policy(session).require_ledger_reconciliation:
            _require_ledger_balanced(session)
        digest = hashlib.sha256(note.text.encode()).hexdigest()
        SessionNote.objects.filter(pk=note.pk).update(
            signed_at=now, signed_by=actor.user, content_hash=digest, updated_at=now
        )
        note.refresh_from_db()
        _audit(actor, "sessions.note.signed", session, note, content_hash=digest)
    return note


def note_amend(*, actor: Actor, session: TreatmentSession, text: str, reason: str) -> NoteAmendment:
    actor.require(Cap.SESSION_RUN)
    if not text.strip() or len(reason.strip()) < 5:
        raise ValidationFailed.for_field("reason", "An amendment needs its text and a reason.")
    with transaction.atomic():
        note = SessionNote.objects.filter(session=session).first()
        if note is None or note.signed_at is None:
            raise Conflict("Only a signed note is amended; edit the draft instead.")
        amendment = NoteAmendment.objects.create(
            organization=session.organization,
            session=session,
            recorded_by=actor.user,
            note=note,
            text=text,
            reason=reason.strip(),
            signed_at=clock.now(),
        )
        _audit(actor, "sessions.note.amended", session, amendment, reason=reason.strip())
    return amendment


# --- Spravato REMS ------------------------------------------------------------------------------

# Answers the session cannot supply; staff enter them on the form.
PMF_MANUAL_FIELDS = (
    "concomitant_benzodiazepines",
    "concomitant_non_benzodiazepine_sedative_hypnotics",
    "concomitant_psychostimulants",
    "concomitant_maois",
    "concomitant_opioids",
    "minutes_until_ready_without_two_hour_rule",
    "monitoring_hcp_phone",
    "monitoring_hcp_email",
    "setting_address",
)


def rems_enroll(
    *, actor: Actor, patient: Patient, enrolled_on: Any, rems_patient_id: str = ""
) -> RemsEnrollment:
    actor.require(Cap.SESSION_RUN)
    row = RemsEnrollment(
        organization=actor.organization,
        patient=patient,
        recorded_by=actor.user,
        rems_patient_id=rems_patient_id.strip()[:40],
        enrolled_on=enrolled_on,
    )
    try:
        with transaction.atomic():
            row.save()
            audit_record(
                actor=actor,
                action="sessions.rems.enrolled",
                patient_id=patient.public_id,
                obj=row,
                detail={"rems_patient_id": row.rems_patient_id},
            )
    except IntegrityError:
        raise Conflict("The patient is already enrolled in the REMS.") from None
    return row


def _bp_near(entries: list[VitalsEntry], at: datetime, tolerance: timedelta) -> VitalsEntry | None:
    close = [e for e in entries if e.systolic and abs(e.taken_at - at) <= tolerance]
    return min(close, key=lambda e: abs(e.taken_at - at)) if close else None


def pmf_auto_fields(session: TreatmentSession) -> dict[str, Any]:
    """The PMF answers the session record supplies."""
    from ketaclinic.sessions.selectors import local_date

    patient, clinic, policy = session.patient, session.clinic, session_policy(session)
    administration = (
        DoseAdministration.objects.filter(session=session)
        .select_related("recorded_by")
        .order_by("pk")
        .first()
    )
    vitals = list(VitalsEntry.objects.filter(session=session).order_by("taken_at", "pk"))
    predose = [e for e in vitals if e.predose and e.systolic]
    post = [e for e in vitals if not e.predose and e.systolic]
    check = DischargeCheck.objects.filter(session=session, ready=True).order_by("-pk").first()
    observations = list(SessionObservation.objects.filter(session=session))
    events = set(AdverseEvent.objects.filter(session=session).values_list("event_code", flat=True))
    data: dict[str, Any] = {
        "patient_first_name": patient.given_name,
        "patient_last_name": patient.family_name,
        "patient_date_of_birth": patient.birth_date.isoformat(),
        "patient_sex": patient.get_sex_at_birth_display(),
        "first_treatment": session.session_number == 1,
        "patient_enrolled_in_rems": RemsEnrollment.objects.filter(patient=patient).exists(),
        "setting_name": clinic.name,
        "setting_address": clinic.address,
        "experienced_sedation": "sedation" in events
        or any(o.kind == "sedation" and o.score is not None and o.score < 5 for o in observations),
        "experienced_dissociation": "dissociation" in events
        or any(o.kind == "cadss" and o.score and o.score > 0 for o in observations),
        "experienced_respiratory_depression": "respiratory_depression" in events,
    }
    if administration is not None:
        hcp = administration.recorded_by
        data.update(
            monitoring_hcp_name=hcp.display_name,
            monitoring_hcp_email=hcp.email,
            treatment_date=local_date(session, administration.started_at).isoformat(),
            lot_number=administration.lot_number,
        )
        mg = administration.dose_mg.normalize()
        data["dose"] = str(mg) if str(mg) in ("56", "84") else "other"
        if data["dose"] == "other":
            data["dose_other_mg"] = str(mg)
        data["monitoring_hcp_phone"] = clinic.phone or None
    if predose:
        data.update(
            bp_predose_systolic=predose[-1].systolic,
            bp_predose_diastolic=predose[-1].diastolic,
            vitals_acceptable_before_administration=Precheck.objects.filter(
                session=session, passed=True
            ).exists(),
        )
    if session.dose_started_at is not None:
        recheck = _bp_near(
            post,
            session.dose_started_at + timedelta(minutes=policy.bp_recheck_minutes_after_esketamine),
            timedelta(minutes=policy.bp_recheck_tolerance_minutes),
        )
        if recheck:
            data.update(bp_40min_systolic=recheck.systolic, bp_40min_diastolic=recheck.diastolic)
    if post:
        data.update(
            bp_completion_systolic=post[-1].systolic, bp_completion_diastolic=post[-1].diastolic
        )
    if check is not None:
        data["vitals_acceptable_before_completion"] = True
    if session.discharged_at and session.dose_started_at:
        data["monitoring_duration_minutes"] = int(
            (session.discharged_at - session.dose_started_at) / timedelta(minutes=1)
        )
    return data


def _pmf_refresh(
    session: TreatmentSession, answers: Mapping[str, Any] | None = None
) -> PatientMonitoringForm:
    pmf = PatientMonitoringForm.objects.filter(session=session).first()
    manual = {k: v for k, v in (pmf.data if pmf else {}).items() if k in PMF_MANUAL_FIELDS}
    manual.update({k: v for k, v in (answers or {}).items() if k in PMF_MANUAL_FIELDS})
    data = {**pmf_auto_fields(session), **{k: v for k, v in manual.items() if v not in (None, "")}}
    missing = rems.pmf_missing_fields(data)
    problems = rems.pmf_problems(data) if not missing else []
    treatment_date = (
        datetime.fromisoformat(data["treatment_date"]).date()
        if data.get("treatment_date")
        else clock.now().date()
    )
    if pmf is None:
        pmf = PatientMonitoringForm(
            organization=session.organization,
            session=session,
            recorded_by=session.recorded_by or session.plan.prescriber,
        )
    pmf.data, pmf.missing, pmf.problems = data, missing, problems
    pmf.rule = rems.RULE_PMF
    pmf.treatment_date = treatment_date
    pmf.due_on = rems.pmf_submission_deadline(treatment_date)
    pmf.save()
    return pmf


def pmf_update(
    *, actor: Actor, session: TreatmentSession, answers: Mapping[str, Any]
) -> PatientMonitoringForm:
    """Staff answer the PMF questions the session cannot (concomitant medicines, readiness)."""
    actor.require(Cap.SESSION_RUN)
    if session.drug != "esketamine":
        raise ValidationFailed.for_field("session", "Only esketamine sessions have a REMS form.")
    unknown = sorted(set(answers) - set(PMF_MANUAL_FIELDS))
    if unknown:
        raise ValidationFailed(
            "These answers come from the session record.",
            [FieldError(k, "Filled from the session.") for k in unknown],
        )
    with transaction.atomic():
        session = _locked(session)
        pmf = _pmf_refresh(session, answers)
        _audit(
            actor,
            "sessions.pmf.updated",
            session,
            pmf,
            answered=sorted(answers),
            missing=pmf.missing,
        )
    return pmf


def pmf_mark_submitted(
    *, actor: Actor, pmf: PatientMonitoringForm, submitted_on: Any
) -> PatientMonitoringForm:
    actor.require(Cap.SESSION_RUN)
    if pmf.missing:
        raise SafetyStop.for_field("pmf", "Complete the form before submitting it.")
    with transaction.atomic():
        pmf.submitted_on = submitted_on
        pmf.save(update_fields=["submitted_on", "updated_at"])
        _audit(actor, "sessions.pmf.submitted", pmf.session, pmf, submitted_on=str(submitted_on))
    return pmf
