"""Background work for measures (django-tasks): alert escalation and scheduled measure links.

Run `alerts_escalate_overdue_task` and `schedules_send_due_task` every minute or so from the
database task worker (or cron: `manage.py shell -c ...`); each is idempotent.
"""

from __future__ import annotations

import logging

from django_tasks import task

from ketaclinic.core import clock
from ketaclinic.measures import services

log = logging.getLogger(__name__)


@task()
def alerts_escalate_overdue_task() -> int:
    return services.alerts_escalate_overdue(now=clock.now())


@task()
def schedules_send_due_task() -> int:
    issued = services.schedules_send_due(now=clock.now())
    for item in issued:
        measure_reminder_deliver.enqueue(str(item.link.public_id))
    return len(issued)


@task()
def measure_reminder_deliver(link_public_id: str) -> None:
    """Deliver a reminder for a new link. No SMS/e-mail channel exists yet: this records that a
    reminder is owed (the link URL is never logged; staff re-issue a link from the chart)."""
    log.info("measure reminder due for link %s (no delivery channel configured)", link_public_id)
