"""Background work for scheduling: appointment reminders (registered in SchedulingConfig)."""

from __future__ import annotations

from ketaclinic.core import clock
from ketaclinic.scheduling import services


def send_reminders() -> int:
    return services.reminders_send_due(now=clock.now())
