"""Query-planner statistics: without them the planner guesses, and guesses badly at scale.

Django never runs ANALYZE. On SQLite, without `sqlite_stat1`, a FHIR search by patient and code
at 100,000 patients scanned the organization's whole flowsheet (p50 431 ms; 1,733 ms by date);
with statistics the same queries take a few milliseconds (issue 13). So statistics are refreshed:
- after `migrate` (post_migrate, once per run), after `ketaclinic demo` and after `import-fhir`,
  the moments a database gains its shape or many rows at once;
- periodically by the worker (job `core.planner_statistics`), on SQLite only: PostgreSQL's
  autovacuum daemon analyzes tables as they change.

On SQLite, ANALYZE runs with `analysis_limit` (an approximate ANALYZE that reads a bounded
number of rows per index, as `PRAGMA optimize` does since SQLite 3.46), so it takes milliseconds
whatever the database's size and never holds the write lock for long.
"""

from __future__ import annotations

import logging
from typing import Any

log = logging.getLogger(__name__)
SQLITE_ANALYSIS_LIMIT = 1000


def refresh_statistics(connection: Any = None, *, full: bool = True) -> int:
    """Refresh the planner's statistics of `connection` (default: Django's default database).

    `full=False` is the periodic refresh: a no-op on PostgreSQL (autovacuum does it). Returns 1
    when statistics were refreshed, 0 otherwise (the worker logs the count).
    """
    if connection is None:
        from django.db import connection as default

        connection = default
    vendor = connection.vendor
    with connection.cursor() as cursor:
        if vendor == "sqlite":
            cursor.execute(f"PRAGMA analysis_limit={SQLITE_ANALYSIS_LIMIT}")
            cursor.execute("ANALYZE")
            return 1
        if vendor == "postgresql" and full:
            cursor.execute("ANALYZE")
            return 1
    return 0


def after_migrate(sender: Any, using: str = "default", **kwargs: Any) -> None:
    """post_migrate receiver (connected once, for the core app)."""
    from django.db import connections

    try:
        refresh_statistics(connections[using])
    except Exception:  # statistics are an optimisation: never fail a migration over them
        log.exception("planner statistics after migrate failed")


def periodic_refresh() -> int:
    return refresh_statistics(full=False)
