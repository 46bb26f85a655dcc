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
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal
from fractions import Fraction

from scipy.stats import t as student_t

from ketaclinic.outcomes.rules import (
    Measurement,
    OutcomePolicy,
    assess_relapse,
    find_baseline,
    remission_verdict,
    response_verdict,
)
from ketaclinic.outcomes.stats import (
    LogRank,
    Proportion,
    SurvivalFit,
    kaplan_meier,
    logrank,
    proportion_of,
)

COHORT_RULE = "outcome-cohort@1"
# docs/sources/outcomes.md section 1: esketamine induction is weeks 1-4 and an IV series about
# 12 days, so 28 days holds both; a clinic setting, not a clinical threshold.
DEFAULT_INDUCTION_DAYS = 28
MIN_INDUCTION_DAYS, MAX_INDUCTION_DAYS = 7, 84  # the range a cohort may ask for
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


def mean_interval_from_moments(
    n: int, total: Fraction, squares: Fraction
) -> tuple[float, float | None, float | None]:
    """Mean with its t-based 95% interval from n, the sum and the sum of squares (exact), so
    that a sum taken by the database and one taken here give the same figures."""
    mean = total / n
    if n < 2:
        return float(mean), None, None
    variance = max(Fraction(0), (squares - total * mean) / (n - 1))
    half = float(student_t.ppf(0.975, n - 1)) * math.sqrt(variance / n)
    return float(mean), float(mean) - half, float(mean) + half


@dataclass(slots=True)
class Moments:
    """n, sum and sum of squares of some values, kept exact (Fraction)."""

    n: int = 0
    total: Fraction = Fraction(0)
    squares: Fraction = Fraction(0)

    def add(self, value: Decimal | float | int, count: int = 1) -> None:
        exact = Fraction(value)
        self.n += count
        self.total += exact * count
        self.squares += exact * exact * count


def mean_with_interval(
    values: Sequence[float | Decimal],
) -> tuple[float, float | None, float | None]:
    """Mean with its t-based 95% interval (None for fewer than two values)."""
    moments = Moments()
    for value in values:
        moments.add(value)
    return mean_interval_from_moments(moments.n, moments.total, moments.squares)


Observations = dict[tuple[float, bool], int]  # (time, event) -> how many patients


@dataclass
class CohortTally:
    """What a cohort summary is computed from: counts, exact sums and observation counts.

    Filled either course by course (`tally`) or by GROUP BY queries over the stored course
    summaries (selectors); `summary_from_tally` turns either into the same CohortSummary.
    """

    patients: int = 0
    # group -> [response yes, no, cannot tell, remission yes, no, cannot tell]
    rates: dict[str, list[int]] = field(default_factory=dict)
    to_first_response: Observations = field(default_factory=dict)
    change_by_week: dict[int, Moments] = field(default_factory=dict)
    durability: dict[str, Observations] = field(default_factory=dict)
    maintenance: dict[str, Observations] = field(default_factory=dict)
    durability_not_evaluable: int = 0

    def add_rates(
        self, group: str, response: bool | None, remission: bool | None, count: int = 1
    ) -> None:
        row = self.rates.setdefault(group, [0] * 6)
        row[_VERDICT_SLOT[response]] += count
        row[3 + _VERDICT_SLOT[remission]] += count


_VERDICT_SLOT = {True: 0, False: 1, None: 2}


def _count(observations: Observations, time: float, event: bool, count: int = 1) -> None:
    observations[(time, event)] = observations.get((time, event), 0) + count


def tally(outcomes: Sequence[CourseOutcome]) -> CohortTally:
    counts = CohortTally(patients=len(outcomes))
    for outcome in outcomes:
        counts.add_rates(outcome.group, outcome.response, outcome.remission)
        if outcome.to_first_response:
            first = outcome.to_first_response
            _count(counts.to_first_response, first.time, first.event)
        for week, change in outcome.change_by_week.items():
            counts.change_by_week.setdefault(week, Moments()).add(change)
        if outcome.durability:
            durable = outcome.durability
            _count(counts.durability.setdefault(outcome.group, {}), durable.time, durable.event)
            if outcome.maintenance:
                band = counts.maintenance.setdefault(outcome.maintenance, {})
                _count(band, durable.time, durable.event)
        if outcome.durability_not_evaluable:
            counts.durability_not_evaluable += 1
    return counts


