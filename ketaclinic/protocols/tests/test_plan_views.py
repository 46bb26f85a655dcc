"""The chart's Plan section: a prescriber creates a plan from a published protocol with their own
parameters, changes its phase and titrates it; refusals show the service's message on the field
and write nothing. Treatment gates (screening, consent) are the real ones."""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from typing import Any

import pytest
from django_scopes import scope, scopes_disabled

from conftest import actor_for, audit_count, make_patient, staff_client
from ketaclinic.protocols import selectors, services
from ketaclinic.protocols.models import PlanEvent, ProtocolVersion, TreatmentPlan
from ketaclinic.sessions.tests.builders import make_plan, make_treatable, weigh

pytestmark = pytest.mark.django_db
HX = {"HX-Request": "true"}


@pytest.fixture
def patient(prescriber: Any) -> Any:
    patient = make_patient(prescriber)
    with scope(organization=prescriber.organization):
        services.protocol_catalog_seed(organization=prescriber.organization)
        make_treatable(prescriber, patient, "iv-ketamine-induction")
        weigh(prescriber, patient, "80")
    return patient


@pytest.fixture
def doctor_ui(members: Any) -> Any:
    return staff_client(members["prescriber"])


def published(protocol_id: str) -> ProtocolVersion:
    with scopes_disabled():
        return ProtocolVersion.objects.filter(protocol_id=protocol_id, status="published").latest(
            "version"
        )


def plans() -> list[TreatmentPlan]:
    with scopes_disabled():
        return list(TreatmentPlan.objects.order_by("pk"))


def create_post(protocol: ProtocolVersion, **fields: Any) -> dict[str, Any]:
    data = {
        "protocol": str(protocol.public_id),
        "start_date": date.today().isoformat(),
        "current_amount": "",
        "infusion_minutes": "",
        "concentration_mg_per_ml": "",
        "diluent_volume_ml": "",
        "response_measure": "",
        "raise_when_score_above": "",
        "note": "",
    }
    data.update(fields)
    return data


def section_url(patient: Any) -> str:
    return f"/patients/{patient.public_id}/plan/"


def test_a_prescriber_creates_a_plan_with_their_own_parameters(
    doctor_ui: Any, patient: Any
) -> None:
    protocol = published("iv-ketamine-induction")
    post = create_post(
        protocol,
        current_amount="0.6",
        infusion_minutes="50",
        concentration_mg_per_ml="10",
        diluent_volume_ml="100",
        plan_measures=["phq9"],
        response_measure="phq9",
        raise_when_score_above="14",
        note="Second course",
    )
    response = doctor_ui.post(f"/protocols/plans/new/{patient.public_id}/", post, headers=HX)
    assert response.status_code == 200
    assert b"<html" not in response.content
    assert b"Plan iv-ketamine-induction@1 created, phase induction." in response.content
    (plan,) = plans()
    assert plan.current_amount == Decimal("0.6")
    assert plan.infusion_minutes == 50
    assert plan.plan_measures == ["phq9"]
    assert plan.titration == {"response_measure": "phq9", "raise_when_score_above": 14}
    assert plan.phase == "induction"
    assert audit_count(action="protocols.plan.created", patient_id=patient.public_id) == 1
    text = response.content.decode()
    assert "0.6 mg/kg" in text
    assert 'class="plan-phase">induction<' in text


def test_without_htmx_the_plan_is_created_and_the_chart_shown(doctor_ui: Any, patient: Any) -> None:
    post = create_post(published("iv-ketamine-induction"))
    response = doctor_ui.post(f"/protocols/plans/new/{patient.public_id}/", post)
    assert response.status_code == 302
    assert response["Location"] == section_url(patient)
    page = doctor_ui.get(section_url(patient))
    assert b"Plan iv-ketamine-induction@1 created" in page.content  # the flash message
    assert plans()[0].current_amount == Decimal("0.5")  # the protocol's starting amount


def test_a_dose_above_the_cap_is_refused_with_the_services_message(
    doctor_ui: Any, patient: Any
) -> None:
    post = create_post(published("iv-ketamine-induction"), current_amount="0.8")
    response = doctor_ui.post(f"/protocols/plans/new/{patient.public_id}/", post, headers=HX)
    assert response.status_code == 422
    assert response.context["create_form"].errors["current_amount"] == [
        "0.8 mg/kg is above the cap of 0.75."
    ]
    assert b"0.8 mg/kg is above the cap of 0.75." in response.content
    assert plans() == []
    assert audit_count(action="protocols.plan.created") == 0


def test_an_esketamine_plan_needs_its_own_gates(doctor_ui: Any, patient: Any) -> None:
    post = create_post(published("esketamine-trd"))
    response = doctor_ui.post(f"/protocols/plans/new/{patient.public_id}/", post, headers=HX)
    assert response.status_code == 422
    assert b"intranasal" in response.content.lower()
    assert plans() == []


