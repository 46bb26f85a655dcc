"""A realistic synthetic clinic: staff of every role and patients with two years of history.

Synthetic data is bulk-inserted (10,000 patients through one service call each would take
minutes); one audit event records the generation, its seed and its counts.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from decimal import Decimal

from django.db import transaction
from django_scopes import scopes_disabled

from ketaclinic.accounts.audit import audit_record
from ketaclinic.accounts.models import Membership, Organization
from ketaclinic.accounts.roles import Role
from ketaclinic.accounts.services import organization_create, totp_device_create, user_create
from ketaclinic.core import clock
from ketaclinic.patients.codes import PRELOADED_CONDITIONS
from ketaclinic.patients.models import (
    Allergy,
    BodyHeight,
    BodyWeight,
    Condition,
    MedicationStatement,
    Patient,
)

DEMO_ORGANIZATION = "Demo Ketamine Clinic"
DEMO_PASSWORD = "demo-clinic-2026"
DEMO_USERS = {
    "prescriber": (Role.PRESCRIBER, "Maya", "Okafor"),
    "nurse": (Role.NURSE, "Luis", "Ramirez"),
    "therapist": (Role.THERAPIST, "Ingrid", "Solberg"),
    "frontdesk": (Role.FRONT_DESK, "Tom", "Becker"),
    "admin": (Role.CLINIC_ADMIN, "Aisha", "Karimi"),
    "compliance": (Role.COMPLIANCE, "Dana", "Whitfield"),
    "researcher": (Role.RESEARCHER, "Kenji", "Mori"),
}
GIVEN = "Avery Blake Casey Devon Emery Finley Harper Jordan Kai Logan Morgan Noor Parker Quinn Riley Rowan Sage Skyler Taylor Amara Elena Jonas Mateo Priya Sofia Yusuf Zoe Hana Ivan Lena".split()
FAMILY = "Adams Bauer Chen Diaz Evans Fischer Garcia Haddad Ito Jensen Kowalski Lopez Moreau Nguyen Okoye Patel Quinn Rossi Silva Tanaka Usman Varga Walsh Xu Young Zimmer Novak Ahmed Brennan Costa".split()
ANTIDEPRESSANTS = [
    "sertraline",
    "escitalopram",
    "fluoxetine",
    "venlafaxine",
    "duloxetine",
    "bupropion",
    "mirtazapine",
    "vortioxetine",
]
ALLERGENS = [("penicillin", "rash"), ("sulfonamides", "hives"), ("latex", "contact dermatitis")]
BATCH = 500


@dataclass
class DemoResult:
    organization: Organization
    created: bool
    patients: int
    rows: int
    authenticators: dict[str, str]


def demo_exists() -> bool:
    return Organization.objects.filter(name=DEMO_ORGANIZATION).exists()


def build_demo(
    *, patients: int = 200, seed: int = 1, progress: Callable[[int], None] | None = None
) -> DemoResult:
    existing = Organization.objects.filter(name=DEMO_ORGANIZATION).first()
    if existing is not None:
        return DemoResult(existing, False, 0, 0, {})
    rng = random.Random(seed)
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
    with scopes_disabled():
        prescriber = Membership.objects.get(organization=organization, role=Role.PRESCRIBER).user
    now = clock.now()
    rows = 0
    made = 0
    while made < patients:
        count = min(BATCH, patients - made)
        with transaction.atomic():
            rows += _insert_batch(rng, organization, prescriber, now, made, count)
        made += count
        if progress:
            progress(count)
    with transaction.atomic():
        audit_record(
            actor=None,
            organization=organization,
            channel="cli",
            action="demo.clinic.generated",
            detail={"patients": patients, "rows": rows, "seed": seed},
        )
    _seed_consent_templates(organization)
    # Calendar, staff hours and the contact policy: owned by scheduling (issue 11).
    from ketaclinic.scheduling.demo import scheduling_demo_setup

    scheduling_demo_setup(organization, seed=seed)
    return DemoResult(organization, True, patients, rows, authenticators)


def _seed_consent_templates(organization: Organization) -> None:
    """The default consent templates, published as version 1 (the clinic reviews them)."""
    from django_scopes import scope

    from ketaclinic.consent.services import consent_templates_seed_defaults

    with scope(organization=organization):
        consent_templates_seed_defaults(organization=organization)


def _insert_batch(rng, organization, prescriber, now: datetime, start: int, count: int) -> int:  # type: ignore[no-untyped-def]
    people = []
    for index in range(start, start + count):
        birth = date(1950, 1, 1) + timedelta(days=rng.randrange(0, 365 * 52))
        people.append(
            Patient(
                organization=organization,
                mrn=f"D{index + 1:07d}",
                given_name=rng.choice(GIVEN),
                family_name=rng.choice(FAMILY),
                birth_date=birth,
                sex_at_birth=rng.choice(["female", "male"]),
                pronouns=rng.choice(["", "she/her", "he/him", "they/them"]),
                phone=f"555-{rng.randrange(1000, 9999)}",
                preferred_language=rng.choice(["en", "en", "en", "es"]),
                emergency_contact_name=f"{rng.choice(GIVEN)} {rng.choice(FAMILY)}",
                emergency_contact_phone=f"555-{rng.randrange(1000, 9999)}",
            )
        )
    with scopes_disabled():
        Patient.objects.bulk_create(people)
    common = {"organization": organization, "recorded_by": prescriber}
    weights, heights, conditions, meds, allergies = [], [], [], [], []
    conditions_pool = [c for c in PRELOADED_CONDITIONS if c.confirmed]
    for patient in people:
        base = Decimal(rng.randrange(5000, 11000)) / 100
        for month in range(24):  # two years of monthly weights
            kg = base + Decimal(rng.randrange(-200, 200)) / 100
            weights.append(
                BodyWeight(
                    patient=patient,
                    weight_kg=kg,
                    entered_value=kg,
                    entered_unit="kg",
                    measured_at=now - timedelta(days=30 * month + rng.randrange(0, 5)),
                    **common,
                )
            )
        height = Decimal(rng.randrange(1500, 1950)) / 10
        heights.append(
            BodyHeight(
                patient=patient,
                height_cm=height,
                entered_value=height,
                entered_unit="cm",
                measured_at=now - timedelta(days=700),
                **common,
            )
        )
        for code in rng.sample(conditions_pool, k=rng.randint(1, 3)):
            conditions.append(
                Condition(
                    patient=patient,
                    code=code.code,
                    display=code.display,
                    onset_date=(now - timedelta(days=rng.randrange(400, 4000))).date(),
                    **common,
                )
            )
        trial_start = now.date() - timedelta(days=720)
        for drug in rng.sample(ANTIDEPRESSANTS, k=rng.randint(1, 4)):
            end = trial_start + timedelta(days=rng.randrange(42, 180))
            meds.append(
                MedicationStatement(
                    patient=patient,
                    drug_name=drug,
                    dose_text="standard dose",
                    status="stopped",
                    start_date=trial_start,
                    end_date=end,
                    is_antidepressant_trial=True,
                    adequate_trial=rng.random() < 0.8,
                    in_current_episode=True,
                    trial_outcome=rng.choice(["none", "partial", "intolerance"]),
                    **common,
                )
            )
            trial_start = end + timedelta(days=14)
        for substance, reaction in rng.sample(ALLERGENS, k=rng.choice([0, 0, 1])):
            allergies.append(
                Allergy(patient=patient, substance=substance, reaction=reaction, **common)
            )
    with scopes_disabled():
        for model, objects in (
            (BodyWeight, weights),
            (BodyHeight, heights),
            (Condition, conditions),
            (MedicationStatement, meds),
            (Allergy, allergies),
        ):
            model.objects.bulk_create(objects, batch_size=2000)
    return len(people) + len(weights) + len(heights) + len(conditions) + len(meds) + len(allergies)
