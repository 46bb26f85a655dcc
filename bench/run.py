"""`make bench`: measure ketaclinic on this machine against baselines measured in the same run.

1. Build a scratch clinic (a temp dir as KETACLINIC_VAR_DIR, SQLite with the production PRAGMAs):
   migrate, collectstatic, `ketaclinic demo --patients 10000` (two years of monthly weights...).
2. Start the real server (`ketaclinic serve`: gunicorn, production settings, 2 sync workers)
   and, beside it, the bare WSGI baseline (bench.bare_wsgi) under the same gunicorn; warm up.
3. Reads, from HTTP client threads in this process: chart page, patient list and patient search
   (UI, a staff session that passed TOTP) and API search at 1 client; the chart at 4 clients.
4. Writes (POST /api/v1/patients/<id>/weights) at 1, 4 and 16 clients. Each level is measured
   three ways back to back, so a noisy shared machine affects all three alike: the raw SQLite rate
   of the same transaction (one connection, synchronous=FULL), ketaclinic, the bare WSGI handler.
   Then one fixed-rate pass at 70% of ketaclinic's best rate, latency from the scheduled time.
5. FHIR (bench.fhir): Observation create at 1, 4 and 16 clients (beside the write API at the same
   clients) and two searches at 16 clients on the same server, then, with the servers stopped,
   `ketaclinic import-fhir` over the Synthea sample bundles.
6. Sessions (bench.sessions): 20 sessions taken to monitoring through the session services; as a
   nurse, the floor board partial at 1 client and the vitals API (1 sample per request at 1, 4
   and 16 clients; 60 at 16), each pass beside the bare WSGI baseline doing the same transaction.
   Then (bench.alternation) the 16-client JSON write, bare write and FHIR create alternated in
   short passes for several rounds: issue 13's ratios as the median of passes seconds apart.
7. PostgreSQL (bench.postgres, unless --no-postgres or the server is unreachable): the same
   weight write at 1 and 16 clients on a PostgreSQL clinic (--pg-url; migrated and given a demo
   of --pg-patients when empty), beside the bare WSGI baseline doing the same transaction with
   psycopg; the PostgreSQL backends' CPU per request is reported beside the servers'.
8. Print a table (ratios beside absolute numbers) and save JSON under bench/results/.

`--build-only` stops after step 1 and keeps the dir (`--scratch DIR`): the clinic that
bench.inprocess measures, without the servers and the HTTP passes.

Options: `python -m bench.run --help`. The user's var/ is never touched.
"""

from __future__ import annotations

import argparse
import json
import os
import random
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
from decimal import Decimal
from pathlib import Path
from typing import Any

from tqdm import tqdm

from bench import alternation, fhir, load, postgres
from bench import sessions as session_bench
from bench.machine import ROOT, describe, git_commit, in_repository
from bench.sqlrows import WeightWriter, connect

RESULTS = ROOT / "bench" / "results"
CHART_BUDGET_MS = 100.0  # ARCHITECTURE.md section 10: chart with two years of history, p50
CLI = "import sys; from ketaclinic.cli import main; sys.argv[0] = 'ketaclinic'; main()"
# Seals every audit event still waiting, in a process of its own (outside both servers' CPU
# probes), and prints how many and the CPU seconds audit_seal itself used (not Django's start-up).
SEAL_BACKLOG = (
    "import time, django; django.setup()\n"
    "from ketaclinic.accounts.audit import audit_seal\n"
    "sealed, started = 0, time.process_time()\n"
    "while (batch := audit_seal()):\n"
    "    sealed += batch\n"
    "print(sealed, time.process_time() - started)\n"
)
AUTH_NOTE = (
    "UI: staff session created server-side like conftest.staff_client (auth keys + OTP device id), "
    "2FA required; API: bearer token from token_create"
)


