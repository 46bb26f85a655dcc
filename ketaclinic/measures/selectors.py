"""Reads for measures: responses, open alerts, and per-instrument trajectories with outcomes.

Everything runs inside the request's organization scope. Query counts are fixed per screen:
one query for a patient's responses (all instruments), one for their open alerts.
"""

from __future__ import annotations

import uuid
from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.db.models import QuerySet

from ketaclinic.accounts.actor import Actor
from ketaclinic.accounts.roles import Cap
from ketaclinic.core.errors import NotFound
from ketaclinic.measures.charts import Band, Point, trajectory_svg
from ketaclinic.measures.definitions import Instrument, get_instrument
from ketaclinic.measures.models import QuestionnaireResponse, SafetyAlert
from ketaclinic.outcomes.rules import Measurement, OutcomeAssessment, OutcomePolicy, assess_outcome
from ketaclinic.patients.models import Patient

DASHBOARD_ALERTS = 50


def treatment_session_dates(patient: Patient) -> list[datetime]:
    """When each of the patient's treatments began (first dose), oldest first.

    A session counts once a dose started; scheduled or aborted-before-dose sessions are not
    treatments. These mark the trajectory and define the baseline (last score before the first).
    """
    from ketaclinic.sessions.models import TreatmentSession

    started = (
        TreatmentSession.objects.filter(patient=patient, dose_started_at__isnull=False)
        .order_by("dose_started_at")
        .values_list("dose_started_at", flat=True)
    )
    return [moment for moment in started if moment is not None]


def booked_session_times(patient: Patient) -> list[datetime]:
    """Scheduled times of the patient's sessions that have not ended, oldest first."""
    from ketaclinic.sessions.models import TreatmentSession

    return list(
        TreatmentSession.objects.filter(patient=patient, discharged_at__isnull=True)
        .exclude(state="aborted")
        .order_by("scheduled_at")
        .values_list("scheduled_at", flat=True)
    )


def outcome_policy_current(patient: Patient) -> OutcomePolicy:
    """The clinic's outcome definitions. Not yet configurable: the cited defaults of rules.py."""
    return OutcomePolicy()


def _uuid(value: str | uuid.UUID) -> uuid.UUID | None:
    try:
        return value if isinstance(value, uuid.UUID) else uuid.UUID(str(value))
    except ValueError:
        return None


def responses_for_patient(
    patient: Patient, *, instrument_id: str = "", include_corrected: bool = True
) -> QuerySet[QuestionnaireResponse]:
    responses = QuestionnaireResponse.objects.filter(patient=patient).select_related(
        "patient", "recorded_by", "corrects"
    )
    if instrument_id:
        responses = responses.filter(instrument_id=instrument_id)
    if not include_corrected:
        responses = responses.filter(corrected_by__isnull=True)
    return responses.order_by("-completed_at", "-pk")


def response_get_for_actor(actor: Actor, public_id: str | uuid.UUID) -> QuestionnaireResponse:
    actor.require(Cap.MEASURE_VIEW)
    key = _uuid(public_id)
    response = (
        QuestionnaireResponse.objects.select_related("patient", "recorded_by", "corrects")
        .filter(public_id=key)
        .first()
        if key
        else None
    )
    if response is None:
        raise NotFound("No such questionnaire response.")
    return response


def alerts_open(*, limit: int = DASHBOARD_ALERTS) -> list[SafetyAlert]:
    """Unacknowledged alerts of the current organization, escalated and critical first."""
    return list(
        SafetyAlert.objects.filter(acknowledged_at__isnull=True)
        .select_related("patient", "response", "intake", "responsible")
        .order_by("escalated_at", "severity", "-created_at")[:limit]
    )


def alerts_open_count() -> int:
    return SafetyAlert.objects.filter(acknowledged_at__isnull=True).count()


def alerts_open_for_patient(patient: Patient) -> list[SafetyAlert]:
    return list(
        SafetyAlert.objects.filter(patient=patient, acknowledged_at__isnull=True)
        .select_related("response", "responsible")
        .order_by("-created_at")
    )


def alert_get_for_actor(
    actor: Actor, public_id: str | uuid.UUID, *, capability: Cap
) -> SafetyAlert:
    actor.require(capability)
    key = _uuid(public_id)
    alert = (
        SafetyAlert.objects.select_related(
            "patient", "response", "intake", "responsible", "acknowledged_by"
        )
        .filter(public_id=key)
        .first()
        if key
        else None
    )
    if alert is None:
        raise NotFound("No such alert.")
    return alert


@dataclass(frozen=True)
class Trajectory:
    instrument: Instrument
    responses: list[QuestionnaireResponse]  # current (not corrected), newest first
    assessment: OutcomeAssessment | None
    svg: str

    @property
    def latest(self) -> QuestionnaireResponse:
        return self.responses[0]


