"""JSON API for scheduling (mounted at /api/v1/): every action of the calendar screens, through
the same services. A conflict answers 409 naming each rule the booking breaks."""

from __future__ import annotations

import uuid
from datetime import date, datetime, time
from decimal import Decimal
from typing import Any

from ninja import Field, Query, Router, Schema, Status

from ketaclinic.accounts.actor import ActorRequest
from ketaclinic.accounts.roles import Cap
from ketaclinic.core.api import ERROR_RESPONSES
from ketaclinic.core.errors import ValidationFailed
from ketaclinic.patients.selectors import patient_get_for_actor
from ketaclinic.protocols.models import TreatmentPlan
from ketaclinic.scheduling import selectors, services
from ketaclinic.scheduling.models import AppointmentType

router = Router(tags=["scheduling"])
KINDS = tuple(AppointmentType.Kind.values)


class TypeOut(Schema):
    kind: str
    name: str
    duration_minutes: int
    needs_chair: bool
    chair_capability: str
    needs_clinician: bool
    monitored: bool
    bookable_online: bool
    is_active: bool
    public_price: Decimal | None = Field(
        None, description="self-pay price shown on the public page (US dollars); null: not shown"
    )
    source: str


class TypeIn(Schema):
    duration_minutes: int = Field(..., ge=5, le=600)
    bookable_online: bool = False
    is_active: bool = True
    public_price: Decimal | None = Field(
        None,
        ge=0,
        le=100000,
        max_digits=8,
        decimal_places=2,
        description="self-pay price to publish on the public page (US dollars); null: none",
    )


class AppointmentOut(Schema):
    id: uuid.UUID = Field(..., alias="public_id")
    patient: uuid.UUID
    appointment_type: str
    clinic: uuid.UUID
    chair: int | None
    clinician: uuid.UUID | None
    starts_at: datetime
    ends_at: datetime
    status: str
    status_reason: str
    source: str
    series: uuid.UUID | None
    series_index: int | None
    rescheduled_from: uuid.UUID | None
    session: uuid.UUID | None = Field(None, alias="session_public_id")

    @staticmethod
    def resolve_patient(obj: Any) -> uuid.UUID:
        return obj.patient.public_id

    @staticmethod
    def resolve_appointment_type(obj: Any) -> str:
        return obj.appointment_type.kind

    @staticmethod
    def resolve_clinic(obj: Any) -> uuid.UUID:
        return obj.clinic.public_id

    @staticmethod
    def resolve_chair(obj: Any) -> int | None:
        return obj.chair.number if obj.chair_id else None

    @staticmethod
    def resolve_clinician(obj: Any) -> uuid.UUID | None:
        return obj.clinician.user.public_id if obj.clinician_id else None

    @staticmethod
    def resolve_series(obj: Any) -> uuid.UUID | None:
        return obj.series.public_id if obj.series_id else None

    @staticmethod
    def resolve_rescheduled_from(obj: Any) -> uuid.UUID | None:
        return obj.rescheduled_from.public_id if obj.rescheduled_from_id else None


class BookIn(Schema):
    patient: uuid.UUID
    appointment_type: str = Field(..., max_length=20, examples=["iv_infusion"])
    starts_at: datetime
    chair: int | None = Field(None, ge=1, le=999)
    clinician: uuid.UUID | None = None
    clinic: uuid.UUID | None = None


class MoveIn(Schema):
    starts_at: datetime
    chair: int | None = Field(None, ge=1, le=999)
    clinician: uuid.UUID | None = None
    reason: str = Field("", max_length=300)


class ReasonIn(Schema):
    reason: str = Field(..., min_length=1, max_length=300)


class RangeQuery(Schema):
    start: datetime
    end: datetime
    clinic: uuid.UUID | None = None


class SlotQuery(Schema):
    appointment_type: str = Field(..., max_length=20)
    day: date
    clinician: uuid.UUID | None = None
    clinic: uuid.UUID | None = None


class SlotOut(Schema):
    starts_at: datetime
    chair: int | None


class SeriesIn(Schema):
    plan: uuid.UUID
    appointment_type: str = Field(..., max_length=20)
    first_day: date
    wall_time: time
    phases: list[str] | None = None
    exceptions: list[date] = []
    clinic: uuid.UUID | None = None


class SeriesOut(Schema):
    id: uuid.UUID
    rules: list[dict[str, str]]
    algorithm: str
    appointments: list[AppointmentOut]


