"""The online front door: a consult request from the public page becomes a lead; the front desk
converts it into a patient (and books the requested consult when the pre-screen allows).

Abuse resistance lives here, not only in the view: per-address limits count the leads this
client address (stored as a salted hash, never in clear) and this e-mail sent recently, so a
script posting to the API path is held to the same limits as the browser form.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from django.conf import settings
from django.db import transaction
from django.utils.dateparse import parse_date

from ketaclinic.accounts.actor import Actor
from ketaclinic.accounts.audit import audit_record
from ketaclinic.accounts.models import Clinic, Membership
from ketaclinic.accounts.roles import Cap
from ketaclinic.core import clock
from ketaclinic.core.errors import Conflict, DomainError, FieldError, ValidationFailed
from ketaclinic.patients.services import patient_create
from ketaclinic.scheduling import frontdoor
from ketaclinic.scheduling.models import Appointment, AppointmentType, Lead

ADDRESS_LIMIT = (3, timedelta(minutes=1))  # requests kept per client address and window
ADDRESS_DAY_LIMIT = (10, timedelta(days=1))
EMAIL_LIMIT = (2, timedelta(days=1))
OLDEST_BIRTH = date(1900, 1, 1)


class TooManyRequests(DomainError):
    status = 429
    code = "throttled"


def address_hash(client_address: str) -> str:
    return hashlib.sha256(f"{settings.SECRET_KEY}:lead:{client_address}".encode()).hexdigest()


@dataclass(frozen=True)
class LeadInput:
    given_name: str
    family_name: str
    birth_date: str
    sex_at_birth: str
    email: str
    phone: str
    reason: str
    answers: dict[str, bool]
    slot: str  # "<ISO start>|<clinician membership public key>" or ""


def _clean(data: LeadInput, today: date) -> tuple[dict[str, Any], list[FieldError]]:
    errors = []
    given, family = data.given_name.strip(), data.family_name.strip()
    if not given:
        errors.append(FieldError("given_name", "Enter your first name."))
    if not family:
        errors.append(FieldError("family_name", "Enter your last name."))
    birth = parse_date(data.birth_date.strip()) if data.birth_date.strip() else None
    if birth is None:
        errors.append(FieldError("birth_date", "Enter your date of birth (YYYY-MM-DD)."))
    elif not OLDEST_BIRTH <= birth <= today:
        errors.append(FieldError("birth_date", "This date of birth is not possible."))
    if data.sex_at_birth not in ("female", "male", "intersex", "unknown"):
        errors.append(FieldError("sex_at_birth", "Choose one."))
    email, phone = data.email.strip().lower(), data.phone.strip()
    if email and ("@" not in email or len(email) > 254):
        errors.append(FieldError("email", "Enter an e-mail address like name@example.org."))
    if phone and not 7 <= sum(c.isdigit() for c in phone) <= 15:
        errors.append(FieldError("phone", "Enter a phone number like +1 512 555 0100."))
    if not email and not phone:
        errors.append(FieldError("email", "Give an e-mail address or a phone number."))
    reason = data.reason.strip()
    if not 3 <= len(reason) <= 2000:
        errors.append(FieldError("reason", "Say in a few words why you are asking (up to 2000)."))
    unknown = set(data.answers) - set(frontdoor.QUESTIONS)
    if unknown:
        errors.append(FieldError("answers", "Unknown question."))
    cleaned = {
        "given_name": given[:100],
        "family_name": family[:100],
        "birth_date": birth,
        "sex_at_birth": data.sex_at_birth,
        "email": email,
        "phone": phone[:40],
        "reason": reason,
    }
    return cleaned, errors


def _throttle(clinic: Clinic, hashed: str, email: str, now: datetime) -> None:
    recent = Lead.objects.filter(organization=clinic.organization)
    for limit, window in (ADDRESS_LIMIT, ADDRESS_DAY_LIMIT):
        if recent.filter(client_address_hash=hashed, created_at__gte=now - window).count() >= limit:
            raise TooManyRequests(
                "Too many requests from this connection. Please wait a minute, or call the clinic."
            )
    limit, window = EMAIL_LIMIT
    if email and recent.filter(email=email, created_at__gte=now - window).count() >= limit:
        raise TooManyRequests.for_field(
            "email", "A request with this e-mail address is already with the clinic."
        )


def _slot(clinic: Clinic, raw: str, now: datetime) -> tuple[datetime | None, Membership | None]:
    if not raw:
        return None, None
    from ketaclinic.scheduling.selectors import free_slots

    start_text, _, clinician_key = raw.partition("|")
    try:
        start = datetime.fromisoformat(start_text)
    except ValueError:
        raise ValidationFailed.for_field("slot", "Choose one of the times shown.") from None
    clinician = Membership.objects.filter(
        organization=clinic.organization, pk=int(clinician_key) if clinician_key.isdigit() else 0
    ).first()
    consult = AppointmentType.objects.filter(
        organization=clinic.organization, kind="consult"
    ).first()
    if start.tzinfo is None or start <= now or clinician is None or consult is None:
        raise ValidationFailed.for_field("slot", "Choose one of the times shown.")
    local_day = start.astimezone(ZoneInfo(clinic.time_zone)).date()
    if start not in {s for s, _ in free_slots(clinic, consult, local_day, clinician=clinician)}:
        raise ValidationFailed.for_field("slot", "This time was just taken; choose another.")
    return start, clinician


def lead_submit(*, clinic: Clinic, data: LeadInput, client_address: str) -> Lead:
    """Store a consult request. Bad input raises with every field at fault and writes nothing;
    a request the pre-screen routes to a clinician keeps no slot (it is never booked)."""
    now = clock.now()
    today = now.date()
    cleaned, errors = _clean(data, today)
    if errors:
        raise ValidationFailed("Please correct the marked fields.", errors)
    hashed = address_hash(client_address)
    with transaction.atomic():
        Clinic.objects.select_for_update().get(pk=clinic.pk)
        _throttle(clinic, hashed, cleaned["email"], now)
        screen = frontdoor.prescreen(
            {k: bool(v) for k, v in data.answers.items()},
            birth_date=cleaned["birth_date"],
            today=today,
        )
        start, clinician = (None, None)
        if screen.route == "book":
            start, clinician = _slot(clinic, data.slot, now)
        lead = Lead.objects.create(
            organization=clinic.organization,
            clinic=clinic,
            **cleaned,
            answers={k: bool(v) for k, v in data.answers.items()},
            route=screen.route,
            route_reasons=list(screen.reasons),
            absolute_contraindication=screen.absolute,
            rule=screen.rule,
            requested_start=start,
            requested_clinician=clinician,
            client_address_hash=hashed,
        )
        audit_record(
            actor=None,
            organization=clinic.organization,
            channel="public",
            action="scheduling.lead.received",
            obj=lead,
            detail={"route": screen.route, "rule": screen.rule, "slot": bool(start)},
        )
    return lead


def lead_convert(*, actor: Actor, lead: Lead, book_consult: bool = True) -> Lead:
    """Register the lead as a patient; book the requested consult when the pre-screen allowed
    it. A lead routed to a clinician is registered without any booking."""
    from ketaclinic.scheduling.services import appointment_book

    actor.require(Cap.PATIENT_CREATE)
    actor.require(Cap.SCHEDULE_BOOK)
    with transaction.atomic():
        current = Lead.objects.select_for_update().get(pk=lead.pk)
        if current.status != Lead.Status.NEW:
            raise Conflict("This request was already handled.")
        patient = patient_create(
            actor=actor,
            data={
                "given_name": current.given_name,
                "family_name": current.family_name,
                "birth_date": current.birth_date,
                "sex_at_birth": current.sex_at_birth,
                "email": current.email,
                "phone": current.phone,
            },
        )
        appointment: Appointment | None = None
        if book_consult and current.route == Lead.Route.BOOK and current.requested_start:
            appointment = appointment_book(
                actor=actor,
                patient=patient,
                appointment_type=AppointmentType.objects.get(
                    organization=current.organization, kind="consult"
                ),
                starts_at=current.requested_start,
                clinic=current.clinic,
                clinician=current.requested_clinician,
                source=Appointment.Source.FRONT_DOOR,
            )
        Lead.objects.filter(pk=current.pk).update(
            status=Lead.Status.CONVERTED,
            patient=patient,
            appointment=appointment,
            updated_at=clock.now(),
        )
        audit_record(
            actor=actor,
            action="scheduling.lead.converted",
            patient_id=patient.public_id,
            obj=current,
            detail={"appointment": str(appointment.public_id) if appointment else None},
        )
    current.refresh_from_db()
    return current


def consult_slots(
    clinic: Clinic, *, days: int = 14, per_day: int = 4
) -> list[tuple[datetime, Membership]]:
    """Consult times offered on the public page: a few per day for the next `days` days, for
    each clinician who sees consults (has working hours at the clinic)."""
    from ketaclinic.scheduling.models import StaffHours
    from ketaclinic.scheduling.selectors import free_slots

    consult = AppointmentType.objects.filter(
        organization=clinic.organization, kind="consult", is_active=True, bookable_online=True
    ).first()
    if consult is None:
        return []
    prescribers = Membership.objects.filter(
        organization=clinic.organization,
        is_active=True,
        role="prescriber",
        pk__in=StaffHours.objects.filter(clinic=clinic).values("membership_id"),
    ).select_related("user")
    now = clock.now()
    today = now.astimezone(ZoneInfo(clinic.time_zone)).date()
    offered: list[tuple[datetime, Membership]] = []
    for offset in range(1, days + 1):
        day = today + timedelta(days=offset)
        for clinician in prescribers:
            starts = [s for s, _ in free_slots(clinic, consult, day, clinician=clinician)]
            hourly = [s for s in starts if s.minute == 0][:per_day]
            offered.extend((s, clinician) for s in hourly)
    return offered
