from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from ketaclinic.accounts.services import organization_create
from ketaclinic.core.errors import DomainError


class Command(BaseCommand):
    help = "Create an organization (tenant) with one clinic; prints the organization's id."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("name")
        parser.add_argument("--clinic", default="", help="Name of its first clinic (default: NAME)")
        parser.add_argument("--time-zone", default="UTC", help="IANA time zone of that clinic")
        parser.add_argument(
            "--chairs",
            type=int,
            default=0,
            help="Treatment chairs to create, each able to host every route (default 0: add them "
            "on the setup screen with what each can host)",
        )

    def handle(self, *args: object, **options: Any) -> None:
        try:
            organization = organization_create(
                name=options["name"],
                clinic_name=options["clinic"] or options["name"],
                time_zone=options["time_zone"],
                chairs=int(options["chairs"]),
            )
        except DomainError as error:
            raise CommandError(_describe(error)) from None
        self.stdout.write(str(organization.public_id))


def _describe(error: DomainError) -> str:
    if not error.errors:
        return error.detail
    return error.detail + " " + "; ".join(f"{e.field}: {e.message}" for e in error.errors)
