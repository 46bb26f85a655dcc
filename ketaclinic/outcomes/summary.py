"""Course summaries: each treatment course's outcome, kept as a row the dashboard adds up in SQL.

`refresh_course_summaries` rewrites the rows of some patients from their chart; the services
that record a score, a dose or a dissociation score call it inside their own transaction, so a
summary never disagrees with the chart it was read from. `recompute_course_summaries` rewrites a
whole clinic's, a range of patients at a time (the `ketaclinic outcomes-recompute` command and
the background job), for data written in bulk or a change of the rules (SUMMARY_VERSION).

The verdicts are `cohort.course_outcome`'s under the clinic-reference defaults, so the rules stay
in one place; tests check that the dashboard's SQL over these rows gives the numbers the pure
path gives over the chart.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from functools import cache
from typing import Any

from django.db import transaction
from django.db.models import Max, Min
from django_scopes import scopes_disabled

from ketaclinic.measures.models import QuestionnaireResponse
from ketaclinic.outcomes.cohort import (
    DEFAULT_INDUCTION_DAYS,
    Course,
    course_outcome,
    early_verdicts,
)
from ketaclinic.outcomes.filters import INSTRUMENTS
from ketaclinic.outcomes.models import AE_GRADES, CourseSummary, change_column, grade_column
from ketaclinic.outcomes.rules import Measurement, OutcomePolicy
from ketaclinic.patients.models import Patient

# Rows of another version were written under other rules: `outcomes-recompute` rewrites them.
SUMMARY_VERSION = 1
_NO_SAFETY_EVENTS = {
    "bp_warning_sessions": 0,
    "bp_critical_sessions": 0,
    **{grade_column(g): 0 for g in AE_GRADES},
}
RANGE = 1_000  # patient keys rewritten per transaction by a recompute


@dataclass(frozen=True, slots=True)
class Dose:
    started: datetime
    route: str
    protocol_key: str


@dataclass
class History:
    doses: list[Dose] = field(default_factory=list)  # oldest first
    scores: dict[str, list[Measurement]] = field(default_factory=lambda: defaultdict(list))
    cadss_total: Decimal = Decimal(0)
    cadss_count: int = 0
    safety: dict[str, int] = field(default_factory=dict)  # CourseSummary's safety columns


def course_starts(doses: list[Dose]) -> list[tuple[Dose, dict[str, bool]]]:
    """The sessions a course may start from, with the filters each answers: the first dose of
    all, of each route, of each protocol, of each route and protocol together."""
    seen: dict[str, set[Any]] = {"route": set(), "protocol": set(), "pair": set()}
    starts = []
    for index, dose in enumerate(doses):
        flags = {
            "first_overall": index == 0,
            "first_of_route": dose.route not in seen["route"],
            "first_of_protocol": dose.protocol_key not in seen["protocol"],
            "first_of_pair": (dose.route, dose.protocol_key) not in seen["pair"],
        }
        seen["route"].add(dose.route)
        seen["protocol"].add(dose.protocol_key)
        seen["pair"].add((dose.route, dose.protocol_key))
        if any(flags.values()):
            starts.append((dose, flags))
    return starts


def course_rows(
    organization_id: int, patient_id: int, history: History, *, policy: OutcomePolicy
) -> list[CourseSummary]:
    doses = history.doses
    dose_times = [d.started for d in doses]
    rows = []
    for start, flags in course_starts(doses):
        counts = {
            "sessions_all": len(doses),
            "sessions_route": sum(1 for d in doses if d.route == start.route),
            "sessions_protocol": sum(1 for d in doses if d.protocol_key == start.protocol_key),
            "sessions_pair": sum(
                1 for d in doses if (d.route, d.protocol_key) == (start.route, start.protocol_key)
            ),
        }
        for instrument in INSTRUMENTS:
            course = Course("", start.started, history.scores.get(instrument, []), dose_times)
            outcome = course_outcome(course, policy=policy, induction_days=DEFAULT_INDUCTION_DAYS)
            first, durable = outcome.to_first_response, outcome.durability
            scores = sorted(course.measurements, key=lambda m: m.taken_at)
            baseline = [m.score for m in scores if m.taken_at <= start.started]
            row = CourseSummary(
                organization_id=organization_id,
                patient_id=patient_id,
                instrument_id=instrument,
                version=SUMMARY_VERSION,
                route=start.route,
                protocol_key=start.protocol_key,
                first_dose_on=start.started.date(),
                baseline=baseline[-1] if baseline else None,
                response=outcome.response,
                remission=outcome.remission,
                early_verdicts=early_verdicts(course, policy=policy),
                to_response_days=first.time if first else None,
                to_response_event=first.event if first else None,
                durability_days=durable.time if durable else None,
                durability_event=durable.event if durable else None,
                durability_not_evaluable=outcome.durability_not_evaluable,
                maintenance=outcome.maintenance or "",
                cadss_total=history.cadss_total,
                cadss_count=history.cadss_count,
                **history.safety,
                **flags,
                **counts,
            )
            for week, change in outcome.change_by_week.items():
                setattr(row, change_column(week), int(change * 100))
            rows.append(row)
    return rows


def bp_above(alert: Mapping[str, Any]) -> bool:
    """A blood pressure above the clinic's alert limits (what the dashboard counts)."""
    return alert.get("measure") in ("systolic", "diastolic") and alert.get("direction") == "above"


