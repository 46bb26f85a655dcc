"""Vitals, observations, adverse events and interventions while the patient is monitored."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

from django.db import connections, router, transaction

from ketaclinic.accounts.actor import Actor
from ketaclinic.accounts.roles import Cap
from ketaclinic.core import clock
from ketaclinic.core.bulk import insert_objects
from ketaclinic.core.errors import Conflict, FieldError, ValidationFailed
from ketaclinic.outcomes.summary import (
    bp_above,
    refresh_course_summaries,
    refresh_safety_counts,
)
from ketaclinic.sessions.adverse_events import ADVERSE_EVENTS_BY_CODE, RULE_ESCALATION
from ketaclinic.sessions.adverse_events import requires_escalation as _requires_escalation
from ketaclinic.sessions.models import (
    AdverseEvent,
    Intervention,
    SessionObservation,
    TreatmentSession,
    VitalsEntry,
)
from ketaclinic.sessions.services._common import (
    CADSS_MAX,
    MOAAS_RANGE,
    VITAL_FIELDS,
    _audit,
    _aware,
    _locked,
    _move,
    _remember_last,
    _sample,
    _save,
    session_policy,
)
from ketaclinic.sessions.vitals import (
    RULE_VITALS_ALERTS,
    VitalAlert,
    classify_batch,
    worst_severity,
)
from ketaclinic.sessions.workflow import (
    SessionEvent,
    SessionState,
)

# --- monitoring -------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class RecordedVitals:
    """One flowsheet row as `vitals_record` wrote it. Not a model instance: a batch is inserted
    with one executemany (issue 13), so the caller gets the row's values and public id."""

    public_id: uuid.UUID
    taken_at: datetime
    predose: bool
    systolic: int | None
    diastolic: int | None
    heart_rate: int | None
    spo2: int | None
    respiratory_rate: int | None
    alerts: list[dict[str, Any]]
    severity: str
    rule: str
    policy_key: str

    @property
    def bp(self) -> str:
        if self.systolic is None or self.diastolic is None:
            return ""
        return f"{self.systolic}/{self.diastolic}"

    def as_entry(self, session: TreatmentSession, actor: Actor, *, at: datetime) -> VitalsEntry:
        """The stored row as an (unsaved) model instance, for callers that render it (FHIR)."""
        return VitalsEntry(
            organization_id=session.organization_id,
            session=session,
            recorded_by=actor.user,
            created_at=at,
            updated_at=at,
            **{name: getattr(self, name) for name in _ROW_VALUES},
        )


_ROW_VALUES = (
    "public_id", "taken_at", "predose", *VITAL_FIELDS, "alerts", "severity", "rule", "policy_key",
)  # fmt: skip


def vitals_record(
    *, actor: Actor, session: TreatmentSession, samples: Iterable[Mapping[str, Any]]
) -> list[RecordedVitals]:
    """One or more flowsheet rows (a monitor may send a batch); alerts classified and stored.

    Every sample is checked for plausibility before anything is stored; the batch is classified
    by the pure rules (sessions.vitals.classify_batch) and inserted with one executemany; a
    critical reading after the dose raises the session's safety alert; one audit event."""
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
        # The audit needs the patient, the rules the policy; plan and clinic only a critical
        # reading's alert, which loads them when it is raised.
        session = _locked(session, related=("patient", "policy_version"))
        if session.is_final or session.state == SessionState.SCHEDULED:
            raise Conflict(f"Vitals cannot be added to a session that is {session.state}.")
        policy = session_policy(session)
        # Before the dose starts a reading is a pre-dose one: dose_administer gates on the latest.
        predose = session.state in (SessionState.CHECKED_IN, SessionState.PRECHECKS_PASSED)
        rows = [
            RecordedVitals(
                public_id=uuid.uuid4(),
                taken_at=sample.taken_at,
                predose=predose,
                systolic=sample.systolic,
                diastolic=sample.diastolic,
                heart_rate=sample.heart_rate,
                spo2=sample.spo2,
                respiratory_rate=sample.respiratory_rate,
                alerts=[_alert_dict(alert) for alert in alerts],
                severity=worst_severity(alerts),
                rule=RULE_VITALS_ALERTS,
                policy_key=policy.policy_key,
            )
            for sample, alerts in zip(parsed, classify_batch(parsed, policy), strict=True)
        ]
        # The outcomes dashboard counts sessions by their worst blood pressure above the limits
        # after the dose: recounted (over the patient's whole history) only when this batch
        # makes this session's worst one worse, which a query bounded by the session tells.
        recount = not predose and _raises_bp_excursion(session, rows)
        _vitals_insert(session, actor, rows, now)
        if recount:
            refresh_safety_counts(session.patient_id)
        latest = max(rows, key=lambda e: e.taken_at)
        _remember_last(session, latest)  # type: ignore[arg-type]
        critical = [e for e in rows if e.severity == "critical"]
        alert = _raise_critical_alert(session, critical) if critical else None
        if critical and session.state == SessionState.READY_FOR_DISCHARGE:
            _move(actor, session, SessionEvent.RESUME_MONITORING, at=now)
        _save(session, "last_vitals", "last_alert_severity")
        _audit(
            actor,
            "sessions.vitals.recorded",
            session,
            count=len(rows),
            alerts=[a["message"] for e in rows for a in e.alerts],
            safety_alert=str(alert.public_id) if alert else None,
        )
    return rows


