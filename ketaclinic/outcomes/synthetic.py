"""Synthetic treatment histories for outcome tests, the benchmark and demonstrations.

Bulk-inserts, for patients that already exist, a treatment plan, dosed sessions, weekly PHQ-9
and MADRS scores and a few adverse events. The trajectories are invented (a share of patients
respond, some of them relapse); they exercise the analytics and claim nothing clinical.
Deterministic for a given seed.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from django.db import transaction
from django_scopes import scope, scopes_disabled

from ketaclinic.accounts.models import Organization
from ketaclinic.measures.models import QuestionnaireResponse
from ketaclinic.outcomes.summary import refresh_course_summaries
from ketaclinic.patients.models import Patient

# (protocol id, drug, route, sessions in induction, days between sessions, chance of response)
COURSES = (
    ("iv-ketamine-induction", "racemic-ketamine", "intravenous", 6, 2, 0.6),
    ("esketamine-trd", "esketamine", "intranasal", 8, 3, 0.5),
)
WEEKS_FOLLOWED = 16
BATCH = 500

if TYPE_CHECKING:
    from ketaclinic.sessions.models import TreatmentSession


@dataclass(frozen=True)
class SyntheticCounts:
    patients: int = 0
    sessions: int = 0
    responses: int = 0
    adverse_events: int = 0


def _score_path(rng: random.Random, baseline: int, responds: bool, relapse_week: int | None):
    """A weekly score path: falls by 60-80% for responders, 10-40% for the rest."""
    drop = rng.uniform(0.6, 0.8) if responds else rng.uniform(0.1, 0.4)
    path = []
    for week in range(1, WEEKS_FOLLOWED + 1):
        reached = min(1.0, week / 2)
        score = baseline * (1 - drop * reached)
        if relapse_week is not None and week >= relapse_week:
            score = baseline * rng.uniform(0.85, 1.05)
        path.append(max(0, round(score + rng.uniform(-1.5, 1.5))))
    return path


def add_histories(
    *,
    organization: Organization,
    recorded_by: Any,
    patients: Sequence[Patient],
    start: datetime,
    seed: int = 7,
    progress: Callable[[int], None] | None = None,
) -> SyntheticCounts:
    """Histories for `patients`, first doses spread over the 120 days after `start`."""
    from ketaclinic.protocols.models import ProtocolVersion, TreatmentPlan
    from ketaclinic.protocols.services import protocol_catalog_seed
    from ketaclinic.sessions.models import (
        AdverseEvent,
        SessionObservation,
        TreatmentSession,
        VitalsEntry,
    )
    from ketaclinic.sessions.policy import DEFAULT_POLICY
    from ketaclinic.sessions.vitals import RULE_VITALS_ALERTS, VitalsSample, classify_vitals

    rng = random.Random(seed)
    with scope(organization=organization):
        protocol_catalog_seed(organization=organization)
    with scopes_disabled():
        versions = {
            v.protocol_id: v
            for v in ProtocolVersion.objects.filter(
                organization=organization, protocol_id__in=[c[0] for c in COURSES]
            )
        }
        clinic = organization.clinics.first()
    totals = SyntheticCounts()
    for offset in range(0, len(patients), BATCH):
        batch = patients[offset : offset + BATCH]
        plans, sessions, responses, events = [], [], [], []
        session_patients = []
        for patient in batch:
            protocol_id, drug, route, count, gap, chance = rng.choice(COURSES)
            version = versions[protocol_id]
            first = start + timedelta(days=rng.randrange(0, 120), hours=rng.randrange(8, 16))
            plan = TreatmentPlan(
                organization=organization,
                patient=patient,
                recorded_by=recorded_by,
                protocol=version,
                protocol_key=f"{protocol_id}@{version.version}",
                prescriber=recorded_by,
                phase="induction",
                current_amount=Decimal("0.5") if route == "intravenous" else Decimal(56),
                start_date=first.date(),
            )
            plans.append(plan)
            for number in range(1, count + 1):
                at = first + timedelta(days=gap * (number - 1))
                sessions.append(
                    TreatmentSession(
                        organization=organization,
                        patient=patient,
                        recorded_by=recorded_by,
                        plan=plan,
                        protocol=version,
                        protocol_key=plan.protocol_key,
                        clinic=clinic,
                        drug=drug,
                        route=route,
                        setting="clinic",
                        session_number=number,
                        scheduled_at=at,
                        state="discharged",
                        state_changed_at=at + timedelta(hours=2),
                        policy_key="synthetic",
                        checked_in_at=at - timedelta(minutes=15),
                        dose_started_at=at,
                        dose_ended_at=at + timedelta(minutes=40),
                        discharged_at=at + timedelta(hours=2),
                    )
                )
                session_patients.append(patient)
            responds = rng.random() < chance
            relapse_week = rng.randrange(6, 15) if responds and rng.random() < 0.4 else None
            for instrument, version_rule, low, high in (
                ("phq9", "phq9@1", 15, 25),
                ("madrs", "madrs@1", 26, 41),
            ):
                baseline = rng.randrange(low, high)
                scores = [baseline, *_score_path(rng, baseline, responds, relapse_week)]
                for week, score in enumerate(scores):
                    taken = (
                        first - timedelta(days=2) if week == 0 else first + timedelta(weeks=week)
                    )
                    responses.append(
                        QuestionnaireResponse(
                            organization=organization,
                            patient=patient,
                            recorded_by=recorded_by,
                            instrument_id=instrument,
                            instrument_version=1,
                            rule=version_rule,
                            answers={},
                            total=Decimal(score),
                            policy_reference="synthetic",
                            respondent="staff",
                            completed_at=taken,
                        )
                    )
        with transaction.atomic(), scopes_disabled():
            TreatmentPlan.objects.bulk_create(plans, batch_size=2000)
            TreatmentSession.objects.bulk_create(sessions, batch_size=2000)
            QuestionnaireResponse.objects.bulk_create(responses, batch_size=2000)
            for session, patient in zip(sessions, session_patients, strict=True):
                if rng.random() < 0.12:
                    events.append(
                        AdverseEvent(
                            organization=organization,
                            session=session,
                            recorded_by=recorded_by,
                            patient=patient,
                            event_code=rng.choice(["nausea", "dizziness", "dissociation"]),
                            grade=rng.choice([1, 1, 1, 2, 2, 3]),
                            onset_at=_dosed_at(session) + timedelta(minutes=20),
                            outcome="resolved",
                            escalation_rule="synthetic",
                        )
                    )
            AdverseEvent.objects.bulk_create(events, batch_size=2000)
            vitals, observations = [], []
            for session in sessions:
                # One post-dose flowsheet row, judged by the default safety policy's limits, and
                # one dissociation score (CADSS total, 0-92) per session.
                sample = VitalsSample(
                    taken_at=_dosed_at(session) + timedelta(minutes=40),
                    systolic=rng.randrange(110, 190),
                    diastolic=rng.randrange(65, 105),
                    heart_rate=rng.randrange(60, 100),
                    spo2=rng.randrange(95, 100),
                )
                alerts = classify_vitals(sample, DEFAULT_POLICY)
                vitals.append(
                    VitalsEntry(
                        organization=organization,
                        session=session,
                        recorded_by=recorded_by,
                        taken_at=sample.taken_at,
                        systolic=sample.systolic,
                        diastolic=sample.diastolic,
                        heart_rate=sample.heart_rate,
                        spo2=sample.spo2,
                        # the shape the session service stores (sessions/services/_common.py)
                        alerts=[
                            {**asdict(a), "severity": a.severity.value, "message": a.message}
                            for a in alerts
                        ],
                        severity=alerts[0].severity.value if alerts else "",
                        rule=RULE_VITALS_ALERTS,
                        policy_key="synthetic",
                    )
                )
                observations.append(
                    SessionObservation(
                        organization=organization,
                        session=session,
                        recorded_by=recorded_by,
                        kind="cadss",
                        observed_at=_dosed_at(session) + timedelta(minutes=30),
                        score=Decimal(rng.randrange(0, 40)),
                        instrument="cadss@1",
                    )
                )
            VitalsEntry.objects.bulk_create(vitals, batch_size=2000)
            SessionObservation.objects.bulk_create(observations, batch_size=2000)
            # bulk inserts bypass the services, so the course summaries are written here
            refresh_course_summaries([patient.pk for patient in batch])
        totals = SyntheticCounts(
            totals.patients + len(batch),
            totals.sessions + len(sessions),
            totals.responses + len(responses),
            totals.adverse_events + len(events),
        )
        if progress:
            progress(len(batch))
    return totals


def _dosed_at(session: TreatmentSession) -> datetime:
    """When the synthetic session's dose started (every generated session has one)."""
    if session.dose_started_at is None:
        raise ValueError(f"synthetic session {session.public_id} has no dose time")
    return session.dose_started_at
