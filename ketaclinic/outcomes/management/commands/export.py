"""`ketaclinic export research|fhir --username USER ...`: run a data export in the terminal.

The export is requested, logged as a disclosure and run exactly as the API's background job
would run it, with a progress bar; the files land under var/exports/<id>/.
"""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError
from django_scopes import scope
from pydantic import ValidationError
from tqdm import tqdm

from ketaclinic.accounts.actor import Actor
from ketaclinic.accounts.command_line import cli_actor
from ketaclinic.core.errors import DomainError
from ketaclinic.outcomes import services
from ketaclinic.outcomes.deid import DEFAULT_ZIP3_TABLE
from ketaclinic.outcomes.filters import CohortFilters

FILTER_OPTIONS = ("instrument", "route", "protocol", "phase", "condition", "trd", "age_band",
                  "first_dose_from", "first_dose_to", "induction_days")  # fmt: skip


class Command(BaseCommand):
    help = "Export data: 'research' (de-identified, Safe Harbor) or 'fhir' (FHIR Bulk NDJSON)."

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("kind", choices=["research", "fhir"])
        parser.add_argument("--username", required=True, help="who the disclosure is logged as")
        parser.add_argument("--zip3-table", default=DEFAULT_ZIP3_TABLE)
        parser.add_argument("--type", dest="types", default="", help="fhir: _type, comma-separated")
        parser.add_argument("--since", default="", help="fhir: _since (an ISO instant)")
        parser.add_argument("--no-progress", action="store_true")
        for name in FILTER_OPTIONS:
            parser.add_argument(f"--{name.replace('_', '-')}", dest=name, default=None)

    def handle(self, *args: Any, **options: Any) -> None:
        actor = cli_actor(options["username"])
        with scope(organization=actor.organization):
            try:
                export = self._request(actor, options)
            except ValidationError as error:
                raise CommandError(
                    error.errors()[0]["loc"][0].__str__() + ": " + error.errors()[0]["msg"]
                ) from None
            except DomainError as error:
                raise CommandError(error.detail) from None
            with tqdm(
                total=100, unit="%", disable=options["no_progress"], file=self.stderr._out
            ) as bar:

                def advance(percent: int) -> None:
                    bar.update(percent - bar.n)

                export = services.data_export_run(export=export, on_progress=advance)
        if export.status != "done":
            raise CommandError(f"export {export.public_id} failed: {export.error}")
        self.stdout.write(f"export {export.public_id}: {export.patients} patients")
        for file in export.files:
            self.stdout.write(
                f"  {file['name']}: {file.get('rows', '?')} rows, {file['bytes']} bytes"
            )

    def _request(self, actor: Actor, options: dict[str, Any]) -> Any:
        if options["kind"] == "research":
            filters = CohortFilters(
                **{k: options[k] for k in FILTER_OPTIONS if options.get(k) not in (None, "")}
            )
            return services.research_export_request(
                actor=actor,
                filters=filters,
                zip3_table=options["zip3_table"],
                run_in_background=False,
            )
        from ketaclinic.fhir.bulk_export import bulk_export_request

        return bulk_export_request(
            actor=actor,
            level="system",
            types=options["types"],
            since=options["since"],
            run_in_background=False,
        )
