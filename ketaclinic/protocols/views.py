"""Staff screens for protocols, the session safety policy and treatment plans.

Views parse, look up, call a service and render. The services check capabilities again, write the
audit event and raise the errors shown here; nothing is written when they refuse.
"""

from __future__ import annotations

from typing import Any

from django.contrib import messages
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect
from django.template.response import TemplateResponse
from django.urls import reverse
from django.views.decorators.http import require_POST

from ketaclinic.accounts.actor import ActorRequest
from ketaclinic.accounts.roles import Cap, capabilities_of
from ketaclinic.core.decorators import staff_view
from ketaclinic.core.errors import Conflict, DomainError
from ketaclinic.core.forms import add_domain_errors
from ketaclinic.patients.selectors import patient_get_for_actor
from ketaclinic.protocols import selectors, services
from ketaclinic.protocols.catalog import STANDARD_TEMPLATES
from ketaclinic.protocols.citations import POLICY_FIELDS, protocol_facts
from ketaclinic.protocols.forms import (
    CloneForm,
    PhaseChangeForm,
    PhaseExtendForm,
    PlanCreateForm,
    ProtocolDraftForm,
    SafetyPolicyForm,
    TitrateForm,
)
from ketaclinic.protocols.models import ProtocolVersion, SafetyPolicyVersion, TreatmentPlan
from ketaclinic.protocols.templatetags.treatment_plans import (
    plan_auto_id,
    plan_section_context,
)
from ketaclinic.sessions.policy import DEFAULT_POLICY, UNCONFIRMED_FIELDS

PUBLISHED_IS_FINAL = "A published protocol version never changes; clone it to a new version."

# --- protocols --------------------------------------------------------------------------------


@staff_view(Cap.PATIENT_LIST)
def protocol_list(request: HttpRequest) -> HttpResponse:
    rows = list(selectors.protocol_versions().select_related("based_on"))
    present = {row.key for row in rows}
    missing = [t for t in STANDARD_TEMPLATES if t.key not in present]
    return TemplateResponse(
        request, "protocols/protocol_list.html", {"rows": rows, "missing": missing}
    )


@require_POST
@staff_view(Cap.PROTOCOL_MANAGE)
def catalog_seed(request: ActorRequest) -> HttpResponse:
    actor = request.actor
    count = services.protocol_catalog_seed(organization=actor.organization, actor=actor)
    messages.success(request, f"{count} standard protocol(s) published.")
    return redirect("protocols:list")


def _detail(
    request: HttpRequest, protocol: ProtocolVersion, status: int = 200, **extra: Any
) -> HttpResponse:
    template = protocol.template
    facts = protocol_facts(template)
    sections: dict[str, list[Any]] = {}
    for fact in facts:
        sections.setdefault(fact.section, []).append(fact)
    versions = selectors.protocol_versions().filter(protocol_id=protocol.protocol_id)
    context = {
        "protocol": protocol,
        "template": template,
        "sections": sections,
        "versions": versions,
        "clone_form": extra.pop("clone_form", None) or CloneForm(),
        **extra,
    }
    return TemplateResponse(request, "protocols/protocol_detail.html", context, status=status)


def _protocol(request: ActorRequest, protocol_id: str) -> ProtocolVersion:
    protocol = selectors.protocol_get(request.actor, protocol_id)
    # One lookup for the people the page names, rather than one query each.
    return (
        ProtocolVersion.objects.select_related("based_on", "created_by", "published_by")
        .filter(pk=protocol.pk)
        .get()
    )


@staff_view(Cap.PATIENT_LIST)
def protocol_detail(request: ActorRequest, protocol_id: str) -> HttpResponse:
    return _detail(request, _protocol(request, protocol_id))


@require_POST
@staff_view(Cap.PROTOCOL_MANAGE)
def protocol_clone(request: ActorRequest, protocol_id: str) -> HttpResponse:
    actor = request.actor
    source = _protocol(request, protocol_id)
    form = CloneForm(request.POST)
    if not form.is_valid():
        return _detail(request, source, status=400, clone_form=form)
    draft = services.protocol_clone(actor=actor, source=source, note=form.cleaned_data["note"])
    messages.success(request, f"Draft {draft.key} created from {source.key}.")
    return redirect("protocols:edit", protocol_id=draft.public_id)


