"""Writes for measurement-based care: responses (scored by the pure scorer), safety alerts,
their acknowledgement and escalation, the clinic's measure policy, one-time links and schedules.

Each service: permission, validation, one transaction, one audit event. A response and the alert
it raises are written together, so a clinician never sees one without the other.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from django.db import IntegrityError, transaction
from django.urls import reverse
from django_scopes import scope, scopes_disabled

from ketaclinic.accounts.actor import Actor
from ketaclinic.accounts.audit import audit_record
from ketaclinic.accounts.models import Organization, User
from ketaclinic.accounts.roles import Cap, Role
from ketaclinic.core import clock
from ketaclinic.core.errors import Conflict, FieldError, ValidationFailed
from ketaclinic.core.links import link_consume, link_issue
from ketaclinic.core.models import OneTimeLink
from ketaclinic.measures.definitions import Instrument, get_instrument
from ketaclinic.measures.models import (
    DEFAULT_ESCALATION_MINUTES,
    DEFAULT_ESCALATION_ROLE,
    MeasurePolicy,
    MeasureSchedule,
    QuestionnaireResponse,
    SafetyAlert,
)
from ketaclinic.measures.scoring import ScoreResult, ScoringError, ScoringPolicy, score_response
from ketaclinic.messaging.producers import send_alert_escalation, send_link_message
from ketaclinic.outcomes.filters import INSTRUMENTS as OUTCOME_INSTRUMENTS
from ketaclinic.outcomes.summary import refresh_course_summaries
from ketaclinic.patients.models import ChartEntry, Patient
from ketaclinic.patients.units import before_birth

if TYPE_CHECKING:
    from ketaclinic.screening.models import IntakeHistory

LINK_PURPOSE = "measures.response"
LINK_TTL = timedelta(hours=72)
LANGUAGES = ("en", "es")
# C-SSRS risk levels that need a clinician now (clinical-reference §5.1 C-SSRS [C] #89 #90 #91).
CSSRS_ALERT_LEVELS = {"high": SafetyAlert.Severity.CRITICAL, "moderate": SafetyAlert.Severity.HIGH}


# --- policy -------------------------------------------------------------------------------------


def measure_policy_current(organization: Organization) -> MeasurePolicy:
    """The newest published policy, or the unsaved defaults (version 0) if none was published."""
    with scope(organization=organization):
        policy = (
            MeasurePolicy.objects.filter(organization=organization).order_by("-version").first()
        )
    return policy or MeasurePolicy(
        organization=organization,
        version=0,
        escalation_minutes=DEFAULT_ESCALATION_MINUTES,
        escalation_role=DEFAULT_ESCALATION_ROLE,
    )


def measure_policy_publish(
    *,
    actor: Actor,
    scoring_values: Mapping[str, Any] | None = None,
    total_alert_thresholds: Mapping[str, Any] | None = None,
    escalation_minutes: int = DEFAULT_ESCALATION_MINUTES,
    escalation_role: str = DEFAULT_ESCALATION_ROLE,
    note: str = "",
) -> MeasurePolicy:
    actor.require(Cap.MEASURE_POLICY_EDIT)
    values = {k: Decimal(str(v)) for k, v in (scoring_values or {}).items()}
    thresholds = {k: Decimal(str(v)) for k, v in (total_alert_thresholds or {}).items()}
    errors = _policy_errors(values, thresholds, escalation_minutes, escalation_role)
    if errors:
        raise ValidationFailed("The measure policy is not valid.", errors)
    with transaction.atomic():
        previous = measure_policy_current(actor.organization)
        policy = MeasurePolicy.objects.create(
            organization=actor.organization,
            version=previous.version + 1,
            scoring_values={k: str(v) for k, v in values.items()},
            total_alert_thresholds={k: str(v) for k, v in thresholds.items()},
            escalation_minutes=escalation_minutes,
            escalation_role=escalation_role,
            note=note[:2000],
            created_by=actor.user,
        )
        audit_record(
            actor=actor,
            action="measures.policy.published",
            obj=policy,
            detail={"version": policy.version},
        )
    return policy


def _policy_errors(
    values: Mapping[str, Decimal], thresholds: Mapping[str, Decimal], minutes: int, role: str
) -> list[FieldError]:
    from ketaclinic.measures.scoring import resolve_policy_values

    errors = []
    for key in values:
        try:
            resolve_policy_values(get_instrument(key.split(".")[0]), ScoringPolicy(values))
        except KeyError:
            errors.append(FieldError(f"scoring_values.{key}", "No instrument has this key."))
        except ScoringError as exc:
            errors.append(FieldError(f"scoring_values.{exc.field}", exc.message))
    for instrument_id, value in thresholds.items():
        try:
            total_range = get_instrument(instrument_id).scoring.total_range
        except KeyError:
            errors.append(FieldError(f"total_alert_thresholds.{instrument_id}", "Unknown."))
            continue
        if total_range is None or not total_range[0] < value <= total_range[1]:
            errors.append(
                FieldError(f"total_alert_thresholds.{instrument_id}", "Outside the total range.")
            )
    if not 1 <= minutes <= 24 * 60:
        errors.append(FieldError("escalation_minutes", "Between 1 and 1440 minutes."))
    if role not in {r.value for r in Role}:
        errors.append(FieldError("escalation_role", "Unknown role."))
    return errors


def _scoring_policy(policy: MeasurePolicy) -> ScoringPolicy:
    return ScoringPolicy(values=policy.scoring_values, reference=policy.reference)


# --- responses ----------------------------------------------------------------------------------


def _instrument(instrument_id: str) -> Instrument:
    try:
        return get_instrument(instrument_id)
    except KeyError:
        message = f"Unknown instrument {instrument_id!r}."
        raise ValidationFailed.for_field("instrument_id", message) from None


def _clean_answers(answers: Any) -> dict[str, int | None]:
    if not isinstance(answers, Mapping) or not answers:
        raise ValidationFailed.for_field("answers", "Give the answers as {item: value}.")
    return {str(k): v for k, v in answers.items()}


def _score(
    instrument: Instrument,
    answers: dict[str, int | None],
    policy: MeasurePolicy,
    respondent_sex: str | None,
) -> ScoreResult:
    try:
        return score_response(
            instrument,
            answers,
            policy=_scoring_policy(policy),
            respondent_sex=respondent_sex,  # type: ignore[arg-type]
        )
    except ScoringError as exc:
        errors = [FieldError(f"answers.{exc.field}", exc.message)]
        errors += [FieldError(f"answers.{m}", "This item is required.") for m in exc.missing[1:]]
        detail = exc.message
        if exc.critical_findings:
            # Nothing is recorded, but the person entering it must not miss a positive item.
            labels = "; ".join(f.label for f in exc.critical_findings)
            detail += f" Note: a safety item was answered positive ({labels})."
        raise ValidationFailed(detail, errors) from None


def _alert_findings(
    instrument: Instrument, result: ScoreResult, policy: MeasurePolicy
) -> list[dict[str, str]]:
    findings = [
        {
            "rule": f"{f.rule}:item-{f.link_id}",
            "finding": f.finding,
            "label": f.label,
            "severity": SafetyAlert.Severity.CRITICAL,
            "source": f.source,
            "detail": f"item {f.link_id} answered {f.value} (alert at >= {f.threshold})",
        }
        for f in result.critical_findings
    ]
    if result.risk_level in CSSRS_ALERT_LEVELS:
        findings.append(
            {
                "rule": f"{result.rule}:risk",
                "finding": f"risk-{result.risk_level}",
                "label": f"C-SSRS {result.risk_level} risk",
                "severity": CSSRS_ALERT_LEVELS[result.risk_level],
                "source": instrument.scoring.source[:200],
                "detail": result.note[:300],
            }
        )
    threshold = policy.total_alert_thresholds.get(instrument.id)
    if threshold is not None and result.total is not None and result.total >= Decimal(threshold):
        findings.append(
            {
                "rule": f"{policy.reference}:total-{instrument.id}",
                "finding": "total-threshold",
                "label": f"{instrument.short_title} total {result.total} >= clinic level {threshold}",
                "severity": SafetyAlert.Severity.HIGH,
                "source": "clinic measure policy",
                "detail": "",
            }
        )
    return findings


def response_record(
    *,
    patient: Patient,
    instrument_id: str,
    answers: Mapping[str, int | None],
    actor: Actor | None = None,
    link: OneTimeLink | None = None,
    language: str = "en",
    completed_at: datetime | None = None,
    corrects: QuestionnaireResponse | None = None,
    correction_reason: str = "",
    respondent_sex: str | None = None,
    external_id: str = "",
    source: str = "",
) -> QuestionnaireResponse:
    """Score and store one response; raise a safety alert in the same transaction if needed.

    Staff pass `actor`; a patient answering through a one-time link passes `link` (consumed
    here, so a link records exactly one response).
    """
    if (actor is None) == (link is None):
        raise ValueError("pass exactly one of actor or link")
    now = clock.now()
    if actor is not None:
        actor.require(Cap.MEASURE_RECORD)
        organization = actor.organization
    else:
        assert link is not None
        organization = link.organization
        if link.target_id != str(patient.public_id) or link.payload.get("instrument_id") != (
            instrument_id
        ):
            raise ValidationFailed.for_field("link", "This link is for another questionnaire.")
    instrument = _instrument(instrument_id)
    if link is not None and instrument.respondent != "self":
        raise ValidationFailed.for_field("instrument_id", "Only self-report measures by link.")
    if language not in LANGUAGES:
        raise ValidationFailed.for_field("language", "Choose en or es.")
    completed_at = completed_at or now
    if completed_at.tzinfo is None or completed_at > now:
        raise ValidationFailed.for_field("completed_at", "Give a past time with its time zone.")
    born = before_birth(completed_at, patient.birth_date)
    if born:
        raise ValidationFailed.for_field("completed_at", born)
    if corrects is not None:
        _check_correction(corrects, patient, instrument, correction_reason)
    answers = _clean_answers(answers)
    policy = measure_policy_current(organization)
    result = _score(instrument, answers, policy, respondent_sex)

    response = QuestionnaireResponse(
        organization=organization,
        patient=patient,
        recorded_by=actor.user if actor else None,
        source=source or (ChartEntry.Source.CLINIC if actor else ChartEntry.Source.PATIENT),
        external_id=external_id,
        instrument_id=instrument.id,
        instrument_version=instrument.version,
        rule=result.rule,
        answers=answers,
        item_scores=dict(result.item_scores),
        total=result.total,
        subscales={k: str(v) for k, v in result.subscales.items()},
        severity_code=result.severity.code if result.severity else "",
        severity_label=result.severity.label if result.severity else "",
        screen_positive=result.screen_positive,
        risk_level=result.risk_level or "",
        findings=[{"code": f.code, "met": f.met, "detail": f.detail} for f in result.findings],
        prorated=result.prorated,
        score_note=result.note,
        policy_reference=policy.reference,
        language=language,
        respondent=(
            QuestionnaireResponse.Respondent.STAFF
            if actor
            else QuestionnaireResponse.Respondent.PATIENT_LINK
        ),
        link=link,
        completed_at=completed_at,
        corrects=corrects,
        correction_reason=correction_reason[:2000],
    )
    findings = _alert_findings(instrument, result, policy)
    with transaction.atomic():
        if link is not None:
            link_consume(link, now=now)
        response.save()
        if response.instrument_id in OUTCOME_INSTRUMENTS:
            refresh_course_summaries([patient.pk])  # the dashboard's rows, in this transaction
        alert = None
        if findings:
            alert = SafetyAlert.objects.create(
                organization=organization,
                patient=patient,
                response=response,
                rule=findings[0]["rule"],
                severity=(
                    SafetyAlert.Severity.CRITICAL
                    if any(f["severity"] == "critical" for f in findings)
                    else SafetyAlert.Severity.HIGH
                ),
                summary="; ".join(f["label"] for f in findings)[:255],
                findings=findings,
                policy_reference=policy.reference,
                responsible=_responsible(actor, link),
                escalate_after=now + timedelta(minutes=policy.escalation_minutes),
            )
        audit_record(
            actor=actor,
            organization=organization,
            channel="" if actor else "portal",
            action="measures.response.recorded",
            patient_id=patient.public_id,
            obj=response,
            detail={
                "rule": response.rule,
                "total": str(response.total) if response.total is not None else None,
                "alert": str(alert.public_id) if alert else None,
                "alert_rules": [f["rule"] for f in findings],
                "corrects": str(corrects.public_id) if corrects else None,
                "link": str(link.public_id) if link else None,
            },
        )
    response.new_alert = alert  # type: ignore[attr-defined]
    return response


def _check_correction(
    old: QuestionnaireResponse, patient: Patient, instrument: Instrument, reason: str
) -> None:
    if old.patient_id != patient.pk or old.instrument_id != instrument.id:
        raise ValidationFailed.for_field("corrects", "Correct a response of this patient and form.")
    if not reason.strip():
        raise ValidationFailed.for_field("correction_reason", "Say why the response is corrected.")
    if QuestionnaireResponse.objects.filter(corrects=old).exists():
        raise Conflict.for_field(
            "corrects", "This response was already corrected; correct the newer one."
        )


def _responsible(actor: Actor | None, link: OneTimeLink | None) -> Any:
    """The clinician who entered the measure, or who sent the link, answers the alert first."""
    if actor is not None:
        return actor.user if actor.can(Cap.ALERT_ACKNOWLEDGE) else None
    return link.created_by if link is not None else None


# --- alerts -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class RaisedAlert:
    alert: SafetyAlert
    created: bool  # False: an open alert from the patient's intake already covers it


def _open_intake_alert(patient: Patient) -> SafetyAlert | None:
    return (
        SafetyAlert.objects.filter(
            patient=patient,
            source_kind=SafetyAlert.SourceKind.INTAKE,
            acknowledged_at__isnull=True,
        )
        .order_by("-created_at")
        .first()
    )


def alert_raise_for_intake(
    *, intake: IntakeHistory, finding: Mapping[str, str], responsible: User | None
) -> RaisedAlert:
    """Raise a critical alert for an intake answer, inside the caller's transaction.

    The intake services (ketaclinic.screening.services) decide which answer needs a clinician and
    record the intake's one audit event, naming the alert in it, as response_record does for a
    questionnaire. While an intake alert of the patient is open, a new one is not raised: the
    open one is returned, and the database refuses a second (alert_one_open_intake_per_patient).
    """
    if not transaction.get_connection().in_atomic_block:
        raise RuntimeError("raise an intake alert in the transaction that stores the intake")
    existing = _open_intake_alert(intake.patient)
    if existing is not None:
        return RaisedAlert(existing, created=False)
    policy = measure_policy_current(intake.organization)
    now = clock.now()
    try:
        # A savepoint: a concurrent save may have raised the alert first; then its alert stands
        # and the intake is still stored.
        with transaction.atomic():
            alert = SafetyAlert.objects.create(
                organization=intake.organization,
                patient=intake.patient,
                source_kind=SafetyAlert.SourceKind.INTAKE,
                intake=intake,
                rule=finding["rule"],
                severity=SafetyAlert.Severity.CRITICAL,
                summary=finding["label"][:255],
                findings=[{**finding, "severity": SafetyAlert.Severity.CRITICAL}],
                policy_reference=policy.reference,
                responsible=responsible,
                escalate_after=now + timedelta(minutes=policy.escalation_minutes),
            )
    except IntegrityError:
        existing = _open_intake_alert(intake.patient)
        if existing is None:
            raise
        return RaisedAlert(existing, created=False)
    return RaisedAlert(alert, created=True)


def alert_raise(
    *,
    patient: Patient,
    source_kind: str,
    source_public_id: Any,
    finding: Mapping[str, str],
    severity: str = SafetyAlert.Severity.CRITICAL,
    responsible: User | None = None,
) -> SafetyAlert:
    """Raise an alert for a record of another app (a critical vital sign during a session, a
    therapist's risk flag), inside the caller's transaction; the caller's audit event names it.

    `finding` holds at least `rule` (id@version) and `label` (what a clinician reads). The alert
    is acknowledged and escalated exactly like a questionnaire's item-9 alert.
    """
    if source_kind not in SafetyAlert.REFERENCED_KINDS:
        raise ValueError(f"alert_raise is for {SafetyAlert.REFERENCED_KINDS}, not {source_kind!r}")
    if not transaction.get_connection().in_atomic_block:
        raise RuntimeError("raise an alert in the transaction that stores its source")
    policy = measure_policy_current(patient.organization)
    return SafetyAlert.objects.create(
        organization=patient.organization,
        patient=patient,
        source_kind=source_kind,
        source_public_id=source_public_id,
        rule=finding["rule"],
        severity=severity,
        summary=finding["label"][:255],
        findings=[{**finding, "severity": severity}],
        policy_reference=policy.reference,
        responsible=responsible,
        escalate_after=clock.now() + timedelta(minutes=policy.escalation_minutes),
    )


def alert_acknowledge(*, actor: Actor, alert: SafetyAlert, note: str) -> SafetyAlert:
    actor.require(Cap.ALERT_ACKNOWLEDGE)
    note = (note or "").strip()
    if not note:
        raise ValidationFailed.for_field(
            "note", "Say what was done (e.g. safety plan reviewed, patient called)."
        )
    now = clock.now()
    with transaction.atomic():
        updated = SafetyAlert.objects.filter(pk=alert.pk, acknowledged_at__isnull=True).update(
            acknowledged_at=now, acknowledged_by=actor.user, action_note=note[:4000], updated_at=now
        )
        if updated != 1:
            raise Conflict("This alert was already acknowledged.")
        audit_record(
            actor=actor,
            action="measures.alert.acknowledged",
            patient_id=alert.patient.public_id,
            obj=alert,
            detail={"rule": alert.rule},
        )
    alert.refresh_from_db()
    return alert


def alerts_escalate_overdue(*, now: datetime) -> int:
    """Escalate every open alert past its time to the clinic's on-call role. Returns the count.

    Runs from a task (no request, no actor): each alert is handled in its organization's scope.
    """
    with scopes_disabled():
        overdue = list(
            SafetyAlert.objects.select_related("organization", "patient")
            .filter(
                acknowledged_at__isnull=True, escalated_at__isnull=True, escalate_after__lte=now
            )
            .order_by("pk")
        )
    for alert in overdue:
        policy = measure_policy_current(alert.organization)
        with scope(organization=alert.organization), transaction.atomic():
            updated = SafetyAlert.objects.filter(
                pk=alert.pk, acknowledged_at__isnull=True, escalated_at__isnull=True
            ).update(escalated_at=now, escalated_to_role=policy.escalation_role, updated_at=now)
            if updated:
                notified = send_alert_escalation(
                    organization=alert.organization,
                    alert_public_id=alert.public_id,
                    severity=alert.get_severity_display().lower(),
                    minutes=policy.escalation_minutes,
                    role=policy.escalation_role,
                    patient=alert.patient,
                )
                audit_record(
                    actor=None,
                    organization=alert.organization,
                    channel="task",
                    action="measures.alert.escalated",
                    patient_id=alert.patient.public_id,
                    obj=alert,
                    detail={
                        "to_role": policy.escalation_role,
                        "policy": policy.reference,
                        "messages": notified,
                    },
                )
    return len(overdue)


# --- one-time links -----------------------------------------------------------------------------


@dataclass(frozen=True)
class IssuedLink:
    link: OneTimeLink
    token: str  # shown once (URL, QR code); only its hash is stored


def measure_link_create(
    *,
    actor: Actor,
    patient: Patient,
    instrument_id: str,
    language: str = "en",
    ttl: timedelta = LINK_TTL,
) -> IssuedLink:
    actor.require(Cap.MEASURE_RECORD)
    return _issue_link(
        actor=actor,
        organization=actor.organization,
        patient=patient,
        instrument_id=instrument_id,
        language=language,
        ttl=ttl,
    )


def _issue_link(
    *,
    actor: Actor | None,
    organization: Organization,
    patient: Patient,
    instrument_id: str,
    language: str,
    ttl: timedelta,
    created_by: Any = None,
    replaces: OneTimeLink | None = None,
) -> IssuedLink:
    instrument = _instrument(instrument_id)
    if instrument.respondent != "self":
        raise ValidationFailed.for_field("instrument_id", "Only self-report measures by link.")
    lang = instrument.language(language)
    if lang is None or not lang.available:
        raise ValidationFailed.for_field("language", f"{instrument.short_title} has no {language}.")
    with transaction.atomic():
        link, token = link_issue(
            organization=organization,
            purpose=LINK_PURPOSE,
            target_type="patients.Patient",
            target_id=str(patient.public_id),
            now=clock.now(),
            ttl=ttl,
            payload={"instrument_id": instrument.id, "language": language},
            created_by=actor.user if actor else created_by,
        )
        # The token leaves ketaclinic only inside the message (sealed in the outbox, erased once
        # sent); a patient without an allowed channel gets the link from staff as before.
        message = send_link_message(
            organization=organization,
            patient=patient,
            kind="measure_link",
            path=reverse("portal:measure", kwargs={"token": token}),
            expires_at=link.expires_at,
        )
        detail = {
            "instrument": instrument.rule_id,
            "expires_at": link.expires_at.isoformat(),
            "message": str(message.public_id) if message else None,
        }
        if replaces is not None:
            detail["replaces"] = str(replaces.public_id)
        audit_record(
            actor=actor,
            organization=organization,
            channel="" if actor else "task",
            action="measures.link.resent" if replaces is not None else "measures.link.created",
            patient_id=patient.public_id,
            obj=link,
            detail=detail,
        )
    return IssuedLink(link, token)


def measure_link_resend(*, actor: Actor, link: OneTimeLink) -> IssuedLink:
    """Send an unanswered questionnaire again: a fresh link for the same measure and language
    (only the old link's hash is kept, so it cannot be sent twice), and the old one stops
    working, so the patient answers once whichever message they open."""
    actor.require(Cap.MEASURE_LINK_RESEND)
    now = clock.now()
    with transaction.atomic():
        current = OneTimeLink.objects.select_for_update().get(pk=link.pk)
        if current.purpose != LINK_PURPOSE or current.organization_id != actor.organization.pk:
            raise ValidationFailed.for_field("link", "This is not a questionnaire link.")
        if current.used_at is not None:
            raise Conflict.for_field("link", "The patient has already answered this link.")
        patient = Patient.objects.filter(public_id=current.target_id).first()
        if patient is None:
            raise ValidationFailed.for_field("link", "The link names no patient of this clinic.")
        if current.expires_at > now:
            OneTimeLink.objects.filter(pk=current.pk).update(expires_at=now, updated_at=now)
        return _issue_link(
            actor=actor,
            organization=actor.organization,
            patient=patient,
            instrument_id=current.payload["instrument_id"],
            language=current.payload.get("language", "en"),
            ttl=LINK_TTL,
            replaces=current,
        )


# --- schedules ----------------------------------------------------------------------------------

MONTH_OFFSETS_DAYS = (30, 91, 182)  # "1, 3 and 6 months" as day counts from the start


def schedule_create(
    *,
    actor: Actor,
    patient: Patient,
    instrument_id: str,
    cadence: str,
    starts_at: datetime | None = None,
    language: str = "en",
) -> MeasureSchedule:
    actor.require(Cap.MEASURE_RECORD)
    instrument = _instrument(instrument_id)
    if instrument.respondent != "self":
        raise ValidationFailed.for_field("instrument_id", "Schedules send self-report measures.")
    if cadence not in MeasureSchedule.Cadence.values:
        raise ValidationFailed.for_field("cadence", "Unknown cadence.")
    starts_at = starts_at or clock.now()
    schedule = MeasureSchedule(
        organization=actor.organization,
        patient=patient,
        instrument_id=instrument.id,
        cadence=cadence,
        language=language,
        starts_at=starts_at,
        created_by=actor.user,
    )
    schedule.next_due_at = schedule_next_due(schedule, after=None)
    with transaction.atomic():
        schedule.save()
        audit_record(
            actor=actor,
            action="measures.schedule.created",
            patient_id=patient.public_id,
            obj=schedule,
            detail={"instrument": instrument.rule_id, "cadence": cadence},
        )
    return schedule


def schedule_next_due(schedule: MeasureSchedule, *, after: datetime | None) -> datetime | None:
    """The next time a link is due, strictly after `after` (None: the first one)."""
    start = schedule.starts_at
    if schedule.cadence == MeasureSchedule.Cadence.WEEKLY:
        if after is None:
            return start
        weeks = (after - start) // timedelta(days=7) + 1
        return start + timedelta(days=7 * max(weeks, 0))
    if schedule.cadence == MeasureSchedule.Cadence.MONTHS_1_3_6:
        for days in MONTH_OFFSETS_DAYS:
            due = start + timedelta(days=days)
            if after is None or due > after:
                return due
        return None
    # Before every session: due the day before each booked session.
    from ketaclinic.measures.selectors import booked_session_times

    for session_at in booked_session_times(schedule.patient):
        due = session_at - timedelta(days=1)
        if after is None or due > after:
            return due
    return None


def schedules_send_due(*, now: datetime) -> list[IssuedLink]:
    """Create a link for every schedule that is due and move it to its next due time."""
    with scopes_disabled():
        due = list(
            MeasureSchedule.objects.select_related("organization", "patient", "created_by")
            .filter(is_active=True, next_due_at__lte=now)
            .order_by("pk")
        )
    issued = []
    for schedule in due:
        with scope(organization=schedule.organization), transaction.atomic():
            link = _issue_link(
                actor=None,
                organization=schedule.organization,
                patient=schedule.patient,
                instrument_id=schedule.instrument_id,
                language=schedule.language,
                ttl=LINK_TTL,
                created_by=schedule.created_by,
            )
            next_due = schedule_next_due(schedule, after=now)
            MeasureSchedule.objects.filter(pk=schedule.pk).update(
                next_due_at=next_due,
                sent_count=schedule.sent_count + 1,
                is_active=next_due is not None,
                updated_at=now,
            )
            issued.append(link)
    return issued