class ConfirmIn(Schema):
    clinician: uuid.UUID | None = None


class RefusedOut(Schema):
    appointment: AppointmentOut
    reasons: list[dict[str, str]]


class ConfirmOut(Schema):
    booked: list[AppointmentOut]
    refused: list[RefusedOut]


class WaitlistIn(Schema):
    patient: uuid.UUID
    appointment_type: str = Field(..., max_length=20)
    earliest: date
    latest: date
    note: str = Field("", max_length=300)
    clinic: uuid.UUID | None = None


class WaitlistOut(Schema):
    id: uuid.UUID = Field(..., alias="public_id")
    patient: uuid.UUID
    appointment_type: str
    earliest: date
    latest: date
    status: str
    note: str

    @staticmethod
    def resolve_patient(obj: Any) -> uuid.UUID:
        return obj.patient.public_id

    @staticmethod
    def resolve_appointment_type(obj: Any) -> str:
        return obj.appointment_type.kind


class WaitlistBookIn(Schema):
    starts_at: datetime
    chair: int | None = Field(None, ge=1, le=999)
    clinician: uuid.UUID | None = None


class HoursRow(Schema):
    weekday: int = Field(..., ge=0, le=6)
    start: time
    end: time


class HoursIn(Schema):
    staff: uuid.UUID = Field(..., description="the staff member's user id")
    hours: list[HoursRow]
    clinic: uuid.UUID | None = None


class TimeOffIn(Schema):
    staff: uuid.UUID
    starts_at: datetime
    ends_at: datetime
    reason: str = Field("", max_length=200)


class CapacityIn(Schema):
    patients_per_nurse: int = Field(..., ge=1, le=10)
    note: str = Field("", max_length=2000)
    clinic: uuid.UUID | None = None


class CapacityOut(Schema):
    version: int
    patients_per_nurse: int


class PortalPolicyIn(Schema):
    change_cutoff_hours: int = Field(
        ..., ge=1, le=336, description="patients change or cancel online up to this many hours"
    )
    horizon_days: int = Field(..., ge=1, le=180, description="patients book this far ahead")
    note: str = Field("", max_length=2000)
    clinic: uuid.UUID | None = None


class PortalPolicyOut(Schema):
    version: int
    change_cutoff_hours: int
    horizon_days: int
    note: str
    bookable_online: list[str] = Field(
        ..., description="the visit types a patient may book in the portal"
    )


def _reload(appointment: Any) -> Any:
    return (
        type(appointment)
        .objects.select_related(
            "patient", "clinic", "appointment_type", "chair", "clinician__user", "series",
            "rescheduled_from",
        )
        .get(pk=appointment.pk)
    )  # fmt: skip


@router.get("/scheduling/types", response={200: list[TypeOut], **ERROR_RESPONSES})
def list_types(request: ActorRequest) -> Any:
    actor = request.auth
    actor.require(Cap.SCHEDULE_VIEW)
    services.appointment_types_seed(organization=actor.organization)
    return list(AppointmentType.objects.filter(organization=actor.organization))


@router.put("/scheduling/types/{kind}", response={200: TypeOut, **ERROR_RESPONSES})
def update_type(request: ActorRequest, kind: str, payload: TypeIn) -> Any:
    actor = request.auth
    return services.appointment_type_update(
        actor=actor,
        appointment_type=selectors.appointment_type_by_kind(actor, kind),
        **payload.dict(),
    )


@router.get("/scheduling/appointments", response={200: list[AppointmentOut], **ERROR_RESPONSES})
def list_appointments(request: ActorRequest, filters: Query[RangeQuery]) -> Any:
    actor = request.auth
    actor.require(Cap.SCHEDULE_VIEW)
    if filters.end <= filters.start or (filters.end - filters.start).days > 31:
        raise ValidationFailed.for_field("end", "Ask for at most 31 days, end after start.")
    clinic = selectors.clinic_for_actor(actor, filters.clinic)
    return list(
        selectors.appointments_between(clinic, filters.start, filters.end).select_related(
            "clinic", "series", "rescheduled_from"
        )
    )


