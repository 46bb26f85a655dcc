from datetime import timedelta

from django.apps import AppConfig
from django.conf import settings


class CoreConfig(AppConfig):
    name = "ketaclinic.core"
    label = "core"

    def ready(self) -> None:
        from django.db.models.signals import post_migrate

        from ketaclinic.core import planner, request_signals
        from ketaclinic.core.periodic import PeriodicJob, register

        post_migrate.connect(planner.after_migrate, sender=self, dispatch_uid="core.planner")
        request_signals.drop_idle_receivers(
            debug=settings.DEBUG, databases=settings.DATABASES, caches=settings.CACHES
        )
        register(
            PeriodicJob(
                "core.planner_statistics",
                timedelta(hours=settings.PLANNER_STATISTICS_EVERY_HOURS),
                planner.periodic_refresh,
            )
        )
        if settings.BACKUP_DIR:
            from ketaclinic.core import backup
            from ketaclinic.core.periodic import PeriodicJob, register

            register(
                PeriodicJob(
                    "core.backup",
                    timedelta(hours=settings.BACKUP_EVERY_HOURS),
                    backup.backup_scheduled,
                )
            )
