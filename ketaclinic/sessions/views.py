"""Staff screens: the session flowsheet (htmx partials), the clinic floor board, REMS exports."""

from __future__ import annotations

import csv
import io
from typing import Any
from zoneinfo import ZoneInfo

from django import forms
from django.db import transaction
from django.http import HttpResponse
from django.shortcuts import redirect
from django.template.loader import render_to_string
from django.template.response import TemplateResponse
from django.urls import reverse

from ketaclinic.accounts.actor import ActorRequest
from ketaclinic.accounts.audit import audit_record
from ketaclinic.accounts.models import Clinic
from ketaclinic.accounts.roles import Cap
from ketaclinic.core import clock
from ketaclinic.core.decorators import staff_view
from ketaclinic.core.errors import DomainError, NotFound
from ketaclinic.core.forms import add_domain_errors
from ketaclinic.core.http import render_page_or_partial
from ketaclinic.patients import selectors as patient_selectors
from ketaclinic.sessions import rems, selectors, services
from ketaclinic.sessions.adverse_events import ADVERSE_EVENTS_BY_CODE
from ketaclinic.sessions.forms import (
    OBSERVATION_FORMS,
    AbortForm,
    AdministrationForm,
    AdverseEventForm,
    AmendmentForm,
    CadssForm,
    CheckInForm,
    DischargeForm,
    DoseOrderForm,
    FrequencyOverrideForm,
    InterventionForm,
    NoteForm,
    PmfAnswersForm,
    PmfSubmittedForm,
    PrecheckForm,
    RemsEnrollForm,
    ScheduleForm,
    SedationForm,
    SideEffectsForm,
    VitalsForm,
)
from ketaclinic.sessions.models import RemsEnrollment

FLOWSHEET = "sessions/session_flowsheet.html"


def _precheck_form(actor: Any, session: Any, sheet: Any, data: Any = None) -> PrecheckForm:
    allow = actor.can(Cap.DOSE_ORDER) and services.session_policy(session).predose_override_allowed
    return PrecheckForm(data, items=sheet.checklist, allow_override=allow)


def _flowsheet_context(request: ActorRequest, session: Any, **forms: Any) -> dict[str, Any]:
    sheet = selectors.flowsheet(session)
    actor = request.actor
    note = sheet.note
    return {
        "sheet": sheet,
        "session": session,
        "patient": session.patient,
        "vitals_form": forms.get("vitals_form") or VitalsForm(),
        "ae_form": forms.get("ae_form") or AdverseEventForm(),
        "discharge_form": forms.get("discharge_form") or DischargeForm(),
        "checkin_form": forms.get("checkin_form") or CheckInForm(initial={"chair": session.chair}),
        "frequency_form": forms.get("frequency_form") or FrequencyOverrideForm(),
        "precheck_form": forms.get("precheck_form") or _precheck_form(actor, session, sheet),
        "order_form": forms.get("order_form") or DoseOrderForm(),
        "admin_form": forms.get("admin_form")
        or AdministrationForm(
            initial={
                "dose_mg": sheet.order.dose_mg if sheet.order else None,
                "device_count": sheet.order.device_count if sheet.order else None,
            }
        ),
        "note_form": forms.get("note_form")
        or NoteForm(initial={"text": note.text if note else ""}),
        "amend_form": forms.get("amend_form") or AmendmentForm(),
        "refusal": forms.get("refusal", ""),
        "refusal_in": forms.get("refusal_in", ""),
        "complete_form": forms.get("complete_form"),
        "release_form": forms.get("release_form"),
        "cadss_form": forms.get("cadss_form") or CadssForm(),
        "sedation_form": forms.get("sedation_form") or SedationForm(),
        "side_effects_form": forms.get("side_effects_form") or SideEffectsForm(),
        "observation_rows": [(o, _observation_result(o)) for o in sheet.observations],
        "intervention_form": forms.get("intervention_form")
        or InterventionForm(events=sheet.adverse_events),
        "abort_form": forms.get("abort_form") or AbortForm(),
        "rems": _rems_context(session, sheet, forms) if session.drug == "esketamine" else None,
    }


