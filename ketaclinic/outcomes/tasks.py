"""Background work for outcomes (django-tasks): data exports run in `ketaclinic worker`."""

from __future__ import annotations

from django_scopes import scopes_disabled
from django_tasks import task

from ketaclinic.outcomes import services
from ketaclinic.outcomes.models import DataExport


@task()
def data_export_task(export_public_id: str) -> str:
    with scopes_disabled():
        export = DataExport.objects.select_related("organization", "requested_by").get(
            public_id=export_public_id
        )
    return services.data_export_run(export=export).status
