"""FHIR Bulk Data `$export` at scale (`make bench`, `make bench-large`, or `python -m
bench.fhir_export`): on bench.large's generated clinics (about 10,000 and 100,000 patients),
SQLite and PostgreSQL, each figure beside the same rows read in raw SQL in the same run:

- `$export` exactly as the background job runs it (`outcomes.services.data_export_run`: chunks
  of patients, plain rows, every resource mapped and written as NDJSON): MB/s and resources/s
  by the wall clock and per CPU second of this process, and the process's resident memory
  before and at its peak (each database and size runs in a fresh process, so the peak is the
  export's), to show memory stays flat from 10,000 to 100,000 patients;
- raw SQL: `SELECT *` of the same tables through the same connection, each row written as a
  JSON object with orjson (no mapping), the ceiling a Python exporter can approach.

The machine is shared: every figure carries the load average and the CPU time, and the ratio to
the raw read in the same run is the figure to compare between runs.

    python -m bench.fhir_export --databases sqlite --patients 10000
    python -m bench.fhir_export --data sqlite:100000=/path/to/var-dir \\
        --data postgres:100000=kc_bench_large_copy      # a copy of a shared database
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from bench.machine import ROOT, save_results, worker_result

RESULTS = ROOT / "bench" / "results"
DEFAULT_TYPES = "Patient,Encounter"
# The tables behind each exported type, for the raw-SQL baseline.
TABLES = {
    "Patient": ("patients_patient",),
    "Encounter": ("treatment_sessions_treatmentsession",),
    "Condition": ("patients_condition",),
    "QuestionnaireResponse": ("measures_questionnaireresponse",),
    "Observation": (
        "patients_bodyweight",
        "patients_vitalsign",
        "treatment_sessions_vitalsentry",
        "measures_questionnaireresponse",
    ),
}


def _rss_mb() -> float:
    pages = int(Path("/proc/self/statm").read_text().split()[1])
    return pages * os.sysconf("SC_PAGE_SIZE") / 1e6


def _peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _server_cpu() -> float | None:
    """CPU seconds the PostgreSQL backend serving this process has used (its /proc entry, the
    server being on this machine); None on SQLite, which runs inside the process."""
    from django.db import connection

    if connection.vendor != "postgresql":
        return None
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid()")
        (pid,) = cursor.fetchone()
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:  # a server elsewhere
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _cpu_figures(megabytes: float, wall: float, cpu: float, server: float | None) -> dict[str, Any]:
    """The process's CPU and, on PostgreSQL, the server's: the client waits for every reply,
    so on a quiet machine the wall time is about their sum (plus the round trips)."""
    both = cpu + (server or 0)
    return {
        "server_cpu_seconds": None if server is None else round(server, 2),
        "mb_per_client_and_server_cpu_s": round(megabytes / both, 2) if both else None,
    }


def _export(compliance: Any, types: str) -> dict[str, Any]:
    from ketaclinic.accounts.actor import Actor
    from ketaclinic.fhir.bulk_export import bulk_export_request, export_directory
    from ketaclinic.outcomes import services

    job = bulk_export_request(
        actor=Actor(membership=compliance, channel="cli"),
        level="system",
        types=types,
        run_in_background=False,
    )
    load = os.getloadavg()
    rss_before = _rss_mb()
    server = _server_cpu()
    cpu, wall = time.process_time(), time.perf_counter()
    job = services.data_export_run(export=job)
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    server = None if server is None else (_server_cpu() or 0) - server
    peak = _peak_rss_mb()
    megabytes = sum(f["bytes"] for f in job.files) / 1e6
    resources = sum(f["rows"] for f in job.files)
    for path in export_directory(job).glob("*.ndjson"):
        path.unlink()  # gigabytes at 100,000 patients
    return {
        "status": job.status,
        "error": job.error,
        "files": {
            f["type"]: {"rows": f["rows"], "mb": round(f["bytes"] / 1e6, 1)} for f in job.files
        },
        "resources": resources,
        "mb": round(megabytes, 1),
        "seconds": round(wall, 2),
        "cpu_seconds": round(cpu, 2),
        "mb_per_s": round(megabytes / wall, 2),
        "mb_per_cpu_s": round(megabytes / cpu, 2) if cpu else None,
        **_cpu_figures(megabytes, wall, cpu, server),
        "resources_per_s": round(resources / wall),
        "resources_per_cpu_s": round(resources / cpu) if cpu else None,
        "rss_before_mb": round(rss_before, 1),
        "peak_rss_mb": round(peak, 1),
        "load_average_at_start": [round(x, 2) for x in load],
        "load_average_at_end": [round(x, 2) for x in os.getloadavg()],
    }


def _raw(types: str, scratch: Path) -> dict[str, Any]:
    """Every row of the same tables, `SELECT *` through the same connection, as orjson lines."""
    import orjson
    from django.db import connection

    tables = sorted({t for name in types.split(",") for t in TABLES.get(name, ())})
    path = scratch / "raw.ndjson"
    rows = 0
    server = _server_cpu()
    cpu, wall = time.process_time(), time.perf_counter()
    with connection.cursor() as cursor, path.open("wb", buffering=1 << 20) as handle:
        for table in tables:
            cursor.execute(f"SELECT * FROM {table}")  # noqa: S608 - our own table names
            names = [c[0] for c in cursor.description]
            while batch := cursor.fetchmany(2000):
                for row in batch:
                    handle.write(
                        orjson.dumps(
                            dict(zip(names, row, strict=True)),
                            default=str,
                            option=orjson.OPT_APPEND_NEWLINE,
                        )
                    )
                rows += len(batch)
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    server = None if server is None else (_server_cpu() or 0) - server
    megabytes = path.stat().st_size / 1e6
    path.unlink()
    return {
        "tables": tables,
        "rows": rows,
        "mb": round(megabytes, 1),
        "seconds": round(wall, 2),
        "cpu_seconds": round(cpu, 2),
        "mb_per_s": round(megabytes / wall, 2),
        "mb_per_cpu_s": round(megabytes / cpu, 2) if cpu else None,
        **_cpu_figures(megabytes, wall, cpu, server),
        "rows_per_s": round(rows / wall),
    }


def measure_one(database: str, patients: int, location: str, types: str, scratch: Path) -> Any:
    from bench.large import DEFAULT_PG_DB, build, database_url, pg_db_for, scratch_for, setup_django

    if location:  # a database built before (or a copy of a shared one): used as it is
        var_dir = Path(location) if database == "sqlite" else scratch
        setup_django(var_dir, database_url(database, location))
        from django.core.management import call_command

        call_command("migrate", "--noinput", verbosity=0)  # the code may be newer
        built: dict[str, Any] = {"location": location}
    else:
        built = build(
            database=database,
            patients=patients,
            scratch=scratch_for(database, None, patients),
            pg_db=pg_db_for(DEFAULT_PG_DB, patients),
            rebuild=False,
        )
    from django.conf import settings
    from django_scopes import scope, scopes_disabled

    from ketaclinic.accounts.models import Membership, Organization
    from ketaclinic.demo.generator import DEMO_ORGANIZATION
    from ketaclinic.patients.models import Patient

    settings.VAR_DIR = scratch  # the NDJSON files go to the scratch directory, then away
    with scopes_disabled():
        organization = Organization.objects.get(name=DEMO_ORGANIZATION)
        compliance = Membership.objects.select_related("user", "organization").get(
            organization=organization, role="compliance"
        )
    with scope(organization=organization):
        exported = _export(compliance, types)
        raw = _raw(types, scratch)
        count = Patient.objects.count()
    return {
        "database": database,
        "patients": count,
        "types": types,
        "database_built_at": built.get("built_at"),
        "export": exported,
        "raw_sql": raw,
        "export_to_raw_cpu": round(exported["mb_per_cpu_s"] / raw["mb_per_cpu_s"], 2)
        if exported["mb_per_cpu_s"] and raw["mb_per_cpu_s"]
        else None,
    }


def _rows(result: dict[str, Any]) -> list[tuple[str, ...]]:
    e, r = result["export"], result["raw_sql"]
    load = e["load_average_at_start"][0]
    return [
        (
            f"{result['database']}: $export {result['types']}, {result['patients']:,} patients",
            f"{e['mb']:,} MB, {e['resources']:,} resources",
            f"{e['mb_per_s']} MB/s wall ({e['mb_per_cpu_s']} per CPU s"
            + (
                f"; server CPU {e['server_cpu_seconds']} s, "
                f"{e['mb_per_client_and_server_cpu_s']} MB per client + server CPU s"
                if e.get("server_cpu_seconds") is not None
                else ""
            )
            + f"), {e['resources_per_s']:,} res/s ({e['resources_per_cpu_s']:,} per CPU s)",
            f"RSS {e['rss_before_mb']} -> peak {e['peak_rss_mb']} MB",
            f"raw SELECT + orjson {r['mb_per_s']} MB/s ({r['mb_per_cpu_s']} per CPU s"
            + (
                f", {r['mb_per_client_and_server_cpu_s']} per client + server CPU s"
                if r.get("server_cpu_seconds") is not None
                else ""
            )
            + ")",
            f"load {load}",
        )
    ]


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.fhir_export", description=__doc__)
    parser.add_argument("--patients", default="10000,100000", help="sizes, comma-separated")
    parser.add_argument("--databases", default="sqlite,postgres")
    parser.add_argument("--types", default=DEFAULT_TYPES, help="the _type of the export")
    parser.add_argument(
        "--data",
        action="append",
        default=[],
        metavar="DB:N=WHERE",
        help="use this database for DB at size N: a var directory (sqlite) or a PostgreSQL "
        "database name; default bench.large's",
    )
    parser.add_argument("--worker", choices=["sqlite", "postgres"], help=argparse.SUPPRESS)
    parser.add_argument("--location", default="", help=argparse.SUPPRESS)
    parser.add_argument("--scratch", help=argparse.SUPPRESS)
    options = parser.parse_args(argv)
    if options.worker:
        result = measure_one(
            options.worker,
            int(options.patients),
            options.location,
            options.types,
            Path(options.scratch),
        )
        print("RESULT " + json.dumps(result))
        return
    from bench.outcomes import _postgres_reachable

    where = dict(item.split("=", 1) for item in options.data)
    results = []
    for database in options.databases.split(","):
        if database == "postgres" and not _postgres_reachable():
            print("bench.fhir_export: PostgreSQL is not reachable; skipped", file=sys.stderr)
            continue
        for size in options.patients.split(","):
            with tempfile.TemporaryDirectory(prefix=f"ketaclinic-export-{database}-") as scratch:
                result = worker_result(
                    [sys.executable, "-m", "bench.fhir_export", "--worker", database,
                     "--patients", size, "--types", options.types, "--scratch", scratch,
                     "--location", where.get(f"{database}:{size}", "")],
                    bench="bench.fhir_export",
                )  # fmt: skip
            results.append(result)
    path = save_results("fhir-export", results)
    for result in results:
        print(" | ".join(_rows(result)[0]))
    print(f"results: {path.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
