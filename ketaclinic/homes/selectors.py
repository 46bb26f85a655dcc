"""What each role's Today page shows, read once for the page and for its JSON API twin.

Each home composes the domain apps' own selectors; every read is a fixed number of queries
whatever the number of patients (tests/…/test_homes.py pins them). Times are the clinic's:
each item carries its moment (UTC, for the API) and the clinic's words for it ("09:00 CST").
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from ketaclinic.accounts.actor import Actor
from ketaclinic.accounts.models import Clinic
from ketaclinic.accounts.roles import Cap
from ketaclinic.core import clock
from ketaclinic.core.formatting import local_time
from ketaclinic.scheduling.selectors import appointments_between, clinic_for_actor


@dataclass(frozen=True)
class Day:
    clinic: str
    time_zone: str
    date: date


def _day(actor: Actor, now: datetime) -> tuple[Clinic, Day, datetime, datetime]:
    clinic = clinic_for_actor(actor)
    zone = ZoneInfo(clinic.time_zone)
    today = now.astimezone(zone).date()
    start = datetime.combine(today, datetime.min.time(), zone)
    return clinic, Day(clinic.name, clinic.time_zone, today), start, start + timedelta(days=1)


def _at(moment: datetime, zone: str) -> str:
    return local_time(moment, zone, with_date=False)


def _when(moment: datetime, zone: str) -> str:
    return local_time(moment, zone, with_date=True)


# --- front desk: today's arrivals and the forms they still owe -----------------------------------


@dataclass(frozen=True)
class PendingForm:
    kind: str  # questionnaire | consent | intake
    title: str
    status: str  # in words: "sent, open until 14:00 CST", "not signed", "not answered"
    # How to send it again: "questionnaire_link" (a fresh link, the old one stops) or
    # "portal_invitation" (consents and intake are filled in the portal).
    resend: str
    link_id: uuid.UUID | None = None


@dataclass(frozen=True)
class Arrival:
    starts_at: datetime
    time: str  # "09:00 CST"
    patient_id: uuid.UUID
    patient_name: str
    visit: str
    with_whom: str  # clinician, chair or room
    status: str  # in words: Expected, Checked in, In treatment, Finished, Did not come
    # The check-in this actor may do from the list: ("appointment" | "session", public id).
    check_in: tuple[str, uuid.UUID] | None
    check_in_note: str  # why there is no check-in button, when there is none
    forms: list[PendingForm] = field(default_factory=list)


@dataclass(frozen=True)
class FrontDeskDay:
    day: Day
    arrivals: list[Arrival]

    @property
    def with_forms(self) -> int:
        return sum(1 for a in self.arrivals if a.forms)


_APPOINTMENT_STATUS = {
    "booked": "Expected",
    "proposed": "Proposed",
    "checked_in": "Checked in",
    "no_show": "Did not come",
}
_SESSION_STATUS = {
    "scheduled": "Expected",
    "checked_in": "Checked in",
    "prechecks_passed": "Checked in",
    "dosing": "In treatment",
    "monitoring": "In treatment",
    "ready_for_discharge": "In treatment",
    "discharged": "Finished",
    "aborted": "Stopped",
}
THERAPY_KINDS = {"kap_preparation", "kap_dosing", "kap_integration"}


def front_desk_day(actor: Actor, *, now: datetime | None = None) -> FrontDeskDay:
    """Today's arrivals at the actor's clinic in time order: booked visits and treatment
    sessions scheduled without a booking, each with the forms its patient has not completed
    (questionnaires sent by link, the consent the visit needs, the intake questions)."""
    from ketaclinic.sessions.selectors import sessions_between

    actor.require(Cap.SCHEDULE_VIEW)
    actor.require(Cap.PATIENT_VIEW)
    now = now or clock.now()
    clinic, day, start, end = _day(actor, now)
    zone = clinic.time_zone
    appointments = list(appointments_between(clinic, start, end))
    booked_sessions = {a.session_public_id for a in appointments if a.session_public_id}
    sessions = [
        s
        for s in sessions_between(clinic=clinic, start=start, end=end)
        if s.public_id not in booked_sessions
    ]
    can_book = actor.can(Cap.SCHEDULE_BOOK)
    can_run = actor.can(Cap.SESSION_RUN)
    rows: list[tuple[Any, Arrival, set[tuple[str, str]]]] = []
    for a in appointments:
        kind = a.appointment_type.kind
        dosing = bool(a.appointment_type.route)
        allowed = a.status == "booked" and can_book and (can_run or not dosing)
        note = ""
        if a.status == "booked" and not allowed and dosing:
            note = "A nurse checks this patient in at the chair (it opens the treatment session)."
        needs = set()
        if dosing:
            needs.add(("treatment", a.appointment_type.route))
        if kind in THERAPY_KINDS:
            needs.add(("kap", ""))
        who = a.clinician.user.display_name if a.clinician else (a.chair.label if a.chair else "")
        arrival = Arrival(
            starts_at=a.starts_at,
            time=_at(a.starts_at, zone),
            patient_id=a.patient.public_id,
            patient_name=a.patient.full_name,
            visit=a.appointment_type.name,
            with_whom=who,
            status=_APPOINTMENT_STATUS.get(a.status, a.get_status_display()),
            check_in=("appointment", a.public_id) if allowed else None,
            check_in_note=note,
        )
        rows.append((a.patient, arrival, needs))
    for s in sessions:
        allowed = s.state == "scheduled" and can_run
        note = "" if allowed or s.state != "scheduled" else "A nurse checks this patient in."
        arrival = Arrival(
            starts_at=s.scheduled_at,
            time=_at(s.scheduled_at, zone),
            patient_id=s.patient.public_id,
            patient_name=s.patient.full_name,
            visit="Treatment session",
            with_whom=f"Chair {s.chair}" if s.chair else "",
            status=_SESSION_STATUS.get(s.state, s.state),
            check_in=("session", s.public_id) if allowed else None,
            check_in_note=note,
        )
        rows.append((s.patient, arrival, {("treatment", s.route)}))
    forms = _forms_pending(rows, now=now, zone=zone)
    arrivals = [
        Arrival(**{**arrival.__dict__, "forms": forms.get(patient.pk, [])})
        for patient, arrival, _ in rows
    ]
    arrivals.sort(key=lambda a: (a.starts_at, a.patient_name))
    return FrontDeskDay(day, arrivals)


def _forms_pending(
    rows: list[tuple[Any, Arrival, set[tuple[str, str]]]], *, now: datetime, zone: str
) -> dict[int, list[PendingForm]]:
    """Per patient key, what they still owe: five queries for any number of arrivals."""
    from ketaclinic.consent.selectors import consents_to_sign
    from ketaclinic.measures.selectors import link_title, open_links_by_patient
    from ketaclinic.screening.selectors import patients_with_intake

    patients = {patient.pk: patient for patient, _, _ in rows}
    wanted: dict[int, set[tuple[str, str]]] = {}
    for patient, _, needs in rows:
        wanted.setdefault(patient.pk, set()).update(needs)
    links = open_links_by_patient([str(p.public_id) for p in patients.values()], now=now)
    consents = consents_to_sign({pk: needs for pk, needs in wanted.items() if needs})
    with_intake = patients_with_intake(list(patients))
    found: dict[int, list[PendingForm]] = {}
    for pk, patient in patients.items():
        items = [
            PendingForm(
                "questionnaire",
                link_title(link),
                f"sent, open until {_when(link.expires_at, zone)}"
                if link.expires_at > now
                else f"sent, the link ran out {_when(link.expires_at, zone)}",
                "questionnaire_link",
                link.public_id,
            )
            for link in links.get(str(patient.public_id), [])
        ]
        items += [
            PendingForm(
                "consent",
                row.current.title if row.current else row.template.title,
                {"unsigned": "not signed", "revoked": "withdrawn", "outdated": "new version"}[
                    row.state
                ],
                "portal_invitation",
            )
            for row in consents.get(pk, [])
        ]
        if pk not in with_intake:
            items.append(
                PendingForm("intake", "Intake questions", "not answered", "portal_invitation")
            )
        if items:
            found[pk] = items
    return found


# --- therapist: today's therapy visits, notes to finish, integration due --------------------------


@dataclass(frozen=True)
class TherapyItem:
    at: datetime
    when: str  # "09:00 CST" today, "2026-12-04 09:00 CST" otherwise
    patient_id: uuid.UUID
    patient_name: str
    what: str
    visit_id: uuid.UUID | None = None  # an opened visit (its note)


@dataclass(frozen=True)
class TherapistDay:
    day: Day
    visits: list[TherapyItem]
    notes_to_finish: list[TherapyItem]
    integration_due: list[TherapyItem]


_VISIT_KIND = {
    "preparation": "Preparation",
    "dosing_support": "Dosing-session support",
    "integration": "Integration",
}


def therapist_day(actor: Actor, *, now: datetime | None = None) -> TherapistDay:
    from ketaclinic.therapy import selectors as therapy

    actor.require(Cap.THERAPY_VIEW)
    now = now or clock.now()
    clinic, day, start, end = _day(actor, now)
    zone = clinic.time_zone
    opened = therapy.visits_between(actor, start, end)
    opened_from = {v.appointment_public_id for v in opened if v.appointment_public_id}
    visits = [
        TherapyItem(
            v.started_at,
            _at(v.started_at, zone),
            v.patient.public_id,
            v.patient.full_name,
            f"{_VISIT_KIND.get(v.kind, v.kind)}: "
            + ("note signed" if v.signed_at else "visit open, note not signed"),
            v.public_id,
        )
        for v in opened
    ]
    visits += [
        TherapyItem(
            a.starts_at,
            _at(a.starts_at, zone),
            a.patient.public_id,
            a.patient.full_name,
            f"{a.appointment_type.name}: booked",
        )
        for a in therapy.therapy_appointments_between(actor, start, end)
        if a.public_id not in opened_from
    ]
    visits.sort(key=lambda item: item.at)
    drafts = [
        TherapyItem(
            v.started_at,
            _when(v.started_at, zone),
            v.patient.public_id,
            v.patient.full_name,
            f"{_VISIT_KIND.get(v.kind, v.kind)} note not signed",
            v.public_id,
        )
        for v in therapy.notes_to_finish(actor)
    ]
    due = [
        TherapyItem(
            d.dosed_at,
            _when(d.dosed_at, zone),
            d.patient.public_id,
            d.patient.full_name,
            "dosed, no integration visit since",
        )
        for d in therapy.integration_due(actor, now=now)
    ]
    return TherapistDay(day, visits, drafts, due)


# --- compliance: controlled substances, break-glass reviews, disclosures -------------------------


@dataclass(frozen=True)
class ComplianceItem:
    kind: str  # count_due | discrepancy | form_106 | biennial | waste_witness | break_glass ...
    text: str  # in words
    at: datetime | None
    when: str
    screen: str  # the path where it is dealt with


@dataclass(frozen=True)
class ComplianceDay:
    day: Day
    controlled_substances: list[ComplianceItem]
    access_reviews: list[ComplianceItem]
    disclosures: list[ComplianceItem]


DISCLOSURE_DAYS = 30
UNRECONCILED_DAYS = 7


def compliance_day(actor: Actor, *, now: datetime | None = None) -> ComplianceDay:
    from django.urls import reverse

    from ketaclinic.core.formatting import quantity
    from ketaclinic.inventory import selectors as inventory
    from ketaclinic.outcomes.selectors import exports_log
    from ketaclinic.patients.access import break_glass_list
    from ketaclinic.therapy.selectors import break_glass_reads_unreviewed

    actor.require(Cap.BREAK_GLASS_REVIEW)
    now = now or clock.now()
    clinic, day, _, _ = _day(actor, now)
    zone = clinic.time_zone
    stock = reverse("inventory:stock")

    def item(kind: str, text: str, at: datetime | None, screen: str) -> ComplianceItem:
        return ComplianceItem(kind, text, at, _when(at, zone) if at else "", screen)

    cs = [
        item(
            "count_due",
            f"No count at {due.location} yet today"
            + (f" (last {_when(due.last_count_at, zone)})" if due.last_count_at else ""),
            due.last_count_at,
            reverse("inventory:count", args=[due.location.public_id]),
        )
        for due in inventory.counts_due_today()
    ]
    cs += [
        item(
            "discrepancy",
            f"Count did not match at {case.count.location}: {case.product_ref} lot "
            f"{case.lot_ref}, expected {quantity(case.expected_mg, 'mg')}, counted "
            f"{quantity(case.counted_mg, 'mg')}",
            case.created_at,
            reverse("inventory:case-resolve", args=[case.public_id]),
        )
        for case in inventory.cases_open()
    ]
    cs += [
        item(
            "waste_witness",
            f"{dose.patient_name or 'A dose'}: {quantity(dose.left_mg, 'mg')} of "
            f"{dose.product} drawn and not yet given, wasted with a witness or returned",
            dose.drawn_at,
            stock,
        )
        for dose in inventory.unreconciled_doses(since=now - timedelta(days=UNRECONCILED_DAYS))
    ]
    cs += [
        item(
            "form_106",
            f"DEA Form 106 not yet filed ({form.row.get_kind_display().lower()} of "
            f"{quantity(form.row.quantity_mg, 'mg')} {form.row.product.display_name}); due by "
            f"{_when(form.due_by, zone) if form.due_by else 'no date'}"
            f"{' (overdue)' if form.due_by and form.due_by < now else ''}",
            form.due_by,
            reverse("inventory:dea-form", args=[form.public_id]),
        )
        for form in inventory.form_106_pending()
    ]
    cs += [
        item(
            "biennial",
            f"Biennial inventory of {due.location} due by {due.due_on:%Y-%m-%d}"
            + (" (overdue)" if due.overdue else ""),
            None,
            reverse("inventory:count", args=[due.location.public_id]),
        )
        for due in inventory.biennial_inventories_due()
    ]
    reviews = [
        item(
            "break_glass",
            f"{access.user.display_name} opened {access.patient.full_name}'s chart outside "
            f"their care team: “{access.reason[:120]}”",
            access.created_at,
            reverse("patients:break-glass-list"),
        )
        for access in break_glass_list(actor, unreviewed_only=True)
    ]
    reviews += [
        item(
            "process_note_read",
            f"{read.reader.display_name} read a psychotherapy note about "
            f"{read.patient.full_name}: “{read.reason[:120]}”",
            read.created_at,
            reverse("therapy:break-glass-report"),
        )
        for read in break_glass_reads_unreviewed()
    ]
    since = now - timedelta(days=DISCLOSURE_DAYS)
    disclosures = [
        item(
            "export",
            f"{export.get_kind_display()} by "
            f"{export.requested_by.display_name if export.requested_by else 'the system'}: "
            f"{export.get_status_display().lower()}",
            export.created_at,
            reverse("outcomes:bulk-export", args=[export.public_id])
            if export.kind == "fhir-bulk"
            else reverse("outcomes:exports"),
        )
        for export in exports_log(kinds=["research", "fhir-bulk"], limit=50)
        if export.created_at >= since
    ]
    return ComplianceDay(day, cs, reviews, disclosures)


# --- researcher: de-identified outcomes and the research export ----------------------------------


@dataclass(frozen=True)
class Figure:
    label: str
    successes: int
    evaluable: int
    percent: float | None


@dataclass(frozen=True)
class ResearchSummary:
    patients: int  # patients treated (first dose), the cohort's size
    figures: list[Figure]
    my_exports: list[dict[str, Any]]


def research_summary(actor: Actor) -> ResearchSummary:
    """Aggregates only (the default cohort's response and remission) and the actor's own
    research exports: nothing that names or identifies a patient."""
    from ketaclinic.outcomes.filters import CohortFilters
    from ketaclinic.outcomes.selectors import cohort_report_for_actor, exports_log

    actor.require(Cap.RESEARCH_EXPORT)
    report = cohort_report_for_actor(actor, filters=CohortFilters())
    summary = report.summary
    figures = [
        Figure(
            label,
            proportion.successes,
            proportion.n,
            None if proportion.rate is None else round(proportion.rate * 100, 1),
        )
        for label, proportion in (("Response", summary.response), ("Remission", summary.remission))
    ]
    zone = clinic_for_actor(actor).time_zone
    mine = [
        {
            "id": export.public_id,
            "requested": _when(export.created_at, zone),
            "status": export.get_status_display(),
            "kind": export.get_kind_display(),
        }
        for export in exports_log(kinds=["research"], limit=100)
        if export.requested_by_id == actor.user.pk
    ][:10]
    return ResearchSummary(report.members, figures, mine)
