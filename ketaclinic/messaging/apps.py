from datetime import timedelta

from django.apps import AppConfig


class MessagingConfig(AppConfig):
    name = "ketaclinic.messaging"
    label = "messaging"
    verbose_name = "Messaging"

    def ready(self) -> None:
        from ketaclinic.core.periodic import PeriodicJob, register
        from ketaclinic.messaging import tasks

        # Every worker round (5 s by default): a message issued now must arrive within 30 s, and
        # a retry whose back-off has passed goes out on the next round.
        register(PeriodicJob("messaging.outbox.deliver", timedelta(seconds=5), tasks.deliver_due))