def _observation_result(observation: Any) -> str:
    if observation.kind == "side_effects":
        # In checklist order: PostgreSQL's jsonb does not keep the keys in the order written.
        present = [
            event.label
            for code, event in ADVERSE_EVENTS_BY_CODE.items()
            if observation.data.get(code)
        ]
        return ", ".join(present) or "None of the listed side effects"
    return "" if observation.score is None else f"{observation.score.normalize():f}"


def _rems_context(session: Any, sheet: Any, kept: dict[str, Any]) -> dict[str, Any]:
    """The REMS card: enrollment, every PMF field with its answer, the staff-answered questions."""
    pmf = sheet.pmf
    data = pmf.data if pmf else {}
    missing = set(pmf.missing) if pmf else set()
    today = selectors.local_date(session, clock.now())
    return {
        "pmf": pmf,
        "rows": [(f, data.get(f.key), f.key in missing) for f in rems.PMF_FIELDS],
        # One read; the enrollment belongs to the patient, not to the session.
        "enrollment": RemsEnrollment.objects.filter(patient=session.patient).first(),
        "answers_form": kept.get("pmf_form") or PmfAnswersForm(pmf_data=data),
        "enroll_form": kept.get("rems_enroll_form") or RemsEnrollForm(today=today),
        "submitted_form": kept.get("pmf_submitted_form")
        or PmfSubmittedForm(today=today, treatment_date=pmf.treatment_date if pmf else None),
    }


def _flowsheet_action(
    request: ActorRequest,
    session_id: str,
    *,
    capability: Cap,
    form_name: str,
    form: Any,
    run: Any,
    partial: str = "flowsheet",
) -> HttpResponse:
    """Parse with the form, call the service, re-render the flowsheet (or one of its partials).

    A DomainError becomes a message on the form with its HTTP status (4xx); the service's
    transaction has written nothing (pre-checks excepted: a failed pass is kept, by design).
    `form` may be a callable (actor, session) -> form, for forms built from the session.
    """
    actor = request.actor
    session = selectors.session_get(actor, session_id, capability=capability)
    if form is None:  # built from the session (pre-checks need its checklist)
        form = _precheck_form(actor, session, selectors.flowsheet(session), request.POST)
    elif callable(form):
        form = form(actor, session)
    status = 200
    kept: dict[str, Any] = {}
    if form.is_valid():
        try:
            run(actor, session, form)
        except DomainError as error:
            add_domain_errors(form, error)
            status = error.status
            kept[form_name] = form
            kept["refusal"] = error.detail
            kept["refusal_in"] = partial  # a panel shows it too: its form may be gone
    else:
        status = 400
        kept[form_name] = form
    session = selectors.session_get(actor, session_id, capability=Cap.SESSION_VIEW)
    context = _flowsheet_context(request, session, **kept)
    return render_page_or_partial(request, FLOWSHEET, partial, context, status=status)


@staff_view(Cap.SESSION_VIEW)
def session_flowsheet(request: ActorRequest, session_id: str) -> HttpResponse:
    actor = request.actor
    session = selectors.session_get(actor, session_id)
    # One read of the patient's record per request (polls of a partial are reads too).
    audit_record(
        actor=actor,
        action="sessions.flowsheet.viewed",
        patient_id=session.patient.public_id,
        obj=session,
    )
    partial = request.GET.get("partial", "flowsheet")
    if partial not in ("vitals-table", "dose-panel", "discharge-panel", "checklist"):
        partial = "flowsheet"
    return render_page_or_partial(request, FLOWSHEET, partial, _flowsheet_context(request, session))


@staff_view(Cap.SESSION_RUN)
def vitals_add(request: ActorRequest, session_id: str) -> HttpResponse:
    actor = request.actor
    session = selectors.session_get(actor, session_id, capability=Cap.SESSION_RUN)
    form = VitalsForm(request.POST)
    status = 200
    if form.is_valid():
        try:
            services.vitals_record(actor=actor, session=session, samples=[form.cleaned_data])
            form = VitalsForm()
        except DomainError as error:
            add_domain_errors(form, error)
            status = error.status
    else:
        status = 400
    session.refresh_from_db()
    context = _flowsheet_context(request, session, vitals_form=form)
    return render_page_or_partial(request, FLOWSHEET, "vitals-table", context, status=status)


