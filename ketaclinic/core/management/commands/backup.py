"""`ketaclinic backup --output FILE`: an encrypted, checksummed backup of the whole database."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from cryptography.fernet import Fernet
from django.core.management.base import BaseCommand, CommandError, CommandParser
from tqdm import tqdm

from ketaclinic.core.backup import BackupError, backup_write


class Command(BaseCommand):
    help = "Write an encrypted backup (BACKUP_KEY) of the database, with a manifest and checksum."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--output", type=Path, help="the backup file to write")
        parser.add_argument(
            "--generate-key", action="store_true", help="print a new BACKUP_KEY and exit"
        )

    def handle(self, *args: Any, **options: Any) -> None:
        if options["generate_key"]:
            self.stdout.write(Fernet.generate_key().decode())
            return
        if not options["output"]:
            raise CommandError("Name the file to write: --output FILE")
        started = time.monotonic()
        with tqdm(unit="B", unit_scale=True, desc="backup", disable=None) as bar:
            try:
                manifest = backup_write(options["output"], progress=bar.update)
            except BackupError as exc:
                raise CommandError(str(exc)) from None
        self.stdout.write(
            f"OK: {options['output']} ({manifest.engine}, {sum(manifest.row_counts.values())} "
            f"rows in {len(manifest.row_counts)} tables, sha256 {manifest.payload_sha256[:16]}…) "
            f"in {time.monotonic() - started:.1f} s"
        )
