"""Pure: which of the plan's therapy measures are due, done or missed, from when the dosing
sessions and therapy visits took place and when the instrument was last answered.

No windows in days are assumed (the clinical reference gives none for KAP; docs/sources/
therapy.md, "Measures"): "before" an event means answered after the previous event of the same
kind (or the plan's start) and before it; "after" means answered since the event.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

RULE = "therapy-measure-timing@1"

BEFORE_PREPARATION = "before_preparation"
BEFORE_EACH_DOSING = "before_each_dosing"
AFTER_EACH_DOSING = "after_each_dosing"
AFTER_INTEGRATION = "after_integration"


@dataclass(frozen=True, slots=True)
class Course:
    plan_start: datetime
    preparations: Sequence[datetime]  # when each preparation visit started
    doses: Sequence[datetime]  # when each dosing session's dose started
    upcoming_sessions: Sequence[datetime]  # scheduled, not yet dosed
    integrations: Sequence[datetime]  # when each integration visit started


@dataclass(frozen=True, slots=True)
class MeasureStatus:
    instrument_id: str
    timing: str
    status: str  # "due", "done", "missed" or "waiting"
    anchor: datetime | None  # the event it is asked for around
    reason: str
    rule: str = RULE


def _answered(answers: Sequence[datetime], after: datetime, before: datetime | None) -> bool:
    return any(after <= at and (before is None or at < before) for at in answers)


def measure_status(
    *, instrument_id: str, timing: str, course: Course, answers: Sequence[datetime]
) -> MeasureStatus:
    """`answers`: when the patient answered this instrument (any time)."""

    def status(state: str, anchor: datetime | None, reason: str) -> MeasureStatus:
        return MeasureStatus(instrument_id, timing, state, anchor, reason)

    doses = sorted(course.doses)
    if timing == BEFORE_PREPARATION:
        first = min(course.preparations, default=None)
        if _answered(answers, course.plan_start, first):
            return status("done", first, "Answered before the first preparation visit.")
        if first is None:
            return status("due", None, "Ask before the first preparation visit.")
        return status("missed", first, "Not answered before the first preparation visit.")
    if timing == BEFORE_EACH_DOSING:
        upcoming = min(course.upcoming_sessions, default=None)
        if upcoming is None:
            return status("waiting", None, "No dosing session booked.")
        since = doses[-1] if doses else course.plan_start
        if _answered(answers, since, None):
            return status("done", upcoming, "Answered for the next dosing session.")
        return status("due", upcoming, "Ask before the next dosing session.")
    if timing == AFTER_EACH_DOSING:
        if not doses:
            return status("waiting", None, "No dosing session yet.")
        if _answered(answers, doses[-1], None):
            return status("done", doses[-1], "Answered since the last dosing session.")
        return status("due", doses[-1], "Ask after the last dosing session.")
    if timing == AFTER_INTEGRATION:
        last = max(course.integrations, default=None)
        if last is None:
            return status("waiting", None, "No integration visit yet.")
        if _answered(answers, last, None):
            return status("done", last, "Answered since the last integration visit.")
        return status("due", last, "Ask after the last integration visit.")
    raise ValueError(f"unknown timing {timing!r}")
