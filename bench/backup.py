"""Backup and restore at scale (`make bench`, or `python -m bench.backup`), on SQLite and PostgreSQL.

For each database engine and each size (patients of the demo clinic, 10,000 by default):

1. Build the clinic exactly as `make bench` does (`ketaclinic migrate`, `ketaclinic demo`), in a
   scratch directory (SQLite) or a scratch database (PostgreSQL), and mint an API token. With
   `--builder large` the clinic is `make bench-large`'s instead (bench.large: 200 demo patients
   doubled by SQL, minutes for 100,000; an already built one in the same place is reused).
2. Serve it (`ketaclinic serve`) and run a fixed set of FHIR searches; stop the server.
3. `ketaclinic backup --output FILE` (timed).
4. `ketaclinic restore FILE` into a fresh directory / a new empty database (timed): the command
   itself compares every table's row count with the manifest and runs audit-verify and
   ledger-verify, and fails if any of them does not hold.
5. Serve the restored copy and run the same FHIR searches: every Bundle's total and resources
   must be identical (links and fullUrls differ only by the port and are left out).

The times are extrapolated to 1,000,000 patients by a straight line through the measured sizes
(with one size: proportional to the patient count), against the goal of restoring 1M patients in
under 15 minutes. Results: JSON and a table under bench/results/. The user's var/ is never touched.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
import tempfile
import time
import urllib.parse
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from cryptography.fernet import Fernet
from tqdm import tqdm

from bench.machine import ROOT, describe, git_commit

RESULTS = ROOT / "bench" / "results"
CLI = "import sys; from ketaclinic.cli import main; sys.argv[0] = 'ketaclinic'; main()"
PG_SERVER = "postgres://postgres@127.0.0.1:5432"
GOAL_PATIENTS = 1_000_000
GOAL_SECONDS = 15 * 60

# Run inside the clinic's environment: a token for the prescriber, and what to search for.
PREPARE = """
import django, json, sys
django.setup()
from django_scopes import scopes_disabled
from ketaclinic.accounts.services import token_create
from ketaclinic.patients.models import Patient
_, secret = token_create(username="prescriber", days=1, name="bench-backup")
with scopes_disabled():
    first = Patient.objects.filter(is_active=True).order_by("pk").first()
    count = Patient.objects.count()
json.dump({"token": secret, "patient": str(first.public_id), "family": first.family_name,
           "patients": count}, sys.stdout)
