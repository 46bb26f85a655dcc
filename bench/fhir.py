"""FHIR passes for `make bench` (issue 3): Observation create and search over HTTP, and the rate of
`ketaclinic import-fhir` on the Synthea sample.

1. Create: POST /fhir/r4/Observation (application/fhir+json), a blood-pressure panel (LOINC
   85354-9 with systolic 8480-6 and diastolic 8462-4 components) for one of BP_PATIENTS existing
   patients, effective at a random time in the last two years; 16 clients, closed loop.
2. Search, 16 clients, after the creates (so the panels exist): by patient and code
   (`patient=<id>&code=http://loinc.org|85354-9&_count=20`) and by patient and a date prefix
   (`patient=<id>&date=ge<one year ago>&_count=20`, every vital sign: weights, heights and the
   panels). How many resources the searches match is sampled and reported beside the latency.
3. Import: `ketaclinic import-fhir` over the Synthea bundles into the scratch database, while
   no server runs. Wall time of the command, and the same less the command's own start-up
   (measured with `import-fhir --help`, which loads Django and the command but imports nothing).

4. Issue 14, one client each (latency, not throughput): a search with `_include`
   (`Observation?patient=<id>&_include=Observation:patient&_count=20`) and one with
   `_revinclude` (`Patient?_id=<id>&_revinclude=Observation:patient`), target p50 <= 30 ms on the
   10k dataset; `_history` of one patient with HISTORY_VERSIONS versions (written by PUTs first,
   then read with `_count=200`); a transaction Bundle of TRANSACTION_ENTRIES weight Observations.

Every FHIR request, search included, writes an audit event: searches are not read-only here.
"""

from __future__ import annotations

import http.client
import json
import random
import re
import subprocess
import sys
import time
import urllib.parse
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

from bench import load
from bench.machine import ROOT, in_repository

if TYPE_CHECKING:
    from bench.run import Bench

FHIR_JSON = "application/fhir+json"
BASE = "/fhir/r4"
LOINC = "http://loinc.org"
UCUM = "http://unitsofmeasure.org"
BP_PANEL = "85354-9"
BP_PATIENTS = 100  # creates and searches share these, so a search has panels to find
CLIENTS = 16
MATCH_SAMPLE = 25  # searches per kind whose `total` is read to report result sizes
HISTORY_VERSIONS = 200
TRANSACTION_ENTRIES = 100
# The public Synthea sample the test suite also imports (tests/data/README.md: source, licence).
SYNTHEA = (
    Path(__file__).resolve().parents[1]
    / "tests"
    / "data"
    / "synthea-r4"
    / "smart-generated-sample-data-R4"
)
CLI = "import sys; from ketaclinic.cli import main; sys.argv[0] = 'ketaclinic'; main()"


def requests(targets: dict[str, Any]) -> dict[str, load.MakeRequest]:
    patients = targets["patients"][:BP_PATIENTS]
    read = {"Authorization": f"Bearer {targets['token']}", "Host": "127.0.0.1", "Accept": FHIR_JSON}
    write = dict(read, **{"Content-Type": FHIR_JSON})
    now = datetime.now(UTC).replace(microsecond=0)
    since = (now - timedelta(days=365)).date().isoformat()

    def component(code: str, display: str, value: int) -> dict[str, Any]:
        return {
            "code": {"coding": [{"system": LOINC, "code": code, "display": display}]},
            "valueQuantity": {"value": value, "unit": "mm[Hg]", "system": UCUM, "code": "mm[Hg]"},
        }

    def create(index: int, rng: random.Random) -> load.Request:
        systolic = rng.randint(100, 160)
        effective = now - timedelta(seconds=rng.randint(60, 730 * 86400))
        resource = {
            "resourceType": "Observation",
            "status": "final",
            "category": [{"coding": [{
                "system": "http://terminology.hl7.org/CodeSystem/observation-category",
                "code": "vital-signs", "display": "Vital Signs"}]}],
            "code": {"coding": [{"system": LOINC, "code": BP_PANEL,
                                 "display": "Blood pressure panel with all children optional"}]},
            "subject": {"reference": f"Patient/{rng.choice(patients)}"},
            "effectiveDateTime": effective.isoformat().replace("+00:00", "Z"),
            "component": [
                component("8480-6", "Systolic blood pressure", systolic),
                component("8462-4", "Diastolic blood pressure", systolic - rng.randint(30, 50)),
            ],
        }  # fmt: skip
        return "POST", f"{BASE}/Observation", json.dumps(resource).encode(), write

    def search(params: dict[str, str]) -> str:
        return f"{BASE}/Observation?{urllib.parse.urlencode(params)}"

    def by_code(index: int, rng: random.Random) -> load.Request:
        query = {"patient": rng.choice(patients), "code": f"{LOINC}|{BP_PANEL}", "_count": "20"}
        return "GET", search(query), None, read

    def by_date(index: int, rng: random.Random) -> load.Request:
        query = {"patient": rng.choice(patients), "date": f"ge{since}", "_count": "20"}
        return "GET", search(query), None, read

    return {"create": create, "search_code": by_code, "search_date": by_date}