def test_only_published_protocols_are_offered_and_accepted(
    doctor_ui: Any, patient: Any, prescriber: Any
) -> None:
    with scope(organization=prescriber.organization):
        draft = services.protocol_clone(actor=prescriber, source=published("im-ketamine"))
    section = doctor_ui.get(section_url(patient), headers=HX).content.decode()
    assert "iv-ketamine-induction@1" in section
    assert str(draft.public_id) not in section
    response = doctor_ui.post(
        f"/protocols/plans/new/{patient.public_id}/", create_post(draft), headers=HX
    )
    assert response.status_code == 400
    assert "protocol" in response.context["create_form"].errors
    assert plans() == []


@pytest.mark.parametrize("role", ["nurse", "therapist", "compliance"])
def test_other_clinical_roles_see_the_plan_but_cannot_prescribe(
    members: Any, patient: Any, prescriber: Any, role: str
) -> None:
    with scope(organization=prescriber.organization):
        plan = make_plan(prescriber, patient)
    ui = staff_client(members[role])
    section = ui.get(section_url(patient), headers=HX)
    assert section.status_code == 200
    assert b"iv-ketamine-induction@1" in section.content
    assert b"Create plan" not in section.content
    assert b"Titrate" not in section.content
    post = create_post(published("iv-ketamine-induction"))
    assert ui.post(f"/protocols/plans/new/{patient.public_id}/", post).status_code == 403
    assert ui.post(f"/protocols/plans/{plan.public_id}/phase/", {}).status_code == 403
    assert ui.post(f"/protocols/plans/{plan.public_id}/titrate/", {}).status_code == 403
    assert len(plans()) == 1


def test_front_desk_does_not_see_treatment_plans(members: Any, patient: Any) -> None:
    section = staff_client(members["front_desk"]).get(section_url(patient), headers=HX)
    assert b"Your role does not see treatment plans." in section.content


def test_another_organizations_plan_is_not_found(
    outsider: Any, patient: Any, prescriber: Any
) -> None:
    with scope(organization=prescriber.organization):
        plan = make_plan(prescriber, patient)
    ui = staff_client(outsider)
    assert ui.post(f"/protocols/plans/{plan.public_id}/phase/", {}).status_code == 404
    assert ui.post(f"/protocols/plans/{plan.public_id}/titrate/", {}).status_code == 404
    post = create_post(published("iv-ketamine-induction"))
    assert ui.post(f"/protocols/plans/new/{patient.public_id}/", post).status_code == 404


def test_a_phase_change_is_recorded_in_the_history(
    doctor_ui: Any, patient: Any, prescriber: Any
) -> None:
    with scope(organization=prescriber.organization):
        plan = make_plan(prescriber, patient)
    response = doctor_ui.post(
        f"/protocols/plans/{plan.public_id}/phase/",
        {"to_phase": "maintenance", "reason": "Induction complete, responding"},
        headers=HX,
    )
    assert response.status_code == 200
    text = response.content.decode()
    assert 'class="plan-phase">maintenance<' in text
    assert "induction → maintenance" in text
    assert "Induction complete, responding" in text
    with scopes_disabled():
        assert TreatmentPlan.objects.get(pk=plan.pk).phase == "maintenance"
        assert PlanEvent.objects.filter(plan=plan, kind="phase").count() == 1
    assert audit_count(action="protocols.plan.phase_changed") == 1


def test_an_unknown_phase_is_refused_on_the_field(
    doctor_ui: Any, patient: Any, prescriber: Any
) -> None:
    with scope(organization=prescriber.organization):
        plan = make_plan(prescriber, patient)
    response = doctor_ui.post(
        f"/protocols/plans/{plan.public_id}/phase/", {"to_phase": "induction"}, headers=HX
    )
    assert response.status_code == 400  # already there: not offered
    assert b"Select a valid choice" in response.content
    with scopes_disabled():
        assert PlanEvent.objects.count() == 0
    assert audit_count(action="protocols.plan.phase_changed") == 0


def titrate_post(**fields: Any) -> dict[str, Any]:
    data = {
        "direction": "increase",
        "reason": "PHQ-9 still 18 after two sessions, well tolerated",
        "sessions_at_current_amount": "2",
        "worst_adverse_event_grade": "",
        "weight_kg": "",
    }
    data.update(fields)
    return data


def test_titration_raises_one_step_and_records_it(
    doctor_ui: Any, patient: Any, prescriber: Any
) -> None:
    with scope(organization=prescriber.organization):
        plan = make_plan(prescriber, patient, "iv-ketamine-titration")
    response = doctor_ui.post(
        f"/protocols/plans/{plan.public_id}/titrate/", titrate_post(), headers=HX
    )
    assert response.status_code == 200
    text = response.content.decode()
    assert "Dose changed 0.5 → 0.6 mg/kg." in text
    assert "0.5 → 0.6 mg/kg" in text  # the history row
    with scopes_disabled():
        assert TreatmentPlan.objects.get(pk=plan.pk).current_amount == Decimal("0.6")
        event = PlanEvent.objects.get(plan=plan, kind="dose")
    assert event.algorithm.startswith("dose-titration@")
    assert audit_count(action="protocols.plan.titrated") == 1


