"""Vitals, observations, adverse events and interventions while the patient is monitored."""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any, NamedTuple

from django.db import connections, router, transaction
from django.utils import timezone

from ketaclinic.accounts.actor import Actor
from ketaclinic.accounts.roles import Cap
from ketaclinic.core import bulk, clock
from ketaclinic.core import rows as sql_rows
from ketaclinic.core.errors import Conflict, FieldError, ValidationFailed
from ketaclinic.core.ids import uuid7s
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
    VitalsSample,
    classify_batch,
    worst_severity,
)
from ketaclinic.sessions.workflow import (
    SessionEvent,
    SessionState,
)

# --- monitoring -------------------------------------------------------------------------------


class RecordedVitals(NamedTuple):
    """One flowsheet row as `vitals_record` wrote it. Not a model instance: a batch is inserted
    with one executemany (issue 13), so the caller gets the row's values and public id. A named
    tuple: immutable like a frozen dataclass, made in a third of its time (60 per batch)."""

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
    critical reading after the dose raises the session's safety alert; one audit event.

    SQLite lets one writer in at a time, so a batch's throughput is about one over the time the
    write transaction is held (issue 13). Everything that only reads is done before it begins:
    the samples parsed and checked, the session's state, patient and policy read, the rows
    classified and their column values adapted, the audit's detail and whether the dashboard's
    counts move. The transaction holds the session's UPDATE, the executemany, the audit INSERT
    and the commit. The UPDATE is also the state check: it matches only while the session is
    still in the state the batch was worked out for. When another writer moved it meanwhile,
    the session is re-read under the lock and the batch worked out again inside the
    transaction, so every rule is applied to the state the rows are stored in."""
    actor.require(Cap.SESSION_RUN)
    now = clock.now()
    parsed = _parse_samples(samples, now)
    batch = _vitals_batch(actor, _with_policy(session), parsed, now)
    with transaction.atomic():
        if not _claim(batch):
            locked = _locked(session, related=VITALS_RELATED)
            batch = _vitals_batch(actor, locked, parsed, now)
            if not _claim(batch):  # pragma: no cover - the row is locked and just read
                raise Conflict("The session changed while the vitals were stored; send again.")
        bulk.insert_prepared(batch.insert)
        _vitals_effects(actor, batch, now)
    return batch.rows


# The session with what a batch needs: the audit names the patient, the rules use the policy.
# Plan and clinic only a critical reading's alert needs; they load when it is raised.
VITALS_RELATED = ("patient", "policy_version")


def _parse_samples(samples: Iterable[Mapping[str, Any]], now: datetime) -> list[VitalsSample]:
    """Every sample checked (a refusal names `samples[i].field`); at least one."""
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
    return parsed


def _with_policy(session: TreatmentSession) -> TreatmentSession:
    """`session` when its patient and policy are loaded already (the API's and the screens'
    lookups join them), else its row read again with them (no lock: `_claim` checks the state
    the batch is stored against)."""
    cache = session._state.fields_cache
    if "patient" in cache and (session.policy_version_id is None or "policy_version" in cache):
        return session
    found = sql_rows.one(TreatmentSession, pk=session.pk, related=VITALS_RELATED)
    if found is None:
        raise TreatmentSession.DoesNotExist(f"No session {session.pk} in this organization.")
    return found


@dataclass(slots=True)
class _Batch:
    """A batch worked out for the session in one state: what the transaction writes."""

    session: TreatmentSession
    state: str  # the state it was worked out for (`_claim` checks it still is)
    rows: list[RecordedVitals]
    insert: bulk.Prepared
    recount: bool  # the dashboard's blood-pressure excursions move
    bp_rank: int  # the batch's worst post-dose blood pressure above the limits (0: none)
    critical: list[RecordedVitals]


def _vitals_batch(
    actor: Actor, session: TreatmentSession, parsed: list[VitalsSample], now: datetime
) -> _Batch:
    """The rows of a batch for `session` as it stands: state rules, classification, the
    INSERT's values. Reads only."""
    if session.is_final or session.state == SessionState.SCHEDULED:
        raise Conflict(f"Vitals cannot be added to a session that is {session.state}.")
    policy = session_policy(session)
    # Before the dose starts a reading is a pre-dose one: dose_administer gates on the latest.
    predose = session.state in (SessionState.CHECKED_IN, SessionState.PRECHECKS_PASSED)
    # Time-ordered ids: the batch's entries in the public_id index sit together (core.ids).
    ids = iter(uuid7s(len(parsed)))
    recorded = [
        RecordedVitals(
            public_id=next(ids),
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
    # after the dose: recounted (over the patient's whole history) only when this batch makes
    # this session's worst one worse, which the session's own worst_bp_rank tells (`_claim`
    # raises it with the rows). Rows are only ever added, so the rank only rises: one read
    # before a concurrent batch raised it can only cause a recount that was not needed.
    bp_rank = 0 if predose else _bp_worst(row.alerts for row in recorded)
    recount = bp_rank > session.worst_bp_rank
    _remember_last(session, max(recorded, key=lambda e: e.taken_at))  # type: ignore[arg-type]
    return _Batch(
        session=session,
        state=session.state,
        rows=recorded,
        insert=_vitals_insert(session, actor, recorded, now),
        recount=recount,
        bp_rank=bp_rank,
        critical=[e for e in recorded if e.severity == "critical"],
    )


_claim_sql: dict[str, str] = {}


def _claim(batch: _Batch) -> bool:
    """The session's latest reading and worst blood pressure stored, if the session is still in
    the state the batch was worked out for (one UPDATE, in the transaction: on PostgreSQL it
    also locks the row until the commit, as `_locked` does). False when another writer moved it
    meanwhile."""
    session = batch.session
    db = connections[router.db_for_write(TreatmentSession)]
    sql = _claim_sql.get(db.vendor)
    if sql is None:
        quote = db.ops.quote_name
        # Built from the model's own table and column names, never from input.
        sql = _claim_sql[db.vendor] = (
            f"UPDATE {quote(TreatmentSession._meta.db_table)} SET {quote('last_vitals')} = %s,"  # noqa: S608
            f" {quote('last_alert_severity')} = %s, {quote('updated_at')} = %s,"
            f" {quote('worst_bp_rank')} = CASE WHEN {quote('worst_bp_rank')} < %s THEN %s"
            f" ELSE {quote('worst_bp_rank')} END"
            f" WHERE {quote('id')} = %s AND {quote('state')} = %s RETURNING {quote('id')}"
        )
    session.updated_at = timezone.now()  # the auto_now a save() would stamp
    params = [
        _LAST_VITALS.get_db_prep_save(session.last_vitals, db),
        session.last_alert_severity,
        _UPDATED_AT.get_db_prep_save(session.updated_at, db),
        batch.bp_rank,
        batch.bp_rank,
        session.pk,
        batch.state,
    ]
    claimed = sql_rows.execute(db, sql, params) is not None
    if claimed:
        session.worst_bp_rank = max(session.worst_bp_rank, batch.bp_rank)
    return claimed


_LAST_VITALS = TreatmentSession._meta.get_field("last_vitals")
_UPDATED_AT = TreatmentSession._meta.get_field("updated_at")


def _vitals_effects(actor: Actor, batch: _Batch, now: datetime) -> None:
    """In the transaction, after the rows: the dashboard's counts, a critical reading's alert
    (and its return to monitoring), the audit event."""
    session = batch.session
    if batch.recount:
        refresh_safety_counts(session.patient_id)
    alert = _raise_critical_alert(session, batch.critical) if batch.critical else None
    if batch.critical and session.state == SessionState.READY_FOR_DISCHARGE:
        _move(actor, session, SessionEvent.RESUME_MONITORING, at=now)
        _save(session, "last_vitals", "last_alert_severity")
    _audit(
        actor,
        "sessions.vitals.recorded",
        session,
        count=len(batch.rows),
        alerts=[a["message"] for e in batch.rows for a in e.alerts],
        safety_alert=str(alert.public_id) if alert else None,
    )


_BP_RANK = {"warning": 1, "critical": 2}


def _bp_worst(alerts_of_rows: Iterable[list[dict[str, Any]]]) -> int:
    """The worst blood pressure above the limits among rows' alerts, as a rank (0: none)."""
    worst = 0
    for alerts in alerts_of_rows:
        for alert in alerts:
            if bp_above(alert):
                worst = max(worst, _BP_RANK.get(alert.get("severity", "warning"), 1))
    return worst


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
) -> bulk.Prepared:
    """The batch's executemany (core.bulk), its values adapted; what every row shares once."""
    return bulk.prepare_objects(
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
