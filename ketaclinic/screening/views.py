"""Staff screens for screening: intake, the rules' findings, the prescriber's decision, and the
treatment eligibility check (the gate sessions will call, shown to a person)."""

from __future__ import annotations

from typing import Any

from django.contrib import messages
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect
from django.template.response import TemplateResponse
from django.views.decorators.http import require_POST

from ketaclinic.accounts.actor import ActorRequest
from ketaclinic.accounts.audit import audit_record
from ketaclinic.accounts.roles import Cap
from ketaclinic.core import clock
from ketaclinic.core.decorators import staff_view
from ketaclinic.core.errors import DomainError, FieldError, NotFound
from ketaclinic.core.forms import add_domain_errors
from ketaclinic.patients.selectors import patient_chart_read, patient_get_for_actor
from ketaclinic.screening import selectors, services
from ketaclinic.screening.forms import (
    QUESTIONS,
    DecisionForm,
    EligibilityCheckForm,
    IntakeForm,
    PolicyForm,
)
from ketaclinic.screening.gates import treatment_gate_check
from ketaclinic.screening.models import ROUTE_LABELS, ScreeningDecision, ScreeningPolicyVersion
from ketaclinic.screening.policy import Route, ScreeningPolicy
from ketaclinic.screening.policy_docs import THRESHOLDS


@staff_view(Cap.CLINICAL_VIEW)
def screening_page(request: ActorRequest, patient_id: str) -> HttpResponse:
    actor = request.actor
    patient = patient_chart_read(actor, patient_id, action="screening.page.viewed")
    return TemplateResponse(request, "screening/screening_page.html", _page_context(patient))


def _page_context(patient: Any, bound: Any = None) -> dict[str, Any]:
    """The screening page: the decisions per route, then each finding once with the routes it
    affects (a finding shared by five routes is read once, not five times). `bound` is a
    refused decision form, shown again with what was typed and the error beside its field."""
    evaluation = selectors.evaluation_latest(patient)
    intake = selectors.intake_current(patient)
    decisions = selectors.decisions_of_evaluation(evaluation) if evaluation else []
    findings: dict[tuple[str, str], dict[str, Any]] = {}
    for d in decisions:
        for f in d.findings:
            key = (f.get("rule", ""), f.get("reason", ""))
            row = findings.setdefault(key, {**f, "routes": []})
            row["routes"].append(d.route_label)
    rank = {"absolute": 0, "relative": 1, "info": 2}
    for d in decisions:
        form = bound[1] if bound and bound[0] == d.pk else DecisionForm(prefix=f"d{d.pk}")
        d.form = form  # type: ignore[attr-defined]  # the template reads each decision's form
    return {
        "patient": patient,
        "intake": intake,
        "answers": [(q, getattr(intake, n)) for n, q in QUESTIONS] if intake else [],
        "evaluation": evaluation,
        "decisions": decisions,
        "findings": sorted(findings.values(), key=lambda f: rank.get(f.get("severity"), 3)),
        "check_form": EligibilityCheckForm(),
    }


@staff_view(Cap.SCREENING_RECORD)
def intake_edit(request: ActorRequest, patient_id: str) -> HttpResponse:
    actor = request.actor
    patient = patient_get_for_actor(actor, patient_id)
    initial = IntakeForm.initial_from(selectors.intake_current(patient))
    form = IntakeForm(request.POST or None, initial=initial)
    if request.method == "POST" and form.is_valid():
        try:
            intake = services.intake_record(actor=actor, patient=patient, data=form.service_data())
        except DomainError as error:
            add_domain_errors(form, error)
        else:
            messages.success(request, "Intake history saved. Run the screening to update it.")
            # The alert this answer raised, or the open one that already covers it.
            if getattr(intake, "safety_alert", None) is not None:
                messages.error(
                    request,
                    "A critical safety alert was raised for this answer: see the patient's "
                    "open alerts and act on it now.",
                )
            return redirect("screening:page", patient_id=patient.public_id)
    context = {"form": form, "patient": patient}
    status = 400 if form.errors else 200
    return TemplateResponse(request, "screening/intake_form.html", context, status=status)


@require_POST
@staff_view(Cap.SCREENING_RECORD)
def evaluate(request: ActorRequest, patient_id: str) -> HttpResponse:
    actor = request.actor
    patient = patient_get_for_actor(actor, patient_id)
    services.screening_evaluate(actor=actor, patient=patient)
    messages.success(request, "Screening run. A prescriber decides each route below.")
    return redirect("screening:page", patient_id=patient.public_id)


@require_POST
@staff_view(Cap.SCREENING_DECIDE)
def decide(request: ActorRequest, decision_id: str) -> HttpResponse:
    actor = request.actor
    decision = (
        ScreeningDecision.objects.select_related("patient", "evaluation")
        .filter(public_id=decision_id)
        .first()
    )
    if decision is None:
        raise NotFound("No such screening decision.")
    prefix = f"d{decision.pk}" if f"d{decision.pk}-final_decision" in request.POST else None
    form = DecisionForm(request.POST, prefix=prefix)
    if form.is_valid():
        try:
            services.screening_decision_review(
                actor=actor,
                decision=decision,
                final_decision=form.cleaned_data["final_decision"],
                justification=form.cleaned_data["justification"],
            )
        except DomainError as error:
            add_domain_errors(form, error)
        else:
            messages.success(request, f"Decision recorded for {decision.route_label}.")
            return redirect("screening:page", patient_id=decision.patient.public_id)
    # Not a dead end: the screening page again, the choice and the words kept, the reason
    # beside the field that needs it.
    context = _page_context(decision.patient, bound=(decision.pk, form))
    return TemplateResponse(request, "screening/screening_page.html", context, status=400)


