import subprocess
import sys
from datetime import timedelta
from zoneinfo import ZoneInfo

import pytest
from django.core.management import CommandError, call_command
from django.test import Client
from django_scopes import scope, scopes_disabled

from ketaclinic.accounts.models import Membership, Organization
from ketaclinic.core import clock
from ketaclinic.demo.generator import DEMO_ORGANIZATION
from ketaclinic.messaging.selectors import contact_policy
from ketaclinic.patients.models import Patient
from ketaclinic.scheduling import selectors
from ketaclinic.scheduling.models import Appointment, AppointmentType

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
    # Two patients, both treated: the command's wiring, its idempotence and the calendar it
    # leaves. Each treated patient is weeks of sessions replayed through the services (about 2 s
    # of CPU each); what a demo day shows on every screen is test_walk's demo of 8.
    first = run("demo", "--patients", "2", "--seed", "3")
    assert "2 patients" in first
    second = run("demo", "--patients", "2")
    assert "already present" in second
    with scopes_disabled():
        assert Organization.objects.filter(name=DEMO_ORGANIZATION).count() == 1
        assert Patient.objects.count() == 2
        organization = Organization.objects.get(name=DEMO_ORGANIZATION)
    _the_front_desk_can_book_the_next_14_days(organization)


def _the_front_desk_can_book_the_next_14_days(organization: Organization) -> None:
    """`ketaclinic demo` leaves a calendar the front desk can book: free slots for 14 days
    (checked on the demo built above rather than on a second one of its own)."""
    with scope(organization=organization):
        clinic = organization.clinics.get()
        iv = AppointmentType.objects.get(kind="iv_infusion")
        today = clock.now().astimezone(ZoneInfo(clinic.time_zone)).date()
        weekdays = [
            today + timedelta(days=d)
            for d in range(1, 15)
            if (today + timedelta(days=d)).weekday() < 5
        ]
        for day in weekdays:
            assert selectors.free_slots(clinic, iv, day), day
        assert Appointment.objects.filter(status="booked").exists()
        assert contact_policy(organization).email_allowed_by_default is True


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
