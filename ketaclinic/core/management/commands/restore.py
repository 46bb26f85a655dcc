"""`ketaclinic restore FILE`: load a backup into an empty database, then prove it whole.

After loading: the row count of every table must equal the backup's manifest, and the audit
trail's and the controlled-substance ledger's hash chains must verify (audit-verify,
ledger-verify). Any failure exits non-zero."""

from __future__ import annotations

import tempfile
import time
from pathlib import Path
from typing import Any

from django.core.management import call_command
from django.core.management.base import BaseCommand, CommandError, CommandParser
from tqdm import tqdm

from ketaclinic.core.backup import (
    BackupError,
    backup_extract,
    count_differences,
    restore_payload,
    row_counts,
)


class Command(BaseCommand):
    help = "Restore an encrypted backup into an empty database and verify it."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("file", type=Path)
        parser.add_argument(
            "--force", action="store_true", help="replace a database that is not empty"
        )

    def handle(self, *args: Any, **options: Any) -> None:
        path: Path = options["file"]
        if not path.is_file():
            raise CommandError(f"No backup file at {path}.")
        started = time.monotonic()
        with tempfile.TemporaryDirectory(prefix="ketaclinic-restore-") as work:
            payload = Path(work) / "payload"
            try:
                with tqdm(unit="B", unit_scale=True, desc="decrypt", disable=None) as bar:
                    manifest = backup_extract(path, payload, progress=bar.update)
                restore_payload(manifest, payload, force=options["force"])
            except BackupError as exc:
                raise CommandError(str(exc)) from None
        differences = count_differences(manifest.row_counts, row_counts())
        if differences:
            raise CommandError("Row counts differ after restore:\n" + "\n".join(differences))
        self.stdout.write(f"Row counts: {len(manifest.row_counts)} tables match the backup")
        call_command("audit_verify", stdout=self.stdout, stderr=self.stderr)
        call_command("ledger_verify", stdout=self.stdout, stderr=self.stderr)
        self.stdout.write(
            f"OK: restored {path} (made {manifest.created_at}) in "
            f"{time.monotonic() - started:.1f} s"
        )
