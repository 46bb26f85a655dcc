"""FHIR Observation search at scale (`make bench-large`): single client and 16 clients, on the
generated ~100,000-patient clinic of bench.large (or any size it is asked for), SQLite or
PostgreSQL, through the real server (gunicorn as `ketaclinic serve` runs it, production settings).

    python -m bench.fhir_search --database sqlite --patients 100000
    python -m bench.fhir_search --database postgres --patients 10000 --pg-db kc_bench_10k

Three searches, each for a random patient of a 2,000-patient sample (issue 13):
- code: a PHQ-9 total score (LOINC 44261-6, survey Observations derived from responses);
- BP code: the blood-pressure panel (LOINC 85354-9: chart vital signs and session flowsheets);
- date: every Observation of the patient from one year ago on (`date=ge...`).
Each is run at 1 client (p50, p99) and at 16 clients (p50, p99, throughput), closed loop, with
the server's CPU per request.

Issue 14 (`--kinds include,revinclude,revinclude_provenance,history,transaction`, one client
each: latency, not throughput; `make bench` runs them on the 10,000-patient clinic):
- include: `Observation?patient=<id>&_include=Observation:patient&_count=20`;
- revinclude: `Patient?_id=<id>&_revinclude=Observation:patient` (every Observation of the
  patient, up to the 200 a _revinclude carries), and revinclude_provenance the same with
  `Provenance:target` (the target p50 of both: 30 ms);
- history: `Patient/<id>/_history?_count=200` of a patient written HISTORY_VERSIONS times (a POST
  and PUTs through the server before the pass);
- transaction: a transaction Bundle of TRANSACTION_ENTRIES weight Observations for random
  patients of the sample (each pass adds them to the database). The SQL statements per search are counted in-process (Django test
client, CaptureQueriesContext) on the same database, and the Bundle sizes are sampled with
`_total=accurate`. Results: JSON under bench/results/ and a short table; the machine's load
average at start and end is recorded beside them (the machine is shared).
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import random
import subprocess
import sys
import tempfile
import time
import urllib.parse
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from tqdm import tqdm

from bench import load
from bench.large import DEFAULT_PG_DB, database_url, environment, pg_db_for, scratch_for
from bench.machine import ROOT, describe, git_commit
from bench.run import _cpu_seconds, _free_port, _stop, _wait_healthy
from ketaclinic.cli import server_command

RESULTS = ROOT / "bench" / "results"
FHIR_JSON = "application/fhir+json"
LOINC = "http://loinc.org"
SEARCHES = {
    "code": {"code": f"{LOINC}|44261-6"},
    "bp_code": {"code": f"{LOINC}|85354-9"},
    "date": {"date": "ge{since}"},
}
ISSUE14 = ("include", "revinclude", "revinclude_provenance", "history", "transaction")
HISTORY_VERSIONS = 200
TRANSACTION_ENTRIES = 100
UCUM = "http://unitsofmeasure.org"


def _path(kind: str, patient: str, since: str, extra: dict[str, str] | None = None) -> str:
    params = {"patient": patient, "_count": "20"}
    params.update({k: v.format(since=since) for k, v in SEARCHES[kind].items()})
    params.update(extra or {})
    return f"/fhir/r4/Observation?{urllib.parse.urlencode(params)}"


def _since() -> str:
    return (datetime.now(UTC) - timedelta(days=365)).date().isoformat()


# --- in-process query counts (a worker with Django set up on the same database) ----------------


def count_queries(
    token: str, patients: list[str], kinds: list[str] | None = None
) -> dict[str, Any]:
    import django

    django.setup()
    from django.db import connection
    from django.test import Client
    from django.test.utils import CaptureQueriesContext

    client = Client(HTTP_AUTHORIZATION=f"Bearer {token}", HTTP_HOST="127.0.0.1")
    since, out = _since(), {}
    for kind in kinds if kinds is not None else list(SEARCHES):
        counts, totals, entries = [], [], []
        for patient in patients[:25]:
            with CaptureQueriesContext(connection) as queries:
                response = client.get(_path(kind, patient, since), HTTP_ACCEPT=FHIR_JSON)
            assert response.status_code == 200, response.content[:300]
            counts.append(len(queries.captured_queries))
            entries.append(len(response.json().get("entry") or []))
            accurate = client.get(
                _path(kind, patient, since, {"_total": "accurate"}), HTTP_ACCEPT=FHIR_JSON
            ).json()
            totals.append(accurate["total"])
        out[kind] = {
            "queries_max": max(counts),
            "queries_min": min(counts),
            "example": _path(kind, patients[0], since),
            "total_mean": round(sum(totals) / len(totals), 1),
            "total_max": max(totals),
            "entries_mean": round(sum(entries) / len(entries), 1),
        }
    return out


# --- the orchestrator ---------------------------------------------------------------------------


def _run(env: dict[str, str], args: list[str]) -> str:
    done = subprocess.run(  # noqa: S603 - our own interpreter and modules
        [sys.executable, *args], cwd=ROOT, env=env, capture_output=True, text=True, check=False
    )
    if done.returncode != 0:
        raise SystemExit(f"bench.fhir_search: {' '.join(args[:3])} failed:\n{done.stderr[-3000:]}")
    return done.stdout


def _uptime() -> list[float]:
    return [round(x, 2) for x in os.getloadavg()]


def measure(options: argparse.Namespace) -> dict[str, Any]:
    scratch = scratch_for(options.database, options.scratch, options.patients)
    url = database_url(options.database, pg_db_for(options.pg_db, options.patients))
    build = [
        "-m", "bench.large", "--database", options.database, "--patients", str(options.patients),
        "--scratch", str(scratch), "--pg-db", options.pg_db,
    ]  # fmt: skip
    subprocess.run([sys.executable, *build], cwd=ROOT, check=True)  # noqa: S603 - progress bars shown
    built = json.loads((scratch / "bench-large.json").read_text())
    env = environment(scratch, url)
    env.update(WEB_WORKERS=str(options.workers), GUNICORN_CMD_ARGS="--no-control-socket")
    targets = json.loads(_run(env, ["-m", "bench.prepare", "--sessions", "1"]))
    token, patients = targets["token"], targets["patients"]
    result: dict[str, Any] = {
        "database": options.database,
        "patients": built["patients"],
        "rows": built["rows"],
        "build_seconds": built["build_seconds"],
        "load_average_start": _uptime(),
    }
    searches = [k for k in options.kinds if k in SEARCHES]
    worker = (
        "import json, sys; from bench.fhir_search import count_queries; "
        "print(json.dumps(count_queries(sys.argv[1], sys.argv[3:], sys.argv[2].split(','))))"
    )
    if searches:
        result["queries"] = json.loads(
            _run(env, ["-c", worker, token, ",".join(searches), *patients[:25]])
        )
    headers = {"Authorization": f"Bearer {token}", "Host": "127.0.0.1", "Accept": FHIR_JSON}
    since = _since()

    def make(kind: str) -> load.MakeRequest:
        def request(index: int, rng: random.Random) -> load.Request:
            return "GET", _path(kind, rng.choice(patients), since), None, headers

        return request

    port = _free_port()
    logs = Path(tempfile.mkdtemp(prefix="kc-fhir-search-"))
    with (logs / "server.log").open("w") as log:
        # The gunicorn command `ketaclinic serve` runs (production settings, sync workers), without
        # its collectstatic and background worker: a search needs neither.
        server = subprocess.Popen(  # noqa: S603 - our own executables
            server_command("127.0.0.1", port, options.workers),
            cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
        )  # fmt: skip
        try:
            _wait_healthy(port, server, logs / "server.log")
            probe = lambda: _cpu_seconds(server.pid)  # noqa: E731
            passes = []
            for kind in searches:
                for clients in options.clients:
                    outcome = load.closed_loop(
                        name=f"FHIR search {kind} x{clients}", host="127.0.0.1", port=port,
                        make=make(kind), expected=200, clients=clients,
                        seconds=options.seconds, warmup=2, probe=probe,
                    )  # fmt: skip
                    row = outcome.as_dict() | {"kind": kind, "load_average": _uptime()}
                    passes.append(row)
                    print(
                        f"  {options.database} {built['patients']:,} {kind:8} x{clients:<2}: "
                        f"p50 {row['p50_ms']:.1f} ms, p99 {row['p99_ms']:.1f} ms, "
                        f"{row['throughput']:.0f} req/s, errors {row['errors']}, "
                        f"server CPU {row['server_cpu_ms_per_request'] or 0:.1f} ms/req, "
                        f"load {row['load_average'][0]}",
                        file=sys.stderr,
                        flush=True,
                    )
            for kind, make14 in issue14(port, headers, patients, options.kinds).items():
                outcome = load.closed_loop(
                    name=f"FHIR {kind} x1", host="127.0.0.1", port=port, make=make14,
                    expected=200, clients=1, seconds=options.seconds, warmup=2, probe=probe,
                )  # fmt: skip
                row = outcome.as_dict() | {"kind": kind, "load_average": _uptime()}
                passes.append(row)
                print(
                    f"  {options.database} {built['patients']:,} {kind:8} x1: "
                    f"p50 {row['p50_ms']:.1f} ms, p99 {row['p99_ms']:.1f} ms, "
                    f"errors {row['errors']}, "
                    f"server CPU {row['server_cpu_ms_per_request'] or 0:.1f} ms/req, "
                    f"load {row['load_average'][0]}",
                    file=sys.stderr,
                    flush=True,
                )
            result["passes"] = passes
        finally:
            _stop(server)
    result["load_average_end"] = _uptime()
    return result


def _request(port: int, method: str, path: str, body: Any, headers: dict[str, str]) -> Any:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
    try:
        conn.request(method, path, body=body, headers=headers)
        response = conn.getresponse()
        data = response.read()
        if response.status >= 300:
            raise SystemExit(f"bench: {method} {path} answered {response.status}: {data[:300]!r}")
        return json.loads(data) if data else None
    finally:
        conn.close()


def issue14(
    port: int, headers: dict[str, str], patients: list[str], kinds: list[str]
) -> dict[str, load.MakeRequest]:
    """The issue-14 requests asked for (a patient with HISTORY_VERSIONS versions is written
    first when `history` is)."""
    write = dict(headers, **{"Content-Type": FHIR_JSON})
    made: dict[str, load.MakeRequest] = {}

    def include(index: int, rng: random.Random) -> load.Request:
        query = {"patient": rng.choice(patients), "_include": "Observation:patient", "_count": "20"}
        return "GET", f"/fhir/r4/Observation?{urllib.parse.urlencode(query)}", None, headers

    def revinclude(what: str) -> load.MakeRequest:
        def request(index: int, rng: random.Random) -> load.Request:
            query = {"_id": rng.choice(patients), "_revinclude": what}
            return "GET", f"/fhir/r4/Patient?{urllib.parse.urlencode(query)}", None, headers

        return request

    def transaction(index: int, rng: random.Random) -> load.Request:
        when = datetime.now(UTC) - timedelta(seconds=rng.randint(60, 365 * 86400))
        entries = [
            {
                "resource": {
                    "resourceType": "Observation",
                    "status": "final",
                    "category": [{"coding": [{
                        "system": "http://terminology.hl7.org/CodeSystem/observation-category",
                        "code": "vital-signs"}]}],
                    "code": {"coding": [{"system": LOINC, "code": "29463-7"}]},
                    "subject": {"reference": f"Patient/{rng.choice(patients)}"},
                    "effectiveDateTime": when.isoformat().replace("+00:00", "Z"),
                    "valueQuantity": {"value": rng.randint(50, 120), "unit": "kg",
                                      "system": UCUM, "code": "kg"},
                },
                "request": {"method": "POST", "url": "Observation"},
            }
            for _ in range(TRANSACTION_ENTRIES)
        ]  # fmt: skip
        bundle = {"resourceType": "Bundle", "type": "transaction", "entry": entries}
        return "POST", "/fhir/r4/", json.dumps(bundle).encode(), write

    for kind in kinds:
        if kind == "include":
            made[kind] = include
        elif kind == "revinclude":
            made[kind] = revinclude("Observation:patient")
        elif kind == "revinclude_provenance":
            made[kind] = revinclude("Provenance:target")
        elif kind == "transaction":
            made[kind] = transaction
        elif kind == "history":
            made[kind] = _history_of_a_written_patient(port, headers, write)
    return made


def _history_of_a_written_patient(
    port: int, headers: dict[str, str], write: dict[str, str]
) -> load.MakeRequest:
    patient = {
        "resourceType": "Patient",
        "name": [{"family": "History", "given": ["Bench"]}],
        "gender": "female",
        "birthDate": "1970-01-01",
    }
    created = _request(port, "POST", "/fhir/r4/Patient", json.dumps(patient).encode(), write)
    for version in tqdm(range(1, HISTORY_VERSIONS), desc="history: PUT versions", unit="PUT"):
        changed = {**created, "name": [{"family": "History", "given": [f"Bench{version}"]}]}
        created = _request(
            port, "PUT", f"/fhir/r4/Patient/{created['id']}", json.dumps(changed).encode(), write
        )
    path = f"/fhir/r4/Patient/{created['id']}/_history?_count={HISTORY_VERSIONS}"
    listed = _request(port, "GET", path, None, headers)
    if listed.get("total", len(listed.get("entry", []))) < HISTORY_VERSIONS:
        raise SystemExit(f"bench: {path} lists {listed.get('total')} versions")

    def history(index: int, rng: random.Random) -> load.Request:
        return "GET", path, None, headers

    return history


def table(result: dict[str, Any]) -> list[str]:
    head = f"{result['database']}, {result['patients']:,} patients"
    lines = [f"{head}: kind | clients | p50 ms | p99 ms | req/s | server CPU ms | queries | load"]
    for p in result["passes"]:
        q = result.get("queries", {}).get(p["kind"], {}).get("queries_max", "")
        lines.append(
            f"  {p['kind']} | {p['clients']} | {p['p50_ms']:.1f} | {p['p99_ms']:.1f} | "
            f"{p['throughput']:.0f} | {p['server_cpu_ms_per_request'] or 0:.1f} | {q} | "
            f"{p['load_average'][0]}"
        )
    return lines


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.fhir_search", description=__doc__)
    parser.add_argument("--database", choices=["sqlite", "postgres"], default="sqlite")
    parser.add_argument("--patients", type=int, default=100_000)
    parser.add_argument("--scratch", help="var dir (default var/bench-large/<database>)")
    parser.add_argument("--pg-db", default=DEFAULT_PG_DB)
    parser.add_argument("--seconds", type=float, default=15)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--clients", type=lambda s: [int(x) for x in s.split(",")], default=[1, 16])
    parser.add_argument(
        "--kinds",
        type=lambda s: s.split(","),
        default=list(SEARCHES),
        help=f"searches ({', '.join(SEARCHES)}) and issue-14 passes ({', '.join(ISSUE14)})",
    )
    options = parser.parse_args(argv)
    started = time.perf_counter()
    result = measure(options)
    result["seconds"] = round(time.perf_counter() - started, 1)
    RESULTS.mkdir(exist_ok=True)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    path = RESULTS / f"fhir-search-{options.database}-{result['patients']}-{stamp}.json"
    document = {"commit": git_commit(), "machine": describe(Path(tempfile.gettempdir())), **result}
    path.write_text(json.dumps(document, indent=2) + "\n")
    print("\n".join(table(result)))
    print(f"results: {path.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
