from datetime import timedelta

from django.apps import AppConfig


class OutcomesConfig(AppConfig):
    name = "ketaclinic.outcomes"
    label = "outcomes"
    verbose_name = "Outcomes"

    def ready(self) -> None:
        from ketaclinic.core.periodic import PeriodicJob, register
        from ketaclinic.outcomes.file_retention import generated_files_expire

        # Hourly: the keep period is set in hours (GENERATED_FILES_KEEP_HOURS).
        register(
            PeriodicJob(
                "outcomes.generated_files.expire", timedelta(hours=1), generated_files_expire
            )
        )
