"""The dashboard's cohort added up by the database, over the course summaries (summary.py).

Each figure is one GROUP BY over the rows the filters select: counts of verdicts, exact sums of
the weekly changes, and (time, event) counts for the survival curves. `cohort.summary_from_tally`
turns them into the same summary the pure path computes course by course; the Wilson intervals,
Kaplan-Meier and the log-rank test run in Python over these small aggregates.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from decimal import Decimal
from fractions import Fraction
from typing import Any

from django.db import connection, transaction
from django.db.models import (
    BigIntegerField,
    Count,
    Exists,
    F,
    Func,
    IntegerField,
    OuterRef,
    Q,
    QuerySet,
    Sum,
    Value,
)

from ketaclinic.outcomes.cohort import (
    DEFAULT_INDUCTION_DAYS,
    MAX_WEEKS_SHOWN,
    CohortTally,
    Moments,
    Observations,
    verdicts_after,
)
from ketaclinic.outcomes.filters import AGE_BANDS, CohortFilters
from ketaclinic.outcomes.models import (
    AE_GRADES,
    COUNTED,
    CourseSummary,
    change_column,
    grade_column,
)
from ketaclinic.patients.models import Condition

WHOLE_COHORT = "all patients"


class DateNumber(Func):
    """A date as the number yyyymmdd, computed by the database itself (Django's Extract runs a
    Python function per row on SQLite)."""

    output_field = IntegerField()

    def as_sqlite(self, compiler: Any, connection: Any, **extra: Any) -> Any:
        return self.as_sql(
            compiler, connection, template="CAST(replace(%(expressions)s, '-', '') AS integer)"
        )

    def as_postgresql(self, compiler: Any, connection: Any, **extra: Any) -> Any:
        return self.as_sql(
            compiler, connection, template="CAST(to_char(%(expressions)s, 'YYYYMMDD') AS integer)"
        )


def cohort_rows(filters: CohortFilters) -> tuple[QuerySet[CourseSummary], str]:
    """The summaries of the cohort's courses, and the column counting its dosed sessions."""
    from ketaclinic.protocols.models import TreatmentPlan
    from ketaclinic.screening.models import ScreeningEvaluation

    rows = CourseSummary.objects.filter(instrument_id=filters.instrument)
    if filters.route and filters.protocol:
        rows = rows.filter(first_of_pair=True, route=filters.route, protocol_key=filters.protocol)
        sessions = "sessions_pair"
    elif filters.route:
        rows, sessions = rows.filter(first_of_route=True, route=filters.route), "sessions_route"
    elif filters.protocol:
        rows = rows.filter(first_of_protocol=True, protocol_key=filters.protocol)
        sessions = "sessions_protocol"
    else:
        rows, sessions = rows.filter(first_overall=True), "sessions_all"
    if filters.first_dose_from:
        rows = rows.filter(first_dose_on__gte=filters.first_dose_from)
    if filters.first_dose_to:
        rows = rows.filter(first_dose_on__lte=filters.first_dose_to)
    if filters.condition:
        rows = rows.filter(
            patient_id__in=Condition.objects.in_use()
            .filter(code__istartswith=filters.condition)
            .values("patient_id")
        )
    if filters.phase:
        rows = rows.filter(
            patient_id__in=TreatmentPlan.objects.filter(phase=filters.phase).values("patient_id")
        )
    if filters.trd:
        later = ScreeningEvaluation.objects.filter(patient_id=OuterRef("patient_id")).filter(
            Q(created_at__gt=OuterRef("created_at"))
            | Q(created_at=OuterRef("created_at"), pk__gt=OuterRef("pk"))
        )
        latest = (
            ScreeningEvaluation.objects.filter(trd_status=filters.trd)
            .exclude(Exists(later))
            .values("patient_id")
        )
        rows = rows.filter(patient_id__in=latest)
    if filters.age_band:
        # age at the first dose in [low, high], as (year, month, day) tuples compare:
        # birth + low years <= first dose < birth + (high + 1) years
        low, high = AGE_BANDS[filters.age_band]
        rows = rows.annotate(
            birth_ymd=DateNumber("patient__birth_date"), first_dose_ymd=DateNumber("first_dose_on")
        ).filter(
            birth_ymd__lte=F("first_dose_ymd") - low * 10_000,
            birth_ymd__gt=F("first_dose_ymd") - (high + 1) * 10_000,
        )
    return rows, sessions


@dataclass
class CohortAggregates:
    tally: CohortTally
    sessions: int = 0
    adverse_events_by_grade: dict[int, int] = field(default_factory=dict)
    bp_excursions: dict[str, int] = field(default_factory=dict)
    # response verdict -> Moments of each patient's mean CADSS total
    dissociation: dict[bool | None, Moments] = field(default_factory=dict)


def patient_mean(total: Decimal, count: int) -> float:
    """A patient's mean dissociation score, rounded once (whichever path sums it)."""
    return float(Fraction(total) / count)


