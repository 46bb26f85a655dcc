"""`ketaclinic report progress|clinic --username USER ...`: draw a PDF report in the terminal.

The report is requested and audited exactly as the screen and the API request it, then drawn
here by the same code the background worker runs, with a progress bar that names each step
(reading the records, drawing the charts, laying out the pages, writing the PDF). The PDF lands
under var/reports/<id>/ and, with --output, is copied there too.
"""

from __future__ import annotations

import shutil
from typing import Any

from django.core.management.base import BaseCommand, CommandError
from django_scopes import scope
from pydantic import ValidationError
from tqdm import tqdm

from ketaclinic.accounts.actor import Actor
from ketaclinic.accounts.command_line import cli_actor
from ketaclinic.core.errors import DomainError
from ketaclinic.outcomes import services
from ketaclinic.outcomes.filters import CohortFilters
from ketaclinic.outcomes.management.commands.export import FILTER_OPTIONS


class Command(BaseCommand):
    help = "Draw a PDF report: 'progress' (a patient's, --patient) or 'clinic' (a cohort's)."

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("kind", choices=["progress", "clinic"])
        parser.add_argument("--username", required=True, help="who the report is drawn for")
        parser.add_argument("--patient", default="", help="progress: the patient's id or MRN")
        parser.add_argument("--audience", default="patient", choices=["patient", "clinician"])
        parser.add_argument("--output", default="", help="also copy the PDF to this path")
        parser.add_argument("--no-progress", action="store_true")
        for name in (*FILTER_OPTIONS, "group_by"):
            parser.add_argument(f"--{name.replace('_', '-')}", dest=name, default=None)

    def handle(self, *args: Any, **options: Any) -> None:
        actor = cli_actor(options["username"])
        with scope(organization=actor.organization):
            try:
                job = self._request(actor, options)
            except ValidationError as error:
                first = error.errors()[0]
                raise CommandError(f"{first['loc'][0]}: {first['msg']}") from None
            except DomainError as error:
                raise CommandError(error.detail) from None
            with tqdm(
                total=100, unit="%", disable=options["no_progress"], file=self.stderr._out
            ) as bar:

                def advance(percent: int, step: str) -> None:
                    bar.set_description(step)
                    bar.update(percent - bar.n)

                job = services.report_run(job=job, on_progress=advance)
        if job.status != "done":
            raise CommandError(f"report {job.public_id} failed: {job.error}")
        path = services.report_directory(job) / job.file_name
        if options["output"]:
            shutil.copyfile(path, options["output"])
            path = options["output"]
        self.stdout.write(f"report {job.public_id}: {job.pages} pages, {job.bytes} bytes, {path}")

    def _request(self, actor: Actor, options: dict[str, Any]) -> Any:
        if options["kind"] == "clinic":
            names = (*FILTER_OPTIONS, "group_by")
            filters = CohortFilters(
                **{k: options[k] for k in names if options.get(k) not in (None, "")}
            )
            return services.report_request(
                actor=actor, kind="clinic", filters=filters, run_in_background=False
            )
        return services.report_request(
            actor=actor,
            kind="progress",
            patient_id=self._patient_id(options["patient"]),
            audience=options["audience"],
            run_in_background=False,
        )

    def _patient_id(self, given: str) -> str:
        """A patient's public id as given, or the one of the patient with that MRN."""
        from ketaclinic.patients.models import Patient

        if not given:
            return ""
        found = Patient.objects.filter(mrn=given).values_list("public_id", flat=True).first()
        return str(found) if found else given
