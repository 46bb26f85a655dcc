"""A generated clinic of about 100,000 patients, made by SQL in minutes (`make bench-large`).

    python -m bench.large --patients 100000 --database sqlite   # or postgres
    python -m bench.large --database postgres --pg-db kc_bench_large

How: the demo clinic's first patients (`--seed-patients`, 200) are built through the services
(charts with two years of weights, vital signs, conditions, sessions with their flowsheets), then
`outcomes.synthetic.add_histories` gives each of them a treatment course with PHQ-9 and MADRS
scores, a flowsheet row and a CADSS score per session and some adverse events, so the outcomes
cohort and Kaplan-Meier have real input. Then every patient-owned table is copied onto itself
with one `INSERT ... SELECT` per table and round (new keys, new public ids, foreign keys into the
copied tables shifted, MRNs suffixed), doubling the clinic until it passes `--patients`. Finally
the planner statistics are refreshed (ANALYZE), as the server does after migrate and import.

The copies are realistic in shape (same per-patient history, same value spread) but not in
variety: patient 201 has the same history as patient 1 under another id and MRN.

SQLite goes to `<scratch>/ketaclinic.sqlite3` (default var/bench-large/sqlite, kept between
runs: an existing database of the right size is reused unless --rebuild). PostgreSQL goes to the
database named by --pg-db on the local server (dropped and re-created on --rebuild).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from tqdm import tqdm

from bench.machine import ROOT

SEED_PATIENTS = 200
PG_SERVER = "postgres://postgres@127.0.0.1:5432"
DEFAULT_PG_DB = "kc_bench_large"
DEFAULT_SCRATCH = ROOT / "var" / "bench-large"
MARKER = "bench-large.json"


def database_url(database: str, pg_db: str) -> str:
    return "" if database == "sqlite" else f"{PG_SERVER}/{pg_db}"


def environment(scratch: Path, url: str) -> dict[str, str]:
    """The environment a process serving or measuring this database needs."""
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("KETACLINIC_", "DJANGO_", "DATABASE_", "SECURE_", "SESSION_"))
    }
    env.update(
        KETACLINIC_VAR_DIR=str(scratch),
        DJANGO_SETTINGS_MODULE="config.settings.production",
        ALLOWED_HOSTS="127.0.0.1",
        DEBUG="0",
        LOG_LEVEL="WARNING",
        PYTHONPATH=str(ROOT),
    )
    if url:
        env["DATABASE_URL"] = url
    return env


def setup_django(scratch: Path, url: str) -> None:
    scratch.mkdir(parents=True, exist_ok=True)
    for key in [k for k in os.environ if k.startswith(("DATABASE_", "KETACLINIC_", "DJANGO_"))]:
        os.environ.pop(key)
    os.environ.update(environment(scratch, url))
    import django

    django.setup()


def reset_postgres(pg_db: str) -> bool:
    try:
        import psycopg
    except ImportError:
        return False
    try:
        with psycopg.connect(f"{PG_SERVER}/postgres", autocommit=True, connect_timeout=3) as conn:
            conn.execute(f"DROP DATABASE IF EXISTS {pg_db}")
            conn.execute(f"CREATE DATABASE {pg_db}")
        return True
    except psycopg.Error:
        return False


# --- the build (inside Django) --------------------------------------------------------------


def copied_models() -> list[Any]:
    """Patient-owned tables, parents before children (a child's keys shift by its parent's max)."""
    from ketaclinic.measures.models import QuestionnaireResponse
    from ketaclinic.outcomes.models import CourseSummary
    from ketaclinic.patients.models import (
        Allergy,
        BodyHeight,
        BodyWeight,
        Condition,
        MedicationStatement,
        Patient,
        VitalSign,
    )
    from ketaclinic.protocols.models import TreatmentPlan
    from ketaclinic.sessions.models import (
        AdverseEvent,
        SessionObservation,
        TreatmentSession,
        VitalsEntry,
    )

    return [
        Patient,
        BodyWeight,
        BodyHeight,
        VitalSign,
        Condition,
        MedicationStatement,
        Allergy,
        TreatmentPlan,
        TreatmentSession,
        VitalsEntry,
        SessionObservation,
        AdverseEvent,
        QuestionnaireResponse,
        CourseSummary,  # written from the copied rows, so copied with them
    ]


def seed(seed_patients: int) -> Any:
    """Migrate, the demo clinic, synthetic treatment courses for its patients."""
    from django.core.management import call_command
    from django_scopes import scopes_disabled

    from ketaclinic.accounts.models import Membership
    from ketaclinic.demo.generator import build_demo
    from ketaclinic.outcomes.synthetic import add_histories
    from ketaclinic.patients.models import Patient

    call_command("migrate", "--noinput", verbosity=0)
    with tqdm(total=seed_patients, desc="demo clinic (services)", unit="step") as bar:
        organization = build_demo(patients=seed_patients, seed=11, progress=bar).organization
    with scopes_disabled():
        patients = list(Patient.objects.filter(organization=organization).order_by("pk"))
        prescriber = Membership.objects.get(organization=organization, role="prescriber").user
    # First doses over the 120 days from 10 months ago: courses and follow-up reach into the
    # last year, so a FHIR search by date finds both chart and flowsheet rows.
    start = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    with tqdm(total=len(patients), desc="treatment courses", unit="patient") as bar:
        add_histories(
            organization=organization,
            recorded_by=prescriber,
            patients=patients,
            start=start - timedelta(days=300),
            progress=bar.update,
        )
    return organization


def double_until(target: int) -> int:
    """Copy every patient-owned table onto itself until there are at least `target` patients."""
    from django.db import connection, transaction

    from ketaclinic.patients.models import Patient

    models = copied_models()
    tables = {m._meta.db_table for m in models}
    new_uuid = (
        "gen_random_uuid()" if connection.vendor == "postgresql" else "lower(hex(randomblob(16)))"
    )
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT count(*) FROM {Patient._meta.db_table}")  # noqa: S608
        count = cursor.fetchone()[0]
    rounds = 0
    with tqdm(total=target, initial=count, desc="patients (INSERT ... SELECT)", unit="pt") as bar:
        while count < target:
            rounds += 1
            with transaction.atomic(), connection.cursor() as cursor:
                if connection.vendor == "postgresql":
                    # Django's foreign keys are DEFERRABLE INITIALLY DEFERRED, so PostgreSQL
                    # queues one check per copied row and runs them all at COMMIT: a round of
                    # millions of rows spent 20 minutes in COMMIT. Every copied key is shifted
                    # into rows copied in this same round, so the checks cannot fail; replica
                    # mode skips the triggers for this transaction only (needs a superuser,
                    # which the local benchmark server's postgres role is).
                    cursor.execute("SET LOCAL session_replication_role = replica")
                maxima = {}
                for model in models:
                    cursor.execute(f"SELECT max(id) FROM {model._meta.db_table}")  # noqa: S608
                    maxima[model._meta.db_table] = cursor.fetchone()[0] or 0
                for model in models:
                    table = model._meta.db_table
                    bar.set_postfix_str(f"round {rounds}: {table}")
                    columns, expressions = [], []
                    for field in model._meta.concrete_fields:
                        column = field.column
                        columns.append(f'"{column}"')
                        target_table = (
                            field.related_model._meta.db_table if field.is_relation else None
                        )
                        if column == "id":
                            expressions.append(f"id + {maxima[table]}")
                        elif column == "public_id":
                            expressions.append(new_uuid)
                        elif column == "mrn":
                            expressions.append(f"'G' || (id + {maxima[table]})")
                        elif column == "chair_id" or column == "chair":
                            expressions.append("NULL")  # one patient per chair: copies sit none
                        elif target_table in tables:
                            expressions.append(f'"{column}" + {maxima[target_table]}')
                        else:
                            expressions.append(f'"{column}"')
                    cursor.execute(
                        f"INSERT INTO {table} ({', '.join(columns)}) "  # noqa: S608
                        f"SELECT {', '.join(expressions)} FROM {table} WHERE id <= {maxima[table]}"
                    )
                cursor.execute(f"SELECT count(*) FROM {Patient._meta.db_table}")  # noqa: S608
                count = cursor.fetchone()[0]
            bar.update(count - bar.n)
    if connection.vendor == "postgresql":
        from django.core.management.color import no_style

        with connection.cursor() as cursor:
            for sql in connection.ops.sequence_reset_sql(no_style(), models):
                cursor.execute(sql)
    return count


def row_counts() -> dict[str, int]:
    from django.db import connection

    counts = {}
    with connection.cursor() as cursor:
        for model in copied_models():
            cursor.execute(f"SELECT count(*) FROM {model._meta.db_table}")  # noqa: S608
            counts[model._meta.db_table] = cursor.fetchone()[0]
    return counts


def build(*, database: str, patients: int, scratch: Path, pg_db: str, rebuild: bool) -> dict:
    """Build (or reuse) the database; returns what the marker file records."""
    marker = scratch / MARKER
    if not rebuild and marker.exists():
        found = json.loads(marker.read_text())
        if found.get("patients", 0) >= patients and found.get("database") == database:
            print(
                f"bench.large: reusing {found['patients']:,} patients ({marker})", file=sys.stderr
            )
            setup_django(scratch, database_url(database, pg_db))
            from django.core.management import call_command

            call_command("migrate", "--noinput", verbosity=0)  # the code may be newer
            return found
    if database == "postgres":
        if not reset_postgres(pg_db):
            raise SystemExit("bench.large: PostgreSQL is not reachable")
    else:
        for suffix in ("", "-wal", "-shm"):
            (scratch / f"ketaclinic.sqlite3{suffix}").unlink(missing_ok=True)
    setup_django(scratch, database_url(database, pg_db))
    from django.db import connection

    from ketaclinic.core.planner import refresh_statistics

    started = time.perf_counter()
    seed(SEED_PATIENTS)
    seeded = time.perf_counter() - started
    count = double_until(patients)
    copied = time.perf_counter() - started - seeded
    analyzed = time.perf_counter()
    refresh_statistics(connection, full=True)
    analyze_seconds = time.perf_counter() - analyzed
    found = {
        "database": database,
        "patients": count,
        "rows": row_counts(),
        "seed_seconds": round(seeded, 1),
        "sql_copy_seconds": round(copied, 1),
        "analyze_seconds": round(analyze_seconds, 1),
        "build_seconds": round(time.perf_counter() - started, 1),
        "built_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "pg_db": pg_db if database == "postgres" else None,
    }
    if database == "sqlite":
        found["sqlite_mb"] = round((scratch / "ketaclinic.sqlite3").stat().st_size / 1e6, 1)
    marker.write_text(json.dumps(found, indent=2) + "\n")
    print(
        f"bench.large: {count:,} patients on {database} in {found['build_seconds']:.0f} s "
        f"(services {seeded:.0f} s, SQL copies {copied:.0f} s, ANALYZE {analyze_seconds:.1f} s)",
        file=sys.stderr,
    )
    return found


def scratch_for(database: str, scratch: str | None, patients: int = 100_000) -> Path:
    if scratch:
        return Path(scratch)
    return DEFAULT_SCRATCH / (database if patients == 100_000 else f"{database}-{patients}")


def pg_db_for(pg_db: str, patients: int) -> str:
    return pg_db if patients == 100_000 else f"{pg_db}_{patients}"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.large", description=__doc__)
    parser.add_argument("--patients", type=int, default=100_000)
    parser.add_argument("--database", choices=["sqlite", "postgres"], default="sqlite")
    parser.add_argument("--scratch", help="var dir (default var/bench-large/<database>)")
    parser.add_argument("--pg-db", default=DEFAULT_PG_DB)
    parser.add_argument("--rebuild", action="store_true")
    options = parser.parse_args(argv)
    scratch = scratch_for(options.database, options.scratch, options.patients)
    scratch.mkdir(parents=True, exist_ok=True)
    found = build(
        database=options.database,
        patients=options.patients,
        scratch=scratch,
        pg_db=pg_db_for(options.pg_db, options.patients),
        rebuild=options.rebuild,
    )
    print(json.dumps(found))


if __name__ == "__main__":
    main()
