"""Helpers shared by the session services: locking, state moves, audit, vitals parsing."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict
from datetime import datetime, timedelta
from decimal import Decimal, InvalidOperation
from typing import Any

from ketaclinic.accounts.actor import Actor
from ketaclinic.accounts.audit import audit_record
from ketaclinic.core import rows
from ketaclinic.core.errors import Conflict, FieldError, ValidationFailed
from ketaclinic.patients.models import BodyWeight, Patient
from ketaclinic.patients.plausibility import implausible_readings
from ketaclinic.protocols.dosing import (
    WeightMeasurement,
)
from ketaclinic.protocols.services import treatment_gate
from ketaclinic.sessions.models import (
    SessionTransition,
    TreatmentSession,
    VitalsEntry,
)
from ketaclinic.sessions.policy import DEFAULT_POLICY, SessionSafetyPolicy
from ketaclinic.sessions.vitals import (
    RULE_VITALS_ALERTS,
    VitalsSample,
    classify_vitals,
)
from ketaclinic.sessions.workflow import (
    SessionEvent,
    SessionState,
    next_state,
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


_RELATED = ("patient", "plan", "protocol", "clinic", "policy_version")


def _locked(session: TreatmentSession, *, related: tuple[str, ...] = _RELATED) -> TreatmentSession:
    """Re-read the session under a row lock: two nurses on one session serialize here. `related`:
    the rows read with it (a caller that needs fewer says so: each join and its instances cost
    CPU on every write, issue 13; the others still load on first use). The query is built once
    (core.rows), not compiled on every write."""
    locked = rows.one(TreatmentSession, pk=session.pk, related=related, lock=True)
    if locked is None:
        raise TreatmentSession.DoesNotExist(f"No session {session.pk} in this organization.")
    return locked


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
    rows.update(session, (*fields, "state", "state_changed_at", "updated_at"))


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
    given = False
    for name in VITAL_FIELDS:
        raw = data.get(name)
        if type(raw) is int:  # what the API's schema gives: int(str(raw)) would be raw itself
            values[name] = raw
            given = True
            continue
        if raw in (None, ""):
            values[name] = None
            continue
        try:
            values[name] = int(str(raw))
        except ValueError:
            raise ValidationFailed.for_field(name, "Enter a whole number.") from None
        given = True
    if not given:
        raise ValidationFailed.for_field("systolic", "Enter at least one vital sign.")
    if (values["systolic"] is None) != (values["diastolic"] is None):
        raise ValidationFailed.for_field("diastolic", "A blood pressure needs both values.")
    # Not a possible reading (BP 400/20): refused before anything is stored, whatever the alert
    # limits say (docs/sources/sessions.md, "Vital-sign plausibility").
    problems = implausible_readings(values)
    if problems:
        raise ValidationFailed(
            " ".join(message for _, message in problems),
            [FieldError(field, message) for field, message in problems],
        )
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
