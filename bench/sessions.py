"""Treatment-session passes for `make bench` (issue 6): vitals recording over the JSON API and
the clinic floor board, with CHAIRS sessions in monitoring.

Set-up (`python -m bench.sessions --chairs 20`, run by bench.run in a subprocess with the scratch
environment; prints one JSON object): CHAIRS new patients, each taken to monitoring through the
same services the session tests' builders use (ketaclinic.sessions.tests.builders): intake,
screening decision and signed consent, a weight, an IV ketamine plan, then schedule on chair N,
check in, prechecks, a dose order signed by the prescriber, the dose given and finished. The
clinic gets at least CHAIRS chairs first (chairs able to host every route are added as needed).
Sessions already in monitoring (a reused --scratch dir) are kept and counted. The nurse's
browser session and bearer token come from bench.prepare (`--username nurse`).

Passes, on the running server, as the nurse:
1. Floor board: GET /floor/ with HX-Request (the rows partial the page polls every 2 s), 1 client.
2. Vitals: POST /api/v1/sessions/<id>/vitals, closed loop, a random session of the CHAIRS per
   request; one sample per request at 1, 4 and 16 clients, then a batch of BATCH samples (taken
   15 s apart, as a monitor catching up would send them) at 16. Each pass is repeated on the bare
   WSGI baseline (bench.bare_wsgi: the same transaction without Django), so every vitals figure
   has its own baseline. Rates are reported per sample too.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import random
import sys
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from bench import load

if TYPE_CHECKING:
    from bench.run import Bench

CHAIRS = 20
CLIENTS = 16
BATCH = 60  # issue 13: a monitor catching up sends a minute or more at once
PROTOCOL = "iv-ketamine-induction"


# --- set-up, in the scratch environment ----------------------------------------------------------


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--chairs", type=int, default=CHAIRS)
    parser.add_argument("--username", default="prescriber", help="who runs the sessions")
    parser.add_argument("--seed", type=int, default=6)
    options = parser.parse_args()
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings.production")
    import django

    django.setup()

    from datetime import date

    from django_scopes import scope, scopes_disabled

    from ketaclinic.accounts.actor import Actor
    from ketaclinic.accounts.chairs import ChairCapability
    from ketaclinic.accounts.models import Chair, Clinic, Membership
    from ketaclinic.core import clock
    from ketaclinic.patients.services import patient_create
    from ketaclinic.sessions import services
    from ketaclinic.sessions.models import TreatmentSession
    from ketaclinic.sessions.tests.builders import (
        NORMAL,
        make_plan,
        make_treatable,
        ticked,
        weigh,
    )
    from ketaclinic.sessions.workflow import SessionState

    rng = random.Random(options.seed)
    with scopes_disabled():
        membership = Membership.objects.select_related("user", "organization").get(
            user__username=options.username, is_active=True
        )
    actor = Actor(membership=membership, channel="cli", client_address="127.0.0.1")
    with scope(organization=actor.organization):
        clinic = membership.home_clinic or Clinic.objects.order_by("pk").first()
        if clinic is None:
            sys.exit("the organization has no clinic")
        numbers = set(Chair.objects.filter(clinic=clinic).values_list("number", flat=True))
        # The demo's own chairs may be booked today: CHAIRS more chairs, used first, are free.
        for number in range(1, len(numbers) + options.chairs + 1):
            if number not in numbers:
                Chair.objects.create(
                    organization=clinic.organization,
                    clinic=clinic,
                    number=number,
                    capabilities=[c.value for c in ChairCapability],
                )
        chair_count = Chair.objects.filter(clinic=clinic).count()
        monitoring = list(
            TreatmentSession.objects.filter(clinic=clinic, state=SessionState.MONITORING)
            .order_by("chair", "pk")
            .values_list("public_id", "chair")
        )
        kept = monitoring[: options.chairs]
        taken = {chair for _, chair in kept}
        free = [c for c in range(chair_count, 0, -1) if c not in taken]
        made = []
        for chair in free[: options.chairs - len(kept)]:
            patient = patient_create(
                actor=actor,
                data={
                    "given_name": rng.choice(["Avery", "Jordan", "Noor", "Riley", "Sage"]),
                    "family_name": f"Chair{chair:02d}",
                    "birth_date": date(1960, 1, 1) + timedelta(days=rng.randrange(0, 365 * 40)),
                    "sex_at_birth": rng.choice(["female", "male"]),
                },
            )
            make_treatable(actor, patient, PROTOCOL)
            weigh(actor, patient, str(rng.randint(60, 100)))
            plan = make_plan(actor, patient, PROTOCOL)
            session = services.session_schedule(
                actor=actor, plan=plan, scheduled_at=clock.now(), chair=chair
            )
            session = services.session_check_in(actor=actor, session=session)
            services.precheck_record(
                actor=actor, session=session, checklist=ticked(session), vitals=NORMAL
            )
            session.refresh_from_db()
            order = services.dose_order_sign(actor=actor, session=session)
            given = clock.now()  # a bolus: started and finished at once, monitoring begins
            services.dose_administer(
                actor=actor,
                session=session,
                dose_mg=order.dose_mg,
                lot_number="BENCH-1",
                started_at=given,
                ended_at=given,
            )
            session.refresh_from_db()
            if session.state != SessionState.MONITORING:
                sys.exit(f"session on chair {chair} is {session.state}, not monitoring")
            made.append((session.public_id, chair))
    chosen = kept + made
    if len(chosen) < options.chairs:
        sys.exit(f"only {len(chosen)} chairs free for {options.chairs} sessions")
    json.dump(
        {
            "sessions": [str(public_id) for public_id, _ in chosen],
            "chairs": [chair for _, chair in chosen],
            "created": len(made),
            "reused": len(kept),
            "protocol": PROTOCOL,
            "clinic_chairs": chair_count,
        },
        sys.stdout,
    )


# --- in bench.run ----------------------------------------------------------------------------


def prepare(bench: Bench) -> None:
    """The CHAIRS sessions, and the nurse's browser session and token (before any server)."""
    with bench.step(f"{CHAIRS} sessions in monitoring (session services), nurse session + token"):
        setup = json.loads(
            bench.run("sessions-setup", ["-m", "bench.sessions", "--chairs", str(CHAIRS)],
                      capture=True)
        )  # fmt: skip
        nurse = json.loads(
            bench.run("prepare-nurse", ["-m", "bench.prepare", "--username", "nurse",
                      "--sessions", str(CLIENTS), "--patients", "1"], capture=True)
        )  # fmt: skip
    bench.session_targets = {**setup, "nurse": nurse}


