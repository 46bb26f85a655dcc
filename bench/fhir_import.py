"""`make bench` pass (issue 13 item 4): the Synthea import rate, 30 transaction Bundles plus the
10-patient bulk NDJSON (tests/data/synthea-r4, source and licence in its README), into a fresh
scratch database, through `ketaclinic import-fhir`.

Reported: resources read, imported (charted or kept as received), rejected, wall time of the
import command less its own start-up (`import-fhir --help`), and resources per second; the CPU
the import spent (its processes and workers, less the start-up's) per resource and the load
average beside it, since wall time on a shared machine says more about the neighbours; then a
second run of the same files (idempotent: nothing imported) timed the same way. Results in
bench/results/fhir_import-<date>.json and a short table on stdout.

    python -m bench.fhir_import [--workers 2] [--database sqlite|postgres://...]
"""

from __future__ import annotations

import argparse
import json
import os
import re
import resource
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SYNTHEA = ROOT / "tests" / "data" / "synthea-r4"
CLI = "import sys; from ketaclinic.cli import main; sys.argv[0] = 'ketaclinic'; main()"
SUMMARY = re.compile(
    r"imported (\d+), updated (\d+), unchanged (\d+), skipped (\d+), rejected (\d+)"
)


def _run(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(  # noqa: S603 - our own interpreter and arguments
        [sys.executable, "-c", CLI, *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        raise SystemExit(f"bench.fhir_import: {' '.join(args[:2])} failed:\n{done.stderr[-3000:]}")
    return done


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def _import(
    env: dict[str, str], paths: list[str], workers: int
) -> tuple[dict[str, int], float, float]:
    cpu = _children_cpu()
    started = time.perf_counter()
    done = _run(
        env,
        "import-fhir",
        *paths,
        "--username",
        "bench",
        "--no-progress",
        "--workers",
        str(workers),
    )
    wall = time.perf_counter() - started
    cpu = _children_cpu() - cpu
    found = SUMMARY.search(done.stdout)
    if found is None:
        raise SystemExit(f"bench.fhir_import: no summary in\n{done.stdout}")
    keys = ("imported", "updated", "unchanged", "skipped", "rejected")
    return dict(zip(keys, map(int, found.groups()), strict=True)), wall, cpu


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--database", default="sqlite", help="sqlite or a postgres:// URL")
    options = parser.parse_args()
    paths = [
        str(SYNTHEA / "smart-generated-sample-data-R4"),
        *sorted(str(p) for p in (SYNTHEA / "sample-bulk-fhir-10-patients").glob("*.000.ndjson")),
    ]
    with tempfile.TemporaryDirectory(prefix="ketaclinic-import-bench-") as scratch:
        database = (
            f"sqlite:///{scratch}/bench.sqlite3"
            if options.database == "sqlite"
            else options.database
        )
        env = {
            **os.environ,
            "DATABASE_URL": database,
            "KETACLINIC_VAR_DIR": scratch,
            "DJANGO_SETTINGS_MODULE": os.environ.get(
                "DJANGO_SETTINGS_MODULE", "config.settings.production"
            ),
            "KETACLINIC_SECRET_KEY": os.environ.get("KETACLINIC_SECRET_KEY", "bench-" + "x" * 60),
        }
        print("bench.fhir_import: migrate, organization, user", file=sys.stderr)
        _run(env, "migrate", "--noinput")
        org = _run(env, "create-organization", "Import bench").stdout.strip().split()[-1]
        _run(env, "create-user", "--organization", org, "--username", "bench", "--role",
             "prescriber", "--password", "bench-password-1234")  # fmt: skip
        started, cpu = time.perf_counter(), _children_cpu()
        _run(env, "import-fhir", "--help")
        startup = time.perf_counter() - started
        startup_cpu = _children_cpu() - cpu
        print(f"bench.fhir_import: import ({options.workers} workers)", file=sys.stderr)
        load_start = os.getloadavg()[0]
        first, wall, cpu1 = _import(env, paths, options.workers)
        second, wall2, cpu2 = _import(env, paths, options.workers)
        load_end = os.getloadavg()[0]
    read = sum(first.values())
    work = max(wall - startup, 0.001)
    cpu_ms = 1000 * max(cpu1 - startup_cpu, 0.001) / read
    result = {
        "when": datetime.now(UTC).isoformat(timespec="seconds"),
        "load_average_start": round(load_start, 2),
        "load_average_end": round(load_end, 2),
        "database": "sqlite" if options.database == "sqlite" else "postgresql",
        "workers": options.workers,
        "resources_read": read,
        "first_run": first,
        "wall_seconds": round(wall, 2),
        "startup_seconds": round(startup, 2),
        "resources_per_second": round(read / work, 1),
        "resources_per_second_wall": round(read / wall, 1),
        "startup_cpu_seconds": round(startup_cpu, 2),
        "cpu_seconds": round(cpu1, 2),
        "cpu_ms_per_resource": round(cpu_ms, 3),
        "resources_per_cpu_second": round(1000 / cpu_ms, 1),
        "second_run": second,
        "second_run_wall_seconds": round(wall2, 2),
        "second_run_resources_per_second": round(read / max(wall2 - startup, 0.001), 1),
        "second_run_cpu_seconds": round(cpu2, 2),
    }
    out = ROOT / "bench" / "results" / f"fhir_import-{datetime.now(UTC):%Y-%m-%d}.json"
    out.parent.mkdir(exist_ok=True)
    out.write_text(json.dumps(result, indent=2) + "\n")
    print(f"| Synthea import, 30 Bundles + NDJSON ({read:,} resources, {options.workers} workers) "
          f"| {result['resources_per_second']:,.0f} resources/s "
          f"({result['resources_per_second_wall']:,.0f}/s wall, {wall:.1f} s; "
          f"{cpu_ms:.2f} ms CPU per resource, load {load_start:.1f}-{load_end:.1f}) |")  # fmt: skip
    print(f"| imported {first['imported']:,}, rejected {first['rejected']:,}, skipped "
          f"{first['skipped']:,}; second run: imported {second['imported']:,}, "
          f"{result['second_run_resources_per_second']:,.0f} resources/s |")  # fmt: skip
    print(f"results: {out}")


if __name__ == "__main__":
    main()
