"""The chart's Plan section: the patient's treatment plans, their history, and the prescriber's
forms (create, phase change, titrate). The plan views re-render the same section after a change."""

from __future__ import annotations

from typing import Any

from django import template
from django.db.models import Prefetch, prefetch_related_objects

from ketaclinic.core import clock
from ketaclinic.patients.models import BodyWeight, Patient
from ketaclinic.protocols import selectors
from ketaclinic.protocols.forms import (
    PhaseChangeForm,
    PhaseExtendForm,
    PlanCreateForm,
    TitrateForm,
)
from ketaclinic.protocols.models import PlanEvent, ProtocolVersion, TreatmentPlan

register = template.Library()

SECTION_TEMPLATE = "protocols/plan_section.html"


def plan_auto_id(plan: TreatmentPlan) -> str:
    """Input ids unique per plan, so several plans' forms can share the page."""
    return f"plan-{plan.public_id.hex[:8]}-%s"


def plan_section_context(
    patient: Patient,
    caps: Any,
    *,
    create_form: PlanCreateForm | None = None,
    bound: tuple[TreatmentPlan | None, str, Any] | None = None,
    notice: str = "",
) -> dict[str, Any]:
    """Everything the section shows. `bound` is (plan, form name, form) for the form that was
    just submitted with errors, so its errors show in place."""
    allowed = "clinical.view" in caps
    can_prescribe = "protocols.plan.prescribe" in caps
    context: dict[str, Any] = {
        "patient": patient,
        "allowed": allowed,
        "can_prescribe": can_prescribe,
        "can_schedule": "scheduling.book" in caps,  # the series link (scheduling, issue 11)
        "notice": notice,
    }
    if not allowed:
        if context["can_schedule"]:
            # The front desk books the series without seeing the plan's clinical content.
            context["schedulable"] = [
                p
                for p in selectors.plans_for_patient(patient)
                if p.status == TreatmentPlan.Status.ACTIVE
            ]
        return context
    plans = selectors.plans_for_patient(patient)
    events = PlanEvent.objects.select_related("recorded_by").order_by("recorded_at", "pk")
    prefetch_related_objects(plans, Prefetch("events", queryset=events))
    if can_prescribe:
        latest = (
            BodyWeight.objects.in_use().filter(patient=patient).order_by("-measured_at").first()
        )
        for plan in plans:
            template_ = plan.protocol.template
            auto_id = plan_auto_id(plan)
            plan.phase_form = PhaseChangeForm(  # type: ignore[attr-defined]
                template=template_, current=plan.phase, auto_id=auto_id
            )
            plan.titrate_form = TitrateForm(  # type: ignore[attr-defined]
                initial={"weight_kg": latest.weight_kg if latest else None}, auto_id=auto_id
            )
            plan.titrates = template_.titration is not None  # type: ignore[attr-defined]
            plan.extend_form = PhaseExtendForm(  # type: ignore[attr-defined]
                auto_id=f"extend-{plan.public_id.hex[:8]}-%s"
            )
            if bound and bound[0] is not None and bound[0].pk == plan.pk:
                setattr(plan, bound[1], bound[2])
        if create_form is None:
            published = selectors.protocol_versions().filter(
                status=ProtocolVersion.Status.PUBLISHED
            )
            create_form = PlanCreateForm(
                protocols=list(published), initial={"start_date": clock.now().date()}
            )
        context["create_form"] = create_form
        context["latest_weight"] = latest
    context["plans"] = plans
    return context


@register.inclusion_tag(SECTION_TEMPLATE, takes_context=True)
def plan_section(context: Any, patient: Patient) -> dict[str, Any]:
    section = plan_section_context(patient, context.get("caps", set()))
    section["csrf_token"] = context.get("csrf_token")
    return section