"""


def searches(targets: dict[str, Any]) -> list[str]:
    patient, family = targets["patient"], urllib.parse.quote(targets["family"])
    return [
        f"Patient?family={family}&_count=50",
        "Patient?birthdate=ge1990-01-01&_sort=family&_count=50",
        f"Patient?_id={patient}",
        f"Observation?patient={patient}&_count=100",
        "Observation?code=29463-7&_count=50",
        f"Condition?patient={patient}&_count=50",
    ]


class Engine:
    """One database: where it lives, how to start from nothing, how big it is."""

    def __init__(self, kind: str, scratch: Path, name: str) -> None:
        self.kind = kind
        self.var = scratch / name
        self.var.mkdir(parents=True, exist_ok=True)
        self.database = f"kc_backup_bench_{name}"
        self.env = _environment(self.var)
        if kind == "postgresql":
            self.env["DATABASE_URL"] = f"{PG_SERVER}/{self.database}"

    def create(self) -> None:
        if self.kind == "postgresql":
            _psql(f'DROP DATABASE IF EXISTS "{self.database}"')
            _psql(f'CREATE DATABASE "{self.database}"')

    def drop(self) -> None:
        if self.kind == "postgresql":
            _psql(f'DROP DATABASE IF EXISTS "{self.database}" WITH (FORCE)')
        shutil.rmtree(self.var, ignore_errors=True)

    def patients(self) -> int:
        try:
            if self.kind == "sqlite":
                path = self.var / "ketaclinic.sqlite3"
                if not path.exists():
                    return 0
                conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=5)
                try:
                    return int(conn.execute("SELECT count(*) FROM patients_patient").fetchone()[0])
                finally:
                    conn.close()
            out = _psql("SELECT count(*) FROM patients_patient", database=self.database)
            return int(out.strip() or 0)
        except (sqlite3.Error, subprocess.CalledProcessError, ValueError):
            return 0

    def size_bytes(self) -> int:
        if self.kind == "sqlite":
            return sum(p.stat().st_size for p in self.var.glob("ketaclinic.sqlite3*"))
        out = _psql(f"SELECT pg_database_size('{self.database}')", database=self.database)
        return int(out.strip())


def _environment(var: Path) -> dict[str, str]:
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("KETACLINIC_", "DJANGO_", "DATABASE_", "SECURE_", "SESSION_"))
    }
    env.update(
        KETACLINIC_VAR_DIR=str(var),
        DJANGO_SETTINGS_MODULE="config.settings.production",
        ALLOWED_HOSTS="127.0.0.1",
        DEBUG="0",
        LOG_LEVEL="WARNING",
        WEB_WORKERS="2",
        PYTHONPATH=str(ROOT),
        # A generous worker timeout and start-up wait: on a loaded machine a worker's first
        # request (imports, database open) can take more than gunicorn's default 30 s.
        GUNICORN_CMD_ARGS="--no-control-socket --timeout 300",
    )
    return env


def _psql(sql: str, *, database: str = "postgres") -> str:
    return subprocess.run(  # noqa: S603 - fixed program, our SQL
        ["psql", f"{PG_SERVER}/{database}", "-qAt", "-c", sql],  # noqa: S607
        capture_output=True,
        text=True,
        check=True,
    ).stdout


def _run(args: list[str], env: dict[str, str], log: Path) -> tuple[float, str]:
    """Run `python <args>` in the clinic's environment; seconds taken and its output."""
    started = time.perf_counter()
    done = subprocess.run(  # noqa: S603 - our own interpreter and arguments
        [sys.executable, *args], cwd=ROOT, env=env, capture_output=True, text=True, check=False
    )
    seconds = time.perf_counter() - started
    log.write_text(done.stdout + done.stderr)
    if done.returncode != 0:
        raise SystemExit(f"bench.backup: {' '.join(args[2:4])} failed; see {log}")
    return seconds, done.stdout


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextmanager
def _server(env: dict[str, str], log: Path) -> Iterator[int]:
    port = _free_port()
    command = [sys.executable, "-c", CLI, "serve", "--host", "127.0.0.1", "--port", str(port)]
    with log.open("w") as out:
        process = subprocess.Popen(  # noqa: S603 - our own interpreter and arguments
            command, cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT,
            start_new_session=True,
        )  # fmt: skip
        try:
            deadline = time.monotonic() + 600
            while True:
                if process.poll() is not None:
                    raise SystemExit(f"bench.backup: server exited; see {log}")
                try:
                    url = f"http://127.0.0.1:{port}/healthz"
                    with urllib.request.urlopen(url, timeout=5) as response:  # noqa: S310
                        if response.status == 200:
                            break
                except OSError:
                    if time.monotonic() > deadline:
                        raise SystemExit(f"bench.backup: server not healthy; see {log}") from None
                    time.sleep(0.3)
            yield port
        finally:
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
                try:
                    process.wait(timeout=20)
                except subprocess.TimeoutExpired:
                    os.killpg(process.pid, signal.SIGKILL)
                    process.wait(timeout=10)


def _search_all(port: int, token: str, queries: list[str]) -> dict[str, Any]:
    """Each search's total and resources (links and fullUrls name the port: left out)."""
    found = {}
    for query in queries:
        request = urllib.request.Request(  # noqa: S310 - local http
            f"http://127.0.0.1:{port}/fhir/r4/{query}",
            headers={"Authorization": f"Bearer {token}", "Accept": "application/fhir+json"},
        )
        with urllib.request.urlopen(request, timeout=60) as response:  # noqa: S310
            bundle = json.load(response)
        found[query] = {
            "total": bundle.get("total"),
            "resources": [entry.get("resource") for entry in bundle.get("entry", [])],
        }
    return found


def _build_demo(source: Engine, patients: int, logs: Path, tag: str) -> None:
    _run(["-c", CLI, "migrate", "--noinput"], source.env, logs / f"{tag}-migrate.log")
    with (logs / f"{tag}-demo.log").open("w") as demo_log:
        demo = subprocess.Popen(  # noqa: S603 - our own interpreter and arguments
            [sys.executable, "-c", CLI, "demo", "--patients", str(patients)],
            cwd=ROOT, env=source.env, stdout=demo_log, stderr=subprocess.STDOUT,
        )  # fmt: skip
        # The command's own bar hides when not on a terminal; poll the row count instead (the
        # demo commits its patients late, so the bar may sit at 0 for most of the build).
        with tqdm(total=patients, desc="  demo clinic", unit="patient", leave=False) as bar:
            while demo.poll() is None:
                time.sleep(2)
                bar.update(min(patients, source.patients()) - bar.n)
    if demo.returncode != 0:
        raise SystemExit(f"bench.backup: demo build failed; see {logs / f'{tag}-demo.log'}")


