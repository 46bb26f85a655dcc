"""The pre-session checklist and its computed items (screening, consent, weight, BP gate)."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from django.db import transaction

from ketaclinic.accounts.actor import Actor
from ketaclinic.accounts.roles import Cap
from ketaclinic.core import clock
from ketaclinic.core.errors import FieldError, SafetyStop, ValidationFailed
from ketaclinic.protocols.catalog import DoseKind
from ketaclinic.protocols.dosing import (
    DoseRefused,
    select_current_weight,
)
from ketaclinic.sessions.models import (
    Precheck,
    TreatmentSession,
)
from ketaclinic.sessions.services._common import (
    COMPUTED_ITEMS,
    MIN_REASON,
    _audit,
    _aware,
    _entry,
    _gate,
    _locked,
    _move,
    _remember_last,
    _require_state,
    _sample,
    _save,
    _weights,
    session_policy,
)
from ketaclinic.sessions.vitals import (
    PrescriberOverride,
    check_predose_gate,
)
from ketaclinic.sessions.workflow import (
    RULE_CHECKLIST,
    SessionEvent,
    SessionState,
    checklist_for,
    unmet_checklist_items,
)

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
