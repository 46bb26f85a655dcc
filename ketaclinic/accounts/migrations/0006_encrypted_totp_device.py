"""Authenticator secrets move from django-otp's clear-text table into EncryptedTOTPDevice,
encrypted with TOTP_ENCRYPTION_KEYS (ketaclinic/accounts/totp.py); the clear-text rows are
deleted in the same migration, so no secret is left readable in the database."""

import django.db.models.deletion
from django.conf import settings
from django.db import migrations, models

COPIED = (
    "user_id", "name", "confirmed", "throttling_failure_timestamp", "throttling_failure_count",
    "created_at", "last_used_at", "step", "t0", "digits", "tolerance", "drift", "last_t",
)


def encrypt_existing_secrets(apps, schema_editor):
    from ketaclinic.accounts.totp import seal

    Clear = apps.get_model("otp_totp", "TOTPDevice")
    Sealed = apps.get_model("accounts", "EncryptedTOTPDevice")
    for device in Clear.objects.all().iterator():
        Sealed.objects.create(
            sealed_key=seal(device.key), **{name: getattr(device, name) for name in COPIED}
        )
    Clear.objects.all().delete()


def decrypt_back(apps, schema_editor):
    from ketaclinic.accounts.totp import unseal

    Clear = apps.get_model("otp_totp", "TOTPDevice")
    Sealed = apps.get_model("accounts", "EncryptedTOTPDevice")
    for device in Sealed.objects.all().iterator():
        Clear.objects.create(
            key=unseal(device.sealed_key), **{name: getattr(device, name) for name in COPIED}
        )


class Migration(migrations.Migration):

    dependencies = [
        ('accounts', '0005_api_token_public_id'),
        ('otp_totp', '0003_add_timestamps'),
    ]

    operations = [
        migrations.CreateModel(
            name='EncryptedTOTPDevice',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('name', models.CharField(help_text='The human-readable name of this device.', max_length=64)),
                ('confirmed', models.BooleanField(default=True, help_text='Is this device ready for use?')),
                ('throttling_failure_timestamp', models.DateTimeField(blank=True, default=None, help_text='A timestamp of the last failed verification attempt. Null if last attempt succeeded.', null=True)),
                ('throttling_failure_count', models.PositiveIntegerField(default=0, help_text='Number of successive failed attempts.')),
                ('created_at', models.DateTimeField(auto_now_add=True, help_text='The date and time when this device was initially created in the system.', null=True)),
                ('last_used_at', models.DateTimeField(blank=True, help_text='The most recent date and time this device was used.', null=True)),
                ('sealed_key', models.TextField()),
                ('step', models.PositiveSmallIntegerField(default=30)),
                ('t0', models.BigIntegerField(default=0)),
                ('digits', models.PositiveSmallIntegerField(choices=[(6, 6), (8, 8)], default=6)),
                ('tolerance', models.PositiveSmallIntegerField(default=1)),
                ('drift', models.SmallIntegerField(default=0)),
                ('last_t', models.BigIntegerField(default=-1)),
                ('user', models.ForeignKey(help_text='The user that this device belongs to.', on_delete=django.db.models.deletion.CASCADE, to=settings.AUTH_USER_MODEL)),
            ],
            options={
                'verbose_name': 'TOTP device',
                'abstract': False,
            },
        ),
        migrations.RunPython(encrypt_existing_secrets, decrypt_back),
    ]
