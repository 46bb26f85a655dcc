import django.db.models.deletion
from django.db import migrations, models

from ketaclinic.core.index_migrations import drop_field_indexes


class Migration(migrations.Migration):
    dependencies = [
        ("accounts", "0009_merge_20261206_1429"),
    ]

    operations = [
        # The indexes these columns had alone: every lookup by them goes through a composite
        # index that starts with the same column (the models say which). Dropped in place,
        # not by copying each table (core.index_migrations).
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.AlterField(
                    model_name="auditevent",
                    name="organization",
                    field=models.ForeignKey(
                        blank=True,
                        db_index=False,
                        null=True,
                        on_delete=django.db.models.deletion.PROTECT,
                        related_name="+",
                        to="accounts.organization",
                    ),
                ),
            ],
            database_operations=[
                drop_field_indexes(
                    "accounts",
                    {
                        "auditevent": ("organization",),
                    },
                )
            ],
        ),
    ]
