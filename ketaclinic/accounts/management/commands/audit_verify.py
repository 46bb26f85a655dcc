from django.core.management.base import BaseCommand, CommandError
from tqdm import tqdm

from ketaclinic.accounts.audit import audit_chain_verify
from ketaclinic.accounts.models import AuditEvent


class Command(BaseCommand):
    help = "Recompute the audit trail's hash chains; report the first broken link of each."

    def handle(self, *args: object, **options: object) -> None:
        total = AuditEvent.objects.count()
        with tqdm(total=total, unit="event", desc="audit-verify", disable=None) as bar:
            report = audit_chain_verify(progress=bar)
        for chain_break in report.breaks:
            self.stderr.write(
                f"BROKEN chain {chain_break.chain_key} at seq {chain_break.seq} "
                f"(event id {chain_break.event_id}): {chain_break.reason}"
            )
        if not report.ok:
            raise CommandError(f"{len(report.breaks)} broken chain(s) among {report.chains}")
        self.stdout.write(f"OK: {report.events} events in {report.chains} chain(s) verified")
