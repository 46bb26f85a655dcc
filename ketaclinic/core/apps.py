from datetime import timedelta

from django.apps import AppConfig
from django.conf import settings


class CoreConfig(AppConfig):
    name = "ketaclinic.core"
    label = "core"

    def ready(self) -> None:
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