class Bench:
    def __init__(self, options: argparse.Namespace) -> None:
        self.options = options
        self.started = time.perf_counter()
        self.steps: dict[str, float] = {}
        self.keep = options.keep or options.scratch is not None
        self.scratch = Path(options.scratch or tempfile.mkdtemp(prefix="ketaclinic-bench-"))
        self.scratch.mkdir(parents=True, exist_ok=True)
        self.db = self.scratch / "ketaclinic.sqlite3"
        self.logs = self.scratch / "logs"
        self.logs.mkdir(exist_ok=True)
        self.env = self._environment()
        self.data: dict[str, Any] = {}
        self.session_targets: dict[str, Any] = {}
        self.step_number = 0

    def _environment(self) -> dict[str, str]:
        env = {
            k: v
            for k, v in os.environ.items()
            if not k.startswith(("KETACLINIC_", "DJANGO_", "DATABASE_", "SECURE_", "SESSION_"))
        }
        env.update(
            KETACLINIC_VAR_DIR=str(self.scratch),
            DJANGO_SETTINGS_MODULE="config.settings.production",
            ALLOWED_HOSTS="127.0.0.1",
            DEBUG="0",
            LOG_LEVEL="WARNING",
            WEB_WORKERS=str(self.options.workers),
            PYTHONPATH=str(ROOT),
            # gunicorn 27 otherwise opens one control socket per user (~/.gunicorn/gunicorn.ctl),
            # shared with any other server the user runs.
            # --timeout: on a loaded machine a worker importing Django took over gunicorn's 30 s
            # and was killed while booting, again and again.
            GUNICORN_CMD_ARGS="--no-control-socket --timeout 180",
        )
        env.pop("DEBUG_SQL", None)
        return env

    # --- helpers ----------------------------------------------------------------------------

    def say(self, message: str) -> None:
        print(message, file=sys.stderr, flush=True)

    @contextmanager
    def step(self, name: str) -> Iterator[None]:
        self.step_number += 1
        self.say(f"[{self.step_number}] {name} ...")
        started = time.perf_counter()
        yield
        self.steps[name] = round(time.perf_counter() - started, 1)

    def run(self, name: str, args: list[str], *, capture: bool = False) -> str:
        log = self.logs / f"{name}.log"
        with log.open("w") as out:
            done = subprocess.run(  # noqa: S603 - our own interpreter and arguments
                [sys.executable, *args],
                cwd=ROOT,
                env=self.env,
                stdout=subprocess.PIPE if capture else out,
                stderr=out,
                text=True,
                check=False,
            )
        if done.returncode != 0:
            raise SystemExit(f"bench: {name} failed ({done.returncode}); see {log}")
        return done.stdout if capture else log.read_text()

    # --- 1. data ----------------------------------------------------------------------------

    def build(self) -> None:
        with self.step("migrate"):
            self.run("migrate", ["-c", CLI, "migrate", "--noinput"])
        with self.step("collectstatic"):
            self.run("collectstatic", ["manage.py", "collectstatic", "--noinput", "-v", "0"])
        patients = self.options.patients
        with self.step(f"demo clinic, {patients:,} patients"):
            started = time.perf_counter()
            reused = self._patient_count() > 0
            log = self.logs / "demo.log"
            with log.open("w") as out:
                process = subprocess.Popen(  # noqa: S603
                    [sys.executable, "-c", CLI, "demo", "--patients", str(patients)],
                    cwd=ROOT,
                    env=self.env,
                    stdout=out,
                    stderr=subprocess.STDOUT,
                )
                # The command's own bar hides when not on a terminal; poll the row count instead.
                with tqdm(total=patients, desc="demo clinic", unit="patient", disable=None) as bar:
                    while process.poll() is None:
                        time.sleep(1)
                        bar.update(min(patients, self._patient_count()) - bar.n)
            if process.returncode != 0:
                raise SystemExit(f"bench: demo build failed; see {log}")
            output = log.read_text()
        rows = None
        for line in output.splitlines():
            if " rows." in line:
                rows = int(line.rsplit(",", 1)[1].split()[0])
        self.data["dataset"] = {
            "patients": self._patient_count(),
            "rows": rows,
            "reused_existing": reused,
            "build_seconds": None if reused else round(time.perf_counter() - started, 1),
            "database_mb": round(self._db_bytes() / 1e6, 1),
        }

    def _patient_count(self) -> int:
        if not self.db.exists():
            return 0
        try:
            conn = sqlite3.connect(f"file:{self.db}?mode=ro", uri=True, timeout=5)
            try:
                return conn.execute("SELECT count(*) FROM patients_patient").fetchone()[0]
            finally:
                conn.close()
        except sqlite3.Error:
            return 0

    def _db_bytes(self) -> int:
        return sum(p.stat().st_size for p in self.scratch.glob("ketaclinic.sqlite3*"))

    # --- 2. servers -------------------------------------------------------------------------

    @contextmanager
    def server(
        self, name: str, command: list[str], env: dict[str, str]
    ) -> Iterator[tuple[int, load.CpuProbe]]:
        """Start a server on a free port (`{port}` in the command), yield the port and a probe
        of its processes' CPU time, stop it."""
        port = _free_port()
        log_path = self.logs / f"{name}.log"
        with log_path.open("w") as log:
            process = subprocess.Popen(  # noqa: S603 - our own executables and arguments
                [part.replace("{port}", str(port)) for part in command],
                cwd=ROOT,
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # its own process group, so the workers go with it
            )
            try:
                _wait_healthy(port, process, log_path)
                yield port, lambda: _cpu_seconds(process.pid)
            finally:
                _stop(process)

    def django_server(self, env: dict[str, str] | None = None, name: str = "ketaclinic") -> Any:
        # Exactly what operators run: `ketaclinic serve` (gunicorn, sync workers, access log).
        command = [sys.executable, "-c", CLI, "serve", "--host", "127.0.0.1", "--port", "{port}"]
        return self.server(f"gunicorn-{name}", command, env or self.env)

    def bare_server(self, env: dict[str, str] | None = None, name: str = "bare") -> Any:
        gunicorn = str(Path(sys.executable).with_name("gunicorn"))
        command = [gunicorn, "bench.bare_wsgi:application", "--bind", "127.0.0.1:{port}",
                   "--workers", str(self.options.workers), "--access-logfile", "-",
                   "--graceful-timeout", "10"]  # fmt: skip
        return self.server(
            f"gunicorn-{name}", command, env or dict(self.env, BENCH_DB=str(self.db))
        )

    # --- 3. load ----------------------------------------------------------------------------

    def prepare(self) -> None:
        with self.step("sessions, API token, patient sample"):
            out = self.run("prepare", ["-m", "bench.prepare", "--sessions", "16"], capture=True)
        self.targets = json.loads(out)
        session_bench.prepare(self)

    def requests(self) -> dict[str, load.MakeRequest]:
        t = self.targets
        cookie = t["session_cookie"]
        sessions, patients, terms = t["sessions"], t["patients"], t["search_terms"]
        api = {"Authorization": f"Bearer {t['token']}", "Host": "127.0.0.1"}

        def ui(index: int) -> dict[str, str]:
            return {"Cookie": f"{cookie}={sessions[index % len(sessions)]}", "Host": "127.0.0.1"}

        def chart(index: int, rng: random.Random) -> load.Request:
            return "GET", f"/patients/{rng.choice(patients)}/", None, ui(index)

        def patient_list(index: int, rng: random.Random) -> load.Request:
            return "GET", f"/patients/?page={rng.randint(1, 20)}", None, ui(index)

        def search(index: int, rng: random.Random) -> load.Request:
            q = urllib.parse.quote(rng.choice(terms))
            return "GET", f"/patients/?q={q}", None, ui(index)

        def api_search(index: int, rng: random.Random) -> load.Request:
            q = urllib.parse.quote(rng.choice(terms))
            return "GET", f"/api/v1/patients?q={q}&limit=25", None, api

        return {
            "chart": chart,
            "list": patient_list,
            "search": search,
            "api_search": api_search,
            "write": weight_write(t),
        }

    def preflight(self, port: int, make: load.MakeRequest, expected: int, what: str) -> None:
        """One request per scenario first, so a login redirect fails loudly instead of timing."""
        import http.client

        method, path, body, headers = make(0, random.Random(0))
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
        conn.request(method, path, body=body, headers=headers)
        response = conn.getresponse()
        text = response.read()[:300]
        conn.close()
        if response.status != expected:
            raise SystemExit(
                f"bench: {what}: {method} {path} answered {response.status}, expected {expected}"
                f" (location {response.getheader('Location')!r}): {text!r}"
            )

    def measure(self) -> None:
        """Both servers run side by side (the idle one costs nothing), so each write level is
        measured three ways within half a minute: raw SQLite, bare WSGI and ketaclinic. On a
        shared, noisy machine a baseline taken minutes apart would make the ratio meaningless."""
        o = self.options
        make = self.requests()
        reads: list[dict] = []
        writes: list[dict] = []
        bare: list[dict] = []
        raw: list[dict] = []
        with (
            self.step("start ketaclinic (`ketaclinic serve`) and the bare WSGI baseline"),
            self.django_server() as (port, probe),
            self.bare_server() as (bare_port, bare_probe),
        ):
            self.say(
                f"    ketaclinic on :{port}, bare WSGI on :{bare_port}, {o.workers} workers each"
            )
            self.say(f"    {AUTH_NOTE}")
            for name, expected in (("chart", 200), ("list", 200), ("search", 200),
                                   ("api_search", 200), ("write", 201)):  # fmt: skip
                self.preflight(port, make[name], expected, name)
            self.preflight(bare_port, make["write"], 201, "bare write")

            def mixed(index: int, rng: random.Random) -> load.Request:
                return make[rng.choice(["chart", "list", "search", "write"])](index, rng)

            with self.step(f"warm-up, {o.warmup:.0f} s"):
                load.closed_loop(name="warm-up", host="127.0.0.1", port=port, make=mixed,
                                 expected=0, clients=4, seconds=o.warmup, warmup=0)  # fmt: skip
            with self.step("reads: chart, list, search (UI), search (API)"):
                for name, clients in (("chart", 1), ("chart", 4), ("list", 1), ("search", 1),
                                      ("api_search", 1)):  # fmt: skip
                    result = load.closed_loop(
                        name=f"{name} x{clients}", host="127.0.0.1", port=port,
                        make=make[name], expected=200, clients=clients,
                        seconds=o.read_seconds, warmup=1, probe=probe,
                    )  # fmt: skip
                    reads.append(result.as_dict())
                    self._line(result)
            for clients in (1, 4, 16):
                with self.step(f"writes, {clients} client(s): raw SQLite, ketaclinic, bare WSGI"):
                    raw.append(self.raw_slice(o.raw_seconds, clients))
                    self.seal_backlog()  # the baselines' audit events, charged to no one
                    result = load.closed_loop(
                        name=f"write x{clients}", host="127.0.0.1", port=port,
                        make=make["write"], expected=201, clients=clients,
                        seconds=o.write_seconds, warmup=2, probe=probe,
                    )  # fmt: skip
                    writes.append(self.charge_sealing(result))
                    self._line(result)
                    result = load.closed_loop(
                        name=f"bare x{clients}", host="127.0.0.1", port=bare_port,
                        make=make["write"], expected=201, clients=clients,
                        seconds=o.baseline_seconds, warmup=1, probe=bare_probe,
                    )  # fmt: skip
                    bare.append(result.as_dict())
                    self._line(result)
            self.seal_backlog()
            best = max(w["throughput"] for w in writes)
            rate = round(best * 0.7, 1)
            with self.step(f"fixed-rate writes at {rate}/s (70% of the best closed-loop rate)"):
                fixed = load.fixed_rate(
                    name=f"write @ {rate}/s", host="127.0.0.1", port=port, make=make["write"],
                    expected=201, rate=rate, seconds=o.write_seconds, probe=probe,
                )  # fmt: skip
                self._line(fixed)
            fhir.measure(self, port, probe)
            session_bench.measure(self, port, probe, bare_port, bare_probe)
            alternation.measure(self, port, probe, bare_port, bare_probe)
        self.data["ketaclinic"] = {"reads": reads, "writes": writes, "fixed_rate": fixed.as_dict()}
        self.data["bare_wsgi"] = {"writes": bare}
        transactions = sum(r["transactions"] for r in raw)
        seconds = sum(r["seconds"] for r in raw)
        self.data["raw_sqlite"] = {
            "tx_per_second": round(transactions / seconds, 1),
            "synchronous": "FULL",
            "transaction": "patient lookup, 1 body weight, 1 audit event (one INSERT, sealed "
            "later by the worker); one connection",
            "slices": raw,
        }

    def raw_slice(self, seconds: float, before_clients: int) -> dict[str, Any]:
        """The same transaction in a loop over one connection, while both servers sit idle."""
        conn = connect(self.db)
        try:
            writer = WeightWriter(conn, self.targets["username"])
            rng = random.Random(before_clients)
            patients = self.targets["patients"]
            latencies = []
            with tqdm(total=round(seconds), desc="raw sqlite", unit="s", leave=False,
                      disable=None) as bar:  # fmt: skip
                begin, cpu = time.perf_counter(), time.process_time()
                while (t0 := time.perf_counter()) < begin + seconds:
                    value = Decimal(f"{rng.uniform(50, 110):.1f}")
                    writer.write(rng.choice(patients), value, "127.0.0.1")
                    latencies.append(time.perf_counter() - t0)
                    if len(latencies) % 100 == 0:
                        bar.update(min(round(t0 - begin), bar.total) - bar.n)
                elapsed, cpu = time.perf_counter() - begin, time.process_time() - cpu
        finally:
            conn.close()
        ordered = sorted(latencies)
        result = {
            "before_clients": before_clients,
            "transactions": len(ordered),
            "seconds": round(elapsed, 2),
            "tx_per_second": round(len(ordered) / elapsed, 1),
            "p50_ms": round(load.percentile(ordered, 0.5) * 1000, 2),
            "p99_ms": round(load.percentile(ordered, 0.99) * 1000, 2),
            "cpu_ms_per_tx": round(cpu * 1000 / len(ordered), 2) if ordered else None,
        }
        self.say(
            f"    {'raw sqlite':<18} {result['tx_per_second']:>8.1f} tx/s   p50 "
            f"{result['p50_ms']:7.1f} ms  p99 {result['p99_ms']:7.1f}"
            f"  CPU {result['cpu_ms_per_tx']} ms/tx"
        )
        return result

    def seal_backlog(self) -> tuple[int, float]:
        """Seal the audit events still waiting: (how many, CPU seconds of the sealing)."""
        sealed, cpu = self.run("seal", ["-c", SEAL_BACKLOG], capture=True).split()
        return int(sealed), float(cpu)

    def charge_sealing(self, result: load.Result) -> dict[str, Any]:
        """The write pass's CPU with the sealing of its own audit events, all of it.

        Sealing runs in ketaclinic's background worker, inside the server's CPU probe, every few
        seconds. Left alone, a pass would pay for sealing what came before it (the raw SQLite
        and bare WSGI baselines write the same audit row, and have no worker) and leave its own
        last seconds to the next pass. So the backlog is sealed outside any probe before each
        pass (seal_backlog), and right after it the pass's own remainder is sealed the same way
        and its CPU added to the pass's. Events written in the warm-up are charged too."""
        sealed, cpu = self.seal_backlog()
        extra = round(cpu * 1000 / result.requests, 3) if result.requests else 0.0
        if result.server_cpu_ms_per_request is not None:
            result.server_cpu_ms_per_request = round(result.server_cpu_ms_per_request + extra, 3)
        return {**result.as_dict(), "sealed_after_pass": sealed,
                "sealing_after_pass_cpu_ms_per_request": extra}  # fmt: skip

    def _line(self, r: load.Result) -> None:
        self.say(
            f"    {r.name:<18} {r.throughput:>8.1f} req/s  p50 {r.p50_ms:7.1f} ms"
            f"  p95 {r.p95_ms:7.1f}  p99 {r.p99_ms:7.1f}  errors {r.errors}"
            f"  server CPU {r.server_cpu_ms_per_request} ms/req ({r.server_cpu_cores} cores)"
        )

    # --- 4. report --------------------------------------------------------------------------

    def report(self) -> tuple[list[tuple[str, str, str, str]], dict[str, Any]]:
        d = self.data
        rows: list[tuple[str, str, str, str]] = []
        ds = d["dataset"]
        built = "reused" if ds["reused_existing"] else f"built in {ds['build_seconds']:.0f} s"
        size = f"{ds['patients']:,} patients, " + (f"{ds['rows']:,} rows, " if ds["rows"] else "")
        rows.append(("dataset", f"{size}{ds['database_mb']:.0f} MB", built, ""))
        reads = {(r["name"].split()[0], r["clients"]): r for r in d["ketaclinic"]["reads"]}
        chart = reads[("chart", 1)]
        verdict = "PASS" if chart["p50_ms"] < CHART_BUDGET_MS else "OVER BUDGET"
        rows.append(("chart page p50 / p95, 1 client", _ms(chart, "p50_ms", "p95_ms"),
                     f"budget p50 {CHART_BUDGET_MS:.0f} ms",
                     f"{chart['p50_ms'] / CHART_BUDGET_MS:.2f}x {verdict}"))  # fmt: skip
        rows.append(("  server CPU per chart page", f"{chart['server_cpu_ms_per_request']} ms",
                     "", ""))  # fmt: skip
        chart4 = reads[("chart", 4)]
        rows.append(("chart page, 4 clients", f"{chart4['throughput']:.0f} req/s, "
                     + _ms(chart4, "p50_ms", "p95_ms"), "", ""))  # fmt: skip
        for key, label in (("list", "patient list p50 / p95"), ("search", "patient search p50 / p95"),
                           ("api_search", "API search p50 / p95")):  # fmt: skip
            rows.append((label + ", 1 client", _ms(reads[(key, 1)], "p50_ms", "p95_ms"), "", ""))
        slices = {r["before_clients"]: r["tx_per_second"] for r in d["raw_sqlite"]["slices"]}
        overall = d["raw_sqlite"]["tx_per_second"]
        raw_cpu = [r["cpu_ms_per_tx"] for r in d["raw_sqlite"]["slices"] if r["cpu_ms_per_tx"]]
        cpu_text = f", CPU {sum(raw_cpu) / len(raw_cpu):.2f} ms/tx" if raw_cpu else ""
        rows.append(("raw SQLite, same transaction", f"{overall:,.0f} tx/s{cpu_text}",
                     f"slices {min(slices.values()):,.0f}-{max(slices.values()):,.0f} tx/s",
                     ""))  # fmt: skip
        bare = {w["clients"]: w for w in d["bare_wsgi"]["writes"]}
        ratios: dict[str, Any] = {"raw_sqlite_tx_per_second": overall}
        for w in d["ketaclinic"]["writes"]:
            c = w["clients"]
            b = bare[c]
            raw = slices[c]  # measured just before this level, the fairest baseline here
            rows.append((f"write API, {c} client{'s' if c > 1 else ''}",
                         f"{w['throughput']:,.0f} req/s", f"raw SQLite {raw:,.0f} tx/s just before",
                         f"{w['throughput'] / raw:.2f}x"))  # fmt: skip
            rows.append(("  vs bare WSGI, same clients", f"{w['throughput']:,.0f} req/s",
                         f"bare WSGI {b['throughput']:,.0f} req/s",
                         f"{w['throughput'] / b['throughput']:.2f}x"))  # fmt: skip
            rows.append(("  latency p50 / p99", _ms(w, "p50_ms", "p99_ms"),
                         "bare " + _ms(b, "p50_ms", "p99_ms"),
                         f"{w['p99_ms'] / b['p99_ms']:.1f}x p99"))  # fmt: skip
            cpu, bare_cpu = w["server_cpu_ms_per_request"], b["server_cpu_ms_per_request"]
            if cpu and bare_cpu:
                rows.append(("  server CPU per write", f"{cpu:.1f} ms ({w['server_cpu_cores']} cores)",
                             f"bare {bare_cpu:.1f} ms ({b['server_cpu_cores']} cores)",
                             f"{cpu / bare_cpu:.1f}x"))  # fmt: skip
                ratios[f"write_{c}_cpu_vs_bare"] = round(cpu / bare_cpu, 2)
            ratios[f"write_{c}_vs_raw"] = round(w["throughput"] / raw, 3)
            ratios[f"write_{c}_vs_bare"] = round(w["throughput"] / b["throughput"], 3)
        f = d["ketaclinic"]["fixed_rate"]
        rows.append((f"write API at fixed {f['target_rate']:.0f}/s (70%), p50 / p99",
                     f"{f['throughput']:,.0f} req/s, " + _ms(f, "p50_ms", "p99_ms"),
                     f"max {f['max_ms']:.0f} ms", ""))  # fmt: skip
        errors = sum(r["errors"] for r in d["ketaclinic"]["reads"] + d["ketaclinic"]["writes"])
        errors += f["errors"] + sum(b["errors"] for b in d["bare_wsgi"]["writes"])
        fhir_rows, fhir_errors = fhir.rows(d)
        rows += fhir_rows
        errors += fhir_errors
        session_rows, session_errors = session_bench.rows(d)
        rows += session_rows
        errors += session_errors
        alternation_rows, alternation_errors = alternation.rows(d)
        rows += alternation_rows
        errors += alternation_errors
        ratios.update(alternation.ratios(d))
        pg_rows, pg_errors, pg_ratios = postgres.rows(d)
        rows += pg_rows
        errors += pg_errors
        ratios.update(pg_ratios)
        rows.append(("errors (all passes)", str(errors), "", ""))
        budgets = {"chart_p50_ms": chart["p50_ms"], "chart_budget_ms": CHART_BUDGET_MS,
                   "chart_within_budget": chart["p50_ms"] < CHART_BUDGET_MS}  # fmt: skip
        return rows, {"ratios": ratios, "budgets": budgets, "errors": errors}

    def save(self, summary: dict[str, Any], rows: list[tuple[str, str, str, str]]) -> Path:
        stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
        RESULTS.mkdir(parents=True, exist_ok=True)
        path = RESULTS / f"bench-{stamp}.json"
        document = {
            "schema": 1,
            "finished_at": datetime.now(UTC).isoformat(timespec="seconds"),
            "total_seconds": round(time.perf_counter() - self.started, 1),
            "git": git_commit(),
            "machine": self.machine,
            "load_average_at_end": [round(x, 2) for x in os.getloadavg()],
            "config": {
                "patients": self.options.patients,
                "gunicorn_workers": self.options.workers,
                "read_seconds": self.options.read_seconds,
                "write_seconds": self.options.write_seconds,
                "baseline_seconds": self.options.baseline_seconds,
                "raw_seconds": self.options.raw_seconds,
                "warmup_seconds": self.options.warmup,
                "fhir_seconds": self.options.fhir_seconds,
                "fhir_import_source": in_repository(self.options.synthea),
                "sessions_seconds": self.options.sessions_seconds,
                "alternations": self.options.alternations,
                "alternation_seconds": self.options.alternation_seconds,
                "database": "SQLite, production PRAGMAs (WAL, synchronous=FULL)",
                "auth": AUTH_NOTE,
                "client": "Python http.client threads in one process, one connection each",
            },
            "steps_seconds": self.steps,
            **self.data,
            **summary,
            "table": [
                dict(zip(("metric", "value", "baseline", "ratio"), r, strict=True)) for r in rows
            ],  # fmt: skip
        }
        path.write_text(json.dumps(document, indent=2) + "\n")
        return path

    def main(self) -> None:
        self.machine = describe(self.scratch)
        if self.machine["scratch_filesystem"] in {"tmpfs", "ramfs"}:
            self.say("bench: warning: the scratch dir is in memory; fsync costs nothing there")
        self.say(f"bench: scratch dir {self.scratch} ({self.machine['scratch_filesystem']})")
        try:
            self.build()
            if self.options.build_only:
                self.say(f"bench: clinic built in {self.scratch} (--build-only: nothing measured)")
                return
            self.prepare()
            self.measure()
            postgres.measure(self)
            fhir.import_rate(self)
        except BaseException:
            self.say(f"bench: stopped; logs and database kept in {self.scratch}")
            raise
        if not self.keep:
            shutil.rmtree(self.scratch, ignore_errors=True)
        rows, summary = self.report()
        path = self.save(summary, rows)
        total = time.perf_counter() - self.started
        print(_table(rows))
        print("ratio = ketaclinic / baseline (throughput: higher is better; latency: lower).")
        print(f"auth: {AUTH_NOTE}.")
        m = self.machine
        print(
            f"machine: {m['cores']} cores {m['cpu']}, {m['memory_gib']} GiB, scratch on"
            f" {m['scratch_filesystem']}; load average {m['load_average_at_start'][0]} at start,"
            f" {os.getloadavg()[0]:.2f} at end (other work competes: trust the ratios and the"
            " server CPU per request over absolute latencies)."
        )
        print(f"total {total / 60:.1f} min; results: {path.relative_to(ROOT)}")
        if self.keep:
            print(f"scratch dir kept: {self.scratch}")


