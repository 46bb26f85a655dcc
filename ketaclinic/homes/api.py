"""JSON twins of the role homes (mounted at /api/v1/): the same reads as the Today page.

Times come twice: the moment (ISO 8601, UTC) for programs and the clinic's words for people.
The clinic admin's home is the set-up checklist, already at /api/v1/setup/checklist.
"""

from __future__ import annotations

import uuid
from datetime import date, datetime
from typing import Any

from ninja import Router, Schema

from ketaclinic.accounts.actor import ActorRequest
from ketaclinic.core.api import ERROR_RESPONSES
from ketaclinic.homes import selectors

router = Router(tags=["today"])
R = ERROR_RESPONSES


class DayOut(Schema):
    clinic: str
    time_zone: str
    date: date


class PendingFormOut(Schema):
    kind: str
    title: str
    status: str
    resend: str
    link_id: uuid.UUID | None


class CheckInOut(Schema):
    kind: str  # appointment | session
    id: uuid.UUID


class ArrivalOut(Schema):
    starts_at: datetime
    time: str
    patient_id: uuid.UUID
    patient_name: str
    visit: str
    with_whom: str
    status: str
    check_in: CheckInOut | None
    check_in_note: str
    forms: list[PendingFormOut]

    @staticmethod
    def resolve_check_in(arrival: selectors.Arrival) -> dict[str, Any] | None:
        if arrival.check_in is None:
            return None
        return {"kind": arrival.check_in[0], "id": arrival.check_in[1]}


class ArrivalsOut(Schema):
    day: DayOut
    arrivals: list[ArrivalOut]
    with_forms: int


@router.get("/today/arrivals", response={200: ArrivalsOut, **R})
def arrivals(request: ActorRequest) -> Any:
    """Today's arrivals at the caller's clinic in time order, each with the check-in the caller
    may do and the forms its patient has not completed."""
    return selectors.front_desk_day(request.auth)


class TherapyItemOut(Schema):
    at: datetime
    when: str
    patient_id: uuid.UUID
    patient_name: str
    what: str
    visit_id: uuid.UUID | None


class TherapyDayOut(Schema):
    day: DayOut
    visits: list[TherapyItemOut]
    notes_to_finish: list[TherapyItemOut]
    integration_due: list[TherapyItemOut]


@router.get("/today/therapy", response={200: TherapyDayOut, **R})
def therapy(request: ActorRequest) -> Any:
    """The caller's therapy visits today, their unsigned notes, and the patients of their team
    dosed in the last two weeks with no integration visit since."""
    return selectors.therapist_day(request.auth)


class ComplianceItemOut(Schema):
    kind: str
    text: str
    at: datetime | None
    when: str
    screen: str


class ComplianceDayOut(Schema):
    day: DayOut
    controlled_substances: list[ComplianceItemOut]
    access_reviews: list[ComplianceItemOut]
    disclosures: list[ComplianceItemOut]


@router.get("/today/compliance", response={200: ComplianceDayOut, **R})
def compliance(request: ActorRequest) -> Any:
    """Controlled-substance items due, break-glass accesses awaiting review, recent exports."""
    return selectors.compliance_day(request.auth)


class FigureOut(Schema):
    label: str
    successes: int
    evaluable: int
    percent: float | None


class ExportOut(Schema):
    id: uuid.UUID
    requested: str
    status: str
    kind: str


class ResearchOut(Schema):
    patients: int
    figures: list[FigureOut]
    my_exports: list[ExportOut]


@router.get("/today/research", response={200: ResearchOut, **R})
def research(request: ActorRequest) -> Any:
    """De-identified outcome figures and the caller's own research exports."""
    return selectors.research_summary(request.auth)