def bp_excursions(rows: Iterable[tuple[int, list[dict[str, Any]]]]) -> dict[str, int]:
    """Sessions by the worst blood pressure above the alert limits after the dose, from
    (session key, alerts) rows of post-dose flowsheet entries."""
    worst: dict[int, str] = {}
    for session_id, alerts in rows:
        for alert in alerts:
            if bp_above(alert) and worst.get(session_id) != "critical":
                worst[session_id] = alert.get("severity", "warning")
    return dict(sorted(Counter(worst.values()).items()))


def _post_dose_alerts(**lookups: Any) -> Any:
    from ketaclinic.sessions.models import VitalsEntry

    return VitalsEntry.objects.filter(predose=False, **lookups).exclude(severity="")


def _safety(patients: dict[str, Any]) -> dict[int, dict[str, int]]:
    """Per patient: the safety columns (adverse events by grade, blood-pressure excursions)."""
    from ketaclinic.sessions.models import AdverseEvent

    grades: dict[int, Counter[int]] = defaultdict(Counter)
    for patient_id, grade in (
        AdverseEvent.objects.filter(**patients).order_by().values_list("patient_id", "grade")
    ):
        grades[patient_id][grade] += 1
    alerts: dict[int, list[tuple[int, list[dict[str, Any]]]]] = defaultdict(list)
    from ketaclinic.sessions.models import TreatmentSession

    # driven from the patients' sessions: the flowsheet is the biggest table
    sessions = TreatmentSession.objects.filter(**patients).order_by().values("pk")
    for patient_id, session_id, found in (
        _post_dose_alerts(session__in=sessions)
        .order_by()
        .values_list("session__patient_id", "session_id", "alerts")
    ):
        alerts[patient_id].append((session_id, found))
    columns = {}
    for patient_id in set(grades) | set(alerts):
        bp = bp_excursions(alerts.get(patient_id, []))
        columns[patient_id] = {
            "bp_warning_sessions": bp.get("warning", 0),
            "bp_critical_sessions": bp.get("critical", 0),
            **{grade_column(g): grades[patient_id][g] for g in AE_GRADES},
        }
    return columns


def _by_session(patients: dict[str, Any]) -> dict[str, Any]:
    """The same patient lookups from a session row."""
    return {
        (key if key == "organization" else f"session__{key}"): value
        for key, value in patients.items()
    }


def refresh_safety_counts(patient_id: int) -> int:
    """Rewrite one patient's safety columns (an adverse event or a high blood pressure after a
    dose was recorded): two small reads and one UPDATE, in the caller's transaction."""
    with scopes_disabled():
        patients = {"patient_id__in": [patient_id]}
        columns = _safety(patients).get(patient_id) or _NO_SAFETY_EVENTS
        return CourseSummary.objects.filter(**patients).update(**columns)


