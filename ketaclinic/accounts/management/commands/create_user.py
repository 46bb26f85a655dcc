from django.core.management.base import BaseCommand, CommandError, CommandParser

from ketaclinic.accounts.management.commands.create_organization import _describe
from ketaclinic.accounts.models import Organization
from ketaclinic.accounts.roles import Role
from ketaclinic.accounts.services import totp_device_create, user_create
from ketaclinic.core.errors import DomainError


class Command(BaseCommand):
    help = "Create a staff user with a role in an organization, and enroll a TOTP authenticator."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--organization", required=True, help="Organization id (UUID)")
        parser.add_argument("--username", required=True)
        parser.add_argument("--role", required=True, choices=[r.value for r in Role])
        parser.add_argument("--password", help="Omit to generate a strong one (printed once)")
        parser.add_argument("--first-name", default="")
        parser.add_argument("--last-name", default="")
        parser.add_argument("--email", default="")

    def handle(self, *args: object, **options: str) -> None:
        key = _uuid(options["organization"])
        organization = Organization.objects.filter(public_id=key).first() if key else None
        if organization is None:
            raise CommandError(f"No organization with id {options['organization']}")
        try:
            user, membership, password = user_create(
                organization=organization,
                username=options["username"],
                role=options["role"],
                password=options.get("password"),
                first_name=options["first_name"],
                last_name=options["last_name"],
                email=options["email"],
            )
        except DomainError as error:
            raise CommandError(_describe(error)) from None
        device = totp_device_create(user=user)
        self.stdout.write(f"user {user.username} ({membership.role}) in {organization.name}")
        if not options.get("password"):
            self.stdout.write(f"password: {password}")
        self.stdout.write(f"authenticator: {device.config_url}")


def _uuid(value: str) -> str | None:
    import uuid

    try:
        return str(uuid.UUID(value))
    except ValueError:
        return None
