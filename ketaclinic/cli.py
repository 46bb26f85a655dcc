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
    "demo": "demo",
    "audit-verify": "audit_verify",
    "totp-code": "totp_code",
    "migrate": "migrate",
    "import-fhir": "import_fhir",
    "ledger-verify": "ledger_verify",
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
    import argparse

    parser = argparse.ArgumentParser(prog="ketaclinic serve")
    parser.add_argument("--port", type=int, default=8000)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--workers", type=int, default=int(os.environ.get("WEB_WORKERS", "2")))
    options = parser.parse_args(args)
    gunicorn = Path(sys.executable).with_name("gunicorn")
    os.execv(  # noqa: S606 - replaces this process with the server, arguments are ours
        str(gunicorn),
        [
            str(gunicorn),
            "config.wsgi:application",
            "--bind",
            f"{options.host}:{options.port}",
            "--workers",
            str(options.workers),
            "--access-logfile",
            "-",
            "--graceful-timeout",
            "10",
            # gunicorn 27 opens one control socket per user home; two servers would share it.
            "--no-control-socket",
        ],
    )


if __name__ == "__main__":
    main()
