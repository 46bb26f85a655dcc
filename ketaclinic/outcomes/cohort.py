"""A cohort's outcomes from each patient's course: pure (no Django), plain data in and out.

A course is one patient's first dose and their scores on one instrument. From it come the
verdicts after induction, the time to first response, the durability of response (first
response to relapse, censored at the last score) and the change from baseline week by week.
The cohort summary adds them up with the statistics of `stats.py`. Definitions and the induction
window are in docs/sources/outcomes.md section 1.
"""

from __future__ import annotations

import math
import statistics
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal

from scipy.stats import t as student_t

from ketaclinic.outcomes.rules import (
    Measurement,
    OutcomePolicy,
    assess_relapse,
    find_baseline,
    remission_verdict,
    response_verdict,
)
from ketaclinic.outcomes.stats import LogRank, Proportion, SurvivalFit, kaplan_meier, logrank
from ketaclinic.outcomes.stats import proportion as rate_of

COHORT_RULE = "outcome-cohort@1"
# docs/sources/outcomes.md section 1: esketamine induction is weeks 1-4 and an IV series about
# 12 days, so 28 days holds both; a clinic setting, not a clinical threshold.
DEFAULT_INDUCTION_DAYS = 28
MAX_WEEKS_SHOWN = 26
SECONDS_PER_DAY = 86_400.0

# docs/sources/outcomes.md section 1, "Maintenance interval": the esketamine label's maintenance
# schedules (weekly, every two weeks) name the bands; the widths are a presentation choice.
MAINTENANCE_BANDS: tuple[tuple[str, int | None], ...] = (
    ("weekly", 7),
    ("every 2 weeks", 14),
    ("less often", None),
)
NO_MAINTENANCE = "no dose after"
MAINTENANCE_ORDER = (*(label for label, _ in MAINTENANCE_BANDS), NO_MAINTENANCE)


@dataclass(frozen=True, slots=True)
class Course:
    group: str  # the route or protocol the patient's first dose belongs to
    first_dose_at: datetime
    measurements: Sequence[Measurement]  # one instrument, any order
    dose_times: Sequence[datetime] = ()  # every dosed session's start, any order


@dataclass(frozen=True, slots=True)
class Observation:
    time: float  # days
    event: bool


@dataclass(frozen=True, slots=True)
class CourseOutcome:
    group: str
    response: bool | None  # after induction; None: cannot tell
    remission: bool | None
    to_first_response: Observation | None  # None without a baseline
    durability: Observation | None  # None before any response, or when not evaluable
    durability_not_evaluable: bool
    change_by_week: dict[int, Decimal] = field(default_factory=dict)  # points from baseline
    maintenance: str | None = None  # a MAINTENANCE_ORDER band; None without a durability record


@dataclass(frozen=True, slots=True)
class WeekChange:
    week: int
    n: int
    mean: float
    ci_lower: float | None
    ci_upper: float | None


@dataclass(frozen=True, slots=True)
class CohortSummary:
    patients: int
    response: Proportion
    remission: Proportion
    to_first_response: SurvivalFit | None
    change_by_week: tuple[WeekChange, ...]
    durability: dict[str, SurvivalFit]
    durability_observations: dict[str, tuple[list[float], list[bool]]]
    durability_logrank: LogRank | None
    durability_not_evaluable: int
    by_group: dict[str, tuple[Proportion, Proportion]] = field(default_factory=dict)
    durability_by_maintenance: dict[str, SurvivalFit] = field(default_factory=dict)
    maintenance_observations: dict[str, tuple[list[float], list[bool]]] = field(
        default_factory=dict
    )
    maintenance_logrank: LogRank | None = None
    rule: str = COHORT_RULE


def _days(delta: timedelta) -> float:
    return delta.total_seconds() / SECONDS_PER_DAY


def maintenance_band(
    dose_times: Sequence[datetime], *, response_at: datetime, until: datetime
) -> str:
    """How often a responder was dosed while their response was followed.

    The gaps run from the last dose at or before the response to the last dose before `until`
    (relapse, or the last score); their median, in whole days, picks the band.
    """
    before = [t for t in dose_times if t <= response_at]
    doses = ([max(before)] if before else []) + sorted(
        t for t in dose_times if response_at < t <= until
    )
    if len(doses) < 2:
        return NO_MAINTENANCE
    gap = round(statistics.median(_days(b - a) for a, b in zip(doses, doses[1:], strict=False)))
    for label, limit in MAINTENANCE_BANDS:
        if limit is None or gap <= limit:
            return label
    raise AssertionError("the last band has no limit")


