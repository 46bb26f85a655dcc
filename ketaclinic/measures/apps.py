from datetime import timedelta

from django.apps import AppConfig


class MeasuresConfig(AppConfig):
    name = "ketaclinic.measures"
    label = "measures"
    verbose_name = "Measures"

    def ready(self) -> None:
        from ketaclinic.core.periodic import PeriodicJob, register
        from ketaclinic.measures import tasks

        # Once a minute: an alert's escalation time is set in minutes by clinic policy.
        register(
            PeriodicJob(
                "measures.alerts.escalate", timedelta(minutes=1), tasks.escalate_overdue_alerts
            )
        )
        register(
            PeriodicJob("measures.schedules.send", timedelta(minutes=1), tasks.send_due_schedules)
        )
