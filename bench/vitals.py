"""The vitals passes of `make bench` on their own (issue 13, item 5), for working on that path.

`python -m bench.vitals --scratch DIR`: the scratch clinic as bench.run builds it (migrate,
collectstatic, a small demo; reused when DIR already holds one), CHAIRS sessions in monitoring
and the nurse's token (bench.sessions), then the same two servers as bench.run (ketaclinic under
`ketaclinic serve` and the bare WSGI baseline) and bench.sessions' vitals passes: one sample per
request at 1, 4 and 16 clients and BATCH samples per request at 16, each beside the baseline.
Saves `bench/results/vitals-<time>.json` with the machine and the commit.
"""

from __future__ import annotations

import argparse
import os
import sys

from bench import sessions as session_bench
from bench.machine import describe, git_commit, save_results
from bench.run import CLI, Bench, parse


def main() -> None:
    parser = argparse.ArgumentParser(
        prog="python -m bench.vitals", description=__doc__.split("\n")[0]
    )
    parser.add_argument("--scratch", required=True, help="var dir, kept and reused")
    parser.add_argument("--patients", type=int, default=300, help="demo clinic size")
    parser.add_argument("--seconds", type=float, default=8, help="per vitals pass")
    parser.add_argument("--batch-only", action="store_true",
                        help=f"only the {session_bench.BATCH}-sample pass and its baseline")  # fmt: skip
    options = parser.parse_args()
    bench = Bench(parse(["--scratch", options.scratch, "--patients", str(options.patients),
                         "--sessions-seconds", str(options.seconds)]))  # fmt: skip
    bench.machine = describe(bench.scratch)
    if bench._patient_count() > 0:  # a clinic built by an earlier run: migrate only
        with bench.step("migrate"):
            bench.run("migrate", ["-c", CLI, "migrate", "--noinput"])
        bench.data["dataset"] = {"patients": bench._patient_count(), "reused_existing": True}
    else:
        bench.build()
    session_bench.prepare(bench)
    with (
        bench.step("start ketaclinic (`ketaclinic serve`) and the bare WSGI baseline"),
        bench.django_server() as (port, probe),
        bench.bare_server() as (bare_port, bare_probe),
    ):
        session_bench.measure(
            bench, port, probe, bare_port, bare_probe, batch_only=options.batch_only
        )
    rows, _ = session_bench.rows(bench.data, with_context=False)
    width = max(len(r[0]) for r in rows)
    for row in rows:
        print(" | ".join([row[0].ljust(width), *row[1:]]).rstrip())
    load_end = [round(x, 2) for x in os.getloadavg()]
    path = save_results(
        "vitals",
        [{"sessions": bench.data["sessions"], "dataset": bench.data["dataset"],
          "load_average_at_start": bench.machine["load_average_at_start"],
          "load_average_at_end": load_end, "commit": git_commit()}],
    )  # fmt: skip
    print(f"load average {bench.machine['load_average_at_start']} at start, {load_end} at end;"
          f" results: {path}", file=sys.stderr)  # fmt: skip


if __name__ == "__main__":
    main()