def weight_write(targets: dict[str, Any]) -> load.MakeRequest:
    """POST /api/v1/patients/<id>/weights with the targets' token, a random patient of theirs."""
    patients = targets["patients"]
    headers = {
        "Authorization": f"Bearer {targets['token']}",
        "Host": "127.0.0.1",
        "Content-Type": "application/json",
    }

    def write(index: int, rng: random.Random) -> load.Request:
        value = f"{rng.uniform(50, 110):.1f}"
        body = json.dumps({"value": value, "unit": "kg"}).encode()
        return "POST", f"/api/v1/patients/{rng.choice(patients)}/weights", body, headers

    return write


def _ms(result: dict[str, Any], a: str, b: str) -> str:
    return f"{result[a]:.1f} / {result[b]:.1f} ms"


def _table(rows: list[tuple[str, str, str, str]]) -> str:
    header = ("metric", "value", "baseline", "ratio")
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(4)]
    lines = [" | ".join(h.ljust(w) for h, w in zip(header, widths, strict=True))]
    lines.append("-+-".join("-" * w for w in widths))
    lines += [" | ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)) for r in rows]
    return "\n".join(line.rstrip() for line in lines)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _process_tree(pid: int) -> list[str]:
    """The process and all its descendants (serve -> gunicorn master -> workers, and the
    background worker)."""
    tree, pending = [], [str(pid)]
    while pending:
        each = pending.pop()
        tree.append(each)
        try:
            pending += Path(f"/proc/{each}/task/{each}/children").read_text().split()
        except OSError:
            continue  # it just exited
    return tree


def _cpu_seconds(pid: int) -> float:
    """User + system CPU of a process and all its descendants."""
    tick = os.sysconf("SC_CLK_TCK")
    total = 0.0
    for each in _process_tree(pid):
        try:
            fields = Path(f"/proc/{each}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue  # a worker that just exited
        total += (int(fields[11]) + int(fields[12])) / tick
    return total


def _wait_healthy(port: int, process: subprocess.Popen, log: Path, timeout: float = 240) -> None:
    # Generous: on a loaded 2-core machine two workers and the background worker importing
    # Django at once took over 60 s.

    deadline = time.monotonic() + timeout
    url = f"http://127.0.0.1:{port}/healthz"
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit(f"bench: server exited ({process.returncode}); see {log}")
        try:
            with urllib.request.urlopen(url, timeout=5) as response:  # noqa: S310 - local http
                if response.status == 200:
                    return
        except OSError:
            time.sleep(0.2)
    raise SystemExit(f"bench: server not healthy after {timeout:.0f} s; see {log}")


def _stop(process: subprocess.Popen) -> None:
    """SIGTERM to the gunicorn master (it stops its workers), then SIGKILL to its group."""
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=10)


def parse(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.run", description=__doc__.split("\n")[0])
    parser.add_argument("--patients", type=int, default=10_000)
    parser.add_argument("--workers", type=int, default=2, help="gunicorn workers (both servers)")
    parser.add_argument("--read-seconds", type=float, default=10, help="per read pass")
    parser.add_argument("--write-seconds", type=float, default=15, help="per write level")
    parser.add_argument("--baseline-seconds", type=float, default=10, help="per bare WSGI level")
    parser.add_argument("--raw-seconds", type=float, default=4, help="per raw SQLite slice")
    parser.add_argument("--warmup", type=float, default=5, help="mixed warm-up before measuring")
    parser.add_argument("--fhir-seconds", type=float, default=10, help="per FHIR pass")
    parser.add_argument("--sessions-seconds", type=float, default=8,
                        help="per floor board / vitals pass")  # fmt: skip
    parser.add_argument("--alternations", type=int, default=5,
                        help="rounds of the 16-client write / bare / FHIR create alternation (0: none)")  # fmt: skip
    parser.add_argument("--alternation-seconds", type=float, default=4,
                        help="per pass of the alternation")  # fmt: skip
    parser.add_argument("--synthea", default=str(fhir.SYNTHEA), help="bundles for import-fhir")
    parser.add_argument("--scratch", help="use (and keep) this var dir; an existing demo is reused")
    parser.add_argument("--keep", action="store_true", help="keep the temporary var dir")
    parser.add_argument("--pg-url", default=postgres.DEFAULT_URL,
                        help="PostgreSQL database of the write pass (created when missing)")  # fmt: skip
    parser.add_argument("--pg-patients", type=int, default=100, help="demo size on PostgreSQL")
    parser.add_argument("--no-postgres", action="store_true", help="skip the PostgreSQL pass")
    parser.add_argument("--pg-clients", default="1,16",
                        help="client counts of the PostgreSQL write pass, e.g. 16")  # fmt: skip
    parser.add_argument("--build-only", action="store_true",
                        help="only build the clinic (step 1) in --scratch, e.g. for bench.inprocess")  # fmt: skip
    options = parser.parse_args(argv)
    if options.build_only and not options.scratch:
        parser.error("--build-only needs --scratch DIR (a temp dir would be removed)")
    return options


def main(argv: list[str] | None = None) -> None:
    Bench(parse(argv)).main()


if __name__ == "__main__":
    main()
