"""`ketaclinic outcomes-recompute [--organization NAME]`: rewrite the course summaries the outcomes
dashboard adds up, from the chart, with a progress bar.

The services keep the summaries in step as they record scores, doses and dissociation scores;
this is for data written around them (a bulk import, SQL) and after a change of the outcome
rules (summary.SUMMARY_VERSION). The same work runs in the background worker as
`outcomes.tasks.course_summaries_recompute_task`.
"""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError
from tqdm import tqdm

from ketaclinic.accounts.models import Organization
from ketaclinic.outcomes.summary import recompute_course_summaries


class Command(BaseCommand):
    help = "Rewrite the outcomes dashboard's course summaries from the chart."

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("--organization", help="the clinic's name (default: every clinic)")
        parser.add_argument("--no-progress", action="store_true")

    def handle(self, *args: Any, **options: Any) -> None:
        organizations = Organization.objects.order_by("pk")
        if options["organization"]:
            organizations = organizations.filter(name=options["organization"])
            if not organizations.exists():
                raise CommandError(f"No clinic named {options['organization']!r}.")
        for organization in organizations:
            with tqdm(
                total=1,
                desc=organization.name,
                unit="patient",
                disable=options["no_progress"],
                file=self.stderr._out,
            ) as bar:

                def advance(done: int, total: int) -> None:
                    bar.total = total
                    bar.update(done - bar.n)

                rows = recompute_course_summaries(organization, progress=advance)
            self.stdout.write(f"{organization.name}: {rows} course summaries written")
