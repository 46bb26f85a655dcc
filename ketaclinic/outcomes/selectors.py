"""Reads for outcomes: a cohort's courses, its summary, and its safety counts.

Runs inside the organization scope. The number of queries is fixed (one per table read), whatever
the cohort's size: rows are streamed as tuples and joined in Python, never loaded as models and
never filtered with a list of patient keys (SQLite limits how many a query may carry).
"""

from __future__ import annotations

from collections import Counter, defaultdict
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal
from typing import Any

from django.db.models import Count, Min

from ketaclinic.accounts.actor import Actor
from ketaclinic.accounts.audit import audit_record
from ketaclinic.accounts.roles import Cap
from ketaclinic.core import clock
from ketaclinic.measures.models import QuestionnaireResponse
from ketaclinic.outcomes.aggregates import cohort_aggregates, patient_mean
from ketaclinic.outcomes.cohort import (
    CohortSummary,
    Course,
    Moments,
    course_outcome,
    mean_interval_from_moments,
    summarize,
    summary_from_tally,
)
from ketaclinic.outcomes.filters import AGE_BANDS, CohortFilters
from ketaclinic.outcomes.rules import Measurement, OutcomePolicy
from ketaclinic.outcomes.stats import LogRank, SurvivalFit
from ketaclinic.outcomes.summary import bp_excursions
from ketaclinic.patients.models import Condition, Patient

CHUNK = 5_000


@dataclass(frozen=True)
class CohortMember:
    patient_key: int  # internal only: never leaves the server
    birth_date: date
    course: Course
    sessions: int


@dataclass(frozen=True)
class SafetyCounts:
    sessions: int
    adverse_events_by_grade: dict[int, int]
    # sessions with a blood pressure above the clinic's alert limits after the dose, by the
    # worst severity the session policy gave it (warning, critical)
    bp_excursions: dict[str, int] = field(default_factory=dict)

    def per_100_sessions(self, grade: int) -> float | None:
        if not self.sessions:
            return None
        return 100 * self.adverse_events_by_grade.get(grade, 0) / self.sessions

    def bp_per_100_sessions(self, severity: str) -> float | None:
        if not self.sessions:
            return None
        return 100 * self.bp_excursions.get(severity, 0) / self.sessions


@dataclass(frozen=True)
class DissociationRow:
    """Mean dissociation (each patient's mean CADSS total over sessions) by response."""

    label: str
    patients: int
    mean: float | None
    ci_lower: float | None
    ci_upper: float | None


@dataclass(frozen=True)
class CohortReport:
    filters: CohortFilters
    members: int
    summary: CohortSummary
    safety: SafetyCounts
    generated_at: datetime
    dissociation: list[DissociationRow] = field(default_factory=list)


@dataclass(frozen=True)
class Durability:
    fits: dict[str, SurvivalFit]
    logrank: LogRank | None
    observations: dict[str, tuple[list[float], list[bool]]]
    not_evaluable: int
    by_maintenance: dict[str, SurvivalFit] = field(default_factory=dict)
    maintenance_logrank: LogRank | None = None


def _age_on(birth: date, day: date) -> int:
    return day.year - birth.year - ((day.month, day.day) < (birth.month, birth.day))


def _first_doses(filters: CohortFilters) -> dict[int, tuple[datetime, str, str, int]]:
    """Per patient: first dose time, its route and protocol, and the number of dosed sessions."""
    from ketaclinic.sessions.models import TreatmentSession

    sessions = TreatmentSession.objects.filter(dose_started_at__isnull=False)
    if filters.route:
        sessions = sessions.filter(route=filters.route)
    if filters.protocol:
        sessions = sessions.filter(protocol_key=filters.protocol)
    first: dict[int, tuple[datetime, str, str, int]] = {}
    rows = (
        sessions.values("patient_id", "route", "protocol_key")
        .annotate(first=Min("dose_started_at"), n=Count("id"))
        .values_list("patient_id", "route", "protocol_key", "first", "n")
        .order_by()
    )
    for patient_id, route, protocol_key, started, n in rows.iterator(chunk_size=CHUNK):
        known = first.get(patient_id)
        # ties on time go to the first route, then protocol, by name (as summary.course_starts)
        if known is None or (started, route, protocol_key) < known[:3]:
            first[patient_id] = (started, route, protocol_key, n + (known[3] if known else 0))
        else:
            first[patient_id] = (*known[:3], known[3] + n)
    return first