@staff_view(Cap.PROTOCOL_MANAGE)
def protocol_edit(request: ActorRequest, protocol_id: str) -> HttpResponse:
    actor = request.actor
    protocol = _protocol(request, protocol_id)
    if protocol.status != ProtocolVersion.Status.DRAFT:
        # Refused before any form is shown: a published version is the record of what was given.
        messages.error(request, PUBLISHED_IS_FINAL)
        return _detail(request, protocol, status=Conflict.status)
    form = ProtocolDraftForm(request.POST or None, definition=protocol.definition)
    status = 200
    if request.method == "POST":
        status = 400
        if form.is_valid():
            changes = form.changes()
            if not changes:
                form.add_error(None, "Nothing changed.")
            else:
                try:
                    services.protocol_draft_update(actor=actor, protocol=protocol, changes=changes)
                except DomainError as error:
                    add_domain_errors(form, error)
                    status = error.status
                else:
                    messages.success(request, f"Draft {protocol.key} saved (not yet published).")
                    return redirect("protocols:detail", protocol_id=protocol.public_id)
    context = {"protocol": protocol, "form": form}
    return TemplateResponse(request, "protocols/protocol_form.html", context, status=status)


@require_POST
@staff_view(Cap.PROTOCOL_MANAGE)
def protocol_publish(request: ActorRequest, protocol_id: str) -> HttpResponse:
    actor = request.actor
    protocol = _protocol(request, protocol_id)
    try:
        protocol = services.protocol_publish(actor=actor, protocol=protocol)
    except DomainError as error:
        messages.error(request, error.detail)
        return _detail(request, protocol, status=error.status)
    messages.success(request, f"{protocol.key} published. It can no longer be edited.")
    return redirect("protocols:detail", protocol_id=protocol.public_id)


# --- the session safety policy ---------------------------------------------------------------


def _policy_rows(data: dict[str, Any]) -> list[dict[str, Any]]:
    rows = []
    for name, (label, unit, source) in POLICY_FIELDS.items():
        rows.append(
            {
                "name": name,
                "label": label,
                "unit": unit,
                "value": data[name],
                "default": getattr(DEFAULT_POLICY, name),
                "source": source,
                "unconfirmed": name in UNCONFIRMED_FIELDS,
            }
        )
    return rows


def _history(versions: list[SafetyPolicyVersion]) -> list[dict[str, Any]]:
    """Each stored version with what it changed from the one before (the first: from defaults)."""
    history = []
    previous = DEFAULT_POLICY.to_dict()
    for version in sorted(versions, key=lambda v: v.version):
        changed = [
            (POLICY_FIELDS[name][0], previous.get(name), value)
            for name, value in version.data.items()
            if name in POLICY_FIELDS and previous.get(name) != value
        ]
        history.append({"version": version, "changed": changed})
        previous = version.data
    return list(reversed(history))


@staff_view(Cap.SAFETY_POLICY_EDIT)
def safety_policy(request: ActorRequest) -> HttpResponse:
    actor = request.actor
    versions = list(SafetyPolicyVersion.objects.select_related("published_by").order_by("-version"))
    policy = versions[0].policy if versions else DEFAULT_POLICY
    context = {
        "current": versions[0] if versions else None,
        "policy": policy,
        "rows": _policy_rows(policy.to_dict()),
        "history": _history(versions),
        "organization": actor.organization,
    }
    return TemplateResponse(request, "protocols/safety_policy.html", context)


@staff_view(Cap.SAFETY_POLICY_EDIT)
def safety_policy_edit(request: ActorRequest) -> HttpResponse:
    actor = request.actor
    row, policy = selectors.safety_policy_current(actor.organization)
    form = SafetyPolicyForm(request.POST or None, policy=policy)
    status = 200
    if request.method == "POST":
        status = 400
        if form.is_valid():
            changes = form.changes()
            if not changes:
                form.add_error(None, "Nothing changed: no new version published.")
            else:
                try:
                    stored = services.safety_policy_publish(
                        actor=actor, changes=changes, note=form.cleaned_data["note"]
                    )
                except DomainError as error:
                    add_domain_errors(form, error)
                    status = error.status
                else:
                    messages.success(request, f"Safety policy version {stored.version} published.")
                    return redirect("protocols:safety-policy")
    fields = [
        (form[name], getattr(DEFAULT_POLICY, name), spec[2], name in UNCONFIRMED_FIELDS)
        for name, spec in POLICY_FIELDS.items()
    ]
    context = {"form": form, "fields": fields, "current": row, "policy": policy}
    return TemplateResponse(request, "protocols/safety_policy_form.html", context, status=status)


