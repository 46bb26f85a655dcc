"""`ketaclinic worker`: run the periodic jobs and the queued background tasks.

Without a worker, an unacknowledged suicide-risk alert is never escalated and a queued task (an
adverse-event escalation, a measure reminder) never runs, so `ketaclinic serve` starts one beside
the web server unless told not to. Tasks queue in the database (django-tasks-db); this loop runs
the registered periodic jobs when due, then every task waiting in the queue, then sleeps.
"""

from __future__ import annotations

import logging
import signal
import time
from datetime import datetime
from types import FrameType
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandParser
from django.db import close_old_connections
from django.utils.crypto import get_random_string

from ketaclinic.core import clock, periodic

log = logging.getLogger("ketaclinic.worker")
DEFAULT_INTERVAL_SECONDS = 5.0


def _queue_runs_in_database() -> bool:
    backend = settings.TASKS.get("default", {}).get("BACKEND", "")
    return backend == "django_tasks_db.DatabaseBackend"


def run_queued_tasks() -> None:
    """Run every task waiting in the database queue, then return."""
    from django_tasks_db.management.commands.db_worker import Worker

    Worker(
        queue_names=["*"],
        interval=0,
        batch=True,
        backend_name="default",
        startup_delay=False,
        max_tasks=None,
        worker_id=get_random_string(32),
        excluded_queue_names=[],
    ).run()


class Command(BaseCommand):
    help = "Run periodic jobs (alert escalation, scheduled measures) and queued background tasks."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--once", action="store_true", help="run what is due and what is queued, then exit"
        )
        parser.add_argument(
            "--interval",
            type=float,
            default=DEFAULT_INTERVAL_SECONDS,
            help=f"seconds between rounds (default {DEFAULT_INTERVAL_SECONDS:g})",
        )

    def handle(self, *args: Any, once: bool, interval: float, **options: Any) -> None:
        if interval <= 0:
            raise SystemExit("--interval must be a positive number of seconds")
        self.running = True
        if not once:
            signal.signal(signal.SIGTERM, self._stop)
            signal.signal(signal.SIGINT, self._stop)
            jobs = ", ".join(job.name for job in periodic.registered())
            self.stdout.write(f"worker: running every {interval:g} s; jobs: {jobs}")
        last_run: dict[str, datetime] = {}
        if once:
            self.run_round(last_run)
            return
        while self.running:
            # A long-lived process: drop a connection the database closed while we slept.
            close_old_connections()
            self.run_round(last_run)
            time.sleep(interval)

    def run_round(self, last_run: dict[str, datetime]) -> None:
        now = clock.now()
        for job in periodic.due(periodic.registered(), last_run, now):
            last_run[job.name] = now
            try:
                count = job.run()
            except Exception:
                # One failing job must not stop the others (or the escalations) from running.
                log.exception("periodic job %s failed", job.name)
                continue
            if count:
                log.warning("periodic job %s acted on %d item(s)", job.name, count)
        if _queue_runs_in_database():
            run_queued_tasks()

    def _stop(self, signum: int, frame: FrameType | None) -> None:
        self.running = False
