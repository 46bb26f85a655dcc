from django.core.management.base import BaseCommand, CommandError
from django_scopes import scopes_disabled
from tqdm import tqdm

from ketaclinic.inventory.models import LedgerRow
from ketaclinic.inventory.selectors import ledger_verify


class Command(BaseCommand):
    help = (
        "Recompute the controlled-substance ledger: every hash link, every running balance and "
        "every container's contents. Exits non-zero naming the first bad row of each chain."
    )

    def handle(self, *args: object, **options: object) -> None:
        with scopes_disabled():
            total = LedgerRow.objects.count()
        with tqdm(total=total, unit="row", desc="ledger-verify", disable=None) as bar:
            report = ledger_verify(progress=bar)
        for problem in report.problems:
            self.stderr.write(
                f"BAD ROW in {problem.organization}: sequence {problem.sequence} "
                f"(id {problem.row_id}): {problem.reason}"
            )
        if not report.ok:
            raise CommandError(f"{len(report.problems)} ledger chain(s) of {report.chains} broken")
        self.stdout.write(f"OK: {report.rows} ledger rows in {report.chains} chain(s) verified")
