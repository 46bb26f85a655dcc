"""The migration that leaves out the single-column indexes of the high-rate chart tables and of
the audit log (issue 13): it drops them in place, keeps the composite indexes every lookup uses,
and can be reversed. Run on a fresh database of the suite's engine (SQLite, or PostgreSQL),
through `manage.py migrate` as an upgrade would run it."""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from django.conf import settings
from django.db import connection

ROOT = Path(__file__).resolve().parents[1]
pytestmark = pytest.mark.django_db

# The tables, and the single columns whose own index the migration drops.
DROPPED = {
    "patients_bodyweight": {"organization_id", "patient_id", "external_id"},
    "patients_bodyheight": {"organization_id", "patient_id", "external_id"},
    "patients_vitalsign": {"organization_id", "patient_id", "external_id"},
    "accounts_auditevent": {"organization_id"},
}
# Composite indexes that serve those lookups (each starts with the column), and must stay.
KEPT = {
    "patients_bodyweight": {"weight_org_ext", "weight_pt_time"},
    "patients_bodyheight": {"height_org_ext", "height_pt_time"},
    "patients_vitalsign": {"vital_org_ext", "vital_pt_kind_time", "vital_org_time"},
    "accounts_auditevent": {"audit_org_time"},
}


class Target:
    """A fresh database and the environment `manage.py` runs against it."""

    def __init__(self, tmp_path: Path) -> None:
        env = {k: v for k, v in os.environ.items() if not k.startswith("DJANGO_")}
        env.update(
            DJANGO_SETTINGS_MODULE="config.settings.production",
            KETACLINIC_VAR_DIR=str(tmp_path / "var"),
            ALLOWED_HOSTS="127.0.0.1",
        )
        env.pop("DATABASE_URL", None)
        self.env = env
        self.sqlite_path = tmp_path / "var" / "ketaclinic.sqlite3"
        self.pg_name = ""
        if connection.vendor == "postgresql":
            self.pg_name = f"kc_indexes_{uuid.uuid4().hex[:10]}"
            self._admin().execute(f'CREATE DATABASE "{self.pg_name}"')
            db = settings.DATABASES["default"]
            env["DATABASE_URL"] = (
                f"postgres://{db['USER']}@{db['HOST']}:{db['PORT'] or 5432}/{self.pg_name}"
            )

    def _admin(self, dbname: str = "postgres") -> Any:
        import psycopg

        db = settings.DATABASES["default"]
        return psycopg.connect(
            host=db["HOST"], port=db["PORT"] or 5432, user=db["USER"], dbname=dbname,
            autocommit=True,
        )  # fmt: skip

    def migrate(self, *target: str) -> None:
        result = subprocess.run(  # noqa: S603 - our own arguments
            [sys.executable, "manage.py", "migrate", *target, "--noinput"],
            cwd=ROOT,
            env=self.env,
            capture_output=True,
            text=True,
            timeout=600,
            check=False,
        )
        assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]

    def indexes(self, table: str) -> dict[str, tuple[str, ...]]:
        """Each index of `table` (unique constraints' too) with its columns in order."""
        if not self.pg_name:
            with sqlite3.connect(self.sqlite_path) as db:
                names = [row[1] for row in db.execute(f"PRAGMA index_list({table})")]
                return {
                    name: tuple(r[2] for r in db.execute(f"PRAGMA index_info({name})"))
                    for name in names
                }
        with self._admin(self.pg_name) as db:
            rows = db.execute(
                "SELECT i.relname, a.attname FROM pg_index x"
                " JOIN pg_class t ON t.oid = x.indrelid JOIN pg_class i ON i.oid = x.indexrelid"
                " CROSS JOIN LATERAL unnest(x.indkey) WITH ORDINALITY AS k(attnum, position)"
                " JOIN pg_attribute a ON a.attrelid = t.oid AND a.attnum = k.attnum"
                " WHERE t.relname = %s ORDER BY i.relname, k.position",
                (table,),
            ).fetchall()
        out: dict[str, tuple[str, ...]] = {}
        for name, column in rows:
            out[name] = (*out.get(name, ()), column)
        return out

    def table_page(self, table: str) -> int | None:
        """Where SQLite keeps the table: a copied table gets a new root page."""
        if self.pg_name:
            return None
        with sqlite3.connect(self.sqlite_path) as db:
            return db.execute(
                "SELECT rootpage FROM sqlite_master WHERE type = 'table' AND name = ?", (table,)
            ).fetchone()[0]

    def drop(self) -> None:
        if self.pg_name:
            with self._admin() as admin:
                admin.execute(f'DROP DATABASE IF EXISTS "{self.pg_name}" WITH (FORCE)')


@pytest.fixture
def target(tmp_path: Path) -> Iterator[Target]:
    made = Target(tmp_path)
    try:
        yield made
    finally:
        made.drop()


def _single(target: Target, table: str) -> set[str]:
    """The columns of `table` that have an index of their own (one column, not unique)."""
    return {cols[0] for name, cols in target.indexes(table).items() if len(cols) == 1}


@pytest.mark.long
def test_the_upgrade_drops_the_single_column_indexes_in_place_and_reverses(
    target: Target,
) -> None:
    target.migrate("accounts", "0009")
    target.migrate("patients", "0005")
    for table, columns in DROPPED.items():
        assert columns <= _single(target, table), table  # what the old schema had
    pages = {table: target.table_page(table) for table in DROPPED}

    target.migrate()  # the upgrade, as `make run` and `ketaclinic migrate` run it
    for table, columns in DROPPED.items():
        assert not columns & _single(target, table), table
        assert KEPT[table] <= set(target.indexes(table)), table
        # The recorder's index and the unique public id are not this migration's.
        assert target.table_page(table) == pages[table], f"{table} was copied, not altered"
    assert "recorded_by_id" in _single(target, "patients_vitalsign")

    target.migrate("accounts", "0009")  # takes patients 0006 back with it
    for table, columns in DROPPED.items():
        assert columns <= _single(target, table), table