def requests(targets: dict[str, Any]) -> dict[str, load.MakeRequest]:
    nurse = targets["nurse"]
    sessions = targets["sessions"]
    cookie, keys = nurse["session_cookie"], nurse["sessions"]
    api = {
        "Authorization": f"Bearer {nurse['token']}",
        "Host": "127.0.0.1",
        "Content-Type": "application/json",
    }

    def floor(index: int, rng: random.Random) -> load.Request:
        headers = {"Cookie": f"{cookie}={keys[index % len(keys)]}", "Host": "127.0.0.1",
                   "HX-Request": "true"}  # fmt: skip
        return "GET", "/floor/", None, headers

    def sample(rng: random.Random, taken_at: datetime) -> dict[str, Any]:
        systolic = rng.randint(110, 135)
        return {
            "taken_at": taken_at.isoformat(),
            "systolic": systolic,
            "diastolic": systolic - rng.randint(35, 50),
            "heart_rate": rng.randint(60, 90),
            "spo2": rng.randint(96, 99),
            "respiratory_rate": rng.randint(12, 18),
        }

    def vitals(count: int) -> load.MakeRequest:
        def make(index: int, rng: random.Random) -> load.Request:
            now = datetime.now(UTC)
            samples = [sample(rng, now - timedelta(seconds=15 * k)) for k in range(count)][::-1]
            body = json.dumps({"samples": samples}).encode()
            return "POST", f"/api/v1/sessions/{rng.choice(sessions)}/vitals", body, api

        return make

    return {"floor": floor, "vitals_1": vitals(1), f"vitals_{BATCH}": vitals(BATCH)}