_BP_RANK = {"warning": 1, "critical": 2}


def _bp_worst(alerts_of_rows: Iterable[list[dict[str, Any]]]) -> int:
    """The worst blood pressure above the limits among rows' alerts, as a rank (0: none)."""
    worst = 0
    for alerts in alerts_of_rows:
        for alert in alerts:
            if bp_above(alert):
                worst = max(worst, _BP_RANK.get(alert.get("severity", "warning"), 1))
    return worst


def _raises_bp_excursion(session: TreatmentSession, rows: list[RecordedVitals]) -> bool:
    """Does this batch make the session's worst post-dose blood pressure above the limits worse
    than what its flowsheet already holds? Reads only this session's rows at that severity or
    worse, and stops at the first that already reaches it."""
    batch = _bp_worst(row.alerts for row in rows)
    if not batch:
        return False
    severities = [name for name, rank in _BP_RANK.items() if rank >= batch]
    # The same statement on every batch: written once instead of compiling a queryset per
    # request (a tenth of a batch's CPU). The session was read in the tenant's scope.
    sql = _STORED_ALERTS_SQL.format(marks=", ".join(["%s"] * len(severities)))
    with connections[router.db_for_read(VitalsEntry)].cursor() as cursor:
        cursor.execute(sql, [session.pk, False, *severities])
        while chunk := cursor.fetchmany(16):
            for (alerts,) in chunk:
                if _bp_worst([json.loads(alerts) if isinstance(alerts, str) else alerts]) >= batch:
                    return False
    return True


_STORED_ALERTS_SQL = (
    "SELECT alerts FROM treatment_sessions_vitalsentry"
    " WHERE session_id = %s AND predose = %s AND severity IN ({marks})"
)


def _alert_dict(alert: VitalAlert) -> dict[str, Any]:
    return {
        "measure": alert.measure,
        "value": alert.value,
        "threshold": alert.threshold,
        "direction": alert.direction,
        "severity": alert.severity.value,
        "rule": alert.rule,
        "message": alert.message,
    }


def _vitals_insert(
    session: TreatmentSession, actor: Actor, rows: list[RecordedVitals], now: datetime
) -> None:
    """The batch with one executemany (core.bulk); what every row shares is adapted once."""
    insert_objects(
        VitalsEntry,
        rows,
        same={
            "created_at": now,
            "updated_at": now,
            "organization_id": session.organization_id,
            "session_id": session.pk,
            "recorded_by_id": actor.user_id,
        },
    )


# Once drug has gone in, a critical reading needs a clinician now: a safety alert that someone
# must acknowledge, escalated like a questionnaire's item-9 alert if nobody does.
AFTER_DOSE = (SessionState.DOSING, SessionState.MONITORING, SessionState.READY_FOR_DISCHARGE)


def _raise_critical_alert(session: TreatmentSession, critical: list[RecordedVitals]) -> Any:
    from ketaclinic.measures.models import SafetyAlert
    from ketaclinic.measures.services import alert_raise

    if session.state not in AFTER_DOSE:
        return None
    # One open alert per session is enough: the next critical reading is on the same flowsheet.
    already = SafetyAlert.objects.filter(
        patient_id=session.patient_id,
        source_kind=SafetyAlert.SourceKind.SESSION_VITALS,
        acknowledged_at__isnull=True,
        created_at__gte=session.checked_in_at or session.scheduled_at,
    ).first()
    if already is not None:
        return None
    worst = max(critical, key=lambda e: e.taken_at)
    readings = "; ".join(
        f"{a['measure'].replace('_', ' ')} {a['value']} {a['direction']} {a['threshold']}"
        for a in worst.alerts
        if a["severity"] == "critical"
    )
    where = f"chair {session.chair}" if session.chair else session.clinic.name
    state = "during dosing" if session.state == SessionState.DOSING else "after the dose"
    return alert_raise(
        patient=session.patient,
        source_kind=SafetyAlert.SourceKind.SESSION_VITALS,
        source_public_id=worst.public_id,
        finding={
            "rule": worst.rule,
            "label": f"Critical vital sign {state} ({where}): {readings}.",
            "session": str(session.public_id),
            "vitals_entry": str(worst.public_id),
            "policy": worst.policy_key,
        },
        responsible=session.plan.prescriber,
    )


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
        if kind == SessionObservation.Kind.CADSS:
            refresh_course_summaries([session.patient_id])  # the patient's mean dissociation
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
        refresh_safety_counts(session.patient_id)  # the outcomes dashboard's AEs by grade
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
