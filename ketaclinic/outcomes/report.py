"""A patient's progress report (for the patient, or for a referring clinician): the score
trajectories with severity bands and session markers, response and remission, the sessions and
adverse events, and the current plan. One page template serves the screen and the PDF."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any, Literal
from zoneinfo import ZoneInfo

from ketaclinic.accounts.actor import Actor
from ketaclinic.accounts.roles import Cap
from ketaclinic.core import clock
from ketaclinic.patients.models import Patient
from ketaclinic.patients.selectors import patient_chart_read

Audience = Literal["patient", "clinician"]
MAX_ROWS = 100  # sessions and adverse events listed (newest first); the chart holds the rest
# A report drawn in the background tells where it is: each step in words, with the percent done
# when it starts. Reading the records and drawing the pictures take most of a clinic report's
# time, laying out the pages most of a patient's.
STEPS = {
    "gather": ("Reading the records", 5),
    "charts": ("Drawing the charts", 35),
    "layout": ("Laying out the pages", 60),
    "write": ("Writing the PDF", 85),
}
OnStep = Callable[[str], None]  # called with a key of STEPS as each step starts


def _no_step(step: str) -> None:
    return None


def dose_text(dose_mg: Decimal | None) -> str:
    """ "35 mg", "0.5 mg": one decimal at most, never a trailing zero or an exponent."""
    if dose_mg is None:
        return "-"
    text = format(Decimal(dose_mg).quantize(Decimal("0.1")), "f")
    if text.endswith(".0"):
        text = text[:-2]
    return f"{text} mg"


@dataclass(frozen=True)
class SessionLine:
    when: datetime
    route: str
    drug: str
    dose: str
    state: str


@dataclass(frozen=True)
class EventLine:
    when: datetime
    event: str
    grade: int
    outcome: str


@dataclass(frozen=True)
class ProgressReport:
    patient: Patient
    audience: Audience
    time_zone: str
    trajectories: list[Any]
    sessions: list[SessionLine]
    adverse_events: list[EventLine]
    plan: Any | None
    generated_at: datetime


def _time_zone(patient: Patient) -> str:
    clinic = patient.organization.clinics.order_by("pk").first()
    return clinic.time_zone if clinic else "UTC"


def progress_report_for_actor(
    actor: Actor, patient_id: str, *, audience: Audience, on_step: OnStep = _no_step
) -> ProgressReport:
    from ketaclinic.measures.selectors import patient_trajectories
    from ketaclinic.protocols.models import TreatmentPlan
    from ketaclinic.sessions.models import AdverseEvent, DoseAdministration, TreatmentSession

    actor.require(Cap.OUTCOMES_REPORT)
    actor.require(Cap.CLINICAL_VIEW)
    patient = patient_chart_read(actor, patient_id, action="outcomes.progress_report.read")
    tz = ZoneInfo(_time_zone(patient))
    doses: dict[int, Decimal] = {}
    for session_id, dose in DoseAdministration.objects.filter(patient=patient).values_list(
        "session_id", "dose_mg"
    ):
        doses[session_id] = doses.get(session_id, Decimal(0)) + dose
    sessions = [
        SessionLine(
            when=s.dose_started_at.astimezone(tz),
            route=s.route,
            drug=s.drug.replace("-", " "),
            dose=dose_text(doses.get(s.pk)),
            state=s.get_state_display() if hasattr(s, "get_state_display") else s.state,
        )
        for s in TreatmentSession.objects.filter(
            patient=patient, dose_started_at__isnull=False
        ).order_by("-dose_started_at", "-pk")[:MAX_ROWS]
        if s.dose_started_at is not None
    ]
    events = [
        EventLine(
            e.onset_at.astimezone(tz),
            e.event_code.replace("_", " "),
            e.grade,
            e.get_outcome_display(),
        )
        for e in AdverseEvent.objects.filter(patient=patient).order_by("-onset_at", "-pk")[
            :MAX_ROWS
        ]
    ]
    plan = (
        TreatmentPlan.objects.filter(patient=patient, status=TreatmentPlan.Status.ACTIVE)
        .select_related("protocol")
        .order_by("-start_date", "-pk")
        .first()
    )
    on_step("charts")  # the trajectories read the scores and draw one picture per instrument
    trajectories = patient_trajectories(patient)
    return ProgressReport(
        patient=patient,
        audience=audience,
        time_zone=str(tz),
        trajectories=trajectories,
        sessions=sessions,
        adverse_events=events,
        plan=plan,
        generated_at=clock.now().astimezone(tz),
    )


def pdf_pages(html: str, *, on_step: OnStep = _no_step) -> tuple[bytes, int]:
    """The PDF of a page's HTML and its number of pages: WeasyPrint lays the pages out first
    (most of the time), then writes them."""
    from weasyprint import HTML

    on_step("layout")
    document = HTML(string=html).render()
    on_step("write")
    return document.write_pdf(), len(document.pages)


def progress_report_pdf(report: ProgressReport, *, on_step: OnStep = _no_step) -> tuple[bytes, int]:
    from django.template.loader import render_to_string

    html = render_to_string("outcomes/progress_report.html", {"report": report, "pdf": True})
    return pdf_pages(html, on_step=on_step)