def _histories(patients: dict[str, Any]) -> dict[int, History]:
    """Doses, scores (corrections applied) and CADSS totals of the patients `patients` selects
    (lookups on a chart row: organization, patient_id...), in a fixed order so that ties on
    time always resolve the same way."""
    from ketaclinic.sessions.models import SessionObservation, TreatmentSession

    histories: dict[int, History] = defaultdict(History)
    for patient_id, started, route, protocol_key in (
        TreatmentSession.objects.filter(**patients, dose_started_at__isnull=False)
        .order_by("patient_id", "dose_started_at", "route", "protocol_key", "pk")
        .values_list("patient_id", "dose_started_at", "route", "protocol_key")
    ):
        if started is not None:  # the query asks for dosed sessions only
            histories[patient_id].doses.append(Dose(started, route, protocol_key))
    if not histories:
        return histories  # nobody dosed yet: no course to summarize
    for patient_id, instrument, total, taken_at in (
        QuestionnaireResponse.objects.filter(
            **patients,
            instrument_id__in=list(INSTRUMENTS),
            total__isnull=False,
            corrected_by__isnull=True,
        )
        .order_by("patient_id", "completed_at", "pk")
        .values_list("patient_id", "instrument_id", "total", "completed_at")
    ):
        if patient_id in histories and total is not None:
            histories[patient_id].scores[instrument].append(
                Measurement(instrument, Decimal(total), taken_at)
            )
    for patient_id, score in (
        SessionObservation.objects.filter(
            **_by_session(patients), kind=SessionObservation.Kind.CADSS, score__isnull=False
        )
        .order_by()
        .values_list("session__patient_id", "score")
    ):
        history = histories.get(patient_id)
        if history is not None and score is not None:
            history.cadss_total += Decimal(score)
            history.cadss_count += 1
    for patient_id, columns in _safety(patients).items():
        if patient_id in histories:
            histories[patient_id].safety = columns
    return histories


def _rewrite(patients: dict[str, Any], organization_of: Callable[[int], int]) -> int:
    histories = _histories(patients)
    policy = OutcomePolicy()
    rows = [
        row
        for patient_id, history in histories.items()
        if history.doses
        for row in course_rows(organization_of(patient_id), patient_id, history, policy=policy)
    ]
    CourseSummary.objects.filter(**patients).delete()
    # one instrument's rows together: a cohort reads one instrument, so fewer pages
    rows.sort(key=lambda row: row.instrument_id)
    CourseSummary.objects.bulk_create(rows, batch_size=500)
    return len(rows)


def refresh_course_summaries(patient_ids: Iterable[int]) -> int:
    """Rewrite these patients' course summaries from their chart (call inside the transaction
    that changed the chart). Returns the number of rows written."""
    keys = sorted(set(patient_ids))
    if not keys:
        return 0
    with scopes_disabled(), transaction.atomic():

        @cache
        def organizations() -> dict[int, int]:  # read only when someone has a course
            return dict(Patient.objects.filter(pk__in=keys).values_list("pk", "organization"))

        return _rewrite({"patient_id__in": keys}, lambda key: organizations()[key])


def recompute_course_summaries(
    organization: Any, *, progress: Callable[[int, int], None] | None = None, size: int = RANGE
) -> int:
    """Rewrite every course summary of a clinic, a range of `size` patient keys per
    transaction; `progress` hears (patient keys done, in all). Returns the rows written."""
    with scopes_disabled():
        bounds = Patient.objects.filter(organization=organization).aggregate(
            low=Min("pk"), high=Max("pk")
        )
        if bounds["low"] is None:
            return 0
        low, high = bounds["low"], bounds["high"] + 1
        written = 0
        for start in range(low, high, size):
            with transaction.atomic():
                written += _rewrite(
                    {
                        "organization": organization,
                        "patient_id__gte": start,
                        "patient_id__lt": start + size,
                    },
                    lambda _key: organization.pk,
                )
            if progress:
                progress(min(start + size, high) - low, high - low)
    return written
