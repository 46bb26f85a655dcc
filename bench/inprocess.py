"""Server CPU of one write, in one process, without HTTP or gunicorn (issue 13's write path).

`python -m bench.inprocess --scratch DIR [--requests N] [--profile write|fhir|bare]` on a clinic
that `bench.run --scratch DIR --build-only --patients 300` (or `ketaclinic demo`) built. It calls
the WSGI applications directly (environ in, body out), so the figure is the application's own CPU per request: the
JSON write (POST /api/v1/patients/<id>/weights), the FHIR Observation create (a blood-pressure
panel, as bench.fhir sends) and bench.bare_wsgi doing the weight's transaction, each measured
with the process's CPU clock over N requests after a warm-up, interleaved in rounds so a noisy
machine affects all three alike. `--profile NAME` prints cProfile's top functions for that one.
Writes real rows into the scratch clinic (as the HTTP bench does). Prints one JSON object.

`--kinds vitals,bare-vitals`: the vitals batch instead (POST /api/v1/sessions/<id>/vitals with
bench.sessions.BATCH samples, as the nurse, on the sessions in monitoring that bench.vitals or
bench.run set up) beside bench.bare_wsgi doing the same transaction.
"""

from __future__ import annotations

import argparse
import cProfile
import io
import json
import os
import pstats
import random
import statistics
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

Call = Callable[[], tuple[str, bytes]]
Make = Callable[[random.Random], tuple[str, str, bytes, dict]]
MAKERS: dict[str, Make] = {}  # what clinic() sends, by kind (for experiments on other apps)


def _environ(method: str, path: str, body: bytes, headers: dict[str, str]) -> dict[str, Any]:
    environ: dict[str, Any] = {
        "REQUEST_METHOD": method,
        "PATH_INFO": path,
        "QUERY_STRING": "",
        "SERVER_NAME": "127.0.0.1",
        "SERVER_PORT": "80",
        "SERVER_PROTOCOL": "HTTP/1.1",
        "REMOTE_ADDR": "127.0.0.1",
        "wsgi.url_scheme": "http",
        "wsgi.input": io.BytesIO(body),
        "wsgi.errors": sys.stderr,
        "wsgi.multithread": False,
        "wsgi.multiprocess": True,
        "wsgi.run_once": False,
        "CONTENT_LENGTH": str(len(body)),
    }
    for name, value in headers.items():
        key = name.upper().replace("-", "_")
        if key == "CONTENT_TYPE":
            environ["CONTENT_TYPE"] = value
        else:
            environ[f"HTTP_{key}"] = value
    return environ


def _caller(app: Any, make: Callable[[random.Random], tuple[str, str, bytes, dict]]) -> Call:
    rng = random.Random(1)

    def call() -> tuple[str, bytes]:
        method, path, body, headers = make(rng)
        answer: list[str] = []

        def start(status: str, headers: list, exc_info: Any = None) -> None:
            answer.append(status)

        chunks = app(_environ(method, path, body, headers), start)
        data = b"".join(chunks)
        if hasattr(chunks, "close"):
            chunks.close()
        return answer[0], data

    return call


KINDS = ("write", "fhir", "bare")
KINDS_VITALS = ("vitals", "bare-vitals")


def _vitals_maker() -> Make:
    """The vitals batch bench.sessions sends, as the nurse, to a session in monitoring."""
    from django_scopes import scopes_disabled

    from bench import sessions as session_bench
    from ketaclinic.accounts.models import Membership
    from ketaclinic.accounts.services import token_create
    from ketaclinic.sessions.models import TreatmentSession

    _, secret = token_create(username="nurse", days=1, name="bench in-process vitals")
    with scopes_disabled():
        organization = Membership.objects.get(user__username="nurse").organization
        sessions = list(
            TreatmentSession.objects.filter(organization=organization, state="monitoring")
            .order_by("chair", "pk")
            .values_list("public_id", flat=True)[: session_bench.CHAIRS]
        )
    if not sessions:
        raise SystemExit(
            "no session in monitoring: run `python -m bench.vitals --scratch DIR` once"
        )
    make = session_bench.requests(
        {"nurse": {"token": secret, "session_cookie": "", "sessions": []},
         "sessions": [str(s) for s in sessions]}
    )[f"vitals_{session_bench.BATCH}"]  # fmt: skip

    # Made before the measurement: building 60 random samples costs about a millisecond, which
    # would count on both sides and blur the ratio. Stale times are fine (only future ones are
    # refused).
    pool = [make(0, random.Random(seed)) for seed in range(64)]

    def vitals(rng: random.Random) -> tuple[str, str, bytes, dict]:
        method, path, body, headers = rng.choice(pool)
        return method, path, body or b"", headers

    return vitals