@staff_view(Cap.CLINICAL_VIEW)
def eligibility_check(request: ActorRequest, patient_id: str) -> HttpResponse:
    """The gate, asked by a person: 200 when treatment may go ahead, 422 with every reason."""
    actor = request.actor
    patient = patient_get_for_actor(actor, patient_id)
    form = EligibilityCheckForm(request.POST or None)
    status_code, gate = 200, None
    if request.method == "POST" and form.is_valid():
        route, setting = form.cleaned_data["route"], form.cleaned_data["setting"]
        gate = treatment_gate_check(patient=patient, route=route, setting=setting, at=clock.now())
        audit_record(
            actor=actor,
            action="screening.gate.checked",
            patient_id=patient.public_id,
            detail={"route": route, "setting": setting, "ok": gate.ok, "missing": gate.missing},
        )
        status_code = 200 if gate.ok else 422
    elif form.errors:
        status_code = 400
    context = {"form": form, "patient": patient, "gate": gate}
    return TemplateResponse(
        request, "screening/eligibility_check.html", context, status=status_code
    )


# --- the clinic's screening policy (clinic admins) ----------------------------------------


def _threshold_rows(policy: ScreeningPolicy) -> list[dict[str, Any]]:
    values, defaults = policy.to_dict(), ScreeningPolicy().to_dict()
    return [
        {
            "threshold": item,
            "value": _shown(values[item.name]),
            "default": _shown(defaults[item.name]),
            "changed": values[item.name] != defaults[item.name],
        }
        for item in THRESHOLDS
    ]


def _shown(value: Any) -> str:
    if isinstance(value, dict):
        return f"{value['systolic_mmhg']}/{value['diastolic_mmhg']}"
    if isinstance(value, bool):
        return "yes" if value else "no"
    return str(value)


def _severity_rows(policy: ScreeningPolicy) -> list[dict[str, Any]]:
    default = ScreeningPolicy()
    return [
        {
            "rule": rule_id,
            "cells": [
                (
                    policy.severity_for(rule_id, route),
                    policy.severity_for(rule_id, route) != default.severity_for(rule_id, route),
                )
                for route in Route
            ],
        }
        for rule_id in policy.severities
    ]


def _history(versions: list[ScreeningPolicyVersion]) -> list[dict[str, Any]]:
    """Each version with the thresholds it changed from the one before (the first: defaults)."""
    history, previous = [], ScreeningPolicy().to_dict()
    for row in sorted(versions, key=lambda v: v.version):
        changed = [
            (item.label, _shown(previous[item.name]), _shown(row.data[item.name]))
            for item in THRESHOLDS
            if item.name in row.data and row.data[item.name] != previous.get(item.name)
        ]
        if row.data.get("severities") != previous.get("severities"):
            changed.append(("Severity of findings per route", "", "changed"))
        history.append({"row": row, "changed": changed})
        previous = row.data
    return list(reversed(history))


@staff_view(Cap.SCREENING_POLICY_EDIT)
def policy_page(request: HttpRequest) -> HttpResponse:
    """The current policy (or ?version=N), each threshold beside its cited default; history."""
    versions = selectors.screening_policy_versions()
    wanted = request.GET.get("version", "")
    shown = next(
        (v for v in versions if str(v.version) == wanted), versions[0] if versions else None
    )
    if wanted and (shown is None or str(shown.version) != wanted):
        raise Http404("No such policy version.")
    policy = selectors.policy_from_row(shown)
    context = {
        "shown": shown,
        "current": versions[0] if versions else None,
        "policy": policy,
        "rows": _threshold_rows(policy),
        "severity_rows": _severity_rows(policy),
        "routes": [ROUTE_LABELS[route.value] for route in Route],
        "history": _history(versions),
    }
    return TemplateResponse(request, "screening/policy_page.html", context)


@staff_view(Cap.SCREENING_POLICY_EDIT)
def policy_edit(request: ActorRequest) -> HttpResponse:
    actor = request.actor
    current = selectors.screening_policy_current(actor.organization)
    form = PolicyForm(request.POST or None, policy=selectors.policy_from_row(current))
    if request.method == "POST" and form.is_valid():
        changes = form.changes()
        if not changes:
            form.add_error(None, "Nothing changed: no new version published.")
        else:
            try:
                row = services.screening_policy_publish(
                    actor=actor, changes=changes, note=form.cleaned_data["note"]
                )
            except DomainError as error:
                for field_error in error.errors or [FieldError("", error.detail)]:
                    form.add_service_error(field_error.field, field_error.message)
            else:
                messages.success(request, f"Screening policy version {row.version} published.")
                return redirect("screening:policy")
    context = {
        "form": form,
        "current": current,
        "thresholds": [(item, form.fields_of(item)) for item in THRESHOLDS],
    }
    status = 400 if form.errors else 200
    return TemplateResponse(request, "screening/policy_form.html", context, status=status)
