"""Reads of sessions: the flowsheet, the floor board, REMS trackers. Fixed query counts."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from ketaclinic.accounts.actor import Actor
from ketaclinic.accounts.roles import Cap
from ketaclinic.core import clock, rows
from ketaclinic.core.errors import NotFound
from ketaclinic.patients.models import Patient
from ketaclinic.protocols.models import TreatmentPlan
from ketaclinic.sessions.discharge import DischargeAssessment
from ketaclinic.sessions.models import (
    ACTIVE_STATES,
    AdverseEvent,
    DischargeCheck,
    DoseAdministration,
    DoseOrder,
    Intervention,
    PatientMonitoringForm,
    Precheck,
    SessionNote,
    SessionObservation,
    TreatmentSession,
    VitalsEntry,
)
from ketaclinic.sessions.workflow import SessionState, allowed_events, checklist_for


def _uuid(value: object) -> uuid.UUID | None:
    try:
        return value if isinstance(value, uuid.UUID) else uuid.UUID(str(value))
    except ValueError:
        return None


def local_date(session: TreatmentSession, at: datetime) -> date:
    return at.astimezone(ZoneInfo(session.clinic.time_zone)).date()


def session_ref(
    actor: Actor,
    public_id: object,
    *,
    capability: Cap = Cap.SESSION_VIEW,
    related: tuple[str, ...] = (),
) -> TreatmentSession:
    """The session's own row, with only the rows `related` names joined (the caller's service
    reads what else it needs); another organization's is a 404, as with session_get."""
    actor.require(capability)
    key = _uuid(public_id)
    if key is None:
        raise NotFound("No such session.")
    # The query built once (core.rows).
    session = rows.one(TreatmentSession, public_id=key, related=related)
    if session is None:
        raise NotFound("No such session.")
    _check_assignment(actor, session.patient if "patient" in related else session.patient_id)
    return session


def _check_assignment(actor: Actor, patient: Patient | int) -> None:
    """A clinician kept to care teams reaches a session only through its patient's assignment
    or an open break-glass access (patients.access); no query when the clinic does not ask."""
    from ketaclinic.patients.access import assignment_check, kept_to_care_team

    if not kept_to_care_team(actor):
        return
    if not isinstance(patient, Patient):
        patient = Patient.objects.get(pk=patient)
    assignment_check(actor, patient)


def session_get(
    actor: Actor, public_id: object, *, capability: Cap = Cap.SESSION_VIEW
) -> TreatmentSession:
    """The session with what every screen needs; another organization's is a 404."""
    actor.require(capability)
    key = _uuid(public_id)
    session = (
        TreatmentSession.objects.select_related(
            "patient",
            "plan",
            "plan__prescriber",
            "protocol",
            "clinic",
            "policy_version",
            "frequency_override_by",
        )
        .filter(public_id=key)
        .first()
        if key
        else None
    )
    if session is None:
        raise NotFound("No such session.")
    _check_assignment(actor, session.patient)
    return session


@dataclass
class Flowsheet:
    session: TreatmentSession
    vitals: list[VitalsEntry]
    prechecks: list[Precheck]
    orders: list[DoseOrder]
    administrations: list[DoseAdministration]
    observations: list[SessionObservation]
    adverse_events: list[AdverseEvent]
    interventions: list[Intervention]
    discharge_checks: list[DischargeCheck]
    note: SessionNote | None
    pmf: PatientMonitoringForm | None
    checklist: list[Any] = field(default_factory=list)

    @property
    def order(self) -> DoseOrder | None:
        signed = [o for o in self.orders if o.status == DoseOrder.Status.SIGNED]
        return signed[-1] if signed else None

    @property
    def last_discharge(self) -> DischargeCheck | None:
        return self.discharge_checks[-1] if self.discharge_checks else None

    @property
    def last_precheck(self) -> Precheck | None:
        return self.prechecks[-1] if self.prechecks else None

    @property
    def events(self) -> list[str]:
        return [e.value for e in allowed_events(SessionState(self.session.state))]

    @property
    def assessment_fields(self) -> tuple[str, ...]:
        return tuple(DischargeAssessment.__dataclass_fields__)


