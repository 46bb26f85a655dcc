from datetime import timedelta

from django.apps import AppConfig


class SchedulingConfig(AppConfig):
    name = "ketaclinic.scheduling"
    label = "scheduling"
    verbose_name = "Scheduling"

    def ready(self) -> None:
        from ketaclinic.core.periodic import PeriodicJob, register
        from ketaclinic.scheduling import tasks

        # Reminders go out once, 24 hours ahead; a few minutes' lateness does not matter.
        register(
            PeriodicJob("scheduling.reminders.send", timedelta(minutes=5), tasks.send_reminders)
        )
