"""`ketaclinic import-fhir PATH... --username USER`: import FHIR Bundles and NDJSON."""

from __future__ import annotations

import gc
from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError
from tqdm import tqdm

from ketaclinic.accounts.command_line import cli_actor
from ketaclinic.core.planner import refresh_statistics
from ketaclinic.fhir.importer import run_import


class Command(BaseCommand):
    help = "Import FHIR R4 transaction Bundles (.json) and bulk NDJSON files into one organization."
    # Django's system checks (URLs, templates, settings) took longer than importing the Synthea
    # sample itself; `migrate` and `serve` run them, a data import needs none of them.
    requires_system_checks: list[str] = []

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("paths", nargs="+", help="files or directories")
        parser.add_argument("--username", required=True, help="the user the import is recorded as")
        parser.add_argument("--no-progress", action="store_true")
        parser.add_argument(
            "--workers",
            type=int,
            default=1,
            help="processes for NDJSON files (patients and Bundles are imported first, in order)",
        )
        parser.add_argument("--chunk", type=int, default=1000, help="NDJSON lines per transaction")

    def handle(self, *args: Any, **options: Any) -> None:
        actor = cli_actor(options["username"])
        paths = [Path(p) for p in options["paths"]]
        missing = [str(p) for p in paths if not p.exists()]
        if missing:
            raise CommandError(f"Not found: {', '.join(missing)}")
        bar = tqdm(unit=" resources", disable=options["no_progress"], file=self.stderr._out)
        # Everything loaded so far (Django, the FHIR models) lives as long as the process: frozen,
        # the collector stops re-scanning it while the import allocates millions of small
        # objects (a third of the time spent copying resources went to those scans).
        gc.freeze()
        try:
            with bar:
                report = run_import(
                    actor,
                    paths,
                    workers=max(1, options["workers"]),
                    chunk=max(1, options["chunk"]),
                    progress=bar.update,
                )
        finally:
            gc.unfreeze()
        if report.counts["imported"] or report.counts["updated"]:
            refresh_statistics()  # many new rows at once: the planner needs to know
        counts = report.counts
        self.stdout.write(
            f"imported {counts['imported']}, updated {counts['updated']}, unchanged {counts['unchanged']}, "
            f"skipped {counts['skipped']}, rejected {counts['rejected']}"
        )
        if report.kept_types:
            self.stdout.write(
                "kept as received: "
                + ", ".join(f"{k} x{v}" for k, v in report.kept_types.most_common())
            )
        if report.skipped_types:
            self.stdout.write(
                "skipped: " + ", ".join(f"{k} x{v}" for k, v in report.skipped_types.most_common())
            )
        for reason in report.rejected[:50]:
            self.stdout.write(f"rejected: {reason}")
        if len(report.rejected) > 50:
            self.stdout.write(f"... and {len(report.rejected) - 50} more rejected")