def clinic(
    scratch: Path, database_url: str = "", kinds: tuple[str, ...] = KINDS
) -> dict[str, Call]:
    """Django set up on the scratch clinic; the callers of `kinds` (write, fhir, bare, vitals,
    bare-vitals), warmed up."""
    os.environ.update(
        KETACLINIC_VAR_DIR=str(scratch),
        DJANGO_SETTINGS_MODULE="config.settings.production",
        ALLOWED_HOSTS="127.0.0.1",
        DEBUG="0",
        LOG_LEVEL="WARNING",
        BENCH_DB=str(scratch / "ketaclinic.sqlite3"),
    )
    if database_url:
        os.environ["DATABASE_URL"] = database_url
        os.environ["BENCH_DATABASE_URL"] = database_url
    import django

    django.setup()
    from django.core.wsgi import get_wsgi_application
    from django_scopes import scopes_disabled

    from bench import bare_wsgi, fhir
    from ketaclinic.accounts.models import Membership
    from ketaclinic.accounts.services import token_create
    from ketaclinic.patients.models import Patient

    _, secret = token_create(username="prescriber", days=1, name="bench in-process")
    with scopes_disabled():
        organization = Membership.objects.get(user__username="prescriber").organization
        patients = [
            str(p)
            for p in Patient.objects.filter(organization=organization, is_active=True)
            .order_by("pk")
            .values_list("public_id", flat=True)[:200]
        ]
    headers = {
        "Authorization": f"Bearer {secret}",
        "Host": "127.0.0.1",
        "Content-Type": "application/json",
    }

    def weight(rng: random.Random) -> tuple[str, str, bytes, dict]:
        body = json.dumps({"value": f"{rng.uniform(50, 110):.1f}", "unit": "kg"}).encode()
        return "POST", f"/api/v1/patients/{rng.choice(patients)}/weights", body, headers

    fhir_make = fhir.requests({"patients": patients, "token": secret})["create"]
    fhir_headers = dict(headers, **{"Content-Type": fhir.FHIR_JSON, "Accept": fhir.FHIR_JSON})

    def observation(rng: random.Random) -> tuple[str, str, bytes, dict]:
        _, path, body, _ = fhir_make(0, rng)
        return "POST", path, body or b"", fhir_headers

    MAKERS.update(write=weight, fhir=observation)
    django_app = get_wsgi_application()
    calls = {
        "write": _caller(django_app, weight),
        "fhir": _caller(django_app, observation),
        "bare": _caller(bare_wsgi.application, weight),
    }
    if any(kind in KINDS_VITALS for kind in kinds):
        vitals = _vitals_maker()
        MAKERS["vitals"] = vitals
        calls["vitals"] = _caller(django_app, vitals)
        calls["bare-vitals"] = _caller(bare_wsgi.application, vitals)
    calls = {name: call for name, call in calls.items() if name in kinds}
    for name, call in calls.items():  # warm-up, and a wrong answer fails loudly
        for _ in range(20):
            status, data = call()
            if not status.startswith("201"):
                raise SystemExit(f"{name}: {status} {data[:300]!r}")
    return calls


def cpu_ms(call: Call, requests: int) -> float:
    begin = time.process_time()
    for _ in range(requests):
        call()
    return (time.process_time() - begin) * 1000 / requests


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.inprocess", description=__doc__)
    parser.add_argument("--scratch", required=True, help="var dir of a built clinic")
    parser.add_argument("--database-url", default="", help="PostgreSQL instead of the SQLite file")
    parser.add_argument("--requests", type=int, default=400, help="per kind and round")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument(
        "--kinds",
        default=",".join(KINDS),
        help=f"comma-separated, of {', '.join(KINDS + KINDS_VITALS)} (default: %(default)s)",
    )
    parser.add_argument("--profile", choices=[*KINDS, *KINDS_VITALS])
    parser.add_argument(
        "--only",
        choices=[*KINDS, *KINDS_VITALS],
        help="run only these requests (e.g. under `perf stat`, whose counts do not vary with load)",
    )
    options = parser.parse_args()
    kinds = tuple(options.kinds.split(","))
    for kind in (options.profile, options.only):
        if kind and kind not in kinds:
            kinds += (kind,)
    unknown = set(kinds) - set(KINDS + KINDS_VITALS)
    if unknown:
        parser.error(f"unknown kinds: {', '.join(sorted(unknown))}")
    calls = clinic(Path(options.scratch).resolve(), options.database_url, kinds)
    if options.only:
        for _ in range(options.requests):
            calls[options.only]()
        return
    if options.profile:
        profiler = cProfile.Profile(time.process_time)  # CPU, not the fsync's wait
        call = calls[options.profile]
        profiler.enable()
        for _ in range(options.requests):
            call()
        profiler.disable()
        out = io.StringIO()
        stats = pstats.Stats(profiler, stream=out)
        stats.sort_stats("cumulative").print_stats(90)
        stats.sort_stats("tottime").print_stats(40)
        print(out.getvalue(), file=sys.stderr)
    # The kinds take turns request by request, and each request's CPU is read on its own: the
    # median per kind holds still on a loaded machine, where a whole round's mean does not.
    samples: dict[str, list[float]] = {name: [] for name in calls}
    started = datetime.now(UTC)
    for _ in range(options.rounds * options.requests):
        for name, call in calls.items():
            begin = time.process_time()
            call()
            samples[name].append((time.process_time() - begin) * 1000)
    median = {name: round(statistics.median(values), 3) for name, values in samples.items()}
    mean = {name: round(statistics.fmean(values), 3) for name, values in samples.items()}
    result = {
        "kind": "in-process server CPU per request (WSGI app called directly, no HTTP)",
        "database": "postgresql" if options.database_url else "sqlite",
        "started_at": started.isoformat(timespec="seconds"),
        "finished_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "requests": options.rounds * options.requests,
        "cpu_ms_per_request_median": median,
        "cpu_ms_per_request_mean": mean,
        **{
            f"{name}_vs_{base}": round(median[name] / median[base], 2)
            for name, base in (("write", "bare"), ("fhir", "bare"), ("vitals", "bare-vitals"))
            if name in median and base in median
        },
        "load_average": [round(x, 2) for x in os.getloadavg()],
    }
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
