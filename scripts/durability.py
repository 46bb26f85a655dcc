"""kill -9 durability: no write the server acknowledged may be lost when it dies mid-flight.

Each round starts the production server (`ketaclinic serve`, gunicorn), lets writer threads
create patients through the JSON API, and after a random moment kills the whole process group
with SIGKILL while writes are in flight. Every patient whose creation was acknowledged (201 with
its id) must be in the database afterwards. Exit status 1 names the lost ids.

    python scripts/durability.py --rounds 20            # SQLite in a fresh temporary directory
    DATABASE_URL=postgres://postgres@127.0.0.1:5432/kc_durability python scripts/durability.py

With DATABASE_URL the database is dropped and re-created first: give it a database of its own.
CI runs it with a small round count (.ci/run); the issue 12 acceptance asks for >= 20 rounds.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import random
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path

from tqdm import tqdm

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from ketaclinic.cli import server_command  # noqa: E402 - after the path that makes it importable

SETUP = """
import django; django.setup()
from ketaclinic.accounts.services import organization_create, token_create, user_create
org = organization_create(name="Durability Clinic", clinic_name="Main", time_zone="UTC")
user_create(organization=org, username="writer", role="prescriber", password="Durable-pass-2026!")
print(token_create(username="writer")[1])
"""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def run(args: list[str], env: dict[str, str]) -> str:
    result = subprocess.run(args, cwd=ROOT, env=env, capture_output=True, text=True, check=False)  # noqa: S603
    if result.returncode != 0:
        sys.exit(f"{' '.join(args)} failed:\n{result.stdout}\n{result.stderr}")
    return result.stdout


def fresh_postgres(url: str) -> None:
    import psycopg

    name = url.rsplit("/", 1)[1]
    admin = psycopg.connect(url.rsplit("/", 1)[0] + "/postgres", autocommit=True)
    admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    admin.execute(f'CREATE DATABASE "{name}"')
    admin.close()


def wait_until_up(port: int, deadline: float) -> None:
    while time.monotonic() < deadline:
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=1)  # noqa: S310
            return
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            time.sleep(0.2)
    sys.exit("the server did not start")


def writer(port: int, token: str, stop: threading.Event, acked: list[str], tag: str) -> None:
    index = 0
    while not stop.is_set():
        index += 1
        body = json.dumps(
            {
                "given_name": "Dura",
                "family_name": f"{tag}-{index}",
                "birth_date": "1980-01-01",
                "sex_at_birth": "female",
            }
        ).encode()
        request = urllib.request.Request(  # noqa: S310 - our own server on 127.0.0.1
            f"http://127.0.0.1:{port}/api/v1/patients",
            data=body,
            headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"},
            method="POST",
        )
        try:
            with urllib.request.urlopen(request, timeout=5) as response:  # noqa: S310
                if response.status == 201:
                    acked.append(json.loads(response.read())["id"])
        except (urllib.error.URLError, http.client.HTTPException, OSError, ValueError):
            time.sleep(0.05)  # the server is down (killed) or refusing: not acknowledged


def stored_ids(env: dict[str, str]) -> set[str]:
    code = (
        "import django; django.setup()\n"
        "from django_scopes import scopes_disabled\n"
        "from ketaclinic.patients.models import Patient\n"
        "with scopes_disabled():\n"
        "    print('\\n'.join(str(p) for p in Patient.objects.values_list('public_id', flat=True)))\n"
    )
    return set(run([sys.executable, "-c", code], env).split())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=20)
    parser.add_argument("--writers", type=int, default=4)
    parser.add_argument("--min-seconds", type=float, default=0.5)
    parser.add_argument("--max-seconds", type=float, default=2.5)
    parser.add_argument("--seed", type=int, default=1)
    options = parser.parse_args()
    rng = random.Random(options.seed)
    work = Path(tempfile.mkdtemp(prefix="ketaclinic-durability-"))
    env = dict(os.environ)
    env.update(
        DJANGO_SETTINGS_MODULE="config.settings.production",
        KETACLINIC_VAR_DIR=str(work),
        KETACLINIC_RUN_WORKER="0",
        WEB_WORKERS="2",
        PYTHONPATH=str(ROOT),
    )
    if env.get("DATABASE_URL", "").startswith("postgres"):
        fresh_postgres(env["DATABASE_URL"])
    cli = [sys.executable, "-m", "ketaclinic.cli"]
    run([*cli, "migrate", "--noinput", "-v", "0"], env)
    token = run([sys.executable, "-c", SETUP], env).strip().splitlines()[-1]
    acked: list[str] = []
    for number in tqdm(range(options.rounds), desc="kill -9 rounds", unit="round"):
        port = free_port()
        # The production server exactly as `ketaclinic serve` starts it (static files are not
        # needed by the JSON API, so the collection step is skipped to keep rounds short).
        server = subprocess.Popen(  # noqa: S603
            server_command("127.0.0.1", port, 2),
            cwd=ROOT,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
        wait_until_up(port, time.monotonic() + 120)
        stop = threading.Event()
        threads = [
            threading.Thread(target=writer, args=(port, token, stop, acked, f"r{number}w{w}"))
            for w in range(options.writers)
        ]
        for thread in threads:
            thread.start()
        time.sleep(rng.uniform(options.min_seconds, options.max_seconds))
        os.killpg(server.pid, signal.SIGKILL)  # the whole group: gunicorn's master and workers
        server.wait()
        stop.set()
        for thread in threads:
            thread.join()
    lost = sorted(set(acked) - stored_ids(env))
    engine = "PostgreSQL" if env.get("DATABASE_URL", "").startswith("postgres") else "SQLite"
    print(
        f"{engine}: {options.rounds} rounds of kill -9, {len(acked)} acknowledged writes, "
        f"{len(lost)} lost"
    )
    if lost:
        print("lost:", ", ".join(lost[:20]))
        sys.exit(1)


if __name__ == "__main__":
    main()