@staff_view(Cap.SESSION_RUN)
def adverse_event_add(request: ActorRequest, session_id: str) -> HttpResponse:
    actor = request.actor
    session = selectors.session_get(actor, session_id, capability=Cap.SESSION_RUN)
    form = AdverseEventForm(request.POST)
    status = 200
    if form.is_valid():
        try:
            services.adverse_event_record(actor=actor, session=session, **form.cleaned_data)
            form = AdverseEventForm()
        except DomainError as error:
            add_domain_errors(form, error)
            status = error.status
    else:
        status = 400
    context = _flowsheet_context(request, session, ae_form=form)
    return render_page_or_partial(request, FLOWSHEET, "ae-panel", context, status=status)


@staff_view(Cap.SESSION_RUN)
def discharge_check(request: ActorRequest, session_id: str) -> HttpResponse:
    actor = request.actor
    session = selectors.session_get(actor, session_id, capability=Cap.SESSION_RUN)
    form = DischargeForm(request.POST)
    status = 200
    if form.is_valid():
        try:
            services.discharge_check(actor=actor, session=session, assessment=form.cleaned_data)
        except DomainError as error:
            add_domain_errors(form, error)
            status = error.status
    session.refresh_from_db()
    context = _flowsheet_context(request, session, discharge_form=form)
    return render_page_or_partial(request, FLOWSHEET, "discharge-panel", context, status=status)


@staff_view(Cap.SESSION_RUN)
def check_in(request: ActorRequest, session_id: str) -> HttpResponse:
    def run(actor: Any, session: Any, form: CheckInForm) -> None:
        services.session_check_in(actor=actor, session=session, chair=form.cleaned_data["chair"])

    form = CheckInForm(request.POST)
    return _flowsheet_action(
        request,
        session_id,
        capability=Cap.SESSION_RUN,
        form_name="checkin_form",
        form=form,
        run=run,
    )


@staff_view(Cap.DOSE_ORDER)
def frequency_override(request: ActorRequest, session_id: str) -> HttpResponse:
    """A prescriber allows this session's dose outside the gap or weekly limit, in writing."""

    def run(actor: Any, session: Any, form: FrequencyOverrideForm) -> None:
        services.session_frequency_override(
            actor=actor, session=session, reason=form.cleaned_data["reason"]
        )

    return _flowsheet_action(
        request,
        session_id,
        capability=Cap.DOSE_ORDER,
        form_name="frequency_form",
        form=FrequencyOverrideForm(request.POST),
        run=run,
    )


@staff_view(Cap.SESSION_RUN)
def precheck(request: ActorRequest, session_id: str) -> HttpResponse:
    def run(actor: Any, session: Any, form: PrecheckForm) -> None:
        services.precheck_record(
            actor=actor,
            session=session,
            checklist=form.checklist(),
            vitals=form.vitals(),
            override_reason=form.cleaned_data.get("override_reason", ""),
        )

    return _flowsheet_action(
        request,
        session_id,
        capability=Cap.SESSION_RUN,
        form_name="precheck_form",
        form=None,
        run=run,
    )


@staff_view(Cap.DOSE_ORDER)
def dose_order(request: ActorRequest, session_id: str) -> HttpResponse:
    def run(actor: Any, session: Any, form: DoseOrderForm) -> None:
        services.dose_order_sign(actor=actor, session=session, **form.cleaned_data)

    form = DoseOrderForm(request.POST)
    return _flowsheet_action(
        request, session_id, capability=Cap.DOSE_ORDER, form_name="order_form", form=form, run=run
    )


