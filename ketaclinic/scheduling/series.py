"""A treatment plan's series as RFC 5545 recurrence rules, expanded into proposed visit times.
Pure module (python-dateutil's rrule, no Django).

Each dosing phase of the protocol with a number of sessions per week becomes one weekly rule:
3 a week, Monday/Wednesday/Friday from a Monday, Wednesday or Friday start (IV induction: six
infusions over about 12 days, clinical-reference §1.1 [C] #22, #23); 2 a week three or four days
apart (esketamine induction, weeks 1-4, §1.3 [C] #1, #2); 1 a week; and "every 2 weeks" as
INTERVAL=2. A phase
starts on its start week counted from the first visit. Open-ended phases are proposed up to a
horizon, because the plan says they continue only while the patient responds.

Times are wall-clock times in the clinic's zone: a 9:00 visit stays at 9:00 after a daylight
saving change. A wall time that does not exist that day (inside the spring-forward gap) moves
forward by the gap, as the clock does.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

from dateutil.rrule import rrulestr

RULE = "scheduling-series@1"
DAYS = ("MO", "TU", "WE", "TH", "FR", "SA", "SU")
# Weekdays for n visits a week, by the first visit's weekday (0 = Monday): spread over the
# working week and never on a weekend unless the series starts on one.
SPREAD: dict[int, dict[int, tuple[int, ...]]] = {
    1: {d: (d,) for d in range(7)},
    2: {0: (0, 3), 1: (1, 4), 2: (0, 2), 3: (0, 3), 4: (1, 4), 5: (1, 5), 6: (2, 6)},
    3: {
        0: (0, 2, 4),
        1: (0, 1, 3),
        2: (0, 2, 4),
        3: (0, 2, 3),
        4: (0, 2, 4),
        5: (0, 2, 5),
        6: (1, 3, 6),
    },
}
OPEN_ENDED_HORIZON = 4  # visits proposed for a phase with no planned count


@dataclass(frozen=True, slots=True)
class PhasePlan:
    name: str
    planned_sessions: int | None
    sessions_per_week: Decimal | None  # 0.5 = every two weeks
    start_week: int | None = None


@dataclass(frozen=True, slots=True)
class ProposedVisit:
    phase: str
    index: int  # 1-based within the whole series
    starts_at: datetime  # UTC
    rrule: str  # the phase's RFC 5545 rule, as stored with the series


def phase_rule(phase: PhasePlan, first_weekday: int) -> str | None:
    """The RFC 5545 RRULE for one phase, or None when the phase has no regular rhythm."""
    per_week = phase.sessions_per_week
    if per_week is None or per_week <= 0:
        return None
    count = phase.planned_sessions or OPEN_ENDED_HORIZON
    if per_week < 1:
        interval = int((1 / per_week).to_integral_value())
        return f"FREQ=WEEKLY;INTERVAL={interval};BYDAY={DAYS[first_weekday]};COUNT={count}"
    weekdays = SPREAD.get(int(per_week), {}).get(first_weekday)
    if weekdays is None:
        return None
    days = ",".join(DAYS[d] for d in weekdays)
    return f"FREQ=WEEKLY;BYDAY={days};COUNT={count}"


def local_to_utc(day: date, wall: time, time_zone: str) -> datetime:
    """The UTC instant of a local wall time; inside a DST gap, shifted forward by the gap."""
    zone = ZoneInfo(time_zone)
    local = datetime.combine(day, wall, zone)
    # A non-existent wall time does not survive a round trip; UTC normalizes it forward.
    return local.astimezone(UTC)


def expand(
    phases: Sequence[PhasePlan],
    *,
    first_day: date,
    wall_time: time,
    time_zone: str,
    exceptions: Iterable[date] = (),
) -> list[ProposedVisit]:
    """Every proposed visit of the series, in order. `exceptions` are local dates to skip
    (holidays, the patient's trip): a skipped visit is not moved, the scheduler places it."""
    skip = set(exceptions)
    visits: list[ProposedVisit] = []
    index = 0
    for phase in phases:
        rule = phase_rule(phase, first_day.weekday())
        if rule is None:
            continue
        phase_start = first_day + timedelta(weeks=(phase.start_week or 1) - 1)
        if visits and phase.start_week is None:
            phase_start = max(phase_start, _next_day_after(visits[-1], time_zone))
        # dateutil expands in naive local wall time; the zone is attached afterwards so that
        # DST moves the UTC instant, not the wall-clock time.
        dtstart = datetime.combine(phase_start, wall_time)
        for local in rrulestr(rule, dtstart=dtstart):
            if local.date() in skip:
                continue
            index += 1
            visits.append(
                ProposedVisit(
                    phase=phase.name,
                    index=index,
                    starts_at=local_to_utc(local.date(), wall_time, time_zone),
                    rrule=rule,
                )
            )
    return visits


def _next_day_after(visit: ProposedVisit, time_zone: str) -> date:
    return visit.starts_at.astimezone(ZoneInfo(time_zone)).date() + timedelta(days=1)
