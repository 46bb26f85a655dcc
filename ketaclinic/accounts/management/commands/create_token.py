from django.core.management.base import BaseCommand, CommandError, CommandParser

from ketaclinic.accounts.management.commands.create_organization import _describe
from ketaclinic.accounts.services import token_create
from ketaclinic.core.errors import DomainError


class Command(BaseCommand):
    help = "Issue an API bearer token for a user; prints the token (shown only once)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--username", required=True)
        parser.add_argument("--days", type=int, default=None, help="Lifetime in days (default 90)")
        parser.add_argument("--name", default="", help="A label to recognise the token by")

    def handle(self, *args: object, **options: object) -> None:
        try:
            _, secret = token_create(
                username=str(options["username"]),
                days=options["days"],  # type: ignore[arg-type]
                name=str(options["name"]),
            )
        except DomainError as error:
            raise CommandError(_describe(error)) from None
        self.stdout.write(secret)
