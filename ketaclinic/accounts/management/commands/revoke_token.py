from django.core.management.base import BaseCommand, CommandError, CommandParser

from ketaclinic.accounts.management.commands._tokens import cli_actor, in_scope
from ketaclinic.accounts.management.commands.create_organization import _describe
from ketaclinic.accounts.services import token_get, token_revoke
from ketaclinic.core.errors import DomainError


class Command(BaseCommand):
    help = (
        "Revoke an API token at once (by the id list-tokens shows). Revoking another user's "
        "token needs tokens.manage."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("token_id", help="The token's id, as list-tokens shows it")
        parser.add_argument("--username", required=True, help="Who revokes it")

    def handle(self, *args: object, **options: object) -> None:
        actor = cli_actor(str(options["username"]))
        try:
            with in_scope(actor):
                token = token_get(actor=actor, public_id=options["token_id"])
                token_revoke(token=token, actor=actor)
        except DomainError as error:
            raise CommandError(_describe(error)) from None
        self.stdout.write(f"revoked {token.prefix}… of {token.membership.user.username}")