def _board_rows(port: int, make: load.MakeRequest) -> int:
    """Rows on the floor board as the nurse sees it (every active session of the clinic)."""
    method, path, body, headers = make(0, random.Random(0))
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    try:
        conn.request(method, path, body=body, headers=headers)
        text = conn.getresponse().read().decode()
    finally:
        conn.close()
    if "<html" in text:
        raise SystemExit("bench: /floor/ with HX-Request answered the full page, not the partial")
    return text.count("data-session=")


LEVELS = (1, 4, 16)  # clients for the one-sample write, each beside the bare baseline


def measure(
    bench: Bench,
    port: int,
    probe: load.CpuProbe,
    bare_port: int,
    bare_probe: load.CpuProbe,
    *,
    batch_only: bool = False,
) -> None:
    """The floor board and vitals passes, on the already-running ketaclinic server; each vitals
    pass is followed by the same requests to the bare WSGI baseline (bench.bare_wsgi, the same
    transaction without Django). `batch_only`: the BATCH-sample pass alone (bench.vitals)."""
    t = bench.session_targets
    make = requests(t)
    bench.preflight(port, make["floor"], 200, "floor board")
    for key in ("vitals_1", f"vitals_{BATCH}"):
        bench.preflight(port, make[key], 201, f"vitals {key}")
    rows = _board_rows(port, make["floor"])
    if rows < len(t["sessions"]):
        raise SystemExit(f"bench: the floor board shows {rows} rows, expected {len(t['sessions'])}")
    seconds = bench.options.sessions_seconds
    result: dict[str, Any] = {
        "chairs": len(t["sessions"]),
        "board_rows": rows,
        "sessions_created": t["created"],
        "sessions_reused": t["reused"],
        "protocol": t["protocol"],
        "clients": CLIENTS,
        "batch": BATCH,
        "user": "nurse",
    }
    # Audit events the passes before left unsealed would be sealed by ketaclinic's worker during
    # these passes and charged to them (bare's vitals leave as many as they write): each
    # ketaclinic pass starts with none and is charged for sealing its own (Bench.charge_sealing).
    bench.seal_backlog()
    with bench.step(f"floor board partial, {rows} rows, 1 client"):
        outcome = load.closed_loop(
            name="floor board x1", host="127.0.0.1", port=port, make=make["floor"],
            expected=200, clients=1, seconds=seconds, warmup=1, probe=probe,
        )  # fmt: skip
        bench._line(outcome)
        result["floor"] = outcome.as_dict()
    for key in ("vitals_1", f"vitals_{BATCH}"):
        bench.preflight(bare_port, make[key], 201, f"bare {key}")
    levels = ([] if batch_only else [(1, c) for c in LEVELS]) + [(BATCH, CLIENTS)]
    with bench.step(f"vitals API: 1 sample at {LEVELS} clients, {BATCH} at {CLIENTS}; + bare"):
        for count, clients in levels:
            for server, server_port, server_probe in (("ketaclinic", port, probe),
                                                      ("bare", bare_port, bare_probe)):  # fmt: skip
                if server == "ketaclinic":
                    bench.seal_backlog()
                outcome = load.closed_loop(
                    name=f"{'bare ' if server == 'bare' else ''}vitals/{count} x{clients}",
                    host="127.0.0.1", port=server_port, make=make[f"vitals_{count}"],
                    expected=201, clients=clients, seconds=seconds, warmup=1,
                    probe=server_probe,
                )  # fmt: skip
                data = (
                    bench.charge_sealing(outcome) if server == "ketaclinic" else outcome.as_dict()
                )
                bench._line(outcome)  # after the charge, which it then shows
                data["samples_per_request"] = count
                data["samples_per_second"] = round(outcome.throughput * count, 1)
                cpu = data["server_cpu_ms_per_request"]
                data["server_cpu_ms_per_sample"] = round(cpu / count, 3) if cpu else None
                suffix = "" if clients == CLIENTS else f"_x{clients}"
                prefix = "bare_" if server == "bare" else ""
                result[f"{prefix}vitals_{count}{suffix}"] = data
    bench.data["sessions"] = result