# --- treatment plans on the chart -------------------------------------------------------------


def _plan_section(
    request: ActorRequest, patient: Any, status: int = 200, **kwargs: Any
) -> HttpResponse:
    """The chart's Plan section: alone for htmx, inside a page otherwise (no-JS fallback)."""
    caps = {str(c) for c in capabilities_of(request.actor.role)}
    context = plan_section_context(patient, caps, **kwargs)
    name = (
        "protocols/plan_section.html"
        if getattr(request, "htmx", False)
        else "protocols/plan_page.html"
    )
    return TemplateResponse(request, name, context, status=status)


def _done(request: ActorRequest, patient: Any, notice: str) -> HttpResponse:
    if getattr(request, "htmx", False):
        return _plan_section(request, patient, notice=notice)
    messages.success(request, notice)
    return redirect(reverse("patients:chart-section", args=[patient.public_id, "plan"]))


@require_POST
@staff_view(Cap.PLAN_PRESCRIBE)
def plan_create(request: ActorRequest, patient_id: str) -> HttpResponse:
    actor = request.actor
    patient = patient_get_for_actor(actor, patient_id)
    published = selectors.protocol_versions().filter(status=ProtocolVersion.Status.PUBLISHED)
    form = PlanCreateForm(request.POST, protocols=list(published))
    if not form.is_valid():
        return _plan_section(request, patient, status=400, create_form=form)
    try:
        plan = services.plan_create(actor=actor, patient=patient, **form.service_kwargs())
    except DomainError as error:
        add_domain_errors(form, error)
        return _plan_section(request, patient, status=error.status, create_form=form)
    return _done(request, patient, f"Plan {plan.protocol_key} created, phase {plan.phase}.")


def _plan(request: ActorRequest, plan_id: str) -> TreatmentPlan:
    return selectors.plan_get(request.actor, plan_id, capability=Cap.PLAN_PRESCRIBE)


@require_POST
@staff_view(Cap.PLAN_PRESCRIBE)
def plan_phase_change(request: ActorRequest, plan_id: str) -> HttpResponse:
    actor = request.actor
    plan = _plan(request, plan_id)
    form = PhaseChangeForm(
        request.POST,
        template=plan.protocol.template,
        current=plan.phase,
        auto_id=plan_auto_id(plan),
    )
    status = 400
    if form.is_valid():
        try:
            event = services.plan_phase_change(actor=actor, plan=plan, **form.cleaned_data)
        except DomainError as error:
            add_domain_errors(form, error)
            status = error.status
        else:
            return _done(request, plan.patient, f"Phase changed to {event.to_value}.")
    return _plan_section(request, plan.patient, status=status, bound=(plan, "phase_form", form))


@require_POST
@staff_view(Cap.PLAN_PRESCRIBE)
def plan_extend(request: ActorRequest, plan_id: str) -> HttpResponse:
    """More dosing sessions in the current phase than it planned (the dose past the planned
    count is refused until then)."""
    actor = request.actor
    plan = _plan(request, plan_id)
    form = PhaseExtendForm(request.POST, auto_id=f"extend-{plan.public_id.hex[:8]}-%s")
    status = 400
    if form.is_valid():
        try:
            event = services.plan_sessions_extend(actor=actor, plan=plan, **form.cleaned_data)
        except DomainError as error:
            add_domain_errors(form, error)
            status = error.status
        else:
            return _done(
                request, plan.patient, f"Phase {event.from_value} extended by {event.to_value}."
            )
    return _plan_section(request, plan.patient, status=status, bound=(plan, "extend_form", form))


@require_POST
@staff_view(Cap.PLAN_PRESCRIBE)
def plan_titrate(request: ActorRequest, plan_id: str) -> HttpResponse:
    actor = request.actor
    plan = _plan(request, plan_id)
    form = TitrateForm(request.POST, auto_id=plan_auto_id(plan))
    status = 400
    if form.is_valid():
        try:
            event = services.plan_titrate(actor=actor, plan=plan, **form.cleaned_data)
        except DomainError as error:
            add_domain_errors(form, error)
            status = error.status
        else:
            unit = event.result.get("unit", "")
            return _done(
                request, plan.patient, f"Dose changed {event.from_value} → {event.to_value} {unit}."
            )
    return _plan_section(request, plan.patient, status=status, bound=(plan, "titrate_form", form))
