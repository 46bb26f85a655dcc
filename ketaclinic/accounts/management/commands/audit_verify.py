from django.core.management.base import BaseCommand, CommandError
from tqdm import tqdm

from ketaclinic.accounts.audit import audit_chain_verify
from ketaclinic.accounts.models import AuditEvent


class Command(BaseCommand):
    help = (
        "Recompute the audit trail's hash chains; report the first broken link of each, and the "
        "events the worker has not sealed into a chain yet."
    )

    def handle(self, *args: object, **options: object) -> None:
        total = AuditEvent.objects.filter(seq__isnull=False).count()
        with tqdm(total=total, unit="event", desc="audit-verify", disable=None) as bar:
            report = audit_chain_verify(progress=bar)
        for chain_break in report.breaks:
            self.stderr.write(
                f"BROKEN chain {chain_break.chain_key} at seq {chain_break.seq} "
                f"(event id {chain_break.event_id}): {chain_break.reason}"
            )
        if report.unsealed:
            self.stdout.write(
                f"UNSEALED: {report.unsealed} event(s) not yet sealed into a chain (oldest "
                f"written {report.oldest_unsealed_at:%Y-%m-%d %H:%M:%S} UTC); the worker seals "
                "them within seconds, and they carry no tamper evidence until then"
            )
        if not report.ok:
            raise CommandError(f"{len(report.breaks)} broken chain(s) among {report.chains}")
        self.stdout.write(f"OK: {report.events} events in {report.chains} chain(s) verified")