@router.post("/scheduling/appointments", response={201: AppointmentOut, **ERROR_RESPONSES})
def book(request: ActorRequest, payload: BookIn) -> Any:
    actor = request.auth
    patient = patient_get_for_actor(actor, payload.patient)
    clinic = selectors.clinic_for_actor(actor, payload.clinic)
    appointment = services.appointment_book(
        actor=actor,
        patient=patient,
        appointment_type=selectors.appointment_type_by_kind(actor, payload.appointment_type),
        starts_at=payload.starts_at,
        clinic=clinic,
        chair=selectors.chair_by_number(clinic, payload.chair),
        clinician=selectors.clinician_by_user(actor, payload.clinician),
    )
    return Status(201, _reload(appointment))


@router.get(
    "/scheduling/appointments/{appointment_id}", response={200: AppointmentOut, **ERROR_RESPONSES}
)
def get_appointment(request: ActorRequest, appointment_id: str) -> Any:
    return _reload(selectors.appointment_get_for_actor(request.auth, appointment_id))


@router.post(
    "/scheduling/appointments/{appointment_id}/reschedule",
    response={201: AppointmentOut, **ERROR_RESPONSES},
)
def reschedule(request: ActorRequest, appointment_id: str, payload: MoveIn) -> Any:
    actor = request.auth
    appointment = selectors.appointment_get_for_actor(actor, appointment_id)
    moved = services.appointment_reschedule(
        actor=actor,
        appointment=appointment,
        starts_at=payload.starts_at,
        chair=selectors.chair_by_number(appointment.clinic, payload.chair),
        clinician=selectors.clinician_by_user(actor, payload.clinician),
        reason=payload.reason,
    )
    return Status(201, _reload(moved))


@router.post(
    "/scheduling/appointments/{appointment_id}/cancel",
    response={200: AppointmentOut, **ERROR_RESPONSES},
)
def cancel(request: ActorRequest, appointment_id: str, payload: ReasonIn) -> Any:
    actor = request.auth
    appointment = selectors.appointment_get_for_actor(actor, appointment_id)
    return _reload(
        services.appointment_cancel(actor=actor, appointment=appointment, reason=payload.reason)
    )


@router.post(
    "/scheduling/appointments/{appointment_id}/no-show",
    response={200: AppointmentOut, **ERROR_RESPONSES},
)
def no_show(request: ActorRequest, appointment_id: str, payload: ReasonIn) -> Any:
    actor = request.auth
    appointment = selectors.appointment_get_for_actor(actor, appointment_id)
    return _reload(
        services.appointment_no_show(actor=actor, appointment=appointment, reason=payload.reason)
    )


@router.post(
    "/scheduling/appointments/{appointment_id}/check-in",
    response={200: AppointmentOut, **ERROR_RESPONSES},
)
def check_in(request: ActorRequest, appointment_id: str) -> Any:
    actor = request.auth
    appointment = selectors.appointment_get_for_actor(actor, appointment_id)
    return _reload(services.appointment_check_in(actor=actor, appointment=appointment))


@router.get("/scheduling/free-slots", response={200: list[SlotOut], **ERROR_RESPONSES})
def free_slots(request: ActorRequest, filters: Query[SlotQuery]) -> Any:
    actor = request.auth
    actor.require(Cap.SCHEDULE_VIEW)
    clinic = selectors.clinic_for_actor(actor, filters.clinic)
    slots = selectors.free_slots(
        clinic,
        selectors.appointment_type_by_kind(actor, filters.appointment_type),
        filters.day,
        clinician=selectors.clinician_by_user(actor, filters.clinician),
    )
    return [{"starts_at": start, "chair": c.number if c else None} for start, c in slots]


def _series_out(proposal: Any) -> dict[str, Any]:
    return {
        "id": proposal.public_id,
        "rules": proposal.rules,
        "algorithm": proposal.algorithm,
        "appointments": [_reload(a) for a in proposal.appointments.order_by("starts_at")],
    }


@router.post("/scheduling/series", response={201: SeriesOut, **ERROR_RESPONSES})
def propose_series(request: ActorRequest, payload: SeriesIn) -> Any:
    actor = request.auth
    actor.require(Cap.SCHEDULE_BOOK)
    plan = TreatmentPlan.objects.filter(public_id=payload.plan).select_related("patient").first()
    if plan is None:
        raise ValidationFailed.for_field("plan", "No such treatment plan.")
    patient_get_for_actor(actor, plan.patient.public_id)
    proposal = services.series_propose(
        actor=actor,
        plan=plan,
        appointment_type=selectors.appointment_type_by_kind(actor, payload.appointment_type),
        first_day=payload.first_day,
        wall_time=payload.wall_time,
        clinic=selectors.clinic_for_actor(actor, payload.clinic),
        exceptions=payload.exceptions,
        phases=payload.phases,
    )
    return Status(201, _series_out(proposal))


