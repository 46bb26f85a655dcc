"""Whether an appointment fits: chair, clinician and the nurse monitoring ratio. Pure module.

Everything arrives as plain data in UTC: the appointments already holding resources, the
clinician's working intervals (weekly hours minus time off, see `working_intervals`), the nurses'
working intervals and the clinic's patients-per-nurse policy. The service locks the clinic, loads
these, and refuses the booking with every reason this module returns (docs/sources/scheduling.md).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

RULE = "scheduling-conflicts@1"


@dataclass(frozen=True, slots=True)
class Interval:
    start: datetime
    end: datetime

    def overlaps(self, start: datetime, end: datetime) -> bool:
        return self.start < end and start < self.end

    def covers(self, start: datetime, end: datetime) -> bool:
        return self.start <= start and end <= self.end


@dataclass(frozen=True, slots=True)
class Held:
    """An appointment that holds its chair, clinician and (if monitored) a nurse's attention."""

    start: datetime
    end: datetime
    chair_id: int | None
    clinician_id: int | None
    monitored: bool


@dataclass(frozen=True, slots=True)
class Request:
    start: datetime
    end: datetime
    chair_id: int | None
    chair_capabilities: frozenset[str]
    needed_capability: str | None  # None: the type needs no particular equipment
    needs_chair: bool
    clinician_id: int | None
    monitored: bool


@dataclass(frozen=True, slots=True)
class Refusal:
    code: str  # chair_busy, chair_unfit, chair_missing, clinician_off, clinician_busy, ratio
    field: str
    message: str


@dataclass(frozen=True, slots=True)
class WeeklyHours:
    weekday: int  # 0 = Monday, as date.weekday()
    start: time
    end: time


def working_intervals(
    hours: Iterable[WeeklyHours],
    time_off: Iterable[Interval],
    *,
    time_zone: str,
    first_day: date,
    last_day: date,
) -> list[Interval]:
    """Weekly local working hours as UTC intervals between two local dates, minus time off.

    Hours are wall-clock times in the clinic's zone, so 9:00 stays 9:00 across a DST change.
    """
    zone = ZoneInfo(time_zone)
    by_day: dict[int, list[WeeklyHours]] = {}
    for h in hours:
        by_day.setdefault(h.weekday, []).append(h)
    intervals = []
    day = first_day
    while day <= last_day:
        for h in by_day.get(day.weekday(), ()):
            start = datetime.combine(day, h.start, zone)
            end = datetime.combine(day, h.end, zone)
            if end > start:
                intervals.append(Interval(start, end))
        day += timedelta(days=1)
    return _subtract(sorted(intervals, key=lambda i: i.start), list(time_off))


def _subtract(intervals: list[Interval], holes: list[Interval]) -> list[Interval]:
    result = []
    for interval in intervals:
        pieces = [interval]
        for hole in holes:
            next_pieces = []
            for piece in pieces:
                if not piece.overlaps(hole.start, hole.end):
                    next_pieces.append(piece)
                    continue
                if piece.start < hole.start:
                    next_pieces.append(Interval(piece.start, hole.start))
                if hole.end < piece.end:
                    next_pieces.append(Interval(hole.end, piece.end))
            pieces = next_pieces
        result.extend(pieces)
    return result


def _local(moment: datetime, time_zone: str) -> str:
    local = moment.astimezone(ZoneInfo(time_zone))
    return f"{local:%H:%M %Z}"  # a time someone reads names its zone


def refusals(
    request: Request,
    *,
    held: Sequence[Held],
    clinician_hours: Sequence[Interval] | None,
    nurse_hours: Sequence[Interval],
    patients_per_nurse: int,
    time_zone: str,
) -> list[Refusal]:
    """Every reason the requested appointment cannot be booked; empty when it fits.

    `clinician_hours` is None when the request names no clinician.
    """
    found: list[Refusal] = []
    start, end = request.start, request.end
    if end <= start:
        return [Refusal("bad_times", "starts_at", "The appointment must end after it starts.")]
    if request.needs_chair:
        if request.chair_id is None:
            found.append(Refusal("chair_missing", "chair", "This kind of visit needs a chair."))
        else:
            if request.needed_capability and (
                request.needed_capability not in request.chair_capabilities
            ):
                found.append(
                    Refusal("chair_unfit", "chair", "This chair is not set up for this visit.")
                )
            if any(
                h.chair_id == request.chair_id and Interval(h.start, h.end).overlaps(start, end)
                for h in held
            ):
                found.append(Refusal("chair_busy", "chair", "This chair is booked at that time."))
    if request.clinician_id is not None:
        if not any(i.covers(start, end) for i in clinician_hours or ()):
            found.append(
                Refusal(
                    "clinician_off",
                    "clinician",
                    "The clinician is not working at that time (hours or time off).",
                )
            )
        if any(
            h.clinician_id == request.clinician_id and Interval(h.start, h.end).overlaps(start, end)
            for h in held
        ):
            found.append(
                Refusal("clinician_busy", "clinician", "The clinician has another appointment.")
            )
    if request.monitored:
        worst = ratio_exceeded_at(
            start, end, held=held, nurse_hours=nurse_hours, patients_per_nurse=patients_per_nurse
        )
        if worst is not None:
            moment, patients, nurses = worst
            found.append(
                Refusal(
                    "ratio",
                    "starts_at",
                    f"At {_local(moment, time_zone)} {patients} patient(s) would be in monitoring "
                    f"with {nurses} nurse(s) on duty; the clinic allows {patients_per_nurse} "
                    "per nurse.",
                )
            )
    return found


def ratio_exceeded_at(
    start: datetime,
    end: datetime,
    *,
    held: Sequence[Held],
    nurse_hours: Sequence[Interval],
    patients_per_nurse: int,
) -> tuple[datetime, int, int] | None:
    """The first moment in [start, end) where one more monitored patient would exceed the ratio:
    (moment, patients including the new one, nurses on duty); None when it never does.

    Counts only change at a boundary, so checking the start and every boundary inside suffices.
    """
    monitored = [h for h in held if h.monitored and h.start < end and start < h.end]
    nurses = [n for n in nurse_hours if n.start < end and start < n.end]
    moments = {start}
    spans: list[Held | Interval] = [*monitored, *nurses]
    for item in spans:
        for boundary in (item.start, item.end):
            if start < boundary < end:
                moments.add(boundary)
    for moment in sorted(moments):
        patients = 1 + sum(1 for h in monitored if h.start <= moment < h.end)
        on_duty = sum(1 for n in nurses if n.start <= moment < n.end)
        if patients > on_duty * patients_per_nurse:
            return moment, patients, on_duty
    return None