@staff_view(Cap.DOSE_ADMINISTER)
def administer(request: ActorRequest, session_id: str) -> HttpResponse:
    def run(actor: Any, session: Any, form: AdministrationForm) -> None:
        data = form.cleaned_data
        services.dose_administer(
            actor=actor,
            session=session,
            dose_mg=data["dose_mg"],
            lot_number=data["lot_number"],
            device_count=data["device_count"],
            ended_at=clock.now() if data["completed"] else None,
            note=data["note"],
        )

    form = AdministrationForm(request.POST)
    return _flowsheet_action(
        request,
        session_id,
        capability=Cap.DOSE_ADMINISTER,
        form_name="admin_form",
        form=form,
        run=run,
    )


@staff_view(Cap.DOSE_ADMINISTER)
def dose_complete(request: ActorRequest, session_id: str) -> HttpResponse:
    def run(actor: Any, session: Any, form: Any) -> None:
        services.dose_complete(actor=actor, session=session)

    return _flowsheet_action(
        request,
        session_id,
        capability=Cap.DOSE_ADMINISTER,
        form_name="complete_form",
        form=forms.Form(request.POST),
        run=run,
    )


@staff_view(Cap.SESSION_RUN)
def discharge(request: ActorRequest, session_id: str) -> HttpResponse:
    def run(actor: Any, session: Any, form: Any) -> None:
        services.session_discharge(actor=actor, session=session)

    return _flowsheet_action(
        request,
        session_id,
        capability=Cap.SESSION_RUN,
        form_name="release_form",
        form=forms.Form(request.POST),
        run=run,
    )


@staff_view(Cap.SESSION_RUN)
def note_save(request: ActorRequest, session_id: str) -> HttpResponse:
    def run(actor: Any, session: Any, form: NoteForm) -> None:
        services.note_save(actor=actor, session=session, text=form.cleaned_data["text"])

    return _flowsheet_action(
        request,
        session_id,
        capability=Cap.SESSION_RUN,
        form_name="note_form",
        form=NoteForm(request.POST),
        run=run,
    )


@staff_view(Cap.SESSION_RUN)
def note_sign(request: ActorRequest, session_id: str) -> HttpResponse:
    def run(actor: Any, session: Any, form: NoteForm) -> None:
        with transaction.atomic():  # save the text shown and sign it, or neither
            services.note_save(actor=actor, session=session, text=form.cleaned_data["text"])
            services.note_sign(actor=actor, session=session)

    return _flowsheet_action(
        request,
        session_id,
        capability=Cap.SESSION_RUN,
        form_name="note_form",
        form=NoteForm(request.POST),
        run=run,
    )


@staff_view(Cap.SESSION_RUN)
def note_amend(request: ActorRequest, session_id: str) -> HttpResponse:
    def run(actor: Any, session: Any, form: AmendmentForm) -> None:
        services.note_amend(actor=actor, session=session, **form.cleaned_data)

    return _flowsheet_action(
        request,
        session_id,
        capability=Cap.SESSION_RUN,
        form_name="amend_form",
        form=AmendmentForm(request.POST),
        run=run,
    )


@staff_view(Cap.SESSION_RUN)
def observation_add(request: ActorRequest, session_id: str, kind: str) -> HttpResponse:
    """Dissociation (CADSS), sedation (MOAA/S) or the side-effects checklist."""
    form_class = OBSERVATION_FORMS.get(kind)
    if form_class is None:
        raise NotFound("No such observation.")

    def run(actor: Any, session: Any, form: Any) -> None:
        services.observation_record(actor=actor, session=session, kind=kind, **form.observation())

    return _flowsheet_action(
        request,
        session_id,
        capability=Cap.SESSION_RUN,
        form_name=f"{kind}_form",
        form=form_class(request.POST),
        run=run,
        partial="observations-panel",
    )


@staff_view(Cap.DOSE_ADMINISTER)
def intervention_add(request: ActorRequest, session_id: str) -> HttpResponse:
    """A medication given for a reason (antiemetic, antihypertensive), linked to an AE if any."""

    def build(actor: Any, session: Any) -> InterventionForm:
        return InterventionForm(request.POST, events=selectors.flowsheet(session).adverse_events)

    def run(actor: Any, session: Any, form: InterventionForm) -> None:
        services.intervention_record(actor=actor, session=session, **form.intervention())

    return _flowsheet_action(
        request,
        session_id,
        capability=Cap.DOSE_ADMINISTER,
        form_name="intervention_form",
        form=build,
        run=run,
        partial="medications-panel",
    )


