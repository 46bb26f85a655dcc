"""How often one patient may be dosed: the gap since the last dose, dosing sessions per week,
and the sessions a plan's phase planned. Pure: standard library only.

The numbers come from the protocol's phase (planned sessions, most sessions a week) and the clinic's
versioned session safety policy (minimum gap, a weekly maximum where the phase sets none). Sources
and the reasoning behind each default: docs/sources/sessions.md, "Dosing frequency".

A week is the seven clinic-local calendar days ending on the dose's day, so a Monday/Thursday
schedule stays within "twice a week" whatever the hour of each visit.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from decimal import Decimal

RULE_DOSE_FREQUENCY = "dose-frequency@1"


@dataclass(frozen=True, slots=True)
class PreviousDose:
    started_at: datetime  # UTC
    local_date: date  # the clinic-local day it was given


@dataclass(frozen=True, slots=True)
class FrequencyLimits:
    min_hours_between_doses: int
    max_sessions_per_week: Decimal  # may be fractional: 0.5 = one every two weeks
    planned_sessions: int | None  # the phase's planned count plus extensions; None = open
    phase: str

    def __post_init__(self) -> None:
        if self.min_hours_between_doses < 0:
            raise ValueError("the minimum gap between doses cannot be negative")
        if self.max_sessions_per_week <= 0:
            raise ValueError("the weekly maximum must be positive")
        if self.planned_sessions is not None and self.planned_sessions < 0:
            raise ValueError("planned sessions cannot be negative")


@dataclass(frozen=True, slots=True)
class FrequencyFinding:
    code: str  # "min-interval", "per-week", "planned-count"
    message: str  # what a nurse or prescriber reads
    overridable: bool  # a prescriber may override it with a justification (policy permitting)


def weekly_window(max_per_week: Decimal) -> tuple[int, int]:
    """(days, sessions allowed in those days) for a weekly maximum.

    1 a week or more: 7 days, the whole number of sessions (2.5 a week allows 2). Below 1 a
    week: the window stretches until one session fits (0.5 a week = 1 in 14 days).
    """
    if max_per_week >= 1:
        return 7, int(max_per_week)
    return math.ceil(Decimal(7) / max_per_week), 1


def dose_frequency_findings(
    *,
    at: datetime,
    local_day: date,
    previous: Sequence[PreviousDose],
    doses_in_phase: int,
    limits: FrequencyLimits,
) -> list[FrequencyFinding]:
    """Why a dose at `at` (clinic-local `local_day`) would come too soon or too often; [] = fine.

    `previous` holds the patient's other doses (any plan); `doses_in_phase` counts the doses
    of this plan given since its current phase began.
    """
    findings = []
    gap = timedelta(hours=limits.min_hours_between_doses)
    nearest = min(previous, key=lambda dose: abs(at - dose.started_at), default=None)
    if nearest is not None and abs(at - nearest.started_at) < gap:
        hours = abs(at - nearest.started_at) / timedelta(hours=1)
        findings.append(
            FrequencyFinding(
                "min-interval",
                f"The patient had a dose {_hours(hours)} ago; this clinic allows a dose only "
                f"{limits.min_hours_between_doses} hours after the previous one.",
                overridable=True,
            )
        )
    days, allowed = weekly_window(limits.max_sessions_per_week)
    first_day = local_day - timedelta(days=days - 1)
    in_window = sum(1 for dose in previous if first_day <= dose.local_date <= local_day) + 1
    if in_window > allowed:
        findings.append(
            FrequencyFinding(
                "per-week",
                f"This would be dosing session {in_window} in {days} days; the "
                f"{limits.phase} phase allows {allowed} in {days} days.",
                overridable=True,
            )
        )
    planned = limits.planned_sessions
    if planned is not None and doses_in_phase >= planned:
        findings.append(
            FrequencyFinding(
                "planned-count",
                f"The {limits.phase} phase planned {planned} dosing sessions and {doses_in_phase} "
                "have been given: a prescriber moves the plan to its next phase or extends this "
                "one.",
                overridable=False,
            )
        )
    return findings


def _hours(hours: float) -> str:
    if hours < 1:
        minutes = max(1, round(hours * 60))
        return f"{minutes} minute{'s' if minutes != 1 else ''}"
    whole = math.floor(hours)
    return f"{whole} hour{'s' if whole != 1 else ''}"
