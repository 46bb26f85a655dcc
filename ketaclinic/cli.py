"""`ketaclinic <command>`: the operator's entry point, a thin wrapper over Django commands.

Commands are spelled with hyphens (create-user) and map to management commands (create_user);
`serve` starts gunicorn, the production server.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

COMMANDS = {
    "create-organization": "create_organization",
    "create-user": "create_user",
    "create-token": "create_token",
    "list-tokens": "list_tokens",
    "revoke-token": "revoke_token",
    "demo": "demo",
    "audit-verify": "audit_verify",
    "totp-code": "totp_code",
    "rotate-totp-keys": "rotate_totp_keys",
    "migrate": "migrate",
    "import-fhir": "import_fhir",
    "ledger-verify": "ledger_verify",
    "worker": "worker",
    "export": "export",
    "outcomes-recompute": "outcomes_recompute",
    "report": "report",
    "collectstatic": "collectstatic",
    "backup": "backup",
    "restore": "restore",
}


def main(argv: list[str] | None = None) -> None:
    argv = list(sys.argv[1:] if argv is None else argv)
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings.production")
    project_root = Path(__file__).resolve().parents[1]
    if str(project_root) not in sys.path:
        sys.path.insert(0, str(project_root))
    if not argv or argv[0] in {"-h", "--help", "help"}:
        print("usage: ketaclinic <command> [options]\n\ncommands:")
        for name in ("serve", *COMMANDS):
            print(f"  {name}")
        return
    command, rest = argv[0], argv[1:]
    if command == "serve":
        serve(rest)
        return
    if command not in COMMANDS:
        print(f"ketaclinic: unknown command {command!r} (see 'ketaclinic --help')", file=sys.stderr)
        raise SystemExit(2)
    from django.core.management import execute_from_command_line

    execute_from_command_line(["ketaclinic", COMMANDS[command], *rest])


def serve(args: list[str]) -> None:
    """Run gunicorn and, beside it, the background worker (alert escalation, queued tasks)."""
    import argparse

    parser = argparse.ArgumentParser(prog="ketaclinic serve")
    parser.add_argument("--port", type=int, default=8000)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--workers", type=int, default=int(os.environ.get("WEB_WORKERS", "2")))
    parser.add_argument(
        "--no-worker",
        action="store_true",
        default=_run_worker_setting() is False,
        help="do not start the background worker (run `ketaclinic worker` elsewhere)",
    )
    options = parser.parse_args(args)
    collect_static()
    server = server_command(options.host, options.port, options.workers)
    if options.no_worker:
        os.execv(server[0], server)  # noqa: S606 - replaces this process, arguments are ours
    run_together(server, worker_command())


def collect_static() -> None:
    """Gather the static files (and their hashed manifest) before the server starts.

    Production serves static files through whitenoise's manifest storage: without a collected
    manifest every page that links a stylesheet answers 500, which is what `migrate` then `serve`
    on a fresh checkout used to do. Collecting is quick when nothing changed (files are compared),
    so it runs on every start instead of being a separate step an operator can forget.
    """
    import django
    from django.core.management import call_command

    django.setup()
    call_command("collectstatic", interactive=False, verbosity=0)


def _run_worker_setting() -> bool:
    value = os.environ.get("KETACLINIC_RUN_WORKER", "1")
    if value not in ("0", "1"):
        raise SystemExit(f"KETACLINIC_RUN_WORKER must be 0 or 1, not {value!r}")
    return value == "1"


def server_command(host: str, port: int, workers: int) -> list[str]:
    gunicorn = str(Path(sys.executable).with_name("gunicorn"))
    return [
        gunicorn,
        "config.wsgi:application",
        "--bind",
        f"{host}:{port}",
        "--workers",
        str(workers),
        "--access-logfile",
        "-",
        "--graceful-timeout",
        "10",
        # gunicorn 27 opens one control socket per user home; two servers would share it.
        "--no-control-socket",
    ]


def worker_command() -> list[str]:
    return [sys.executable, "-m", "ketaclinic.cli", "worker"]


def run_together(server: list[str], worker: list[str], *, restart_pause: float = 5.0) -> None:
    """Run the web server with a worker beside it until the server ends.

    A stop signal reaches both. A worker that dies is started again (after a pause, so a worker
    that cannot start does not spin): without it, alerts would silently stop escalating.
    """
    import signal
    import subprocess
    import time

    web = subprocess.Popen(server)  # noqa: S603 - our own arguments
    background = subprocess.Popen(worker)  # noqa: S603
    stopping = False

    def stop(signum: int, frame: object) -> None:
        nonlocal stopping
        stopping = True
        for child in (web, background):
            if child.poll() is None:
                child.send_signal(signal.SIGTERM)

    previous = {sig: signal.signal(sig, stop) for sig in (signal.SIGTERM, signal.SIGINT)}
    try:
        while web.poll() is None:
            if background.poll() is not None and not stopping:
                print(
                    "ketaclinic: the background worker stopped; starting it again", file=sys.stderr
                )
                time.sleep(restart_pause)
                background = subprocess.Popen(worker)  # noqa: S603
            time.sleep(0.5)
        stop(signal.SIGTERM, None)
        background.wait()
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    raise SystemExit(web.returncode)


if __name__ == "__main__":
    main()
