from django.core.management.base import BaseCommand
from django.db import transaction
from tqdm import tqdm

from ketaclinic.accounts.audit import audit_record
from ketaclinic.accounts.models import EncryptedTOTPDevice
from ketaclinic.accounts.totp import reseal


class Command(BaseCommand):
    help = (
        "Re-encrypt every staff authenticator secret under the first key of "
        "TOTP_ENCRYPTION_KEYS. Rotate a key: put the new key first and keep the old one after "
        "it, run this, then drop the old key."
    )

    def handle(self, *args: object, **options: object) -> None:
        devices = EncryptedTOTPDevice.objects.only("pk", "sealed_key").order_by("pk")
        total = devices.count()
        with transaction.atomic():
            for device in tqdm(devices.iterator(), total=total, unit="secret", disable=None):
                EncryptedTOTPDevice.objects.filter(pk=device.pk).update(
                    sealed_key=reseal(device.sealed_key)
                )
            audit_record(
                actor=None,
                channel="cli",
                action="accounts.totp.keys_rotated",
                detail={"count": total},
            )
        self.stdout.write(f"re-encrypted {total} authenticator secrets under the first key")