def _patients_with(filters: CohortFilters) -> set[int] | None:
    """Patients passing the chart filters (condition, phase, TRD); None when none is set."""
    from ketaclinic.protocols.models import TreatmentPlan
    from ketaclinic.screening.models import ScreeningEvaluation

    allowed: set[int] | None = None

    def narrow(keys: set[int]) -> None:
        nonlocal allowed
        allowed = keys if allowed is None else allowed & keys

    if filters.condition:
        narrow(
            set(
                Condition.objects.in_use()
                .filter(code__istartswith=filters.condition)
                .values_list("patient_id", flat=True)
            )
        )
    if filters.phase:
        narrow(
            set(
                TreatmentPlan.objects.filter(phase=filters.phase).values_list(
                    "patient_id", flat=True
                )
            )
        )
    if filters.trd:
        latest: dict[int, str] = {}
        for patient_id, status in (
            ScreeningEvaluation.objects.order_by("patient_id", "created_at", "pk")
            .values_list("patient_id", "trd_status")
            .iterator(chunk_size=CHUNK)
        ):
            latest[patient_id] = status  # the last evaluation wins
        narrow({key for key, status in latest.items() if status == filters.trd})
    return allowed


def cohort_members(filters: CohortFilters, *, dose_times: bool = True) -> list[CohortMember]:
    """Everyone with a dose on record who passes the filters, with their scores (and every
    dose's time, which only the maintenance bands need)."""
    first = _first_doses(filters)
    allowed = _patients_with(filters)
    low, high = AGE_BANDS.get(filters.age_band, (0, 200))
    births: dict[int, date] = {}
    for key, birth in Patient.objects.values_list("id", "birth_date").iterator(chunk_size=CHUNK):
        if key not in first or (allowed is not None and key not in allowed):
            continue
        started = first[key][0]
        day = started.date()
        if filters.first_dose_from and day < filters.first_dose_from:
            continue
        if filters.first_dose_to and day > filters.first_dose_to:
            continue
        if not low <= _age_on(birth, day) <= high:
            continue
        births[key] = birth
    scores: dict[int, list[Measurement]] = defaultdict(list)
    responses = (
        QuestionnaireResponse.objects.filter(
            instrument_id=filters.instrument, total__isnull=False, corrected_by__isnull=True
        )
        .order_by()
        .values_list("patient_id", "total", "completed_at")
    )
    for key, total, taken_at in responses.iterator(chunk_size=CHUNK):
        if key in births and total is not None:
            scores[key].append(Measurement(filters.instrument, Decimal(total), taken_at))
    doses = _dose_times(births) if dose_times else {}
    members = []
    for key, birth in births.items():
        started, route, protocol_key, n = first[key]
        group = {"route": route, "protocol": protocol_key}.get(filters.group_by, "all patients")
        course = Course(group, started, tuple(scores.get(key, ())), tuple(doses.get(key, ())))
        members.append(CohortMember(key, birth, course, n))
    return members


def _dose_times(patients: dict[int, date]) -> dict[int, list[datetime]]:
    """Every dosed session of the cohort's patients, whatever its route: maintenance is judged
    on how often a responder was dosed, not only by the route that started the course."""
    from ketaclinic.sessions.models import TreatmentSession

    doses: dict[int, list[datetime]] = defaultdict(list)
    rows = (
        TreatmentSession.objects.filter(dose_started_at__isnull=False)
        .order_by()
        .values_list("patient_id", "dose_started_at")
    )
    for key, started in rows.iterator(chunk_size=CHUNK):
        if key in patients and started is not None:
            doses[key].append(started)
    return doses


def safety_counts(members: list[CohortMember]) -> SafetyCounts:
    from ketaclinic.sessions.models import AdverseEvent, VitalsEntry

    keys = {m.patient_key for m in members}
    grades: Counter[int] = Counter()
    for patient_id, grade in AdverseEvent.objects.values_list("patient_id", "grade").iterator(
        chunk_size=CHUNK
    ):
        if patient_id in keys:
            grades[grade] += 1
    bp = bp_excursions(
        (session_id, alerts)
        for patient_id, session_id, alerts in VitalsEntry.objects.filter(predose=False)
        .exclude(severity="")
        .values_list("session__patient_id", "session_id", "alerts")
        .iterator(chunk_size=CHUNK)
        if patient_id in keys
    )
    return SafetyCounts(sum(m.sessions for m in members), dict(sorted(grades.items())), bp)


