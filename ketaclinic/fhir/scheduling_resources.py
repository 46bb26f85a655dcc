"""Scheduling as FHIR: each chair is a `Location` with a `Schedule` whose actor is that Location;
`Slot` lists the free starts of a chair's day (computed, not stored); `Appointment` is a booked
visit. Creating an Appointment books through the same service and conflict rules as the
calendar, so a double booking answers 409 with an OperationOutcome naming the rule.

Ids: a Location and its Schedule share the chair's public id. A Slot's id is the chair's id, the
visit type and the start (UTC, minutes): `<chair>.<type>.<YYYYMMDDHHMM>`, so a client can book a
slot it found by referencing it. Appointment cancel is a PUT with status `cancelled` and the
reason in cancelationReason.text; any other change goes through the calendar or the JSON API.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from ketaclinic.accounts.actor import Actor
from ketaclinic.accounts.models import Chair
from ketaclinic.accounts.roles import Cap
from ketaclinic.core import clock
from ketaclinic.core.errors import NotFound
from ketaclinic.fhir import keyset
from ketaclinic.fhir.common import emit, instant, meta
from ketaclinic.fhir.outcome import FhirError
from ketaclinic.fhir.registry import Handler, Page, _page
from ketaclinic.fhir.search import SearchRequest, as_uuid, date_range, patient_ids, reference_id
from ketaclinic.patients.selectors import patient_get_for_actor
from ketaclinic.scheduling import selectors, services
from ketaclinic.scheduling.availability import Availability
from ketaclinic.scheduling.models import Appointment, AppointmentType

TYPE_SYSTEM = "https://ketaclinic.org/fhir/CodeSystem/appointment-type"
HORIZON = timedelta(days=14)
STATUS_TO_FHIR = {
    "proposed": "proposed",
    "booked": "booked",
    "checked_in": "checked-in",
    "cancelled": "cancelled",
    "no_show": "noshow",
    "rescheduled": "cancelled",
}
FHIR_TO_STATUS = {"proposed": ["proposed"], "booked": ["booked"], "checked-in": ["checked_in"],
                  "cancelled": ["cancelled", "rescheduled"], "noshow": ["no_show"]}  # fmt: skip


def _chair(actor: Actor, chair_id: str) -> Chair:
    actor.require(Cap.SCHEDULE_VIEW)
    key = as_uuid(chair_id)
    chair = Chair.objects.select_related("clinic").filter(public_id=key).first() if key else None
    if chair is None:
        raise NotFound(f"No Location or Schedule {chair_id}.")
    return chair


def location_to_fhir(chair: Chair) -> dict[str, Any]:
    return emit(
        {
            "resourceType": "Location",
            "id": str(chair.public_id),
            "meta": meta(chair),
            "status": "active" if chair.is_active else "inactive",
            "name": f"{chair.clinic.name}, {chair.label}",
            "mode": "instance",
            "physicalType": {
                "coding": [
                    {
                        "system": "http://terminology.hl7.org/CodeSystem/location-physical-type",
                        "code": "ro",
                        "display": "Room",
                    }
                ]
            },
            "description": "Treatment chair; can host: " + (", ".join(chair.capabilities) or "—"),
        }
    )


def schedule_to_fhir(chair: Chair) -> dict[str, Any]:
    now = clock.now()
    return emit(
        {
            "resourceType": "Schedule",
            "id": str(chair.public_id),
            "meta": meta(chair),
            "active": chair.is_active,
            "actor": [{"reference": f"Location/{chair.public_id}", "display": chair.label}],
            "planningHorizon": {"start": instant(now), "end": instant(now + HORIZON)},
        }
    )


def slot_id(chair: Chair, kind: str, start: datetime) -> str:
    # FHIR ids allow letters, digits, "-" and ".": the type's "_" travels as "-".
    return f"{chair.public_id}.{kind.replace('_', '-')}.{start.astimezone(UTC):%Y%m%d%H%M}"


def parse_slot_id(value: str) -> tuple[str, str, datetime]:
    try:
        chair, kind, stamp = value.split(".")
        start = datetime.strptime(stamp, "%Y%m%d%H%M").replace(tzinfo=UTC)
    except ValueError:
        raise FhirError(400, f"{value!r} is not a slot of this server.") from None
    return chair, kind.replace("-", "_"), start


def slot_to_fhir(chair: Chair, kind: AppointmentType, start: datetime) -> dict[str, Any]:
    end = start + timedelta(minutes=kind.duration_minutes)
    return emit(
        {
            "resourceType": "Slot",
            "id": slot_id(chair, kind.kind, start),
            "serviceType": [
                {"coding": [{"system": TYPE_SYSTEM, "code": kind.kind, "display": kind.name}]}
            ],
            "schedule": {"reference": f"Schedule/{chair.public_id}"},
            "status": "free",
            "start": instant(start),
            "end": instant(end),
        }
    )


def appointment_to_fhir(appointment: Appointment) -> dict[str, Any]:
    kind = appointment.appointment_type
    participants = [
        {
            "actor": {"reference": f"Patient/{appointment.patient.public_id}"},
            "status": "accepted",
        }
    ]
    if appointment.chair is not None:
        participants.append(
            {
                "actor": {"reference": f"Location/{appointment.chair.public_id}"},
                "status": "accepted",
            }
        )
    if appointment.clinician is not None:
        participants.append(
            {
                "actor": {"display": appointment.clinician.user.display_name},
                "status": "accepted",
            }
        )
    data: dict[str, Any] = {
        "resourceType": "Appointment",
        "id": str(appointment.public_id),
        "meta": meta(appointment),
        "status": STATUS_TO_FHIR[appointment.status],
        "serviceType": [
            {"coding": [{"system": TYPE_SYSTEM, "code": kind.kind, "display": kind.name}]}
        ],
        "start": instant(appointment.starts_at),
        "end": instant(appointment.ends_at),
        "minutesDuration": kind.duration_minutes,
        "created": instant(appointment.created_at),
        "participant": participants,
    }
    if appointment.status in ("cancelled", "rescheduled", "no_show") and appointment.status_reason:
        data["cancelationReason"] = {"text": appointment.status_reason}
    return emit(data)


def _default_kind(actor: Actor, chair: Chair) -> AppointmentType:
    types = AppointmentType.objects.filter(organization=actor.organization, needs_chair=True)
    for kind in types.order_by("pk"):
        if kind.chair_capability in chair.capabilities:
            return kind
    raise FhirError(422, "This chair hosts no visit type.")


class LocationHandler(Handler):
    def read(self, actor: Actor, resource_id: str) -> dict[str, Any]:
        return location_to_fhir(_chair(actor, resource_id))

    def to_fhir(self, obj: Chair) -> dict[str, Any]:
        return location_to_fhir(obj)

    def search(self, actor: Actor, search: SearchRequest) -> Page:
        actor.require(Cap.SCHEDULE_VIEW)
        # The clinics by name (their ordering), spelt out so the page can be continued by key.
        queryset = Chair.objects.select_related("clinic").order_by(
            "clinic__name", "clinic_id", "number"
        )
        for name, values in search.items():
            if name == "_id":
                queryset = queryset.filter(public_id__in=[k for v in values if (k := as_uuid(v))])
        total, rows = _page(queryset, search)
        return Page(total, [location_to_fhir(c) for c in rows], [])


class ScheduleHandler(LocationHandler):
    def read(self, actor: Actor, resource_id: str) -> dict[str, Any]:
        return schedule_to_fhir(_chair(actor, resource_id))

    def to_fhir(self, obj: Chair) -> dict[str, Any]:
        return schedule_to_fhir(obj)

    def search(self, actor: Actor, search: SearchRequest) -> Page:
        actor.require(Cap.SCHEDULE_VIEW)
        queryset = Chair.objects.select_related("clinic").filter(is_active=True)
        for name, values in search.items():
            if name == "actor":
                ids = [as_uuid(reference_id(v, "Location") or v) for v in values]
                queryset = queryset.filter(public_id__in=[i for i in ids if i])
        total, rows = _page(queryset.order_by("clinic__name", "clinic_id", "number"), search)
        return Page(total, [schedule_to_fhir(c) for c in rows], [])


class SlotHandler(Handler):
    def to_fhir(self, obj: Any) -> dict[str, Any]:
        return slot_to_fhir(*obj)

    def search(self, actor: Actor, search: SearchRequest) -> Page:
        actor.require(Cap.SCHEDULE_VIEW)
        chair_ids: list[str] = []
        day: date | None = None
        kind_code = ""
        for name, values in search.items():
            if name == "schedule":
                chair_ids += [reference_id(v, "Schedule") or v for v in values]
            elif name == "start" and values:  # an empty parameter is ignored, not a 500
                day = date_range(values[0].removeprefix("ge").removeprefix("eq"))[0].date()
                if day >= date.max - timedelta(days=2):  # the day's bounds would overflow
                    raise FhirError(
                        400, "start is out of range.", expressions=[("start", "out of range")]
                    )
            elif name == "status" and any(v != "free" for v in values):
                return Page(0, [], [])  # only free slots are listed
            elif name == "service-type" and values:
                kind_code = values[0].split("|")[-1]
        if not chair_ids:
            raise FhirError(400, "Search slots of one schedule: Slot?schedule=Schedule/<id>.")
        found = []
        for chair_id in chair_ids:
            chair = _chair(actor, chair_id)
            kind = (
                selectors.appointment_type_by_kind(actor, kind_code)
                if kind_code
                else _default_kind(actor, chair)
            )
            local_day = day or clock.now().astimezone(ZoneInfo(chair.clinic.time_zone)).date()
            begin, end = selectors.local_day_bounds(chair.clinic, local_day)
            available = Availability.load(
                chair.clinic, begin, end + timedelta(minutes=kind.duration_minutes)
            )
            found += [
                (chair, kind, start)
                for start in available.free_starts_in_chair(kind, local_day, chair)
            ]
        # Paged by key (start, chair), so a visit booked or cancelled while a client pages
        # (a slot gone or back) shifts no page: no slot is served twice or skipped.
        total, window = keyset.page_list(found, _slot_key, search)
        return Page(total, [slot_to_fhir(*row) for row in window], [])


def _slot_key(row: tuple[Chair, AppointmentType, datetime]) -> tuple[str, str]:
    chair, _, start = row
    return (start.astimezone(UTC).strftime("%Y%m%d%H%M"), str(chair.public_id))


class AppointmentHandler(Handler):
    def to_fhir(self, obj: Appointment) -> dict[str, Any]:
        return appointment_to_fhir(obj)

    def _get(self, actor: Actor, resource_id: str) -> Appointment:
        return selectors.appointment_get_for_actor(actor, resource_id)

    def read(self, actor: Actor, resource_id: str) -> dict[str, Any]:
        appointment = self._get(actor, resource_id)
        self.audit_read(actor, appointment, appointment.patient)
        return appointment_to_fhir(appointment)

    def search(self, actor: Actor, search: SearchRequest) -> Page:
        actor.require(Cap.SCHEDULE_VIEW)
        queryset = Appointment.objects.select_related(
            "patient", "appointment_type", "chair", "clinician__user"
        )
        for name, values in search.items():
            if name in ("patient", "actor"):
                queryset = queryset.filter(patient__public_id__in=patient_ids(values))
            elif name == "status":
                queryset = queryset.filter(
                    status__in=[s for v in values for s in FHIR_TO_STATUS.get(v, [])]
                )
            elif name == "date":
                from ketaclinic.fhir.search import any_of, date_q

                queryset = queryset.filter(any_of(values, lambda v: date_q("starts_at", v)))
        total, rows = _page(queryset.order_by("starts_at", "pk"), search)
        return Page(
            total,
            [appointment_to_fhir(a) for a in rows],
            sorted({str(a.patient.public_id) for a in rows}),
        )

    def create(self, actor: Actor, resource: Any, **kw: Any) -> Appointment:
        if resource.status != "booked":
            raise FhirError(422, "Create an Appointment with status booked.")
        patient_ref = chair_ref = None
        for participant in resource.participant or []:
            reference = (participant.actor.reference or "") if participant.actor else ""
            if reference.startswith("Patient/"):
                patient_ref = reference.split("/", 1)[1]
            elif reference.startswith("Location/"):
                chair_ref = reference.split("/", 1)[1]
        if patient_ref is None:
            raise FhirError(422, "Name the patient as a participant (Patient/<id>).")
        patient = patient_get_for_actor(actor, patient_ref)
        start = resource.start
        kind_code = ""
        if resource.slot:
            slot_chair, kind_code, slot_start = parse_slot_id(
                reference_id(resource.slot[0].reference or "", "Slot") or ""
            )
            chair_ref = chair_ref or slot_chair
            start = start or slot_start
        for concept in resource.serviceType or []:
            for coding in concept.coding or []:
                if coding.system == TYPE_SYSTEM:
                    kind_code = coding.code or kind_code
        if start is None or chair_ref is None:
            raise FhirError(422, "Give start and the Location (or a Slot) of the appointment.")
        chair = _chair(actor, chair_ref)
        kind = (
            selectors.appointment_type_by_kind(actor, kind_code)
            if kind_code
            else _default_kind(actor, chair)
        )
        return services.appointment_book(
            actor=actor,
            patient=patient,
            appointment_type=kind,
            starts_at=start,
            clinic=chair.clinic,
            chair=chair,
            source=Appointment.Source.FHIR,
        )

    def update(self, actor: Actor, resource_id: str, resource: Any) -> Appointment:
        appointment = self._get(actor, resource_id)
        if resource.status != "cancelled":
            raise FhirError(
                422,
                "Only cancelling (status cancelled) is supported by PUT; move a visit in the calendar.",
            )
        reason = resource.cancelationReason.text if resource.cancelationReason else ""
        services.appointment_cancel(
            actor=actor, appointment=appointment, reason=reason or "cancelled through FHIR"
        )
        return self._get(actor, resource_id)


SCHEDULING_HANDLERS: dict[str, Handler] = {
    "Location": LocationHandler(
        type="Location",
        interactions=("read", "search-type"),
        search_params={"_id": "token"},
        patient_record=False,
        documentation={"_id": "each treatment chair or room of the clinic"},
    ),
    "Schedule": ScheduleHandler(
        type="Schedule",
        interactions=("read", "search-type"),
        search_params={"actor": "reference"},
        patient_record=False,
        documentation={"actor": "one schedule per chair; its actor is the chair's Location"},
    ),
    "Slot": SlotHandler(
        type="Slot",
        interactions=("search-type",),
        search_params={
            "schedule": "reference",
            "start": "date",
            "status": "token",
            "service-type": "token",
        },
        patient_record=False,
        documentation={
            "schedule": "required; the free starts of one chair's day (status=free only)",
            "service-type": f"{TYPE_SYSTEM} code; default: the first visit type the chair hosts",
        },
    ),
    "Appointment": AppointmentHandler(
        type="Appointment",
        interactions=("read", "search-type", "create", "update"),
        search_params={"patient": "reference", "date": "date", "status": "token"},
        # Visits are the calendar's, not the clinical record's: $everything and bulk export
        # leave them out (search Appointment?patient= for them).
        patient_record=False,
        documentation={
            "patient": "create with status booked, the Patient and Location participants (or a "
            "Slot); a conflict answers 409; PUT status cancelled cancels"
        },
    ),
}