def flowsheet(session: TreatmentSession) -> Flowsheet:
    """Everything the flowsheet shows, in a fixed number of queries."""
    note = (
        SessionNote.objects.filter(session=session)
        .select_related("signed_by")
        .prefetch_related("amendments")
        .first()
    )
    sheet = Flowsheet(
        session=session,
        vitals=list(VitalsEntry.objects.filter(session=session).order_by("taken_at", "pk")),
        prechecks=list(
            Precheck.objects.filter(session=session).select_related("override_by").order_by("pk")
        ),
        orders=list(
            DoseOrder.objects.filter(session=session).select_related("recorded_by").order_by("pk")
        ),
        administrations=list(
            DoseAdministration.objects.filter(session=session)
            .select_related("recorded_by")
            .order_by("pk")
        ),
        observations=list(SessionObservation.objects.filter(session=session)),
        adverse_events=list(AdverseEvent.objects.filter(session=session)),
        interventions=list(Intervention.objects.filter(session=session)),
        discharge_checks=list(DischargeCheck.objects.filter(session=session).order_by("pk")),
        note=note,
        pmf=PatientMonitoringForm.objects.filter(session=session).first()
        if session.drug == "esketamine"
        else None,
    )
    sheet.checklist = list(
        checklist_for(
            drug=session.drug,
            setting=session.setting,
            childbearing_potential=session.plan.childbearing_potential,
            plan_measures=session.plan.plan_measures,
        )
    )
    return sheet


@dataclass(frozen=True)
class FloorRow:
    session: TreatmentSession
    minutes_since_dose: int | None
    observation_left: int | None


def floor_board(*, now: datetime | None = None) -> list[FloorRow]:
    """Every active session of the organization in scope: one query."""
    now = now or clock.now()
    sessions = (
        TreatmentSession.objects.filter(state__in=ACTIVE_STATES)
        .select_related("patient", "clinic", "protocol")
        .order_by("clinic__name", "chair", "scheduled_at")
    )
    rows = []
    for session in sessions:
        minutes = None
        left = None
        if session.dose_started_at is not None:
            minutes = int((now - session.dose_started_at) / timedelta(minutes=1))
            required = session.protocol.definition["monitoring"]["minimum_observation_minutes"]
            left = max(0, int(required) - minutes)
        rows.append(FloorRow(session, minutes, left))
    return rows


def sessions_for_patient(patient: Patient) -> list[TreatmentSession]:
    return list(
        TreatmentSession.objects.filter(patient=patient)
        .select_related("clinic")
        .order_by("-scheduled_at", "-pk")[:50]
    )


def schedulable_plans(patient: Patient) -> list[TreatmentPlan]:
    """The patient's active plans: the choices of the chart's "Schedule session" form."""
    return list(
        TreatmentPlan.objects.filter(patient=patient, status=TreatmentPlan.Status.ACTIVE)
        .select_related("protocol")
        .order_by("-start_date", "-pk")
    )


def pmf_tracker(*, today: date) -> list[PatientMonitoringForm]:
    """Unsubmitted REMS forms, the most urgent first (7-day deadline)."""
    return list(
        PatientMonitoringForm.objects.filter(submitted_on__isnull=True)
        .select_related("session", "session__patient")
        .order_by("due_on", "pk")[:50]
    )


def day_picture(*, clinic: Any, now: datetime | None = None) -> dict[str, Any]:
    """The clinic's treatment day at a glance (role homes): today's sessions by where they are,
    the ones waiting for a dose order, the ones on the floor. Two queries."""
    from django.utils import timezone as dj_timezone

    now = now or clock.now()
    zone = ZoneInfo(clinic.time_zone) if clinic is not None else dj_timezone.get_current_timezone()
    start = datetime.combine(now.astimezone(zone).date(), datetime.min.time(), tzinfo=zone)
    sessions = list(
        TreatmentSession.objects.filter(
            scheduled_at__gte=start, scheduled_at__lt=start + timedelta(days=1)
        )
        .select_related("patient", "clinic")
        .order_by("scheduled_at")
    )
    ordered = set(
        DoseOrder.objects.filter(
            session__in=[s.pk for s in sessions], status=DoseOrder.Status.SIGNED
        ).values_list("session_id", flat=True)
    )
    active = ("dosing", "monitoring", "ready_for_discharge")
    return {
        "sessions": sessions,
        "arriving": [s for s in sessions if s.state == "scheduled"],
        "checked_in": [s for s in sessions if s.state in ("checked_in", "prechecks_passed")],
        "on_floor": [s for s in sessions if s.state in active],
        "done": [s for s in sessions if s.state in ("discharged", "aborted")],
        "orders_to_sign": [
            s for s in sessions if s.state == "prechecks_passed" and s.pk not in ordered
        ],
    }


def sessions_between(*, clinic: Any, start: datetime, end: datetime) -> list[TreatmentSession]:
    """A clinic's treatment sessions scheduled in [start, end), in time order (one query)."""
    return list(
        TreatmentSession.objects.filter(
            clinic=clinic, scheduled_at__gte=start, scheduled_at__lt=end
        )
        .select_related("patient")
        .order_by("scheduled_at", "pk")
    )