def _build_large(source: Engine, patients: int, logs: Path, tag: str) -> None:
    database = "postgres" if source.kind == "postgresql" else "sqlite"
    args = ["-m", "bench.large", "--patients", str(patients), "--database", database,
            "--scratch", str(source.var), "--pg-db", source.database]  # fmt: skip
    # bench.large draws its own progress bar on stderr.
    done = subprocess.run([sys.executable, *args], cwd=ROOT, env=source.env, check=False)  # noqa: S603
    if done.returncode != 0:
        raise SystemExit(f"bench.backup: bench.large failed ({done.returncode})")


def measure(
    kind: str, patients: int, scratch: Path, keep: bool, builder: str = "demo"
) -> dict[str, Any]:
    source = Engine(kind, scratch, f"{kind}_{patients}_source")
    restored = Engine(kind, scratch, f"{kind}_{patients}_restored")
    key = Fernet.generate_key().decode()
    for engine in (source, restored):
        engine.env["BACKUP_KEY"] = key
    logs = scratch / "logs"
    logs.mkdir(exist_ok=True)
    tag = f"{kind}-{patients}"
    backup_file = scratch / f"{tag}.kcbackup"
    result: dict[str, Any] = {"database": kind, "patients_requested": patients, "builder": builder}
    steps = tqdm(total=5, desc=f"{kind} {patients:,} patients", unit="step", leave=True)
    try:
        steps.set_postfix_str(f"build ({builder})")
        started = time.perf_counter()
        if builder == "large":
            _build_large(source, patients, logs, tag)
            # A reused database may predate the newest migrations.
            _run(["-c", CLI, "migrate", "--noinput"], source.env, logs / f"{tag}-migrate.log")
        else:
            source.create()
            _build_demo(source, patients, logs, tag)
        steps.update()
        result["build_seconds"] = round(time.perf_counter() - started, 1)
        result["patients"] = source.patients()
        result["database_mb"] = round(source.size_bytes() / 1e6, 1)
        _, out = _run(["-c", PREPARE], source.env, logs / f"{tag}-prepare.log")
        targets = json.loads(out)
        queries = searches(targets)
        steps.set_postfix_str("FHIR searches on the original")
        with _server(source.env, logs / f"{tag}-serve-source.log") as port:
            before = _search_all(port, targets["token"], queries)
        steps.update()
        steps.set_postfix_str("backup")
        seconds, out = _run(
            ["-c", CLI, "backup", "--output", str(backup_file)],
            source.env,
            logs / f"{tag}-backup.log",
        )
        result["backup_seconds"] = round(seconds, 1)
        result["backup_mb"] = round(backup_file.stat().st_size / 1e6, 1)
        result["backup_output"] = out.strip().splitlines()[-1:]
        steps.update()
        steps.set_postfix_str("restore + verify")
        restored.create()
        seconds, out = _run(
            ["-c", CLI, "restore", str(backup_file)], restored.env, logs / f"{tag}-restore.log"
        )
        result["restore_seconds"] = round(seconds, 1)  # includes row counts and both verifies
        result["restore_output"] = [line for line in out.strip().splitlines() if line.strip()]
        result["restored_database_mb"] = round(restored.size_bytes() / 1e6, 1)
        steps.update()
        steps.set_postfix_str("FHIR searches on the restored copy")
        with _server(restored.env, logs / f"{tag}-serve-restored.log") as port:
            after = _search_all(port, targets["token"], queries)
        steps.update()
        result["searches"] = {
            query: {"total": before[query]["total"], "entries": len(before[query]["resources"])}
            for query in queries
        }
        result["searches_identical"] = before == after
    finally:
        steps.close()
        if not keep:
            source.drop()
            restored.drop()
            backup_file.unlink(missing_ok=True)
    return result


def extrapolate(results: list[dict[str, Any]], field: str) -> dict[str, Any] | None:
    """Seconds at GOAL_PATIENTS on a straight line through the measured sizes."""
    points = sorted((r["patients"], r[field]) for r in results if r.get(field) is not None)
    if not points:
        return None
    if len(points) == 1:
        (n, seconds) = points[0]
        return {
            "method": f"proportional to patients from {n:,}",
            "seconds": seconds * GOAL_PATIENTS / n,
        }
    (n1, s1), (n2, s2) = points[0], points[-1]
    slope = (s2 - s1) / (n2 - n1) if n2 != n1 else s2 / n2
    return {
        "method": f"straight line through {n1:,} and {n2:,} patients",
        "seconds_per_10k_patients": round(slope * 10_000, 2),
        "fixed_seconds": round(s1 - slope * n1, 1),
        "seconds": s1 + slope * (GOAL_PATIENTS - n1),
    }