@router.post(
    "/scheduling/series/{series_id}/confirm", response={200: ConfirmOut, **ERROR_RESPONSES}
)
def confirm_series(request: ActorRequest, series_id: str, payload: ConfirmIn) -> Any:
    actor = request.auth
    proposal = selectors.series_get_for_actor(actor, series_id)
    result = services.series_confirm(
        actor=actor,
        proposal=proposal,
        clinician=selectors.clinician_by_user(actor, payload.clinician),
    )
    return {
        "booked": [_reload(a) for a in result.booked],
        "refused": [
            {
                "appointment": _reload(a),
                "reasons": [{"field": r.field, "message": r.message} for r in reasons],
            }
            for a, reasons in result.refused
        ],
    }


@router.get("/scheduling/waitlist", response={200: list[WaitlistOut], **ERROR_RESPONSES})
def list_waitlist(request: ActorRequest) -> Any:
    actor = request.auth
    actor.require(Cap.SCHEDULE_VIEW)
    from ketaclinic.scheduling.models import WaitlistEntry

    return list(
        WaitlistEntry.objects.filter(status="waiting").select_related("patient", "appointment_type")
    )


@router.post("/scheduling/waitlist", response={201: WaitlistOut, **ERROR_RESPONSES})
def add_waitlist(request: ActorRequest, payload: WaitlistIn) -> Any:
    actor = request.auth
    entry = services.waitlist_add(
        actor=actor,
        patient=patient_get_for_actor(actor, payload.patient),
        appointment_type=selectors.appointment_type_by_kind(actor, payload.appointment_type),
        earliest=payload.earliest,
        latest=payload.latest,
        clinic=selectors.clinic_for_actor(actor, payload.clinic),
        note=payload.note,
    )
    return Status(201, entry)


class WaitlistRemoveIn(Schema):
    reason: str = Field(..., min_length=1, max_length=300)


@router.post(
    "/scheduling/waitlist/{entry_id}/remove", response={200: WaitlistOut, **ERROR_RESPONSES}
)
def remove_waitlist(request: ActorRequest, entry_id: str, payload: WaitlistRemoveIn) -> Any:
    actor = request.auth
    entry = selectors.waitlist_get_for_actor(actor, entry_id)
    return services.waitlist_remove(actor=actor, entry=entry, reason=payload.reason)


@router.post(
    "/scheduling/waitlist/{entry_id}/book", response={201: AppointmentOut, **ERROR_RESPONSES}
)
def book_waitlist(request: ActorRequest, entry_id: str, payload: WaitlistBookIn) -> Any:
    actor = request.auth
    entry = selectors.waitlist_get_for_actor(actor, entry_id)
    appointment = services.waitlist_book(
        actor=actor,
        entry=entry,
        starts_at=payload.starts_at,
        chair=selectors.chair_by_number(entry.clinic, payload.chair),
        clinician=selectors.clinician_by_user(actor, payload.clinician),
    )
    return Status(201, _reload(appointment))


@router.put("/scheduling/hours", response={200: list[HoursRow], **ERROR_RESPONSES})
def set_hours(request: ActorRequest, payload: HoursIn) -> Any:
    actor = request.auth
    actor.require(Cap.SCHEDULE_MANAGE)
    membership = selectors.staff_member_by_user(actor, payload.staff)
    rows = services.staff_hours_set(
        actor=actor,
        membership=membership,
        clinic=selectors.clinic_for_actor(actor, payload.clinic),
        hours=[(h.weekday, h.start, h.end) for h in payload.hours],
    )
    return [{"weekday": r.weekday, "start": r.start_time, "end": r.end_time} for r in rows]


@router.post("/scheduling/time-off", response={201: dict[str, str], **ERROR_RESPONSES})
def add_time_off(request: ActorRequest, payload: TimeOffIn) -> Any:
    actor = request.auth
    actor.require(Cap.SCHEDULE_MANAGE)
    services.time_off_add(
        actor=actor,
        membership=selectors.staff_member_by_user(actor, payload.staff),
        starts_at=payload.starts_at,
        ends_at=payload.ends_at,
        reason=payload.reason,
    )
    return Status(201, {"detail": "Time off recorded."})


