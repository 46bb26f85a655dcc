from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser

from ketaclinic.accounts.management.commands._tokens import cli_actor, in_scope
from ketaclinic.accounts.management.commands.create_organization import _describe
from ketaclinic.accounts.services import token_create
from ketaclinic.core.errors import DomainError


class Command(BaseCommand):
    help = (
        "Issue an API bearer token for a user; prints the token (shown only once). Issuing for "
        "someone else (--as another user) needs that user's tokens.manage capability."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--username", required=True, help="Whose token it is")
        parser.add_argument(
            "--as",
            dest="as_user",
            default=None,
            help="Who issues it (default: the owner); checked for the capability",
        )
        parser.add_argument(
            "--days",
            type=int,
            default=None,
            help=f"Lifetime in days (default {settings.API_TOKEN_DEFAULT_DAYS}, "
            f"at most {settings.API_TOKEN_MAX_DAYS})",
        )
        parser.add_argument("--name", default="", help="A label to recognise the token by")

    def handle(self, *args: object, **options: object) -> None:
        username = str(options["username"])
        actor = cli_actor(str(options["as_user"] or username))
        try:
            with in_scope(actor):
                token, secret = token_create(
                    username=username,
                    days=options["days"],  # type: ignore[arg-type]
                    name=str(options["name"]),
                    actor=actor,
                )
        except DomainError as error:
            raise CommandError(_describe(error)) from None
        self.stderr.write(f"expires {token.expires_at:%Y-%m-%d %H:%M} UTC")
        self.stdout.write(secret)