def table(document: dict[str, Any]) -> str:
    rows = [("database", "patients", "DB MB", "backup MB", "backup s", "restore+verify s",
             "same FHIR answers (or extrapolation)")]  # fmt: skip
    for r in document["results"]:
        rows.append((r["database"], f"{r['patients']:,}", f"{r['database_mb']:,}",
                     f"{r['backup_mb']:,}", f"{r['backup_seconds']}", f"{r['restore_seconds']}",
                     "yes" if r["searches_identical"] else "NO"))  # fmt: skip
    for kind, est in document["extrapolated_to_1m"].items():
        for field in ("backup", "restore"):
            e = est.get(field)
            if e:
                verdict = ""
                if field == "restore":
                    verdict = (
                        " (goal < 15 min: "
                        + ("met" if e["seconds"] < GOAL_SECONDS else "NOT met")
                        + ")"
                    )
                rows.append((kind, "1,000,000 (extrapolated)", "", "",
                             f"{e['seconds'] / 60:.1f} min" if field == "backup" else "",
                             f"{e['seconds'] / 60:.1f} min{verdict}" if field == "restore" else "",
                             e["method"]))  # fmt: skip
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    lines = [" | ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)) for row in rows]
    lines.insert(1, "-+-".join("-" * w for w in widths))
    return "\n".join(line.rstrip() for line in lines)


def summarise(results: list[dict[str, Any]], kinds: list[str]) -> dict[str, Any]:
    return {
        kind: {
            field.removesuffix("_seconds"): extrapolate(
                [r for r in results if r["database"] == kind], field
            )
            for field in ("backup_seconds", "restore_seconds")
        }
        for kind in kinds
    }


def combine(paths: list[str]) -> None:
    """One document (and table) from several runs' JSON, e.g. 10k and 100k measured apart."""
    documents = [json.loads(Path(p).read_text()) for p in paths]
    results = [r for d in documents for r in d["results"]]
    kinds = sorted({r["database"] for r in results}, key=["sqlite", "postgresql"].index)
    document = {
        "schema": 1,
        "finished_at": max(d["finished_at"] for d in documents),
        "combined_from": [Path(p).name for p in paths],
        "git": documents[-1]["git"],
        "machine": documents[-1]["machine"],
        "goal": documents[-1]["goal"],
        "results": results,
        "extrapolated_to_1m": summarise(results, kinds),
    }
    document["table"] = table(document).splitlines()
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    path = RESULTS / f"backup-{stamp}.json"
    path.write_text(json.dumps(document, indent=2) + "\n")
    print(table(document))
    print(f"results: {path.relative_to(ROOT)}")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="python -m bench.backup", description=__doc__.split("\n")[0]
    )
    parser.add_argument("--sizes", default="10000", help="patients, comma-separated")
    parser.add_argument("--databases", default="sqlite,postgresql", help="sqlite,postgresql")
    parser.add_argument("--scratch", help="work here (default: a new temporary directory)")
    parser.add_argument("--keep", action="store_true", help="keep databases and backup files")
    parser.add_argument("--builder", choices=["demo", "large"], default="demo",
                        help="demo: `ketaclinic demo`; large: bench.large (SQL doubling)")  # fmt: skip
    parser.add_argument("--combine", nargs="+", metavar="JSON",
                        help="only merge earlier runs' results (and extrapolate over all sizes)")  # fmt: skip
    options = parser.parse_args(argv)
    if options.combine:
        combine(options.combine)
        return
    sizes = [int(s) for s in options.sizes.split(",") if s.strip()]
    kinds = [k.strip() for k in options.databases.split(",") if k.strip()]
    scratch = Path(options.scratch or tempfile.mkdtemp(prefix="ketaclinic-backup-bench-"))
    scratch.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    machine = describe(scratch)
    results = []
    for kind in kinds:
        if kind == "postgresql" and shutil.which("psql") is None:
            print("bench.backup: psql not found; PostgreSQL skipped", file=sys.stderr)
            continue
        for size in sizes:
            results.append(measure(kind, size, scratch, options.keep, options.builder))
    document = {
        "schema": 1,
        "finished_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "total_seconds": round(time.perf_counter() - started, 1),
        "git": git_commit(),
        "machine": machine,
        "load_average_at_end": [round(x, 2) for x in os.getloadavg()],
        "goal": "1,000,000 patients restorable (restore + verification) in under 15 minutes",
        "results": results,
        "extrapolated_to_1m": summarise(results, kinds),
    }
    document["table"] = table(document).splitlines()
    RESULTS.mkdir(parents=True, exist_ok=True)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    path = RESULTS / f"backup-{stamp}.json"
    path.write_text(json.dumps(document, indent=2) + "\n")
    print(table(document))
    print(f"results: {path.relative_to(ROOT)}")
    if not options.keep and not options.scratch:
        shutil.rmtree(scratch, ignore_errors=True)
    if not all(r["searches_identical"] for r in results):
        raise SystemExit("bench.backup: the restored server answered differently")


if __name__ == "__main__":
    main()
