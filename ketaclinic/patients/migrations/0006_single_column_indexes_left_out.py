import django.db.models.deletion
from django.db import migrations, models

from ketaclinic.core.index_migrations import drop_field_indexes


class Migration(migrations.Migration):
    dependencies = [
        ("accounts", "0010_single_column_indexes_left_out"),
        ("patients", "0005_care_team_and_break_glass"),
    ]

    operations = [
        # The indexes these columns had alone: every lookup by them goes through a composite
        # index that starts with the same column (the models say which). Dropped in place,
        # not by copying each table (core.index_migrations).
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.AlterField(
                    model_name="bodyheight",
                    name="external_id",
                    field=models.CharField(blank=True, max_length=200),
                ),
                migrations.AlterField(
                    model_name="bodyheight",
                    name="organization",
                    field=models.ForeignKey(
                        db_index=False,
                        on_delete=django.db.models.deletion.PROTECT,
                        related_name="+",
                        to="accounts.organization",
                    ),
                ),
                migrations.AlterField(
                    model_name="bodyheight",
                    name="patient",
                    field=models.ForeignKey(
                        db_index=False,
                        on_delete=django.db.models.deletion.PROTECT,
                        related_name="+",
                        to="patients.patient",
                    ),
                ),
                migrations.AlterField(
                    model_name="bodyweight",
                    name="external_id",
                    field=models.CharField(blank=True, max_length=200),
                ),
                migrations.AlterField(
                    model_name="bodyweight",
                    name="organization",
                    field=models.ForeignKey(
                        db_index=False,
                        on_delete=django.db.models.deletion.PROTECT,
                        related_name="+",
                        to="accounts.organization",
                    ),
                ),
                migrations.AlterField(
                    model_name="bodyweight",
                    name="patient",
                    field=models.ForeignKey(
                        db_index=False,
                        on_delete=django.db.models.deletion.PROTECT,
                        related_name="+",
                        to="patients.patient",
                    ),
                ),
                migrations.AlterField(
                    model_name="vitalsign",
                    name="external_id",
                    field=models.CharField(blank=True, max_length=200),
                ),
                migrations.AlterField(
                    model_name="vitalsign",
                    name="organization",
                    field=models.ForeignKey(
                        db_index=False,
                        on_delete=django.db.models.deletion.PROTECT,
                        related_name="+",
                        to="accounts.organization",
                    ),
                ),
                migrations.AlterField(
                    model_name="vitalsign",
                    name="patient",
                    field=models.ForeignKey(
                        db_index=False,
                        on_delete=django.db.models.deletion.PROTECT,
                        related_name="+",
                        to="patients.patient",
                    ),
                ),
            ],
            database_operations=[
                drop_field_indexes(
                    "patients",
                    {
                        "bodyheight": ("external_id", "organization", "patient"),
                        "bodyweight": ("external_id", "organization", "patient"),
                        "vitalsign": ("external_id", "organization", "patient"),
                    },
                )
            ],
        ),
    ]
