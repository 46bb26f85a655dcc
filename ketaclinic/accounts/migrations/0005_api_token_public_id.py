"""API tokens get a public id, so a token can be named in a URL (list, revoke) without its secret."""

import uuid

from django.db import migrations, models


def give_ids(apps, schema_editor):
    ApiToken = apps.get_model("accounts", "ApiToken")
    for token in ApiToken.objects.filter(public_id__isnull=True).only("pk"):
        ApiToken.objects.filter(pk=token.pk).update(public_id=uuid.uuid4())


class Migration(migrations.Migration):
    dependencies = [("accounts", "0004_setup_on_call_and_role_changes")]

    operations = [
        migrations.AddField(
            model_name="apitoken",
            name="public_id",
            field=models.UUIDField(null=True, editable=False),
        ),
        migrations.RunPython(give_ids, migrations.RunPython.noop),
        migrations.AlterField(
            model_name="apitoken",
            name="public_id",
            field=models.UUIDField(default=uuid.uuid4, unique=True, editable=False),
        ),
    ]
