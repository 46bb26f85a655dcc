"""A synthetic clinic in the middle of its life: staff of every role, patients with history, and
a treated cohort with published protocols, plans, past and ongoing sessions, questionnaires,
consents, alerts and controlled-substance stock.

Everything clinical goes through the services, as the staff who would have recorded it, at the
time it would have happened (`clock.replaying`): the demo obeys the same safety rules as a real
day and leaves the same audit trail. Deterministic for a given `--seed` (relative to today).
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import timedelta
from typing import Protocol

from django.db import transaction
from django_scopes import scope, scopes_disabled

from ketaclinic.accounts.actor import Actor
from ketaclinic.accounts.audit import audit_record
from ketaclinic.accounts.models import Clinic, Membership, Organization
from ketaclinic.accounts.roles import Role
from ketaclinic.accounts.services import organization_create, totp_device_create, user_create
from ketaclinic.core import clock
from ketaclinic.demo import charts, life, stock
from ketaclinic.patients.models import Patient

DEMO_ORGANIZATION = "Demo Ketamine Clinic"
DEMO_PASSWORD = "demo-clinic-2026"
DEMO_USERS = {
    "prescriber": (Role.PRESCRIBER, "Maya", "Okafor"),
    "nurse": (Role.NURSE, "Luis", "Ramirez"),
    "nurse2": (Role.NURSE, "Grace", "Adeyemi"),
    "therapist": (Role.THERAPIST, "Ingrid", "Solberg"),
    "frontdesk": (Role.FRONT_DESK, "Tom", "Becker"),
    "admin": (Role.CLINIC_ADMIN, "Aisha", "Karimi"),
    "compliance": (Role.COMPLIANCE, "Dana", "Whitfield"),
    "researcher": (Role.RESEARCHER, "Kenji", "Mori"),
}
# At most this many patients under treatment: enough to fill every screen, few enough that
# `make run` stays quick (each treated patient is weeks of sessions recorded step by step).
MAX_TREATED = 18
REMS_SETTING_ID = "HCS-DEMO-0001"


class Progress(Protocol):
    def update(self, n: int = 1) -> object: ...
    def reset(self, total: int | None = None) -> None: ...


@dataclass
class DemoResult:
    organization: Organization
    created: bool
    patients: int
    rows: int
    authenticators: dict[str, str]
    sessions: int = 0
    portal_username: str = ""


def demo_exists() -> bool:
    return Organization.objects.filter(name=DEMO_ORGANIZATION).exists()


def build_demo(
    *, patients: int = 200, seed: int = 1, progress: Progress | None = None
) -> DemoResult:
    existing = Organization.objects.filter(name=DEMO_ORGANIZATION).first()
    if existing is not None:
        return DemoResult(existing, False, 0, 0, {})
    with transaction.atomic():  # all or nothing: a failed build leaves no half clinic behind
        return _build(patients=patients, seed=seed, progress=progress)


def _build(*, patients: int, seed: int, progress: Progress | None) -> DemoResult:
    rng = random.Random(seed)
    now = clock.now()
    organization = organization_create(
        name=DEMO_ORGANIZATION,
        clinic_name="Riverside Clinic",
        time_zone="America/Chicago",
        chairs=6,
    )
    authenticators = {}
    for username, (role, first, last) in DEMO_USERS.items():
        user, _, _ = user_create(
            organization=organization,
            username=username,
            role=role,
            password=DEMO_PASSWORD,
            first_name=first,
            last_name=last,
        )
        authenticators[username] = totp_device_create(user=user).config_url
    with scope(organization=organization):
        result = _build_clinic(organization, rng, seed, patients, now, progress)
    # Calendar, staff hours and the contact policy: owned by scheduling (issue 11).
    from ketaclinic.scheduling.demo import scheduling_demo_setup

    scheduling_demo_setup(organization, seed=seed)
    result.authenticators = authenticators
    return result


def _actors(organization: Organization) -> dict[str, Actor]:
    with scopes_disabled():
        members = Membership.objects.select_related("user", "organization", "home_clinic").filter(
            organization=organization
        )
        return {m.user.username: Actor(membership=m, channel="cli") for m in members}


def _build_clinic(
    organization: Organization,
    rng: random.Random,
    seed: int,
    patients: int,
    now,
    progress: Progress | None,
) -> DemoResult:
    from ketaclinic.consent.services import consent_templates_seed_defaults
    from ketaclinic.protocols.services import protocol_catalog_seed

    actors = _actors(organization)
    cast = life.Cast(
        prescriber=actors["prescriber"],
        nurse=actors["nurse"],
        nurse2=actors["nurse2"],
        admin=actors["admin"],
    )
    clinic = Clinic.objects.get(organization=organization)
    # One in ten patients is under treatment, at least the scenes a visitor looks for first.
    treated = min(patients, MAX_TREATED, max(len(life.SCENES), patients // 10))
    with clock.replaying(now - timedelta(days=stock.INITIAL_INVENTORY_DAYS_AGO + 1)):
        protocol_catalog_seed(organization=organization, actor=cast.admin)
        consent_templates_seed_defaults(organization=organization)
        _certify_rems(cast.admin, clinic, now)
    if progress:
        progress.reset(total=patients)
    shop = stock.stock_open(
        nurse=cast.nurse, admin=cast.admin, clinic=clinic, now=now, expected_sessions=treated * 12
    )
    people = []
    for index in range(patients):
        people.append(
            charts.patient_with_history(
                rng, actors["frontdesk"], cast.prescriber, index, now, trd=index < treated
            )
        )
        if progress:
            progress.update(1)
    day = life.Clinic(cast, shop, clinic.time_zone, now, rng)
    for lane in range(treated):
        day.plan_course(lane, people[lane], life.course_for(rng, lane))
    day.add(now - timedelta(days=10), -1, 0, lambda: stock.restock(shop, cast.nurse, now))
    if progress:
        progress.reset(total=len(day.events))
    day.replay(progress.update if progress else None)
    portal_username = _portal_account(cast.nurse, people[0].patient) if people else ""
    audit_record(
        actor=None,
        organization=organization,
        channel="cli",
        action="demo.clinic.generated",
        detail={"patients": patients, "treated": treated, "sessions": day.sessions, "seed": seed},
    )
    return DemoResult(
        organization, True, patients, len(day.events), {}, day.sessions, portal_username
    )


def _certify_rems(admin: Actor, clinic: Clinic, now) -> None:
    """The clinic is a certified SPRAVATO REMS healthcare setting (a clinic setting, not
    clinical data; written with its audit event as the setup screen would)."""
    clinic.rems_setting_id = REMS_SETTING_ID
    clinic.rems_certified_on = (now - timedelta(days=800)).date()
    clinic.save(update_fields=["rems_setting_id", "rems_certified_on"])
    audit_record(
        actor=admin,
        action="accounts.clinic.rems_certified",
        obj=clinic,
        detail={"rems_setting_id": REMS_SETTING_ID},
    )


def _portal_account(nurse: Actor, patient: Patient) -> str:
    """The first treated patient (MRN D0000001) uses the portal; `ketaclinic demo` prints the
    login."""
    from ketaclinic.consent.services import portal_activate, portal_invite

    account, token = portal_invite(actor=nurse, patient=patient)
    portal_activate(token=token, password=DEMO_PASSWORD)
    return account.user.username