def _dissociation_rows(means: dict[bool | None, Moments]) -> list[DissociationRow]:
    rows = []
    for label, wanted in (("Responders", True), ("Non-responders", False)):
        moments = means.get(wanted)
        if moments and moments.n:
            mean, lower, upper = mean_interval_from_moments(
                moments.n, moments.total, moments.squares
            )
            rows.append(DissociationRow(label, moments.n, mean, lower, upper))
        else:
            rows.append(DissociationRow(label, 0, None, None, None))
    return rows


def dissociation_by_response(
    members: list[CohortMember], responses: list[bool | None]
) -> list[DissociationRow]:
    from ketaclinic.sessions.models import SessionObservation

    verdict = {m.patient_key: r for m, r in zip(members, responses, strict=True)}
    scores: dict[int, list[Decimal]] = defaultdict(list)
    for patient_id, score in (
        SessionObservation.objects.filter(kind="cadss", score__isnull=False)
        .values_list("session__patient_id", "score")
        .iterator(chunk_size=CHUNK)
    ):
        if patient_id in verdict and score is not None:
            scores[patient_id].append(Decimal(score))
    means: dict[bool | None, Moments] = {}
    for key, values in scores.items():
        total = sum(values, Decimal(0))
        means.setdefault(verdict[key], Moments()).add(patient_mean(total, len(values)))
    return _dissociation_rows(means)


def cohort_report_from_charts(
    filters: CohortFilters, *, policy: OutcomePolicy | None = None
) -> CohortReport:
    """The cohort recomputed course by course from the chart, under any policy: the reference
    the stored summaries are tested against, and the path for a policy other than the default."""
    policy = policy or OutcomePolicy()
    members = cohort_members(filters)
    outcomes = [
        course_outcome(m.course, policy=policy, induction_days=filters.induction_days)
        for m in members
    ]
    return CohortReport(
        filters=filters,
        members=len(members),
        summary=summarize(outcomes),
        safety=safety_counts(members),
        generated_at=clock.now(),
        dissociation=dissociation_by_response(members, [o.response for o in outcomes]),
    )


def cohort_report(filters: CohortFilters, *, policy: OutcomePolicy | None = None) -> CohortReport:
    """The dashboard's cohort, added up by the database over the course summaries."""
    if policy is not None and policy != OutcomePolicy():
        return cohort_report_from_charts(filters, policy=policy)
    found = cohort_aggregates(filters)
    return CohortReport(
        filters=filters,
        members=found.tally.patients,
        summary=summary_from_tally(found.tally),
        safety=SafetyCounts(
            found.sessions,
            dict(sorted(found.adverse_events_by_grade.items())),
            dict(sorted(found.bp_excursions.items())),
        ),
        generated_at=clock.now(),
        dissociation=_dissociation_rows(found.dissociation),
    )


def cohort_report_for_actor(actor: Actor, *, filters: CohortFilters) -> CohortReport:
    actor.require(Cap.OUTCOMES_ANALYZE)
    report = cohort_report(filters)
    _audit_aggregate_read(actor, "outcomes.cohort.viewed", filters, report.members)
    return report


def durability_for_actor(actor: Actor, *, filters: CohortFilters) -> Durability:
    report = cohort_report_for_actor(actor, filters=filters)
    summary = report.summary
    return Durability(
        fits=summary.durability,
        logrank=summary.durability_logrank,
        observations=summary.durability_observations,
        not_evaluable=summary.durability_not_evaluable,
        by_maintenance=summary.durability_by_maintenance,
        maintenance_logrank=summary.maintenance_logrank,
    )


def _audit_aggregate_read(actor: Actor, action: str, filters: CohortFilters, n: int) -> None:
    """Aggregates name no patient, but who looked at which cohort is still worth knowing."""
    detail: dict[str, Any] = {"filters": filters.described(), "patients": n}
    audit_record(actor=actor, action=action, detail=detail)


def export_get_for_actor(actor: Actor, public_id: Any, *, kind: str) -> Any:
    """An export of the actor's organization (404 otherwise, whoever asks)."""
    import uuid

    from ketaclinic.core.errors import NotFound
    from ketaclinic.outcomes.models import DataExport

    capability = Cap.RESEARCH_EXPORT if kind == DataExport.Kind.RESEARCH else Cap.BULK_EXPORT
    actor.require(capability)
    try:
        key = public_id if isinstance(public_id, uuid.UUID) else uuid.UUID(str(public_id))
    except ValueError:
        key = None
    export = (
        DataExport.objects.select_related("requested_by").filter(public_id=key, kind=kind).first()
        if key
        else None
    )
    if export is None:
        raise NotFound("No such export.")
    return export