def therapy_visit_dates(patient: Patient) -> list[tuple[datetime, str]]:
    """When the patient's preparation and integration visits took place, oldest first, to mark
    on the trajectory beside the dosing sessions (one query)."""
    from ketaclinic.therapy.selectors import visit_markers

    return [(marker.at, marker.kind) for marker in visit_markers(patient)]


def trajectory_for(
    instrument: Instrument,
    responses: list[QuestionnaireResponse],
    sessions: list[datetime],
    policy: OutcomePolicy,
    visits: list[tuple[datetime, str]] | None = None,
) -> Trajectory:
    scored = [r for r in responses if r.score is not None]
    measurements = [
        Measurement(instrument.id, r.score, r.completed_at) for r in scored if r.score is not None
    ]
    assessment = (
        assess_outcome(
            measurements, first_treatment_at=sessions[0] if sessions else None, policy=policy
        )
        if measurements
        else None
    )
    svg = trajectory_svg(
        chart_id=f"trajectory-{instrument.id}",
        title=f"{instrument.short_title} scores over time",
        points=[Point(r.completed_at, r.score) for r in scored],  # type: ignore[arg-type]
        bands=[Band(b.low, b.high, b.label) for b in instrument.severity_bands],
        score_range=instrument.scoring.total_range,
        sessions=sessions,
        visits=visits or [],
    )
    return Trajectory(instrument, responses, assessment, svg)


def patient_trajectories(patient: Patient) -> list[Trajectory]:
    """One trajectory per instrument the patient has answered, in a fixed number of queries."""
    by_instrument: dict[str, list[QuestionnaireResponse]] = defaultdict(list)
    for response in responses_for_patient(patient, include_corrected=False):
        by_instrument[response.instrument_id].append(response)
    sessions = treatment_session_dates(patient)
    visits = therapy_visit_dates(patient)
    policy = outcome_policy_current(patient)
    return [
        trajectory_for(
            get_instrument(instrument_id, responses[0].instrument_version),
            responses,
            sessions,
            policy,
            visits,
        )
        for instrument_id, responses in sorted(by_instrument.items())
    ]


def pending_questionnaires(patient: Patient) -> list[dict[str, Any]]:
    """Questionnaires sent to the patient by one-time link and not yet answered (portal home).
    Only the link's hash is kept, so the patient opens it from the message they were sent."""
    from ketaclinic.core import clock
    from ketaclinic.core.models import OneTimeLink
    from ketaclinic.measures.services import LINK_PURPOSE

    links = OneTimeLink.objects.filter(
        purpose=LINK_PURPOSE,
        target_id=str(patient.public_id),
        used_at__isnull=True,
        expires_at__gt=clock.now(),
    ).order_by("expires_at")
    return [
        {
            "title": get_instrument(link.payload["instrument_id"]).short_title,
            "until": link.expires_at,
        }
        for link in links
    ]


def open_links_by_patient(patient_public_ids: list[str], *, now: datetime) -> dict[str, list[Any]]:
    """Questionnaire links sent and not yet answered, per patient public id (role homes: the
    front desk's forms pending). Links still open, plus ones that ran out unanswered in the last
    week, so a patient who missed the link is chased too. One query."""
    from datetime import timedelta

    from ketaclinic.core.models import OneTimeLink
    from ketaclinic.measures.services import LINK_PURPOSE

    found: dict[str, list[Any]] = defaultdict(list)
    if not patient_public_ids:
        return found
    links = OneTimeLink.objects.filter(
        purpose=LINK_PURPOSE,
        target_id__in=patient_public_ids,
        used_at__isnull=True,
        expires_at__gt=now - timedelta(days=7),
    ).order_by("-created_at", "-pk")
    seen: set[tuple[str, str]] = set()
    for link in links:
        key = (link.target_id, str(link.payload.get("instrument_id")))
        if key in seen:  # only the newest link per instrument: a resent link replaces the old
            continue
        seen.add(key)
        found[link.target_id].append(link)
    return found


def link_title(link: Any) -> str:
    return get_instrument(link.payload["instrument_id"]).short_title


def link_get_for_actor(actor: Actor, public_id: str | uuid.UUID) -> Any:
    """An unanswered questionnaire link of the actor's organization (404 otherwise)."""
    from ketaclinic.core.models import OneTimeLink
    from ketaclinic.measures.services import LINK_PURPOSE

    key = _uuid(public_id)
    link = (
        OneTimeLink.objects.filter(
            organization=actor.organization, purpose=LINK_PURPOSE, public_id=key
        ).first()
        if key
        else None
    )
    if link is None:
        raise NotFound("No such questionnaire link.")
    return link