@router.post("/scheduling/capacity", response={201: CapacityOut, **ERROR_RESPONSES})
def publish_capacity(request: ActorRequest, payload: CapacityIn) -> Any:
    actor = request.auth
    policy = services.capacity_policy_publish(
        actor=actor,
        clinic=selectors.clinic_for_actor(actor, payload.clinic),
        patients_per_nurse=payload.patients_per_nurse,
        note=payload.note,
    )
    return Status(201, policy)


def _portal_policy_out(actor: Any, policy: Any) -> dict[str, Any]:
    return {
        "version": policy.version,
        "change_cutoff_hours": policy.change_cutoff_hours,
        "horizon_days": policy.horizon_days,
        "note": policy.note,
        "bookable_online": [t.kind for t in selectors.portal_types(actor.organization)],
    }


@router.get("/scheduling/portal-policy", response={200: PortalPolicyOut, **ERROR_RESPONSES})
def get_portal_policy(request: ActorRequest, clinic: uuid.UUID | None = None) -> Any:
    from ketaclinic.scheduling.availability import portal_policy_current

    actor = request.auth
    actor.require(Cap.SCHEDULE_VIEW)
    found = selectors.clinic_for_actor(actor, clinic)
    return _portal_policy_out(actor, portal_policy_current(found))


@router.put("/scheduling/portal-policy", response={200: PortalPolicyOut, **ERROR_RESPONSES})
def put_portal_policy(request: ActorRequest, payload: PortalPolicyIn) -> Any:
    actor = request.auth
    policy = services.portal_policy_publish(
        actor=actor,
        clinic=selectors.clinic_for_actor(actor, payload.clinic),
        change_cutoff_hours=payload.change_cutoff_hours,
        horizon_days=payload.horizon_days,
        note=payload.note,
    )
    return _portal_policy_out(actor, policy)


class LeadOut(Schema):
    id: uuid.UUID = Field(..., alias="public_id")
    given_name: str
    family_name: str
    birth_date: date
    email: str
    phone: str
    reason: str
    route: str
    route_reasons: list[str]
    absolute_contraindication: bool
    requested_start: datetime | None
    status: str
    patient: uuid.UUID | None
    appointment: uuid.UUID | None

    @staticmethod
    def resolve_patient(obj: Any) -> uuid.UUID | None:
        return obj.patient.public_id if obj.patient_id else None

    @staticmethod
    def resolve_appointment(obj: Any) -> uuid.UUID | None:
        return obj.appointment.public_id if obj.appointment_id else None


@router.get("/scheduling/leads", response={200: list[LeadOut], **ERROR_RESPONSES})
def list_leads(request: ActorRequest) -> Any:
    from ketaclinic.scheduling.models import Lead

    request.auth.require(Cap.SCHEDULE_VIEW)
    return list(Lead.objects.filter(status="new").select_related("patient", "appointment")[:200])


@router.post("/scheduling/leads/{lead_id}/convert", response={200: LeadOut, **ERROR_RESPONSES})
def convert_lead(request: ActorRequest, lead_id: str) -> Any:
    from ketaclinic.core.errors import NotFound
    from ketaclinic.scheduling import leads
    from ketaclinic.scheduling.models import Lead

    actor = request.auth
    actor.require(Cap.SCHEDULE_BOOK)
    key = selectors._uuid(lead_id)
    lead = Lead.objects.filter(public_id=key).first() if key else None
    if lead is None:
        raise NotFound("No such request.")
    done = leads.lead_convert(actor=actor, lead=lead)
    return Lead.objects.select_related("patient", "appointment").get(pk=done.pk)


class FeedOut(Schema):
    url: str


@router.post("/scheduling/calendar-feed", response={201: FeedOut, **ERROR_RESPONSES})
def issue_feed(request: ActorRequest) -> Any:
    from django.urls import reverse

    from ketaclinic.scheduling.feeds import calendar_feed_issue

    token = calendar_feed_issue(actor=request.auth)
    path = reverse("scheduling:feed", kwargs={"token": token})
    return Status(201, {"url": request.build_absolute_uri(path)})


@router.delete("/scheduling/calendar-feed", response={204: None, **ERROR_RESPONSES})
def revoke_feed(request: ActorRequest) -> Any:
    from ketaclinic.scheduling.feeds import calendar_feed_revoke

    calendar_feed_revoke(actor=request.auth)
    return Status(204, None)