def exports_log(*, kinds: list[str], limit: int = 100) -> list[Any]:
    """The organization's data exports of these kinds, newest first: the accounting of
    disclosures."""
    from ketaclinic.outcomes.models import DataExport

    if not kinds:
        return []
    return list(
        DataExport.objects.select_related("requested_by")
        .filter(kind__in=kinds)
        .order_by("-created_at")[:limit]
    )


def summary_recompute_get_for_actor(actor: Actor, public_id: Any) -> Any:
    """A course summary recompute of the actor's organization (404 otherwise)."""
    import uuid

    from ketaclinic.core.errors import NotFound
    from ketaclinic.outcomes.models import SummaryRecompute

    actor.require(Cap.SETUP_MANAGE)
    try:
        key = public_id if isinstance(public_id, uuid.UUID) else uuid.UUID(str(public_id))
    except ValueError:
        key = None
    job = (
        SummaryRecompute.objects.select_related("requested_by").filter(public_id=key).first()
        if key
        else None
    )
    if job is None:
        raise NotFound("No such recompute.")
    return job


def summary_recomputes_recent(limit: int = 20) -> list[Any]:
    """The organization's course summary recomputes, newest first."""
    from ketaclinic.outcomes.models import SummaryRecompute

    return list(
        SummaryRecompute.objects.select_related("requested_by").order_by("-created_at")[:limit]
    )


def _report_capabilities(kind: str) -> tuple[Cap, ...]:
    from ketaclinic.outcomes.models import ReportJob

    if kind == ReportJob.Kind.PROGRESS:  # identified: who may print it, with today's rights
        return (Cap.OUTCOMES_REPORT, Cap.CLINICAL_VIEW)
    return (Cap.OUTCOMES_ANALYZE,)


def report_get_for_actor(actor: Actor, public_id: Any) -> Any:
    """A report job the actor asked for (a report is the printout of one person: another
    person's, or another clinic's, is a 404), re-checked against the actor's role today."""
    import uuid

    from ketaclinic.core.errors import NotFound
    from ketaclinic.outcomes.models import ReportJob

    actor.require(Cap.OUTCOMES_ANALYZE)
    try:
        key = public_id if isinstance(public_id, uuid.UUID) else uuid.UUID(str(public_id))
    except ValueError:
        key = None
    job = (
        ReportJob.objects.select_related("requested_by", "patient")
        .filter(public_id=key, requested_by=actor.user)
        .first()
        if key
        else None
    )
    if job is None:
        audit_record(
            actor=actor,
            action="outcomes.report.lookup_denied",
            outcome="denied",
            detail={"requested": str(public_id)[:64]},
        )
        raise NotFound("No such report.")
    for capability in _report_capabilities(job.kind):
        actor.require(capability)
    return job


def reports_recent(actor: Actor, limit: int = 20) -> list[Any]:
    """The reports the actor asked for, newest first (patient reports only while the role may
    still print them)."""
    from ketaclinic.outcomes.models import ReportJob

    jobs = ReportJob.objects.select_related("patient").filter(requested_by=actor.user)
    if not all(actor.can(c) for c in _report_capabilities(ReportJob.Kind.PROGRESS)):
        jobs = jobs.filter(kind=ReportJob.Kind.CLINIC)
    return list(jobs.order_by("-created_at", "-pk")[:limit])


def can_see_bulk_exports(actor: Actor) -> bool:
    """Identified bulk exports appear in the accounting of disclosures to who keeps it
    (audit.view) and to who may run them; only the latter may download their files."""
    return actor.can(Cap.AUDIT_VIEW) or actor.can(Cap.BULK_EXPORT)


def bulk_export_get_for_staff(actor: Actor, public_id: Any) -> Any:
    """A FHIR bulk export of the actor's organization, for its page in the exports log."""
    import uuid

    from ketaclinic.core.errors import Forbidden, NotFound
    from ketaclinic.outcomes.models import DataExport

    if not can_see_bulk_exports(actor):
        actor.require(Cap.AUDIT_VIEW)  # records the refusal, then refuses
        raise Forbidden("Your role may not see identified exports.")
    try:
        key = public_id if isinstance(public_id, uuid.UUID) else uuid.UUID(str(public_id))
    except ValueError:
        key = None
    export = (
        DataExport.objects.select_related("requested_by")
        .filter(public_id=key, kind=DataExport.Kind.FHIR_BULK)
        .first()
        if key
        else None
    )
    if export is None:
        raise NotFound("No such export.")
    return export
