"""Background delivery (django-tasks): a message is delivered right after its producer commits
(`message_deliver_task`), and the periodic outbox job retries whatever is due."""

from __future__ import annotations

from django_scopes import scope, scopes_disabled
from django_tasks import task

from ketaclinic.core import clock
from ketaclinic.messaging import services
from ketaclinic.messaging.models import Message


def deliver_due() -> int:
    result = services.outbox_deliver_due(now=clock.now())
    return result.sent + result.failed + result.retrying + result.suppressed


@task()
def message_deliver_task(message_public_id: str) -> str:
    with scopes_disabled():
        message = (
            Message.objects.select_related("organization", "patient")
            .filter(public_id=message_public_id)
            .first()
        )
    if message is None:
        return ""
    with scope(organization=message.organization):
        return services.message_deliver(message=message, now=clock.now())