def _matches(port: int, make: load.MakeRequest, samples: int) -> dict[str, Any]:
    """Run `samples` searches one by one and summarize the Bundle totals (and returned entries)."""
    rng = random.Random(7)
    totals, entries = [], []
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    try:
        for _ in range(samples):
            method, path, body, headers = make(0, rng)
            # Bundle.total is counted only when asked for (the timed passes do not ask)
            conn.request(method, path + "&_total=accurate", body=body, headers=headers)
            response = conn.getresponse()
            data = json.loads(response.read())
            if response.status != 200 or data.get("resourceType") != "Bundle":
                raise SystemExit(f"bench: FHIR search {path} answered {response.status}: {data}")
            totals.append(int(data.get("total", 0)))
            entries.append(len(data.get("entry") or []))
    finally:
        conn.close()
    return {
        "samples": samples,
        "total_mean": round(sum(totals) / len(totals), 1),
        "total_min": min(totals),
        "total_max": max(totals),
        "entries_mean": round(sum(entries) / len(entries), 1),
    }


def measure(bench: Bench, port: int, probe: load.CpuProbe) -> None:
    """The HTTP passes, on the already-running ketaclinic server."""
    make = requests(bench.targets)
    for name, expected in (("create", 201), ("search_code", 200), ("search_date", 200)):
        bench.preflight(port, make[name], expected, f"FHIR {name}")
    result: dict[str, Any] = {"clients": CLIENTS, "bp_patients": BP_PATIENTS}
    with bench.step("FHIR Observation create, 1, 4 and 16 clients"):
        # Charged for sealing its own audit events, as the JSON write is (Bench.charge_sealing).
        bench.seal_backlog()
        for clients in (1, 4):
            result[f"create_x{clients}"] = _pass(
                bench, port, probe, make["create"], "FHIR create", 201, clients, sealed=True
            )
        result["create"] = _pass(
            bench, port, probe, make["create"], "FHIR create", 201, sealed=True
        )
    with bench.step(f"FHIR Observation search (code, date prefix), {CLIENTS} clients"):
        for name, label in (
            ("search_code", "FHIR search code"),
            ("search_date", "FHIR search date"),
        ):
            result[f"{name}_matches"] = _matches(port, make[name], MATCH_SAMPLE)
            result[name] = _pass(bench, port, probe, make[name], label, 200)
            result[f"{name}_example"] = make[name](0, random.Random(0))[1]
    _issue14(bench, port, probe, make, result)
    bench.data["fhir"] = result


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


