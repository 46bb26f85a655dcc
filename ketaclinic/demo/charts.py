"""Demo patients and their charts, written through the chart, screening and consent services.

Everything clinical is recorded by a staff actor through the same service as the UI, at the
moment it would have happened (`clock.replaying`), so the demo obeys every rule a real clinic
does and leaves the same audit trail.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

from ketaclinic.accounts.actor import Actor
from ketaclinic.core import clock
from ketaclinic.patients import services as chart
from ketaclinic.patients.codes import PRELOADED_CONDITIONS
from ketaclinic.patients.models import Patient
from ketaclinic.screening import rules

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

# An intake with no contraindication: the screening then rests on the chart alone.
CLEAN_INTAKE: dict[str, Any] = dict(rules.CLEAN_INTAKE)
RESTING_BP = (118, 76)


@dataclass
class DemoPatient:
    patient: Patient
    base_kg: int


def patient_with_history(
    rng: random.Random, registrar: Actor, actor: Actor, index: int, now: datetime, *, trd: bool
) -> DemoPatient:
    """A patient and a plausible chart: conditions, past antidepressant trials, weights.

    `trd`: two failed adequate trials in the current episode, so screening finds
    treatment-resistant depression (the cohort that is treated in the demo).
    """
    with clock.replaying(now - timedelta(days=100)):
        patient = chart.patient_create(
            actor=registrar,
            data={
                "mrn": f"D{index + 1:07d}",
                "given_name": rng.choice(GIVEN),
                "family_name": rng.choice(FAMILY),
                "birth_date": date(1950, 1, 1) + timedelta(days=rng.randrange(0, 365 * 50)),
                "sex_at_birth": rng.choice(["female", "male"]),
                "pronouns": rng.choice(["", "she/her", "he/him", "they/them"]),
                "phone": f"555-{rng.randrange(1000, 9999)}",
                "preferred_language": rng.choice(["en", "en", "en", "es"]),
                "emergency_contact_name": f"{rng.choice(GIVEN)} {rng.choice(FAMILY)}",
                "emergency_contact_phone": f"555-{rng.randrange(1000, 9999)}",
            },
        )
        conditions = [c for c in PRELOADED_CONDITIONS if c.confirmed]
        for code in rng.sample(conditions, k=rng.randint(1, 2)):
            chart.condition_add(
                actor=actor,
                patient=patient,
                data={
                    "code": code.code,
                    "display": code.display,
                    "onset_date": (now - timedelta(days=rng.randrange(500, 4000))).date(),
                },
            )
        for substance, reaction in rng.sample(ALLERGENS, k=rng.choice([0, 0, 0, 1])):
            chart.allergy_add(
                actor=actor, patient=patient, data={"substance": substance, "reaction": reaction}
            )
        trial_start = (now - timedelta(days=390)).date()
        drugs = rng.sample(ANTIDEPRESSANTS, k=2 if trd else rng.randint(1, 2))
        for drug in drugs:
            end = trial_start + timedelta(days=rng.randrange(60, 120))
            chart.medication_add(
                actor=actor,
                patient=patient,
                data={
                    "drug_name": drug,
                    "dose_text": "usual dose",
                    "status": "stopped",
                    "start_date": trial_start,
                    "end_date": end,
                    "is_antidepressant_trial": True,
                    "adequate_trial": True if trd else rng.random() < 0.7,
                    "in_current_episode": True,
                    "trial_outcome": "none" if trd else rng.choice(["none", "partial"]),
                },
            )
            trial_start = end + timedelta(days=14)
    base_kg = rng.randrange(55, 105)
    weigh(actor, patient, base_kg, now - timedelta(days=rng.randrange(60, 300)))
    return DemoPatient(patient, base_kg)


def weigh(actor: Actor, patient: Patient, kg: int | str, at: datetime) -> None:
    with clock.replaying(at):
        chart.weight_record(actor=actor, patient=patient, value=str(kg), unit="kg", measured_at=at)


def _resting_bp(nurse: Actor, patient: Patient, at: datetime) -> None:
    chart.vital_sign_record(
        actor=nurse,
        patient=patient,
        kind="bp",
        value=RESTING_BP[0],
        value_diastolic=RESTING_BP[1],
        unit="mm[Hg]",
        code="85354-9",  # LOINC blood pressure panel
        measured_at=at,
    )


def screen_eligible(
    prescriber: Actor, nurse: Actor, patient: Patient, route: str, at: datetime
) -> None:
    """Resting BP and intake by the nurse, then screening and a prescriber's decision."""
    from ketaclinic.screening import services as screening

    with clock.replaying(at):
        _resting_bp(nurse, patient, at)
        screening.intake_record(actor=nurse, patient=patient, data=dict(CLEAN_INTAKE))
    with clock.replaying(at + timedelta(minutes=20)):
        evaluation = screening.screening_evaluate(actor=prescriber, patient=patient)
        for decision in evaluation.decisions.filter(route=route):
            screening.screening_decision_review(
                actor=prescriber,
                decision=decision,
                final_decision="eligible",
                justification="Reviewed in person with the patient; benefits outweigh risks.",
            )


def rescreen(prescriber: Actor, nurse: Actor, patient: Patient, route: str, at: datetime) -> None:
    """A new resting BP and screening before the last decision expires (valid for weeks)."""
    from ketaclinic.screening import services as screening

    with clock.replaying(at):
        _resting_bp(nurse, patient, at)
        evaluation = screening.screening_evaluate(actor=prescriber, patient=patient)
        for decision in evaluation.decisions.filter(route=route):
            screening.screening_decision_review(
                actor=prescriber,
                decision=decision,
                final_decision="eligible",
                justification="Re-screened before the next session; nothing has changed.",
            )


def consent_signed(nurse: Actor, patient: Patient, route: str, at: datetime) -> None:
    from ketaclinic.consent import services as consent
    from ketaclinic.consent.models import ConsentTemplate

    template = ConsentTemplate.objects.get(kind="treatment", route=route, is_active=True)
    version = template.versions.order_by("-version").first()
    if version is None:
        raise LookupError(f"the consent template {template} has no version")
    with clock.replaying(at):
        consent.consent_sign(
            actor=nurse,
            patient=patient,
            template_version=version,
            witness=nurse.user,
            signature=consent.SignatureInput(
                printed_name=patient.full_name,
                acknowledged=[a["key"] for a in version.acknowledgements],
            ),
        )