# The weekly count and sum come from one SUM of (change + PACK) over the rows that have a change
# that week: n * PACK + sum, and since |sum| < PACK / 2 both are read back exactly. One aggregate
# fewer per week (26 of 86 in the pass). A change is at most 10,000 hundredths either way (a
# score of 100 points), so this holds up to PACKED_UP_TO courses and the total fits in 64 bits;
# a larger cohort is summed the plain way.
PACK = 1 << 36
PACKED_UP_TO = (PACK // 2 - 1) // 10_000


def _sums(*, packed: bool) -> dict[str, Any]:
    sums: dict[str, Any] = {
        "not_evaluable": Count("id", filter=Q(durability_not_evaluable=True)),
        "bp_warning": Sum("bp_warning_sessions"),
        "bp_critical": Sum("bp_critical_sessions"),
    }
    for grade in AE_GRADES:
        sums[f"ae{grade}"] = Sum(grade_column(grade))
    for week in range(MAX_WEEKS_SHOWN):
        column = change_column(week)
        if packed:
            sums[f"p{week}"] = Sum(F(column) + Value(PACK), output_field=BigIntegerField())
        else:
            sums[f"n{week}"] = Count(column)
            sums[f"s{week}"] = Sum(column)
        sums[f"q{week}"] = Sum(F(column) * F(column))
    return sums


def _week_count_and_sum(found: dict[str, Any], week: int) -> tuple[int, int]:
    if f"p{week}" not in found:
        return found[f"n{week}"], found[f"s{week}"] or 0
    packed = int(found[f"p{week}"] or 0)  # PostgreSQL sums a bigint as numeric
    n = (packed + PACK // 2) // PACK
    return n, packed - n * PACK


def _add_sums(found: dict[str, Any], into: CohortAggregates) -> None:
    tally = into.tally
    tally.durability_not_evaluable = found["not_evaluable"] or 0
    into.bp_excursions = {
        severity: found[f"bp_{severity}"]
        for severity in ("critical", "warning")
        if found[f"bp_{severity}"]
    }
    into.adverse_events_by_grade = {
        grade: found[f"ae{grade}"] for grade in AE_GRADES if found[f"ae{grade}"]
    }
    for week in range(MAX_WEEKS_SHOWN):
        n, total = _week_count_and_sum(found, week)
        if n:
            tally.change_by_week[week] = Moments(
                n,
                Fraction(total, 100),  # hundredths of a point
                Fraction(int(found[f"q{week}"]), 10_000),
            )


def _observe(observations: Observations, time: float, event: bool, n: int) -> None:
    observations[(time, event)] = observations.get((time, event), 0) + n


# Grouped on in the order of the covering index `course_summary_counts`, so the database reads
# the counts off the index in order, with no table lookup and no sort; route and protocol are both
# grouped on, whichever the cohort is grouped by, so that one index serves every grouping.
OBSERVED = COUNTED


def _group_name(filters: CohortFilters, route: str, protocol_key: str) -> str:
    if filters.group_by == "route":
        return route
    if filters.group_by == "protocol":
        return protocol_key
    return WHOLE_COHORT


# PostgreSQL's default work_mem (4 MB) sends the GROUP BY of 100,000 courses to a sort on disk
# (0.8 s at load 10-13); with room for its rows in memory it hashes them (0.2 s). When the table
# has been vacuumed the covering index serves it in order and none of this memory is used.
GROUPING_WORK_MEM = "32MB"


@contextmanager
def _grouping_in_memory() -> Iterator[None]:
    if connection.vendor != "postgresql":
        yield
        return
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(f"SET LOCAL work_mem = '{GROUPING_WORK_MEM}'")
        yield


def cohort_aggregates(filters: CohortFilters) -> CohortAggregates:
    """Everything the dashboard shows, in two queries over the cohort's rows: one GROUP BY
    counting patients by group, verdicts, survival observations and dissociation totals, and one
    pass of sums (weekly changes, safety). With another induction window than the default the
    verdicts come from each row's kept early verdicts instead."""
    rows, sessions = cohort_rows(filters)
    rows = rows.order_by()
    result = CohortAggregates(CohortTally())
    tally = result.tally
    if filters.induction_days == DEFAULT_INDUCTION_DAYS:
        counted: Iterable[tuple[Any, ...]] = (
            rows.values(*OBSERVED)
            .annotate(n=Count("*"), dosed=Sum(sessions))
            .values_list(*OBSERVED, "n", "dosed")
        )
    else:
        counted = _with_verdicts_after(rows, sessions, filters.induction_days)
    with _grouping_in_memory():
        _add_counts(filters, counted, result)
        _add_sums(rows.aggregate(**_sums(packed=tally.patients <= PACKED_UP_TO)), result)
    return result


def _add_counts(
    filters: CohortFilters, counted: Iterable[tuple[Any, ...]], result: CohortAggregates
) -> None:
    tally = result.tally
    for row in counted:
        days, to_days, total, route, protocol_key, response, remission, *rest = row
        band, to_event, event, count, n, dosed = rest
        name = _group_name(filters, route, protocol_key)
        tally.patients += n
        result.sessions += dosed
        tally.add_rates(name, response, remission, n)
        _add_observed(
            result, name, response, [band, to_days, to_event, days, event, total, count], n
        )


def _with_verdicts_after(
    rows: QuerySet[CourseSummary], sessions: str, days: int
) -> Iterable[tuple[Any, ...]]:
    """Each row as the GROUP BY's (n = 1), its verdicts read from its kept early verdicts."""
    plain = [name for name in OBSERVED if name not in ("response", "remission")]
    for early, *values, dosed in rows.values_list("early_verdicts", *plain, sessions):
        found = dict(zip(plain, values, strict=True))
        found["response"], found["remission"] = verdicts_after(early, days)
        yield (*(found[name] for name in OBSERVED), 1, dosed)


def _add_observed(
    into: CohortAggregates, group: str, response: bool | None, observed: list[Any], n: int
) -> None:
    band, to_days, to_event, days, event, total, count = observed
    tally = into.tally
    if to_days is not None:
        _observe(tally.to_first_response, to_days, to_event, n)
    if days is not None:
        _observe(tally.durability.setdefault(group, {}), days, event, n)
        if band:
            _observe(tally.maintenance.setdefault(band, {}), days, event, n)
    if count:
        into.dissociation.setdefault(response, Moments()).add(patient_mean(total, count), n)