def _issue14(
    bench: Bench, port: int, probe: load.CpuProbe, make: dict[str, Any], result: dict[str, Any]
) -> None:
    """_include/_revinclude searches, _history of a 200-version patient, a 100-entry transaction:
    one client each."""
    targets = bench.targets
    patients = targets["patients"][:BP_PATIENTS]
    read = {"Authorization": f"Bearer {targets['token']}", "Host": "127.0.0.1", "Accept": FHIR_JSON}
    write = dict(read, **{"Content-Type": FHIR_JSON})

    def include(index: int, rng: random.Random) -> load.Request:
        query = {"patient": rng.choice(patients), "_include": "Observation:patient", "_count": "20"}
        return "GET", f"{BASE}/Observation?{urllib.parse.urlencode(query)}", None, read

    def revinclude(index: int, rng: random.Random) -> load.Request:
        query = {"_id": rng.choice(patients), "_revinclude": "Observation:patient"}
        return "GET", f"{BASE}/Patient?{urllib.parse.urlencode(query)}", None, read

    # One patient written HISTORY_VERSIONS times through FHIR (create, then PUTs).
    patient = {
        "resourceType": "Patient",
        "name": [{"family": "History", "given": ["Bench"]}],
        "gender": "female",
        "birthDate": "1970-01-01",
    }
    with bench.step(f"FHIR _history: writing a patient {HISTORY_VERSIONS} times"):
        created = _request(port, "POST", f"{BASE}/Patient", json.dumps(patient).encode(), write)
        for version in range(1, HISTORY_VERSIONS):
            changed = {**created, "name": [{"family": "History", "given": [f"Bench{version}"]}]}
            created = _request(
                port, "PUT", f"{BASE}/Patient/{created['id']}", json.dumps(changed).encode(), write
            )
    history_path = f"{BASE}/Patient/{created['id']}/_history?_count=200"
    listed = _request(port, "GET", history_path, None, read)

    def history(index: int, rng: random.Random) -> load.Request:
        return "GET", history_path, None, read

    def transaction(index: int, rng: random.Random) -> load.Request:
        when = datetime.now(UTC) - timedelta(seconds=rng.randint(60, 365 * 86400))
        entries = []
        for _ in range(TRANSACTION_ENTRIES):
            resource = {
                "resourceType": "Observation",
                "status": "final",
                "category": [{"coding": [{
                    "system": "http://terminology.hl7.org/CodeSystem/observation-category",
                    "code": "vital-signs"}]}],
                "code": {"coding": [{"system": LOINC, "code": "29463-7"}]},
                "subject": {"reference": f"Patient/{rng.choice(patients)}"},
                "effectiveDateTime": when.isoformat().replace("+00:00", "Z"),
                "valueQuantity": {"value": rng.randint(50, 120), "unit": "kg", "system": UCUM,
                                  "code": "kg"},
            }  # fmt: skip
            entries.append(
                {"resource": resource, "request": {"method": "POST", "url": "Observation"}}
            )
        bundle = {"resourceType": "Bundle", "type": "transaction", "entry": entries}
        return "POST", f"{BASE}/", json.dumps(bundle).encode(), write

    scenarios = {
        "include": include,
        "revinclude": revinclude,
        "history": history,
        "transaction": transaction,
    }
    for name, scenario in scenarios.items():
        bench.preflight(port, scenario, 200, f"FHIR {name}")
    with bench.step("FHIR _include, _revinclude, _history, transaction; 1 client"):
        for name, scenario in scenarios.items():
            outcome = load.closed_loop(
                name=f"FHIR {name} x1", host="127.0.0.1", port=port, make=scenario,
                expected=200, clients=1, seconds=bench.options.fhir_seconds, warmup=1,
                probe=probe,
            )  # fmt: skip
            bench._line(outcome)
            result[f"{name}_1"] = outcome.as_dict()
    result["history_versions"] = listed["total"]
    result["transaction_entries"] = TRANSACTION_ENTRIES


def _pass(
    bench: Bench,
    port: int,
    probe: load.CpuProbe,
    make: load.MakeRequest,
    label: str,
    expected: int,
    clients: int = CLIENTS,
    *,
    sealed: bool = False,
) -> dict[str, Any]:
    outcome = load.closed_loop(
        name=f"{label} x{clients}", host="127.0.0.1", port=port, make=make,
        expected=expected, clients=clients, seconds=bench.options.fhir_seconds, warmup=1,
        probe=probe,
    )  # fmt: skip
    result = bench.charge_sealing(outcome) if sealed else outcome.as_dict()
    bench._line(outcome)
    return result


def import_rate(bench: Bench) -> None:
    """`ketaclinic import-fhir` over the Synthea bundles, timed; no server is running."""
    source = Path(bench.options.synthea)
    bundles = sorted(source.glob("*.json")) if source.is_dir() else []
    if not bundles:
        bench.say(f"    no Synthea bundles in {source}: import not measured")
        bench.data["fhir_import"] = {"source": in_repository(source), "bundles": 0}
        return
    with bench.step(f"FHIR import-fhir, {len(bundles)} Synthea bundles"):
        started = time.perf_counter()
        bench.run("import-fhir-help", ["-c", CLI, "import-fhir", "--help"])
        startup = time.perf_counter() - started
        # On a terminal the command draws its own progress bar; elsewhere it stays quiet.
        tty = sys.stderr.isatty()
        log = bench.logs / "import-fhir.log"
        command = [sys.executable, "-c", CLI, "import-fhir", str(source), "--username",
                   bench.targets["username"], *([] if tty else ["--no-progress"])]  # fmt: skip
        with log.open("w") as err:
            started = time.perf_counter()
            done = subprocess.run(  # noqa: S603 - our own interpreter and arguments
                command,
                cwd=ROOT,
                env=bench.env,
                stdout=subprocess.PIPE,
                stderr=None if tty else err,
                text=True,
                check=False,
            )
            wall = time.perf_counter() - started
        log.write_text(log.read_text() + done.stdout)
        if done.returncode != 0:
            raise SystemExit(f"bench: import-fhir failed ({done.returncode}); see {log}")
    found = re.search(
        r"imported (\d+), updated (\d+), unchanged (\d+), skipped (\d+), rejected (\d+)",
        done.stdout,
    )
    if found is None:
        raise SystemExit(f"bench: import-fhir printed no summary; see {log}")
    counts = dict(
        zip(("imported", "updated", "unchanged", "skipped", "rejected"), map(int, found.groups()), strict=True)
    )  # fmt: skip
    read = sum(counts.values())
    work = max(wall - startup, 0.001)
    skipped = next((line for line in done.stdout.splitlines() if line.startswith("skipped:")), "")
    bench.data["fhir_import"] = {
        "source": in_repository(source),
        "bundles": len(bundles),
        "resources_read": read,
        **counts,
        "skipped_types": skipped.removeprefix("skipped: "),
        "wall_seconds": round(wall, 2),
        "startup_seconds": round(startup, 2),
        "imported_per_second": round(counts["imported"] / work, 1),
        "read_per_second": round(read / work, 1),
        "imported_per_second_wall": round(counts["imported"] / wall, 1),
        "read_per_second_wall": round(read / wall, 1),
    }
    bench.say(
        f"    import-fhir: {counts['imported']:,} imported of {read:,} read in {wall:.1f} s"
        f" (start-up {startup:.1f} s), rejected {counts['rejected']}"
    )


