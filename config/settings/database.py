"""Database configuration: SQLite by default, PostgreSQL through DATABASE_URL."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import dj_database_url
from django.core.exceptions import ImproperlyConfigured

# SQLite is the embedded default. WAL lets readers run beside the one writer; synchronous=FULL
# because acknowledged clinical writes must survive power loss (docs/sources/performance.md:
# NORMAL losing acknowledged commits); IMMEDIATE transactions take the write lock up front so two
# writers queue on busy_timeout instead of failing with "database is locked" mid-transaction.
SQLITE_INIT_COMMAND = (
    "PRAGMA journal_mode=WAL;"
    "PRAGMA synchronous=FULL;"
    "PRAGMA foreign_keys=ON;"
    "PRAGMA busy_timeout=10000;"
    "PRAGMA cache_size=-20000;"
    "PRAGMA temp_store=MEMORY;"
)

# psycopg prepares a statement after this many executions: never, in practice (see below).
PREPARE_EXPLICIT_ONLY = 2**31 - 1


def database_from_url(url: str | None, *, sqlite_path: Path) -> dict[str, Any]:
    if not url:
        return sqlite_database(sqlite_path)
    try:
        config: dict[str, Any] = dict(dj_database_url.parse(url, conn_max_age=None))
    except ValueError as exc:
        raise ImproperlyConfigured(f"DATABASE_URL: {exc}") from None
    engine = config.get("ENGINE", "")
    if engine.endswith("sqlite3"):
        return sqlite_database(Path(config["NAME"]))
    if not engine.endswith("postgresql"):
        raise ImproperlyConfigured(
            f"DATABASE_URL: unsupported database engine {engine!r}; use sqlite:// or postgres://"
        )
    # Django's backend, with the per-request health check answered from the socket when the
    # connection is idle and quiet (ketaclinic/core/postgresql/base.py).
    config["ENGINE"] = "ketaclinic.core.postgresql"
    config["CONN_HEALTH_CHECKS"] = True
    # Django opens psycopg connections with prepare_threshold=None, which also turns off an
    # explicit `execute(..., prepare=True)`. A threshold psycopg's automatic preparing never
    # reaches enables the explicit one only: Django's own cursors bind on the client and never
    # prepare, so just the statements core.rows runs are prepared (rows.prepared_sql: the FHIR
    # search's union; rows.execute: the write paths' lookups and INSERTs, the audit INSERT),
    # each planned once per connection. A pooler in transaction mode in front of PostgreSQL
    # must then keep prepared statements per client (PgBouncer >= 1.21: max_prepared_statements).
    config.setdefault("OPTIONS", {}).setdefault("prepare_threshold", PREPARE_EXPLICIT_ONLY)
    return config


def sqlite_database(path: Path) -> dict[str, Any]:
    path.parent.mkdir(parents=True, exist_ok=True)
    return {
        # Django's SQLite backend with writers queued on a lock file instead of sleeping in
        # SQLite's busy handler (ketaclinic/core/queued_sqlite3/base.py).
        "ENGINE": "ketaclinic.core.queued_sqlite3",
        "NAME": str(path),
        # Persistent connections: re-running the PRAGMAs on every request cost about 3x in writes
        # (docs/sources/performance.md).
        "CONN_MAX_AGE": None,
        "OPTIONS": {
            "init_command": SQLITE_INIT_COMMAND,
            "transaction_mode": "IMMEDIATE",
            "timeout": 10,
        },
        "TEST": {"NAME": str(path.with_name("test_" + path.name))},
    }
