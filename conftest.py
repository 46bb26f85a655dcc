"""Shared test cast (NetBox/healthchecks style): two organizations, a user of every role in the
first, an outsider in the second, and helpers to act as each through the UI, the API or a service."""

from __future__ import annotations

import os
from collections.abc import Iterator
from datetime import UTC, date, datetime
from typing import Any

import pytest
import time_machine
from django.test import Client
from django_otp import DEVICE_ID_SESSION_KEY
from django_scopes import scope, scopes_disabled
from hypothesis import settings as hypothesis_settings

from ketaclinic.accounts.actor import Actor
from ketaclinic.accounts.models import EncryptedTOTPDevice, Membership, Organization
from ketaclinic.accounts.roles import Role
from ketaclinic.accounts.services import (
    organization_create,
    token_create,
    totp_device_create,
    user_create,
)
from tests import query_pins

PASSWORD = "Tq8#vx-pl2-zzk-49"

# Every API and FHIR request a test makes is held to its route's query pin (tests/query_pins.py).
query_pins.install()


def pytest_sessionfinish(session: pytest.Session) -> None:
    query_pins.save_recorded(os.environ.get("PYTEST_XDIST_WORKER", "main"))


# Property tests judge correctness, not speed: on a loaded 2-core CI machine a per-example
# deadline only produces flaky failures. Speed is measured by `make bench`.
hypothesis_settings.register_profile("ketaclinic", deadline=None)
# CI explores a fixed, reproducible set of examples so a red run can be replayed exactly; local
# runs keep exploring new ones.
hypothesis_settings.register_profile("ci", deadline=None, derandomize=True, print_blob=True)
hypothesis_settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ketaclinic"))


# Fixtures through which a test reaches the database. pytest-django refuses database access to a
# test that requests none of them, so a test without them cannot behave differently on another
# database engine.
_DATABASE_FIXTURES = frozenset({"db", "transactional_db", "_django_db_helper", "live_server"})


def _reaches_database(item: pytest.Item) -> bool:
    if item.get_closest_marker("django_db") is not None:
        return True
    return bool(_DATABASE_FIXTURES & set(getattr(item, "fixturenames", ())))


def _runs_on_postgresql(item: pytest.Item) -> bool:
    return (
        _reaches_database(item)
        and item.get_closest_marker("browser") is None
        and item.get_closest_marker("screens_walk") is None
    )


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """On PostgreSQL (`make test-pg`) run the tests that use the database, except the Chromium
    flows and the two walks over every screen.

    Tests that never reach the database (pure domain rules, property tests, tests that start
    their own SQLite servers) already ran in `make test` and would give the same result again.
    The Chromium flows test the screens, which are the same whatever the engine; everything
    they do goes through services and API routes whose own tests run on PostgreSQL (locking,
    constraints, concurrency). The same holds for the walks over every screen (`screens_walk`:
    every form keeps what was typed; every number and time reads as a clinician writes it):
    they check what a reader sees. Running them twice cost CI minutes it does not have. These
    are reported as deselected, not skipped; `KETACLINIC_PG_ALL=1` runs everything.
    """
    _name_xdist_groups(config, items)
    _long_ones_first(items)
    if not os.environ.get("DATABASE_URL", "").startswith("postgres"):
        return
    if os.environ.get("KETACLINIC_PG_ALL") == "1":
        return
    kept = [item for item in items if _runs_on_postgresql(item)]
    if len(kept) == len(items):
        return
    config.hook.pytest_deselected(items=[item for item in items if not _runs_on_postgresql(item)])
    items[:] = kept


def _long_ones_first(items: list[pytest.Item]) -> None:
    """The tests marked `long` (tens of seconds each: the walks, the fresh clinic, `migrate` in a
    subprocess) go to the front, in their order; the rest keep theirs. xdist hands out tests as
    its workers ask for them, so a long test collected near the end ran alone while the other
    worker sat idle (CI on a slow evening: 1,283 s against the 20 minutes it may take)."""
    items.sort(key=lambda item: item.get_closest_marker("long") is None)


