"""Stored times (UTC) shown in the active time zone, which the middleware sets to the clinic's.

Thin Django shell over ketaclinic.core.formatting.local_time: code that builds text for people
outside a template (form choices, messages, CSV cells) calls these, templates use |clock/|stamp.
"""

from __future__ import annotations

from datetime import date, datetime
from zoneinfo import ZoneInfo

from django.utils import timezone

from ketaclinic.core.formatting import local_time


def _zone_for(moment: datetime) -> str:
    # A moment already converted to a named zone ({{ x|timezone:"America/Chicago" }}) keeps
    # it; a stored UTC time is shown in the active (clinic) zone.
    if isinstance(moment.tzinfo, ZoneInfo) and moment.tzinfo.key != "UTC":
        return moment.tzinfo.key
    return timezone.get_current_timezone_name()


def _moment(value: object) -> datetime | None:
    if isinstance(value, datetime):
        return value
    if isinstance(value, str) and len(value) >= 16 and value[10:11] == "T":
        try:  # stored JSON (e.g. a discharge check) keeps times as ISO 8601 text
            return datetime.fromisoformat(value)
        except ValueError:
            return None
    return None


def _shown(value: object, *, with_date: bool, seconds: bool = False) -> str:
    if value is None or value == "":
        return ""
    moment = _moment(value)
    if moment is None:
        return value.isoformat() if isinstance(value, date) else str(value)
    if timezone.is_naive(moment):  # never guess a zone for a naive time: show it as it is
        return moment.strftime("%Y-%m-%d %H:%M" if with_date else "%H:%M")
    return local_time(moment, _zone_for(moment), with_date=with_date, seconds=seconds)


def clock(value: object) -> str:
    """The time of day in the clinic's zone, with its abbreviation: "09:00 CST"."""
    return _shown(value, with_date=False)


def stamp(value: object) -> str:
    """Date and time in the clinic's zone, with its abbreviation: "2026-12-06 09:00 CST"."""
    return _shown(value, with_date=True)


def stamp_seconds(value: object) -> str:
    """Date and time to the second in the clinic's zone: "2026-12-06 09:00:05 CST"."""
    return _shown(value, with_date=True, seconds=True)
