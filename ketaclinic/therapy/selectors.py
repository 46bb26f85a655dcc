"""Reads for therapy. Run inside the request's organization scope; another organization's row is
a 404. No selector here returns a psychotherapy note except `process_note_for_author`
(and the break-glass service): the chart, exports, FHIR and the portal cannot reach one."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.db.models import Prefetch, Q, QuerySet

from ketaclinic.accounts.actor import Actor
from ketaclinic.accounts.models import Membership, User
from ketaclinic.accounts.roles import Cap, Role
from ketaclinic.core.errors import NotFound
from ketaclinic.patients.models import Patient
from ketaclinic.sessions.models import TreatmentSession
from ketaclinic.therapy.measure_timing import Course, MeasureStatus, measure_status
from ketaclinic.therapy.models import (
    BreakGlassRead,
    RiskFlag,
    TeamAssignment,
    TeamMessage,
    TherapyMeasurePlan,
    TherapyNoteAmendment,
    TherapyVisit,
)
from ketaclinic.therapy.notes import VisitKind

VISIT_LIMIT = 50


def _uuid(value: Any) -> uuid.UUID | None:
    try:
        return value if isinstance(value, uuid.UUID) else uuid.UUID(str(value))
    except ValueError:
        return None


def _visits() -> QuerySet[TherapyVisit]:
    return TherapyVisit.objects.select_related(
        "patient", "therapist", "signed_by", "session", "plan"
    ).prefetch_related(
        Prefetch(
            "amendments",
            queryset=TherapyNoteAmendment.objects.select_related("recorded_by"),
        )
    )


def visit_get(actor: Actor, public_id: Any, *, capability: Cap = Cap.THERAPY_VIEW) -> TherapyVisit:
    actor.require(capability)
    key = _uuid(public_id)
    visit = _visits().filter(public_id=key).first() if key else None
    if visit is None:
        raise NotFound("No such therapy visit.")
    from ketaclinic.patients.access import assignment_check

    assignment_check(actor, visit.patient)  # care teams and break-glass (patients.access)
    return visit


def visits_for_patient(patient: Patient, *, limit: int = VISIT_LIMIT) -> list[TherapyVisit]:
    return list(_visits().filter(patient=patient).order_by("-started_at", "-pk")[:limit])


def latest_signed(patient: Patient, kind: str) -> TherapyVisit | None:
    return (
        _visits()
        .filter(patient=patient, kind=kind, signed_at__isnull=False)
        .order_by("-started_at", "-pk")
        .first()
    )


def latest_risk_assessment(patient: Patient) -> TherapyVisit | None:
    """The newest signed note with a risk assessment, of any kind."""
    return (
        _visits()
        .filter(patient=patient, signed_at__isnull=False)
        .exclude(risk_level="")
        .order_by("-started_at", "-pk")
        .first()
    )


@dataclass(frozen=True)
class PrecheckSummary:
    """What the prescriber sees from therapy on the session pre-check."""

    integration: TherapyVisit | None
    risk: TherapyVisit | None
    open_flags: list[RiskFlag]
    therapists: list[User]


def precheck_summary(session: TreatmentSession) -> PrecheckSummary:
    patient = session.patient
    flags = list(
        RiskFlag.objects.select_related("raised_by")
        .filter(patient=patient)
        .order_by("-created_at", "-pk")[:3]
    )
    return PrecheckSummary(
        integration=latest_signed(patient, VisitKind.INTEGRATION),
        risk=latest_risk_assessment(patient),
        open_flags=flags,
        therapists=team_for_session(session),
    )


def team_for_session(session: TreatmentSession) -> list[User]:
    """Therapists on the session itself or on its plan (open assignments), once each."""
    rows = TeamAssignment.objects.select_related("therapist").filter(
        Q(session=session) | Q(plan_id=session.plan_id), ended_at__isnull=True
    )
    seen: dict[int, User] = {}
    for row in rows.order_by("created_at", "pk"):
        seen.setdefault(row.therapist_id, row.therapist)
    return list(seen.values())


def team_for_patient(patient: Patient) -> list[TeamAssignment]:
    return list(
        TeamAssignment.objects.select_related("therapist", "assigned_by", "plan", "session")
        .filter(patient=patient, ended_at__isnull=True)
        .order_by("created_at", "pk")
    )


def assignment_get(actor: Actor, public_id: Any) -> TeamAssignment:
    actor.require(Cap.THERAPY_VIEW)
    key = _uuid(public_id)
    row = (
        TeamAssignment.objects.select_related("patient", "therapist").filter(public_id=key).first()
        if key
        else None
    )
    if row is None:
        raise NotFound("No such assignment.")
    return row


def my_patients(actor: Actor) -> list[Patient]:
    """Patients the actor is on the team of (open assignments), by name."""
    ids = TeamAssignment.objects.filter(therapist=actor.user, ended_at__isnull=True).values(
        "patient_id"
    )
    return list(Patient.objects.filter(pk__in=ids).order_by("family_name", "given_name"))


def therapists(organization: Any) -> list[User]:
    return [
        m.user
        for m in Membership.objects.select_related("user")
        .filter(organization=organization, role=Role.THERAPIST, is_active=True)
        .order_by("user__last_name", "user__username")
    ]


def team_members(organization: Any) -> list[Membership]:
    return list(
        Membership.objects.select_related("user")
        .filter(
            organization=organization,
            is_active=True,
            role__in=[Role.PRESCRIBER, Role.NURSE, Role.THERAPIST, Role.COMPLIANCE],
        )
        .order_by("user__last_name", "user__username")
    )


def inbox(actor: Actor, *, limit: int = 50) -> list[TeamMessage]:
    actor.require(Cap.TEAM_MESSAGE)
    return list(
        TeamMessage.objects.select_related("sender", "patient")
        .filter(recipient=actor.user)
        .order_by("-created_at", "-pk")[:limit]
    )


def message_get(actor: Actor, public_id: Any) -> TeamMessage:
    actor.require(Cap.TEAM_MESSAGE)
    key = _uuid(public_id)
    message = (
        TeamMessage.objects.select_related("patient", "sender")
        .filter(public_id=key, recipient=actor.user)
        .first()
        if key
        else None
    )
    if message is None:
        raise NotFound("No such message.")
    return message


def break_glass_reads(actor: Actor, *, limit: int = 200) -> list[BreakGlassRead]:
    """Every break-glass read of a psychotherapy note, newest first (compliance's report)."""
    actor.require(Cap.AUDIT_VIEW)
    return list(
        BreakGlassRead.objects.select_related(
            "patient", "reader", "note__author", "reviewed_by"
        ).order_by("-created_at", "-pk")[:limit]
    )


def measure_plans(patient: Patient) -> list[TherapyMeasurePlan]:
    return list(
        TherapyMeasurePlan.objects.select_related("plan")
        .filter(plan__patient=patient)
        .order_by("created_at", "pk")
    )


@dataclass(frozen=True)
class VisitMarker:
    at: datetime
    kind: str  # preparation, integration, dosing_support


def visit_markers(patient: Patient) -> list[VisitMarker]:
    """When each preparation and integration visit took place, for the trajectory picture."""
    return [
        VisitMarker(at, kind)
        for at, kind in TherapyVisit.objects.filter(
            patient=patient, kind__in=[VisitKind.PREPARATION, VisitKind.INTEGRATION]
        )
        .order_by("started_at")
        .values_list("started_at", "kind")
    ]


def member_user(actor: Actor, public_id: Any, *, field: str) -> User:
    """A user of the actor's organization named by public id (in a request body): unknown or
    another clinic's user is a field error, not a 404 of the whole request."""
    from ketaclinic.core.errors import ValidationFailed

    key = _uuid(public_id)
    membership = (
        Membership.objects.select_related("user")
        .filter(organization=actor.organization, user__public_id=key, is_active=True)
        .first()
        if key
        else None
    )
    if membership is None:
        raise ValidationFailed.for_field(field, "No such member of this clinic.")
    return membership.user


@dataclass(frozen=True)
class PlannedMeasure:
    row: TherapyMeasurePlan
    status: MeasureStatus


def measures_with_status(patient: Patient) -> list[PlannedMeasure]:
    """The plan's therapy measures, each with whether it is due, done or missed now (a fixed
    four queries: the measures, the visits, the sessions, the answers)."""
    from ketaclinic.measures.models import QuestionnaireResponse

    rows = measure_plans(patient)
    if not rows:
        return []
    plan = rows[0].plan
    visits = list(
        TherapyVisit.objects.filter(
            patient=patient, kind__in=[VisitKind.PREPARATION, VisitKind.INTEGRATION]
        ).values_list("kind", "started_at")
    )
    sessions = list(
        TreatmentSession.objects.filter(plan=plan)
        .exclude(state="aborted", dose_started_at__isnull=True)
        .values_list("dose_started_at", "scheduled_at")
    )
    course = Course(
        plan_start=plan.created_at,
        preparations=[at for kind, at in visits if kind == VisitKind.PREPARATION],
        doses=[dosed for dosed, _ in sessions if dosed is not None],
        upcoming_sessions=[at for dosed, at in sessions if dosed is None],
        integrations=[at for kind, at in visits if kind == VisitKind.INTEGRATION],
    )
    answers: dict[str, list[datetime]] = {}
    for instrument_id, completed_at in QuestionnaireResponse.objects.filter(
        patient=patient, instrument_id__in={r.instrument_id for r in rows}
    ).values_list("instrument_id", "completed_at"):
        answers.setdefault(instrument_id, []).append(completed_at)
    return [
        PlannedMeasure(
            row,
            measure_status(
                instrument_id=row.instrument_id,
                timing=row.timing,
                course=course,
                answers=answers.get(row.instrument_id, []),
            ),
        )
        for row in rows
    ]


def break_glass_read_get(actor: Actor, public_id: Any) -> BreakGlassRead:
    actor.require(Cap.AUDIT_VIEW)
    key = _uuid(public_id)
    read = (
        BreakGlassRead.objects.select_related("patient").filter(public_id=key).first()
        if key
        else None
    )
    if read is None:
        raise NotFound("No such break-glass read.")
    return read


def booked_therapy_appointments(patient: Patient) -> list[Any]:
    """The patient's booked KAP preparation and integration appointments that have no visit
    yet, oldest first (the calendar books; the therapist opens the visit from the booking)."""
    from ketaclinic.scheduling.models import Appointment

    opened = TherapyVisit.objects.filter(
        patient=patient, appointment_public_id__isnull=False
    ).values("appointment_public_id")
    return list(
        Appointment.objects.select_related("appointment_type", "clinician__user")
        .filter(
            patient=patient,
            appointment_type__kind__in=["kap_preparation", "kap_integration"],
            status__in=["booked", "checked_in"],
        )
        .exclude(public_id__in=opened)
        .order_by("starts_at", "pk")[:20]
    )


def appointment_get(actor: Actor, public_id: Any) -> Any:
    from ketaclinic.core.errors import ValidationFailed
    from ketaclinic.scheduling.models import Appointment

    key = _uuid(public_id)
    appointment = (
        Appointment.objects.select_related("appointment_type").filter(public_id=key).first()
        if key
        else None
    )
    if appointment is None:
        raise ValidationFailed.for_field("appointment", "No such appointment.")
    return appointment


# --- the therapist's day (role homes) -----------------------------------------------------------

THERAPY_APPOINTMENT_KINDS = ("kap_preparation", "kap_dosing", "kap_integration")
# How far back a dosing session still calls for an integration visit on the therapist's home
# (a clinic reminder, not a clinical rule: integration normally follows within days).
INTEGRATION_LOOKBACK_DAYS = 14


def therapy_appointments_between(actor: Actor, start: datetime, end: datetime) -> list[Any]:
    """The actor's booked therapy visits in [start, end), in time order (one query)."""
    from ketaclinic.scheduling.models import Appointment

    return list(
        Appointment.objects.select_related("appointment_type", "patient")
        .filter(
            clinician=actor.membership,
            appointment_type__kind__in=THERAPY_APPOINTMENT_KINDS,
            status__in=["booked", "checked_in"],
            starts_at__gte=start,
            starts_at__lt=end,
        )
        .order_by("starts_at", "pk")
    )


def visits_between(actor: Actor, start: datetime, end: datetime) -> list[TherapyVisit]:
    """Visits the actor opened in [start, end), in time order (one query)."""
    return list(
        TherapyVisit.objects.select_related("patient")
        .filter(therapist=actor.user, started_at__gte=start, started_at__lt=end)
        .order_by("started_at", "pk")
    )


def notes_to_finish(actor: Actor) -> list[TherapyVisit]:
    """The actor's visits whose progress note is not signed yet, oldest first (one query)."""
    return list(
        TherapyVisit.objects.select_related("patient")
        .filter(therapist=actor.user, signed_at__isnull=True)
        .order_by("started_at", "pk")[:VISIT_LIMIT]
    )


@dataclass(frozen=True)
class IntegrationDue:
    patient: Patient
    dosed_at: datetime  # the last dosing session, not yet followed by an integration visit


def integration_due(actor: Actor, *, now: datetime) -> list[IntegrationDue]:
    """Patients on the actor's team dosed in the last two weeks with no integration visit since
    the dose, opened or booked. Four queries whatever the number of patients."""
    from datetime import timedelta

    from django.db.models import Max

    from ketaclinic.scheduling.models import Appointment

    team = set(
        TeamAssignment.objects.filter(therapist=actor.user, ended_at__isnull=True).values_list(
            "patient_id", flat=True
        )
    )
    if not team:
        return []
    since = now - timedelta(days=INTEGRATION_LOOKBACK_DAYS)
    dosed = dict(
        TreatmentSession.objects.filter(patient_id__in=team, dose_started_at__gte=since)
        .values("patient_id")
        .annotate(last=Max("dose_started_at"))
        .values_list("patient_id", "last")
    )
    if not dosed:
        return []
    integrated = dict(
        TherapyVisit.objects.filter(patient_id__in=list(dosed), kind=VisitKind.INTEGRATION.value)
        .values("patient_id")
        .annotate(last=Max("started_at"))
        .values_list("patient_id", "last")
    )
    booked = dict(
        Appointment.objects.filter(
            patient_id__in=list(dosed),
            appointment_type__kind="kap_integration",
            status__in=["booked", "checked_in"],
        )
        .values("patient_id")
        .annotate(last=Max("starts_at"))
        .values_list("patient_id", "last")
    )
    waiting = [
        patient_id
        for patient_id, last_dose in dosed.items()
        if (integrated.get(patient_id) or since) < last_dose
        and (booked.get(patient_id) or since) < last_dose
    ]
    patients = {p.pk: p for p in Patient.objects.filter(pk__in=waiting)}
    return sorted(
        (IntegrationDue(patients[pk], dosed[pk]) for pk in waiting if pk in patients),
        key=lambda due: due.dosed_at,
    )


def break_glass_reads_unreviewed() -> list[BreakGlassRead]:
    """Psychotherapy-note reads outside the author that compliance has not reviewed yet."""
    return list(
        BreakGlassRead.objects.select_related("patient", "reader")
        .filter(reviewed_at__isnull=True)
        .order_by("created_at", "pk")[:200]
    )