@staff_view(Cap.SESSION_RUN)
def abort(request: ActorRequest, session_id: str) -> HttpResponse:
    def run(actor: Any, session: Any, form: AbortForm) -> None:
        services.session_abort(actor=actor, session=session, reason=form.cleaned_data["reason"])

    return _flowsheet_action(
        request,
        session_id,
        capability=Cap.SESSION_RUN,
        form_name="abort_form",
        form=AbortForm(request.POST),
        run=run,
    )


def _esketamine(session: Any) -> None:
    if session.drug != "esketamine":
        raise NotFound("Only esketamine sessions have a REMS form.")


@staff_view(Cap.SESSION_RUN)
def pmf_answers(request: ActorRequest, session_id: str) -> HttpResponse:
    """The Patient Monitoring Form questions the session record cannot answer."""

    def build(actor: Any, session: Any) -> PmfAnswersForm:
        _esketamine(session)
        pmf = selectors.flowsheet(session).pmf
        return PmfAnswersForm(request.POST, pmf_data=pmf.data if pmf else {})

    def run(actor: Any, session: Any, form: PmfAnswersForm) -> None:
        services.pmf_update(actor=actor, session=session, answers=form.answers())

    return _flowsheet_action(
        request,
        session_id,
        capability=Cap.SESSION_RUN,
        form_name="pmf_form",
        form=build,
        run=run,
        partial="pmf-panel",
    )


@staff_view(Cap.SESSION_RUN)
def rems_enroll(request: ActorRequest, session_id: str) -> HttpResponse:
    def build(actor: Any, session: Any) -> RemsEnrollForm:
        _esketamine(session)
        return RemsEnrollForm(request.POST, today=selectors.local_date(session, clock.now()))

    def run(actor: Any, session: Any, form: RemsEnrollForm) -> None:
        with transaction.atomic():  # enrolled, and the form shows it, or neither
            services.rems_enroll(actor=actor, patient=session.patient, **form.cleaned_data)
            services.pmf_update(actor=actor, session=session, answers={})

    return _flowsheet_action(
        request,
        session_id,
        capability=Cap.SESSION_RUN,
        form_name="rems_enroll_form",
        form=build,
        run=run,
        partial="pmf-panel",
    )


@staff_view(Cap.SESSION_RUN)
def pmf_submitted(request: ActorRequest, session_id: str) -> HttpResponse:
    """The PMF was sent to the REMS (online or fax): the 7-day tracker stops counting."""

    def build(actor: Any, session: Any) -> PmfSubmittedForm:
        _esketamine(session)
        pmf = selectors.flowsheet(session).pmf
        if pmf is None:
            raise NotFound("This session has no REMS form yet.")
        today = selectors.local_date(session, clock.now())
        form = PmfSubmittedForm(request.POST, today=today, treatment_date=pmf.treatment_date)
        form.pmf = pmf  # type: ignore[attr-defined]
        return form

    def run(actor: Any, session: Any, form: Any) -> None:
        services.pmf_mark_submitted(
            actor=actor, pmf=form.pmf, submitted_on=form.cleaned_data["submitted_on"]
        )

    return _flowsheet_action(
        request,
        session_id,
        capability=Cap.SESSION_RUN,
        form_name="pmf_submitted_form",
        form=build,
        run=run,
        partial="pmf-panel",
    )


