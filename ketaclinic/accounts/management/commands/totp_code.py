from django.core.management.base import BaseCommand, CommandError, CommandParser
from django_otp.oath import TOTP

from ketaclinic.accounts.models import EncryptedTOTPDevice


class Command(BaseCommand):
    help = "Print the current authenticator code of a user (for the demo and for operators)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("username")

    def handle(self, *args: object, **options: str) -> None:
        device = EncryptedTOTPDevice.objects.filter(
            user__username=options["username"], confirmed=True
        ).first()
        if device is None:
            raise CommandError(f"{options['username']} has no authenticator enrolled")
        totp = TOTP(device.bin_key, device.step, device.t0, device.digits, device.drift)
        self.stdout.write(f"{totp.token():0{device.digits}d}")