def _lists(observations: Observations) -> tuple[list[float], list[bool]]:
    """Sorted times and events (the same lists whichever way the counts were gathered)."""
    times: list[float] = []
    events: list[bool] = []
    for (time, event), count in sorted(observations.items()):
        times += [time] * count
        events += [event] * count
    return times, events


def _rate(yes: int, no: int, unknown: int) -> Proportion:
    return proportion_of(yes, yes + no, unknown)


def summarize(outcomes: Sequence[CourseOutcome]) -> CohortSummary:
    return summary_from_tally(tally(outcomes))


def summary_from_tally(counts: CohortTally) -> CohortSummary:
    change_rows = []
    for week in sorted(counts.change_by_week):
        m = counts.change_by_week[week]
        mean, lower, upper = mean_interval_from_moments(m.n, m.total, m.squares)
        change_rows.append(WeekChange(week, m.n, mean, lower, upper))
    durability_obs = {name: _lists(obs) for name, obs in sorted(counts.durability.items())}
    maintenance_obs = {
        band: _lists(counts.maintenance[band])
        for band in MAINTENANCE_ORDER
        if counts.maintenance.get(band)
    }
    by_group = {
        name: (_rate(*row[:3]), _rate(*row[3:]))
        for name, row in sorted(counts.rates.items())
        if any(row)
    }
    overall = [sum(row[i] for row in counts.rates.values()) for i in range(6)]
    to_response = _lists(counts.to_first_response)
    return CohortSummary(
        patients=counts.patients,
        response=_rate(*overall[:3]),
        remission=_rate(*overall[3:]),
        to_first_response=kaplan_meier(*to_response) if to_response[0] else None,
        change_by_week=tuple(change_rows),
        durability={name: kaplan_meier(*obs) for name, obs in durability_obs.items()},
        durability_observations=durability_obs,
        durability_logrank=logrank(durability_obs) if len(durability_obs) >= 2 else None,
        durability_not_evaluable=counts.durability_not_evaluable,
        by_group=by_group,
        durability_by_maintenance={
            band: kaplan_meier(*obs) for band, obs in maintenance_obs.items()
        },
        maintenance_observations=maintenance_obs,
        maintenance_logrank=logrank(maintenance_obs) if len(maintenance_obs) >= 2 else None,
    )


_VERDICT_CODE = {True: "y", False: "n", None: "?"}
_CODE_VERDICT = {code: verdict for verdict, code in _VERDICT_CODE.items()}


def early_verdicts(
    course: Course, *, policy: OutcomePolicy, max_days: int = MAX_INDUCTION_DAYS
) -> str:
    """Response and remission of each treated score within `max_days` of the first dose, oldest
    first, as compact text ("1209600yn 1814400yy": whole seconds after the first dose, rounded
    up, then y/n/? for response and remission). The verdict after an induction window of any
    whole number of days up to `max_days` is the last one inside it (`verdicts_after`)."""
    series = sorted(course.measurements, key=lambda m: m.taken_at)
    start = course.first_dose_at
    baseline = find_baseline(series, first_treatment_at=start)
    base = baseline.measurement.score if baseline else None
    window_end = start + timedelta(days=max_days)
    tokens = []
    for m in series:
        if start < m.taken_at <= window_end:
            # rounding up keeps "inside a window of whole days" exact: a score one microsecond
            # past the window's end is one second past it
            seconds = -((start - m.taken_at) // timedelta(seconds=1))
            response = response_verdict(base, m.score, policy=policy).met
            remission = remission_verdict(m.instrument_id, m.score, policy=policy).met
            tokens.append(f"{seconds}{_VERDICT_CODE[response]}{_VERDICT_CODE[remission]}")
    return " ".join(tokens)


def verdicts_after(early: str, induction_days: int) -> tuple[bool | None, bool | None]:
    """Response and remission after an induction of `induction_days` (as course_outcome
    judges them), from `early_verdicts`' text."""
    limit = induction_days * 86_400
    found: tuple[bool | None, bool | None] = (None, None)
    for token in early.split():
        if int(token[:-2]) > limit:
            break
        found = (_CODE_VERDICT[token[-2]], _CODE_VERDICT[token[-1]])
    return found
