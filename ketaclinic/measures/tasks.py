"""Background work for measures (django-tasks): alert escalation and scheduled measure links.

The worker (`ketaclinic worker`, started by `ketaclinic serve`) runs `escalate_overdue_alerts`
and `send_due_schedules` every minute (registered in MeasuresConfig.ready); each is idempotent.
"""

from __future__ import annotations

import logging

from django_tasks import task

from ketaclinic.core import clock
from ketaclinic.measures import services

log = logging.getLogger(__name__)


def escalate_overdue_alerts() -> int:
    return services.alerts_escalate_overdue(now=clock.now())


def send_due_schedules() -> int:
    # Each issued link is sent to the patient through messaging, in the issuing transaction.
    return len(services.schedules_send_due(now=clock.now()))


@task()
def alerts_escalate_overdue_task() -> int:
    return escalate_overdue_alerts()


@task()
def schedules_send_due_task() -> int:
    return send_due_schedules()


@task()
def measure_reminder_deliver(link_public_id: str) -> None:
    """Kept for tasks queued before messaging existed: links are now sent by messaging when they
    are issued (the link URL is never logged; staff re-issue a link from the chart)."""
    log.info("measure reminder due for link %s (no delivery channel configured)", link_public_id)
