from typing import Any

from django.db import migrations, models

RANK = {"warning": 1, "critical": 2}


def worst_from_flowsheets(apps: Any, schema_editor: Any) -> None:
    """Each session's worst post-dose blood pressure above the alert limits, from the rows it
    already holds (the rule of sessions.services.monitoring._bp_worst, as of this migration)."""
    vitals = apps.get_model("treatment_sessions", "VitalsEntry")
    sessions = apps.get_model("treatment_sessions", "TreatmentSession")
    worst: dict[int, int] = {}
    rows = vitals.objects.filter(predose=False, severity__in=list(RANK)).values_list(
        "session_id", "alerts"
    )
    for session_id, alerts in rows.iterator(chunk_size=2000):
        for alert in alerts or []:
            if (
                alert.get("measure") in ("systolic", "diastolic")
                and alert.get("direction") == "above"
            ):
                rank = RANK.get(alert.get("severity", "warning"), 1)
                worst[session_id] = max(worst.get(session_id, 0), rank)
    for rank in sorted(set(worst.values())):
        keys = [key for key, value in worst.items() if value == rank]
        for start in range(0, len(keys), 500):  # within every engine's limit of parameters
            sessions.objects.filter(pk__in=keys[start : start + 500]).update(worst_bp_rank=rank)


class Migration(migrations.Migration):
    dependencies = [
        ("treatment_sessions", "0002_floor_stops"),
    ]

    operations = [
        migrations.AddField(
            model_name="treatmentsession",
            name="worst_bp_rank",
            field=models.PositiveSmallIntegerField(default=0),
        ),
        migrations.RunPython(worst_from_flowsheets, migrations.RunPython.noop),
    ]