def rows(data: dict[str, Any]) -> tuple[list[tuple[str, str, str, str]], int]:
    """Table rows for the FHIR passes, and their error count."""
    out: list[tuple[str, str, str, str]] = []
    errors = 0
    f = data.get("fhir")
    if f:
        c = f["create"]
        out.append((f"FHIR Observation create (BP panel), {f['clients']} clients",
                     f"{c['throughput']:,.0f} req/s", "", ""))  # fmt: skip
        writes = {w["clients"]: w for w in data["ketaclinic"]["writes"]}
        w = writes.get(f["clients"])
        if w:
            out.append(("  vs write API (weights), same clients", f"{c['throughput']:,.0f} req/s",
                        f"write API {w['throughput']:,.0f} req/s",
                        f"{c['throughput'] / w['throughput']:.2f}x"))  # fmt: skip
        out.append(("  latency p50 / p99", _ms(c, "p50_ms", "p99_ms"),
                    f"write API {_ms(w, 'p50_ms', 'p99_ms')}" if w else "", ""))  # fmt: skip
        if c["server_cpu_ms_per_request"]:
            out.append(("  server CPU per create", f"{c['server_cpu_ms_per_request']:.1f} ms",
                        f"write API {w['server_cpu_ms_per_request']:.1f} ms" if w else "",
                        ""))  # fmt: skip
        for clients in (1, 4):
            c, w = f.get(f"create_x{clients}"), writes.get(clients)
            if c and w:
                out.append((f"FHIR create vs write API, {clients} client{'s' if clients > 1 else ''}",
                            f"{c['throughput']:,.0f} req/s, CPU {c['server_cpu_ms_per_request']} ms",
                            f"write API {w['throughput']:,.0f} req/s, CPU {w['server_cpu_ms_per_request']} ms",
                            f"{c['throughput'] / w['throughput']:.2f}x"))  # fmt: skip
                errors += c["errors"]
        for key, label in (("search_code", "FHIR search patient+code"),
                           ("search_date", "FHIR search patient+date=ge")):  # fmt: skip
            s, m = f[key], f[f"{key}_matches"]
            out.append((f"{label}, {f['clients']} clients, p50 / p95",
                        f"{s['throughput']:,.0f} req/s, " + _ms(s, "p50_ms", "p95_ms"),
                        f"Bundle.total avg {m['total_mean']:.1f} ({m['total_min']}-{m['total_max']})",
                        ""))  # fmt: skip
        errors += sum(f[k]["errors"] for k in ("create", "search_code", "search_date"))
        for key, label in (("include_1", "FHIR search _include=Observation:patient, 1 client"),
                           ("revinclude_1", "FHIR Patient _revinclude=Observation:patient, 1 client"),
                           ("history_1", f"FHIR _history of a patient ({f.get('history_versions')} versions)"),
                           ("transaction_1", f"FHIR transaction of {f.get('transaction_entries')} entries")):  # fmt: skip
            if key in f:
                s = f[key]
                target = "target p50 <= 30 ms" if key in ("include_1", "revinclude_1") else ""
                out.append((f"{label}, p50 / p95", _ms(s, "p50_ms", "p95_ms"), target, ""))
                errors += s["errors"]
    i = data.get("fhir_import")
    if i and i.get("bundles"):
        out.append((f"FHIR import-fhir, {i['bundles']} Synthea bundles",
                    f"{i['imported']:,} imported of {i['resources_read']:,} read in {i['wall_seconds']:.1f} s",
                    f"rejected {i['rejected']}", ""))  # fmt: skip
        out.append(("  import rate (wall time)",
                    f"{i['imported_per_second_wall']:,.0f} imported/s, {i['read_per_second_wall']:,.0f} read/s",
                    f"less {i['startup_seconds']:.1f} s start-up: {i['imported_per_second']:,.0f}"
                    f" / {i['read_per_second']:,.0f} per s", ""))  # fmt: skip
        errors += i["rejected"]
    return out, errors


def _ms(result: dict[str, Any], a: str, b: str) -> str:
    return f"{result[a]:.1f} / {result[b]:.1f} ms"