def course_outcome(
    course: Course, *, policy: OutcomePolicy, induction_days: int = DEFAULT_INDUCTION_DAYS
) -> CourseOutcome:
    series = sorted(course.measurements, key=lambda m: m.taken_at)
    start = course.first_dose_at
    baseline = find_baseline(series, first_treatment_at=start)
    treated = [m for m in series if m.taken_at > start]
    window_end = start + timedelta(days=induction_days)
    in_window = [m for m in treated if m.taken_at <= window_end]
    after_induction = in_window[-1] if in_window else None

    base = baseline.measurement.score if baseline else None
    response = remission = None
    if after_induction is not None:
        response = response_verdict(base, after_induction.score, policy=policy).met
        remission = remission_verdict(
            after_induction.instrument_id, after_induction.score, policy=policy
        ).met

    to_first_response = None
    if base is not None and base > 0 and treated:
        first = next(
            (m for m in treated if response_verdict(base, m.score, policy=policy).met), None
        )
        to_first_response = (
            Observation(_days(first.taken_at - start), True)
            if first
            else Observation(_days(treated[-1].taken_at - start), False)
        )

    durability = None
    maintenance = None
    not_evaluable = False
    relapse = assess_relapse(series, first_treatment_at=start, policy=policy)
    if relapse.status == "relapsed" and relapse.response_at and relapse.relapse_at:
        durability = Observation(_days(relapse.relapse_at - relapse.response_at), True)
        maintenance = maintenance_band(
            course.dose_times, response_at=relapse.response_at, until=relapse.relapse_at
        )
    elif relapse.status in ("no-relapse", "suspected") and relapse.response_at:
        durability = Observation(_days(treated[-1].taken_at - relapse.response_at), False)
        maintenance = maintenance_band(
            course.dose_times, response_at=relapse.response_at, until=treated[-1].taken_at
        )
    elif relapse.status == "not-evaluable":
        not_evaluable = True

    by_week: dict[int, Decimal] = {}
    if base is not None:
        for m in treated:  # oldest first, so the week keeps its last score
            week = int(_days(m.taken_at - start) // 7)
            if week < MAX_WEEKS_SHOWN:
                by_week[week] = m.score - base
    return CourseOutcome(
        group=course.group,
        response=response,
        remission=remission,
        to_first_response=to_first_response,
        durability=durability,
        durability_not_evaluable=not_evaluable,
        change_by_week=by_week,
        maintenance=maintenance,
    )


def mean_with_interval(values: Sequence[float]) -> tuple[float, float | None, float | None]:
    """Mean with its t-based 95% interval (None for fewer than two values)."""
    n = len(values)
    mean = sum(values) / n
    if n < 2:
        return mean, None, None
    variance = sum((v - mean) ** 2 for v in values) / (n - 1)
    half = float(student_t.ppf(0.975, n - 1)) * math.sqrt(variance / n)
    return mean, mean - half, mean + half


def summarize(outcomes: Sequence[CourseOutcome]) -> CohortSummary:
    to_response = [o.to_first_response for o in outcomes if o.to_first_response]
    weeks: dict[int, list[float]] = defaultdict(list)
    durability_obs: dict[str, tuple[list[float], list[bool]]] = {}
    maintenance_obs: dict[str, tuple[list[float], list[bool]]] = {}
    for outcome in outcomes:
        for week, change in outcome.change_by_week.items():
            weeks[week].append(float(change))
        if outcome.durability:
            times, events = durability_obs.setdefault(outcome.group, ([], []))
            times.append(outcome.durability.time)
            events.append(outcome.durability.event)
            if outcome.maintenance:
                times, events = maintenance_obs.setdefault(outcome.maintenance, ([], []))
                times.append(outcome.durability.time)
                events.append(outcome.durability.event)
    change_rows = []
    for week in sorted(weeks):
        mean, lower, upper = mean_with_interval(weeks[week])
        change_rows.append(WeekChange(week, len(weeks[week]), mean, lower, upper))
    durability_obs = dict(sorted(durability_obs.items()))
    grouped: dict[str, list[CourseOutcome]] = defaultdict(list)
    for outcome in outcomes:
        grouped[outcome.group].append(outcome)
    by_group = {
        name: (rate_of([o.response for o in members]), rate_of([o.remission for o in members]))
        for name, members in sorted(grouped.items())
    }
    fits = {name: kaplan_meier(*obs) for name, obs in durability_obs.items()}
    maintenance_obs = {
        band: maintenance_obs[band] for band in MAINTENANCE_ORDER if band in maintenance_obs
    }
    return CohortSummary(
        patients=len(outcomes),
        response=rate_of([o.response for o in outcomes]),
        remission=rate_of([o.remission for o in outcomes]),
        to_first_response=(
            kaplan_meier([o.time for o in to_response], [o.event for o in to_response])
            if to_response
            else None
        ),
        change_by_week=tuple(change_rows),
        durability=fits,
        durability_observations=durability_obs,
        durability_logrank=logrank(durability_obs) if len(durability_obs) >= 2 else None,
        durability_not_evaluable=sum(1 for o in outcomes if o.durability_not_evaluable),
        by_group=by_group,
        durability_by_maintenance={
            band: kaplan_meier(*obs) for band, obs in maintenance_obs.items()
        },
        maintenance_observations=maintenance_obs,
        maintenance_logrank=logrank(maintenance_obs) if len(maintenance_obs) >= 2 else None,
    )
