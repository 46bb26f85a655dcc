"""The write pass of `make bench` on PostgreSQL (issue 13): the JSON weight write beside the bare
WSGI baseline doing the same transaction with psycopg (bench.pgrows), at 1 and 16 clients.

The clinic is the --pg-url database: created when missing, migrated, and given a demo of
--pg-patients patients when it has none (kept and reused by later runs). Both servers run under
the same gunicorn as the SQLite passes. PostgreSQL does part of each write's work in its own
backend processes, so their CPU per request (read from /proc for the backends connected to the
database, this machine's server) is reported beside the servers' own.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import urllib.parse
from pathlib import Path
from typing import TYPE_CHECKING, Any

from bench import load
from bench.machine import ROOT

if TYPE_CHECKING:
    from bench.run import Bench

DEFAULT_URL = os.environ.get("BENCH_PG_URL", "postgres://postgres@127.0.0.1:5432/ketaclinic_bench")
CLIENTS = (1, 16)
CLI = "import sys; from ketaclinic.cli import main; sys.argv[0] = 'ketaclinic'; main()"


def _admin(url: str) -> tuple[Any, str]:
    import psycopg

    parts = urllib.parse.urlsplit(url)
    name = parts.path.lstrip("/")
    admin = urllib.parse.urlunsplit(parts._replace(path="/postgres"))
    return psycopg.connect(admin, autocommit=True, connect_timeout=5), name


def _backend_cpu(url: str) -> float:
    """CPU seconds of the PostgreSQL backends connected to the database (this machine)."""
    conn, name = _admin(url)
    try:
        pids = [r[0] for r in conn.execute(
            "SELECT pid FROM pg_stat_activity WHERE datname = %s AND pid <> pg_backend_pid()",
            (name,),
        ).fetchall()]  # fmt: skip
    finally:
        conn.close()
    tick = os.sysconf("SC_CLK_TCK")
    total = 0.0
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += (int(fields[11]) + int(fields[12])) / tick
    return total


def _count(url: str) -> int:
    import psycopg

    try:
        with psycopg.connect(url, connect_timeout=5) as conn:
            row = conn.execute("SELECT count(*) FROM patients_patient").fetchone()
    except psycopg.Error:
        return 0
    return int(row[0]) if row else 0


def measure(bench: Bench) -> None:
    o = bench.options
    url = o.pg_url
    if o.no_postgres:
        bench.data["postgres"] = {"skipped": "--no-postgres"}
        return
    try:
        conn, name = _admin(url)
    except Exception as exc:  # noqa: BLE001 - any failure to reach the server skips the pass
        bench.say(f"    PostgreSQL pass skipped: {exc}")
        bench.data["postgres"] = {"skipped": str(exc)[:200]}
        return
    with conn:
        if conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone() is None:
            conn.execute(f'CREATE DATABASE "{name}"')
    env = dict(bench.env, DATABASE_URL=url)
    with bench.step("PostgreSQL clinic: migrate, demo"):
        _run(bench, "pg-migrate", ["-c", CLI, "migrate", "--noinput"], env)
        if _count(url) == 0:
            _run(bench, "pg-demo", ["-c", CLI, "demo", "--patients", str(o.pg_patients)], env)
        out = _run(bench, "pg-prepare", ["-m", "bench.prepare", "--sessions", "1"], env)
    targets = json.loads(out)
    from bench.run import weight_write

    make = weight_write(targets)
    passes: dict[str, list[dict[str, Any]]] = {"ketaclinic": [], "bare_wsgi": []}
    with (
        bench.step("PostgreSQL: start ketaclinic and the bare WSGI baseline"),
        bench.django_server(env, "ketaclinic-pg") as (port, probe),
        bench.bare_server(dict(env, BENCH_DATABASE_URL=url), "bare-pg") as (bare_port, bare_probe),
    ):
        bench.preflight(port, make, 201, "PostgreSQL write")
        bench.preflight(bare_port, make, 201, "PostgreSQL bare write")
        load.closed_loop(name="pg warm-up", host="127.0.0.1", port=port, make=make, expected=0,
                         clients=4, seconds=o.warmup, warmup=0)  # fmt: skip
        for clients in _clients(o.pg_clients):
            with bench.step(f"PostgreSQL writes, {clients} client(s): ketaclinic, bare WSGI"):
                for label, where, cpu, seconds in (
                    ("ketaclinic", port, probe, o.write_seconds),
                    ("bare_wsgi", bare_port, bare_probe, o.baseline_seconds),
                ):
                    before = _backend_cpu(url)
                    result = load.closed_loop(
                        name=f"pg {label[:4]} x{clients}", host="127.0.0.1", port=where,
                        make=make, expected=201, clients=clients, seconds=seconds, warmup=1,
                        probe=cpu,
                    )  # fmt: skip
                    db_cpu = _backend_cpu(url) - before
                    record = result.as_dict()
                    # Backends' CPU over the pass (warm-up second included) per measured request.
                    record["db_cpu_ms_per_request"] = (
                        round(db_cpu * 1000 / result.requests, 2) if result.requests else None
                    )
                    passes[label].append(record)
                    bench._line(result)
                    bench.say(f"      PostgreSQL backends {record['db_cpu_ms_per_request']} ms/req")
    bench.data["postgres"] = {
        "database": "PostgreSQL, synchronous_commit=on (server default)",
        "patients": _count(url),
        **passes,
    }


def _clients(option: str) -> tuple[int, ...]:
    """--pg-clients "1,16" (the default, CLIENTS) or fewer levels while iterating."""
    return tuple(int(part) for part in option.split(",") if part.strip()) or CLIENTS


def _run(bench: Bench, name: str, args: list[str], env: dict[str, str]) -> str:
    log = bench.logs / f"{name}.log"
    with log.open("w") as err:
        done = subprocess.run(  # noqa: S603 - our own interpreter and arguments
            [sys.executable, *args], cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=err,
            text=True, check=False,
        )  # fmt: skip
    if done.returncode != 0:
        raise SystemExit(f"bench: {name} failed ({done.returncode}); see {log}")
    return done.stdout


def rows(d: dict[str, Any]) -> tuple[list[tuple[str, str, str, str]], int, dict[str, Any]]:
    pg = d.get("postgres") or {}
    if "ketaclinic" not in pg:
        reason = pg.get("skipped", "not run")
        return [("PostgreSQL write pass", "skipped", reason, "")], 0, {}
    out: list[tuple[str, str, str, str]] = []
    ratios: dict[str, Any] = {}
    errors = 0
    bare = {b["clients"]: b for b in pg["bare_wsgi"]}
    for w in pg["ketaclinic"]:
        c, b = w["clients"], bare[w["clients"]]
        errors += w["errors"] + b["errors"]
        ratio = w["throughput"] / b["throughput"] if b["throughput"] else 0.0
        out.append((f"PostgreSQL write API, {c} client{'s' if c > 1 else ''}",
                    f"{w['throughput']:,.0f} req/s", f"bare WSGI {b['throughput']:,.0f} req/s",
                    f"{ratio:.2f}x"))  # fmt: skip
        out.append(("  latency p50 / p99", f"{w['p50_ms']:.1f} / {w['p99_ms']:.1f} ms",
                    f"bare {b['p50_ms']:.1f} / {b['p99_ms']:.1f} ms", ""))  # fmt: skip
        cpu, bare_cpu = w["server_cpu_ms_per_request"], b["server_cpu_ms_per_request"]
        if cpu and bare_cpu:
            out.append(("  server CPU per write (+ PostgreSQL backends)",
                        f"{cpu:.2f} ms (+ {w['db_cpu_ms_per_request']} ms)",
                        f"bare {bare_cpu:.2f} ms (+ {b['db_cpu_ms_per_request']} ms)",
                        f"{cpu / bare_cpu:.1f}x"))  # fmt: skip
            ratios[f"pg_write_{c}_cpu_vs_bare"] = round(cpu / bare_cpu, 2)
        ratios[f"pg_write_{c}_vs_bare"] = round(ratio, 3)
    return out, errors, ratios


def main(argv: list[str] | None = None) -> None:
    """`python -m bench.postgres [bench.run options]`: this pass alone (its scratch dir holds
    only logs), saved as bench/results/pg-write-<time>.json. While iterating, `--pg-clients 16`
    measures one level only (about a minute with `--write-seconds 10 --baseline-seconds 8`)."""
    from datetime import UTC, datetime

    from bench.machine import describe, git_commit
    from bench.run import RESULTS, Bench, _table, parse

    bench = Bench(parse(argv))
    machine = describe(bench.scratch)
    measure(bench)
    table, errors, ratios = rows(bench.data)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    path = RESULTS / f"pg-write-{stamp}.json"
    document = {
        "finished_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "git": git_commit(),
        "machine": machine,
        "load_average_at_end": [round(x, 2) for x in os.getloadavg()],
        "ratios": ratios,
        "errors": errors,
        **bench.data,
        "table": [
            dict(zip(("metric", "value", "baseline", "ratio"), r, strict=True)) for r in table
        ],
    }
    path.write_text(json.dumps(document, indent=2) + "\n")
    print(_table(table))
    print(f"load average {machine['load_average_at_start']} at start, {os.getloadavg()} at end")
    print(f"results: {path.relative_to(ROOT)}")


if __name__ == "__main__":
    main(sys.argv[1:])
