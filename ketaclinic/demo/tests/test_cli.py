import subprocess
import sys

import pytest
from django.core.management import CommandError, call_command
from django.test import Client
from django_scopes import scopes_disabled

from ketaclinic.accounts.models import Membership, Organization
from ketaclinic.demo.generator import DEMO_ORGANIZATION
from ketaclinic.patients.models import Patient

pytestmark = pytest.mark.django_db


def run(command, *args):
    from io import StringIO

    out = StringIO()
    call_command(command, *args, stdout=out)
    return out.getvalue().strip()


def test_an_operator_sets_up_an_organization_a_user_and_a_token():
    organization_id = run(
        "create_organization", "Lakeside Ketamine", "--time-zone", "America/Denver"
    )
    organization = Organization.objects.get(public_id=organization_id)
    output = run(
        "create_user",
        "--organization",
        organization_id,
        "--username",
        "drsmith",
        "--role",
        "prescriber",
        "--password",
        "Lakeside-drsmith-2026!",
    )
    assert "otpauth://" in output
    with scopes_disabled():
        assert Membership.objects.get(user__username="drsmith").organization == organization
    token = run("create_token", "--username", "drsmith", "--days", "7")
    assert token.startswith("kc_")
    response = Client(headers={"Authorization": f"Bearer {token}"}).get("/api/v1/patients")
    assert response.status_code == 200


def test_bad_cli_input_is_a_clear_error():
    with pytest.raises(CommandError, match="time zone"):
        run("create_organization", "X", "--time-zone", "Mars/Olympus")
    organization_id = run("create_organization", "Y")
    with pytest.raises(CommandError, match="password"):
        run(
            "create_user",
            "--organization",
            organization_id,
            "--username",
            "u1",
            "--role",
            "nurse",
            "--password",
            "123",
        )
    with pytest.raises(CommandError, match="No organization"):
        run("create_user", "--organization", "nope", "--username", "u2", "--role", "nurse")
    with pytest.raises(CommandError, match="No active user 'nobody'"):
        run("create_token", "--username", "nobody", "--days", "0")


def test_the_demo_is_built_once():
    first = run("demo", "--patients", "5", "--seed", "3")
    assert "5 patients" in first
    second = run("demo", "--patients", "5")
    assert "already present" in second
    with scopes_disabled():
        assert Organization.objects.filter(name=DEMO_ORGANIZATION).count() == 1
        assert Patient.objects.count() == 5


def test_the_console_script_lists_its_commands():
    result = subprocess.run(
        [sys.executable, "-m", "ketaclinic.cli", "--help"],
        capture_output=True,
        text=True,
        check=True,
    )
    for name in (
        "serve",
        "create-organization",
        "create-user",
        "create-token",
        "demo",
        "audit-verify",
    ):
        assert name in result.stdout
