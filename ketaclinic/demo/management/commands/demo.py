from django.core.management.base import BaseCommand, CommandParser
from tqdm import tqdm

from ketaclinic.accounts.audit import audit_seal
from ketaclinic.core.planner import refresh_statistics
from ketaclinic.demo.generator import DEMO_PASSWORD, build_demo


class Command(BaseCommand):
    help = (
        "Build a synthetic demo clinic in the middle of its life (staff of every role, patients "
        "with history, treatment plans, sessions, questionnaires, stock). Idempotent; the same "
        "--seed gives the same clinic relative to today."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--patients", type=int, default=200)
        parser.add_argument("--seed", type=int, default=1)

    def handle(self, *args: object, **options: int) -> None:
        with tqdm(total=options["patients"], unit="step", desc="demo clinic", disable=None) as bar:
            result = build_demo(patients=options["patients"], seed=options["seed"], progress=bar)
        # Seal the demo's audit trail now rather than on the worker's first round.
        audit_seal()
        if not result.created:
            self.stdout.write(
                f"Demo clinic already present ({result.organization.name}); nothing changed."
            )
            return
        refresh_statistics()  # thousands of new rows: the planner needs to know
        self.stdout.write(
            f"Demo clinic '{result.organization.name}': {result.patients} patients, "
            f"{result.sessions} treatment sessions, {result.rows} recorded steps."
        )
        self.stdout.write(
            "Log in as prescriber / nurse / nurse2 / therapist / frontdesk / admin / compliance / "
            f"researcher, password {DEMO_PASSWORD}"
        )
        if result.portal_username:
            self.stdout.write(
                f"Patient portal (/portal/): {result.portal_username}, password {DEMO_PASSWORD}"
            )
        self.stdout.write(
            "Authenticator code: .venv/bin/ketaclinic totp-code <username>  (or add a key below to an authenticator app)"
        )
        for username, url in result.authenticators.items():
            self.stdout.write(f"  {username}: {url}")
