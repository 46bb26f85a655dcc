"""Signing the dose order and charting each administration."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any

from django.db import transaction

from ketaclinic.accounts.actor import Actor
from ketaclinic.accounts.roles import Cap
from ketaclinic.core import clock
from ketaclinic.core.errors import FieldError, SafetyStop, ValidationFailed
from ketaclinic.core.formatting import plain_number
from ketaclinic.outcomes.summary import refresh_course_summaries
from ketaclinic.protocols.catalog import DoseKind
from ketaclinic.protocols.dosing import (
    DoseInput,
    DoseRefused,
    DoseResult,
    calculate_dose,
)
from ketaclinic.sessions.models import (
    DoseAdministration,
    DoseOrder,
    Precheck,
    TreatmentSession,
    VitalsEntry,
)
from ketaclinic.sessions.services._common import (
    _audit,
    _aware,
    _decimal,
    _gate,
    _locked,
    _move,
    _require_state,
    _sample_of,
    _save,
    _weights,
    session_policy,
)
from ketaclinic.sessions.services.floor import (
    local_time,
    require_chair_free,
    require_dose_frequency,
    require_patient_free,
    require_rems,
)
from ketaclinic.sessions.vitals import (
    PrescriberOverride,
    check_predose_gate,
)
from ketaclinic.sessions.workflow import (
    SessionEvent,
    SessionState,
)

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


def _floor_stops(session: TreatmentSession, at: datetime) -> None:
    """The floor's hard stops again at the dose: REMS, one session per patient and chair, and
    how often the patient is dosed (docs/sources/sessions.md)."""
    require_rems(session)
    require_patient_free(session)
    require_chair_free(session, session.chair)
    require_dose_frequency(session, session_policy(session), at)


def _require_after(session: TreatmentSession, started: datetime, signed_at: datetime) -> None:
    """A dose is charted after the patient arrived and after the prescriber signed its order."""
    clinic = session.clinic
    if session.checked_in_at is not None and started < session.checked_in_at:
        raise ValidationFailed.for_field(
            "started_at",
            f"The dose cannot start at {local_time(clinic, started)}, before the patient was "
            f"checked in at {local_time(clinic, session.checked_in_at)}.",
        )
    if started < signed_at:
        raise ValidationFailed.for_field(
            "started_at",
            f"The dose cannot start at {local_time(clinic, started)}, before its order was "
            f"signed at {local_time(clinic, signed_at)}.",
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
        _floor_stops(session, now)
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
        _require_after(session, started, order.signed_at)
        _floor_stops(session, started)
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
                "dose_mg",
                f"{plain_number(given)} mg is more than the signed order of {plain_number(order.dose_mg)} mg.",
            )
        template = session.protocol.template
        if template.dose.kind is DoseKind.DEVICE:
            device_mg = template.dose.device_mg or Decimal(28)
            if given % device_mg != 0:
                raise DoseRefused(
                    "dose_mg", f"Esketamine is given in whole {plain_number(device_mg)} mg devices."
                )
            expected = int(given / device_mg)
            if device_count is None:
                device_count = expected
            if device_count != expected:
                raise DoseRefused(
                    "device_count",
                    f"{device_count} devices do not deliver {plain_number(given)} mg.",
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
        refresh_course_summaries([session.patient_id])  # a course starts or gains a dose
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


def dose_preview(
    *,
    actor: Actor,
    session: TreatmentSession,
    prescribed_amount: Any = None,
    concentration_mg_per_ml: Any = None,
    infusion_minutes: int | None = None,
    diluent_volume_ml: Any = None,
) -> DoseResult:
    """What the calculator would order now, shown while the prescriber fills the order (htmx).
    Writes nothing and signs nothing; the same inputs and caps as dose_order_sign, which checks
    everything again (gate, floor stops) when the order is signed."""
    actor.require(Cap.DOSE_ORDER)
    dose_input = _dose_input(
        session,
        prescribed_amount=prescribed_amount,
        concentration_mg_per_ml=concentration_mg_per_ml,
        infusion_minutes=infusion_minutes,
        diluent_volume_ml=diluent_volume_ml,
    )
    return _calculate(session, dose_input, clock.now())