@staff_view(Cap.SESSION_RUN)
def schedule(request: ActorRequest, patient_id: str) -> HttpResponse:
    """The chart's "Schedule / start session" form: schedule, and check in when starting now."""
    actor = request.actor
    patient = patient_selectors.patient_get_for_actor(actor, patient_id)
    plans = selectors.schedulable_plans(patient)
    form = ScheduleForm(request.POST, plans=plans)
    status = 200
    if form.is_valid():
        data = form.cleaned_data
        clinic = actor.membership.home_clinic or Clinic.objects.order_by("pk").first()
        zone = ZoneInfo(clinic.time_zone if clinic else "UTC")
        start_now = "start" in request.POST
        at = clock.now() if start_now else data["scheduled_at"].replace(tzinfo=zone)
        try:
            with transaction.atomic():
                session = services.session_schedule(
                    actor=actor,
                    plan=form.plans[data["plan"]],
                    scheduled_at=at,
                    clinic=clinic,
                    chair=data["chair"],
                )
                if start_now:
                    services.session_check_in(actor=actor, session=session)
        except DomainError as error:
            add_domain_errors(form, error)
            status = error.status
        else:
            url = reverse("sessions:flowsheet", args=[session.public_id])
            if getattr(request, "htmx", False):
                return HttpResponse(status=204, headers={"HX-Redirect": url})
            return redirect(url)
    else:
        status = 400
    context = {
        "allowed": True,
        "patient": patient,
        "sessions": selectors.sessions_for_patient(patient),
        "schedule_form": form,
        "can_run": True,
    }
    return TemplateResponse(request, "sessions/chart_section.html", context, status=status)


@staff_view(Cap.FLOOR_VIEW)
def floor_board(request: ActorRequest) -> HttpResponse:
    """Every chair in use. The rows poll every 2 s; the page view itself is audited once."""
    actor = request.actor
    if not getattr(request, "htmx", False):
        audit_record(actor=actor, action="sessions.floor.viewed")
    context = {"rows": selectors.floor_board()}
    return render_page_or_partial(request, "sessions/floor_board.html", "floor-rows", context)


def _pmf(request: ActorRequest, session_id: str) -> tuple[Any, list[tuple[str, str, Any]]]:
    actor = request.actor
    session = selectors.session_get(actor, session_id)
    pmf = selectors.flowsheet(session).pmf
    if pmf is None:
        raise NotFound("This session has no REMS form.")
    audit_record(
        actor=actor, action="sessions.pmf.exported", patient_id=session.patient.public_id, obj=pmf
    )
    rows = [(f.section, f.label, pmf.data.get(f.key, "")) for f in rems.PMF_FIELDS]
    return pmf, rows


@staff_view(Cap.SESSION_VIEW)
def pmf_csv(request: ActorRequest, session_id: str) -> HttpResponse:
    pmf, _ = _pmf(request, session_id)
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(["field", "section", "label", "value"])
    for field in rems.PMF_FIELDS:
        value = pmf.data.get(field.key, "")
        writer.writerow([field.key, field.section, field.label, "" if value is None else value])
    response = HttpResponse(buffer.getvalue(), content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="pmf-{pmf.public_id}.csv"'
    return response


@staff_view(Cap.SESSION_VIEW)
def pmf_pdf(request: ActorRequest, session_id: str) -> HttpResponse:
    from weasyprint import HTML

    pmf, rows = _pmf(request, session_id)
    html = render_to_string(
        "sessions/pmf_pdf.html", {"pmf": pmf, "rows": rows, "rule": rems.RULE_PMF}
    )
    pdf = HTML(string=html).write_pdf()
    response = HttpResponse(pdf, content_type="application/pdf")
    response["Content-Disposition"] = f'attachment; filename="pmf-{pmf.public_id}.pdf"'
    return response


@staff_view(Cap.DOSE_ORDER)
def dose_preview(request: ActorRequest, session_id: str) -> HttpResponse:
    """The dose the order would sign, recomputed as the prescriber types (htmx GET, no write):
    the calculation, or what to fix and in which field."""
    from ketaclinic.sessions.services.dosing import dose_preview as preview

    actor = request.actor
    session = selectors.session_get(actor, session_id, capability=Cap.DOSE_ORDER)
    form = DoseOrderForm(request.GET)
    context: dict[str, Any] = {"session": session, "form": form}
    if form.is_valid():
        try:
            context["r"] = preview(actor=actor, session=session, **form.cleaned_data)
        except DomainError as error:
            context["error"] = error
    return TemplateResponse(request, "sessions/_dose_preview.html", context)