def test_titration_above_the_cap_is_refused(doctor_ui: Any, patient: Any, prescriber: Any) -> None:
    with scope(organization=prescriber.organization):
        plan = make_plan(prescriber, patient, "iv-ketamine-titration", current_amount="0.75")
    response = doctor_ui.post(
        f"/protocols/plans/{plan.public_id}/titrate/", titrate_post(), headers=HX
    )
    assert response.status_code == 422
    assert b"0.75 mg/kg is already at the cap." in response.content
    with scopes_disabled():
        assert TreatmentPlan.objects.get(pk=plan.pk).current_amount == Decimal("0.75")
        assert PlanEvent.objects.count() == 0
    assert audit_count(action="protocols.plan.titrated") == 0


def test_titration_is_refused_after_a_poorly_tolerated_dose(
    doctor_ui: Any, patient: Any, prescriber: Any
) -> None:
    with scope(organization=prescriber.organization):
        plan = make_plan(prescriber, patient, "iv-ketamine-titration")
    response = doctor_ui.post(
        f"/protocols/plans/{plan.public_id}/titrate/",
        titrate_post(worst_adverse_event_grade="2"),
        headers=HX,
    )
    assert response.status_code == 422
    form = response.context["plans"][0].titrate_form
    assert "raising needs grade 1 or lower" in form.errors["worst_adverse_event_grade"][0]
    assert audit_count(action="protocols.plan.titrated") == 0


def test_a_short_reason_is_refused_on_its_field(
    doctor_ui: Any, patient: Any, prescriber: Any
) -> None:
    with scope(organization=prescriber.organization):
        plan = make_plan(prescriber, patient, "iv-ketamine-titration")
    response = doctor_ui.post(
        f"/protocols/plans/{plan.public_id}/titrate/", titrate_post(reason="up"), headers=HX
    )
    assert response.status_code == 400
    assert response.context["plans"][0].titrate_form.errors["reason"] == [
        "Say why the dose changes."
    ]
    with scopes_disabled():
        assert PlanEvent.objects.count() == 0


def test_a_plan_from_a_clinic_published_version(doctor_ui: Any, patient: Any, members: Any) -> None:
    admin = actor_for(members["clinic_admin"])
    with scope(organization=admin.organization):
        draft = services.protocol_clone(actor=admin, source=published("iv-ketamine-induction"))
        services.protocol_draft_update(
            actor=admin, protocol=draft, changes={"caps.max_mg_per_kg": "0.6"}
        )
        services.protocol_publish(actor=admin, protocol=draft)
    too_high = create_post(draft, current_amount="0.7")
    response = doctor_ui.post(f"/protocols/plans/new/{patient.public_id}/", too_high, headers=HX)
    assert response.status_code == 422
    assert b"0.7 mg/kg is above the cap of 0.6." in response.content
    ok = create_post(draft, current_amount="0.6")
    response = doctor_ui.post(f"/protocols/plans/new/{patient.public_id}/", ok, headers=HX)
    assert response.status_code == 200
    assert plans()[0].protocol_key == "iv-ketamine-induction@2"


def test_the_section_is_a_fragment_for_htmx_and_a_page_otherwise(
    doctor_ui: Any, patient: Any
) -> None:
    fragment = doctor_ui.get(section_url(patient), headers=HX)
    assert b'id="plan-section"' in fragment.content
    assert b"<html" not in fragment.content
    page = doctor_ui.get(section_url(patient))
    assert b'id="plan-section"' in page.content
    assert b"<html" in page.content
    failed = doctor_ui.post(
        f"/protocols/plans/new/{patient.public_id}/",
        create_post(published("iv-ketamine-induction"), current_amount="0.8"),
    )
    assert failed.status_code == 422
    assert b"<html" in failed.content


@pytest.mark.parametrize("count", [1, 4])
def test_the_section_query_count_does_not_grow_with_plans_and_events(
    doctor_ui: Any, patient: Any, prescriber: Any, count: int, django_assert_max_num_queries: Any
) -> None:
    with scope(organization=prescriber.organization):
        for _ in range(count):
            plan = make_plan(prescriber, patient, "iv-ketamine-titration")
            services.plan_phase_change(actor=prescriber, plan=plan, to_phase="maintenance")
            services.plan_phase_change(actor=prescriber, plan=plan, to_phase="booster")
        assert len(selectors.plans_for_patient(patient)) == count
    with django_assert_max_num_queries(23):
        assert doctor_ui.get(section_url(patient), headers=HX).status_code == 200
