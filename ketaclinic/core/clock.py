"""The one place the shell reads the time; pure code receives `now` as an argument."""

from datetime import date, datetime

from django.utils import timezone


def now() -> datetime:
    return timezone.now()


def today_in(tz_name: str) -> date:
    from zoneinfo import ZoneInfo

    return timezone.now().astimezone(ZoneInfo(tz_name)).date()