def rows(
    data: dict[str, Any], *, with_context: bool = True
) -> tuple[list[tuple[str, str, str, str]], int]:
    """Table rows for the session passes, and their error count. `with_context`: beside the
    chart page and the write API of the same run (bench.run; bench.vitals has neither)."""
    s = data.get("sessions")
    if not s:
        return [], 0
    out: list[tuple[str, str, str, str]] = []
    f = s["floor"]
    reads = data["ketaclinic"]["reads"] if with_context else []
    chart = next((r for r in reads if r["name"] == "chart x1"), None)
    extra = f", {s['board_rows']} rows" if s["board_rows"] != s["chairs"] else ""
    out.append((f"floor board partial, {s['chairs']} chairs in monitoring{extra}, p50 / p95",
                _ms(f, "p50_ms", "p95_ms"),
                f"chart page p50 {chart['p50_ms']:.1f} ms" if chart else "",
                f"{f['p50_ms'] / chart['p50_ms']:.2f}x p50" if chart else ""))  # fmt: skip
    out.append(("  server CPU per render", f"{f['server_cpu_ms_per_request']} ms", "", ""))
    writes = {w["clients"]: w for w in data["ketaclinic"]["writes"]} if with_context else {}
    weights = writes.get(s["clients"])
    one = s.get("vitals_1")
    for count in (1, s["batch"]):
        v = s.get(f"vitals_{count}")
        if v is None:
            continue
        label = "sample" if count == 1 else "samples"
        if count == 1:
            base = (f"write API (weights) {weights['throughput']:,.0f} req/s" if weights else "",
                    f"{v['throughput'] / weights['throughput']:.2f}x" if weights else "")  # fmt: skip
            lat = ("write API " + _ms(weights, "p50_ms", "p99_ms") if weights else "", "")
        elif one:
            base = (f"1/request {one['samples_per_second']:,.0f} samples/s",
                    f"{v['samples_per_second'] / one['samples_per_second']:.1f}x samples/s")  # fmt: skip
            lat = ("1/request " + _ms(one, "p50_ms", "p99_ms"), "")
        else:
            base, lat = ("", ""), ("", "")
        out.append((f"vitals API, {count} {label}/request, {s['clients']} clients",
                    f"{v['samples_per_second']:,.0f} samples/s ({v['throughput']:,.0f} req/s)",
                    *base))  # fmt: skip
        out.append(("  latency p50 / p99", _ms(v, "p50_ms", "p99_ms"), *lat))
        if v["server_cpu_ms_per_sample"]:
            out.append(("  server CPU per sample", f"{v['server_cpu_ms_per_sample']:.3f} ms",
                        "", ""))  # fmt: skip
    keys = [k for k in s if k.startswith("vitals_1") or k == f"vitals_{s['batch']}"]
    for key in sorted(keys, key=lambda k: (s[k]["samples_per_request"], s[k]["clients"])):
        bare = s.get(f"bare_{key}")
        v = s[key]
        if not bare:
            continue
        label = key.replace("vitals_", "").replace("_x", " x")
        clients = v["clients"]
        out.append((f"vitals {label.split()[0]}/request vs bare WSGI, {clients} clients",
                    f"{v['throughput']:,.0f} req/s", f"bare {bare['throughput']:,.0f} req/s",
                    f"{v['throughput'] / bare['throughput']:.2f}x"))  # fmt: skip
        cpu, bare_cpu = v["server_cpu_ms_per_request"], bare["server_cpu_ms_per_request"]
        if cpu and bare_cpu:
            out.append(("  server CPU per request", f"{cpu:.2f} ms", f"bare {bare_cpu:.2f} ms",
                        f"{cpu / bare_cpu:.1f}x"))  # fmt: skip
    errors = sum(v["errors"] for k, v in s.items() if isinstance(v, dict) and "errors" in v)
    return out, errors


def _ms(result: dict[str, Any], a: str, b: str) -> str:
    return f"{result[a]:.1f} / {result[b]:.1f} ms"


if __name__ == "__main__":
    main()