def _name_xdist_groups(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Suffix each grouped test's id with its xdist_group ("...::test@group"), which is how
    `--dist loadgroup` sends a group to one worker.

    pytest-xdist 3.8 writes the suffix to `Item._nodeid`, which pytest 9 no longer reads (the id
    lives in `Item._id`): every group was silently spread over both workers, and each worker built
    the class's shared clinic again (the bulk-export classes' demo clinics). Only on a loadgroup
    worker, and only when the id has no suffix yet (a fixed xdist adds it itself).
    """
    if not getattr(config.option, "loadgroup", False):  # set on xdist workers only
        return
    from _pytest.nodeid import NodeId

    for item in items:
        names = sorted(
            {
                str(m.args[0] if m.args else m.kwargs.get("name", "default"))
                for m in item.iter_markers("xdist_group")
            }
        )
        if names and "@" not in item.nodeid:
            item._id = NodeId.parse(f"{item.nodeid}@{'_'.join(names)}")


# A Monday afternoon: session, dosing and FHIR session tests travel here (`traveller`), so that
# weights, screening decisions, consents and doses recorded "now" line up.
SESSION_DAY = datetime(2026, 3, 2, 15, 0, tzinfo=UTC)


@pytest.fixture
def traveller() -> Iterator[Any]:
    with time_machine.travel(SESSION_DAY, tick=False) as traveller:
        yield traveller


@pytest.fixture
def org_a(db: Any) -> Organization:
    return organization_create(
        name="Clinic A", clinic_name="A Main", time_zone="America/Chicago", chairs=4
    )


@pytest.fixture
def org_b(db: Any) -> Organization:
    return organization_create(
        name="Clinic B", clinic_name="B Main", time_zone="Europe/Berlin", chairs=4
    )


def make_member(organization: Organization, role: str, username: str | None = None) -> Membership:
    user, membership, _ = user_create(
        organization=organization,
        username=username or f"{role}-{organization.public_id.hex[:6]}",
        role=role,
        password=PASSWORD,
    )
    totp_device_create(user=user)
    return membership


@pytest.fixture
def members(org_a: Organization) -> dict[str, Membership]:
    """One membership of every role in organization A, keyed by role."""
    return {role.value: make_member(org_a, role.value) for role in Role}


@pytest.fixture
def outsider(org_b: Organization) -> Membership:
    """A prescriber of organization B: may do everything, but only in B."""
    return make_member(org_b, Role.PRESCRIBER.value, username="outsider")


def actor_for(membership: Membership, channel: str = "ui") -> Actor:
    return Actor(membership=membership, channel=channel, client_address="127.0.0.1")


@pytest.fixture
def prescriber(members: dict[str, Membership]) -> Actor:
    return actor_for(members["prescriber"])


def staff_client(membership: Membership) -> Client:
    """A browser session that has passed password and TOTP."""
    client = Client()
    client.force_login(membership.user)
    session = client.session
    device = EncryptedTOTPDevice.objects.get(user=membership.user)
    session[DEVICE_ID_SESSION_KEY] = device.persistent_id
    session.save()
    return client


def totp_code(user: Any) -> str:
    """The current code of `user`'s authenticator (what a witness types on a colleague's screen)."""
    from django_otp.oath import TOTP

    device = user.encryptedtotpdevice_set.get()
    totp = TOTP(device.bin_key, device.step, device.t0, device.digits, device.drift)
    return f"{totp.token():0{device.digits}d}"


def api_client(membership: Membership) -> Client:
    _, secret = token_create(username=membership.user.username)
    return Client(headers={"Authorization": f"Bearer {secret}"})


@pytest.fixture
def in_scope_a(org_a: Organization) -> Iterator[None]:
    with scope(organization=org_a):
        yield


def make_patient(actor: Actor, **overrides: Any) -> Any:
    from ketaclinic.patients.services import patient_create

    data = {
        "given_name": "Ada",
        "family_name": "Lovelace",
        "birth_date": date(1985, 12, 10),
        "sex_at_birth": "female",
    }
    data.update(overrides)
    with scope(organization=actor.organization):
        return patient_create(actor=actor, data=data)


@pytest.fixture
def patient_a(prescriber: Actor) -> Any:
    return make_patient(prescriber)


def audit_count(**filters: Any) -> int:
    from ketaclinic.accounts.models import AuditEvent

    with scopes_disabled():
        return AuditEvent.objects.filter(**filters).count()
