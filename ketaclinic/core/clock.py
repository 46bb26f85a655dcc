"""The one place the shell reads the time; pure code receives `now` as an argument.

`replaying(moment)` makes `now()` answer `moment` for the code inside it. Only the demo uses it,
to record a clinic's past through the same services (and their rules about time) as a real day.
"""

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from datetime import date, datetime

from django.utils import timezone

_replayed: ContextVar[datetime | None] = ContextVar("replayed_now", default=None)


def now() -> datetime:
    return _replayed.get() or timezone.now()


def today_in(tz_name: str) -> date:
    from zoneinfo import ZoneInfo

    return now().astimezone(ZoneInfo(tz_name)).date()


@contextmanager
def replaying(moment: datetime) -> Iterator[None]:
    if timezone.is_naive(moment):
        raise ValueError("replay an aware (UTC) moment, not a naive one")
    token = _replayed.set(moment)
    try:
        yield
    finally:
        _replayed.reset(token)
