"""Background work for sessions (django-tasks): tell the prescriber about an escalated AE."""

from __future__ import annotations

import logging

from django_tasks import task

log = logging.getLogger(__name__)


@task()
def adverse_event_escalate(adverse_event_public_id: str) -> None:
    """Escalate a grade >= 3, serious or always-escalated adverse event (ae-escalation@1).

    No paging channel exists yet: the event is flagged on the floor board and the flowsheet, and
    this task records that a prescriber notification is owed.
    """
    log.warning("adverse event %s escalated to the prescriber", adverse_event_public_id)
