from django.core.management.base import BaseCommand, CommandError, CommandParser

from ketaclinic.accounts.management.commands._tokens import cli_actor, in_scope
from ketaclinic.accounts.management.commands.create_organization import _describe
from ketaclinic.accounts.services import token_list
from ketaclinic.core import clock
from ketaclinic.core.errors import DomainError


class Command(BaseCommand):
    help = (
        "List a user's API tokens (id, owner, name, state, expiry; never the secret). "
        "--all lists the organization's, which needs tokens.manage."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--username", required=True, help="Who is asking")
        parser.add_argument("--all", action="store_true", help="Every token of the organization")

    def handle(self, *args: object, **options: object) -> None:
        actor = cli_actor(str(options["username"]))
        now = clock.now()
        try:
            with in_scope(actor):
                tokens = token_list(actor=actor, everyone=bool(options["all"]))
        except DomainError as error:
            raise CommandError(_describe(error)) from None
        for token in tokens:
            self.stdout.write(
                "\t".join(
                    [
                        str(token.public_id),
                        token.membership.user.username,
                        token.prefix + "…",
                        token.name or "-",
                        token.state_at(now),
                        f"expires {token.expires_at:%Y-%m-%d %H:%M} UTC",
                    ]
                )
            )
