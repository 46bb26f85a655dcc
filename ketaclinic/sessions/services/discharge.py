"""Discharge criteria and the discharge itself."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict
from datetime import datetime
from typing import Any

from django.db import transaction

from ketaclinic.accounts.actor import Actor
from ketaclinic.accounts.roles import Cap
from ketaclinic.core import clock
from ketaclinic.core.errors import Conflict, FieldError, SafetyStop
from ketaclinic.sessions.discharge import DischargeAssessment, evaluate_discharge
from ketaclinic.sessions.models import (
    DischargeCheck,
    TreatmentSession,
    VitalsEntry,
)
from ketaclinic.sessions.services._common import (
    _audit,
    _locked,
    _move,
    _require_state,
    _sample_of,
    _save,
    session_policy,
)
from ketaclinic.sessions.services.pmf import (
    _pmf_refresh,
)
from ketaclinic.sessions.vitals import (
    PrescriberOverride,
)
from ketaclinic.sessions.workflow import (
    SessionEvent,
    SessionState,
)

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
