"""Screening services: stored versions, prescriber review and overrides, audit, tenancy, queries."""

from __future__ import annotations

from typing import Any

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django_scopes import scope, scopes_disabled

from conftest import actor_for, api_client, audit_count, make_patient, staff_client
from ketaclinic.accounts.models import AuditEvent
from ketaclinic.core.errors import Conflict, Forbidden, SafetyStop, ValidationFailed
from ketaclinic.screening import services
from ketaclinic.screening.models import ScreeningDecision
from ketaclinic.screening.tests.helpers import chart_ready_for_screening

pytestmark = pytest.mark.django_db


@pytest.fixture
def screened(prescriber: Any) -> Any:
    patient = make_patient(prescriber)
    with scope(organization=prescriber.organization):
        chart_ready_for_screening(prescriber, patient)
        services.intake_record(actor=prescriber, patient=patient, data={"cystitis_history": True})
        evaluation = services.screening_evaluate(actor=prescriber, patient=patient)
    return patient, evaluation


def decision(evaluation: Any, route: str) -> ScreeningDecision:
    with scopes_disabled():
        return evaluation.decisions.get(route=route)


def test_evaluation_stores_versions_and_one_pending_decision_per_route(screened):
    patient, evaluation = screened
    assert evaluation.algorithm == "screening-eligibility@1"
    assert evaluation.policy_ref == "ketaclinic-default-screening@1"
    assert len(evaluation.inputs_fingerprint) == 64
    assert evaluation.trd_status == "met"
    with scopes_disabled():
        decisions = list(evaluation.decisions.all())
    assert len(decisions) == 5
    iv = next(d for d in decisions if d.route == "intravenous")
    assert iv.computed_decision == "needs_prescriber_review"
    assert "cystitis-history@1" in iv.rule_versions
    assert iv.status == "pending"
    assert iv.valid_until == evaluation.valid_until
    with scopes_disabled():
        event = AuditEvent.objects.get(action="screening.evaluation.recorded")
    assert event.detail["policy"] == "ketaclinic-default-screening@1"
    assert event.detail["decisions"]["intravenous"]["rules"] == ["cystitis-history@1"]


def test_overriding_a_finding_needs_a_written_justification(screened, prescriber):
    _, evaluation = screened
    iv = decision(evaluation, "intravenous")
    with scope(organization=prescriber.organization):
        with pytest.raises(ValidationFailed) as refused:
            services.screening_decision_review(
                actor=prescriber, decision=iv, final_decision="eligible", justification="ok"
            )
        assert refused.value.errors[0].field == "justification"
        assert "cystitis-history@1" in refused.value.errors[0].message
        services.screening_decision_review(
            actor=prescriber,
            decision=iv,
            final_decision="eligible",
            justification="No urinary symptoms for 5 years; urology agrees; monitor each visit.",
        )
    iv.refresh_from_db()
    assert iv.overridden
    assert iv.overridden_rules == ["cystitis-history@1"]
    with scopes_disabled():
        event = AuditEvent.objects.get(action="screening.decision.overridden")
    assert event.detail["overridden_rules"] == ["cystitis-history@1"]
    assert event.detail["policy"] == "ketaclinic-default-screening@1"
    assert event.detail["rule_versions"] == ["cystitis-history@1"]
    assert event.detail["justification"].startswith("No urinary symptoms")


def test_a_contraindication_cannot_be_overridden(prescriber):
    patient = make_patient(prescriber)
    with scope(organization=prescriber.organization):
        chart_ready_for_screening(
            prescriber, patient, hypersensitivity_to_ketamine_or_esketamine=True
        )
        evaluation = services.screening_evaluate(actor=prescriber, patient=patient)
        iv = evaluation.decisions.get(route="intravenous")
        with pytest.raises(SafetyStop):
            services.screening_decision_review(
                actor=prescriber,
                decision=iv,
                final_decision="eligible",
                justification="I think it is fine, really, trust me on this one.",
            )
        services.screening_decision_review(
            actor=prescriber, decision=iv, final_decision="ineligible"
        )
    assert audit_count(action="screening.decision.recorded") == 1


def test_a_decision_is_made_once_and_only_by_a_prescriber(screened, prescriber, members):
    _, evaluation = screened
    home = decision(evaluation, "sublingual_at_home")
    nurse = actor_for(members["nurse"])
    with scope(organization=prescriber.organization):
        with pytest.raises(Forbidden):
            services.screening_decision_review(
                actor=nurse, decision=home, final_decision="ineligible"
            )
        services.screening_decision_review(
            actor=prescriber, decision=home, final_decision="ineligible"
        )
        with pytest.raises(Conflict):
            services.screening_decision_review(
                actor=prescriber, decision=home, final_decision="ineligible"
            )


def test_deciding_on_a_stale_screening_is_refused(screened, prescriber):
    from ketaclinic.patients import services as chart

    patient, evaluation = screened
    iv = decision(evaluation, "intravenous")
    with scope(organization=prescriber.organization):
        chart.medication_add(actor=prescriber, patient=patient, data={"drug_name": "Phenelzine"})
        with pytest.raises(Conflict) as refused:
            services.screening_decision_review(
                actor=prescriber,
                decision=iv,
                final_decision="ineligible",
                justification="Not now: wants to wait a month.",
            )
    assert "a new medication was added (Phenelzine)" in refused.value.detail


def test_policy_versions_are_stored_rows(members):
    admin = actor_for(members["clinic_admin"])
    with scope(organization=admin.organization):
        v2 = services.screening_policy_publish(
            actor=admin, changes={"decision_validity_days": 14}, note="Shorter validity."
        )
        assert v2.ref == "ketaclinic-default-screening@1"  # the first stored version
        v3 = services.screening_policy_publish(
            actor=admin, changes={"decision_validity_days": 7}, note="Shorter still."
        )
        assert v3.version == 2
        assert v3.data["decision_validity_days"] == 7
        with pytest.raises(ValidationFailed):
            services.screening_policy_publish(
                actor=admin, changes={"minimum_failed_adequate_trials": 1}, note="Looser."
            )
        with pytest.raises(PermissionError):
            v3.save()


def test_intake_rejects_unknown_answers(prescriber):
    patient = make_patient(prescriber)
    with scope(organization=prescriber.organization):
        with pytest.raises(ValidationFailed) as refused:
            services.intake_record(
                actor=prescriber,
                patient=patient,
                data={"hypertension": "sort of", "pregnant": "maybe", "colour": "blue"},
            )
    assert [e.field for e in refused.value.errors] == ["colour"]


def test_screening_pages_and_api_for_an_outsider_are_404(screened, outsider):
    patient, evaluation = screened
    ui = staff_client(outsider)
    assert ui.get(f"/screening/patients/{patient.public_id}/").status_code == 404
    assert ui.post(f"/screening/patients/{patient.public_id}/evaluate/").status_code == 404
    iv = decision(evaluation, "intravenous")
    assert (
        ui.post(
            f"/screening/decisions/{iv.public_id}/decide/", {"final_decision": "eligible"}
        ).status_code
        == 404
    )
    api = api_client(outsider)
    assert api.get(f"/api/v1/patients/{patient.public_id}/screening").status_code == 404
    response = api.post(
        f"/api/v1/patients/{patient.public_id}/treatment-eligibility-check",
        {"route": "intravenous", "setting": "clinic"},
        content_type="application/json",
    )
    assert response.status_code == 404


def test_roles_on_screening_endpoints(screened, members):
    patient, _ = screened
    assert (
        staff_client(members["front_desk"])
        .get(f"/screening/patients/{patient.public_id}/")
        .status_code
        == 403
    )
    assert (
        staff_client(members["therapist"])
        .get(f"/screening/patients/{patient.public_id}/")
        .status_code
        == 200
    )
    assert (
        staff_client(members["therapist"])
        .post(f"/screening/patients/{patient.public_id}/evaluate/")
        .status_code
        == 403
    )
    api = api_client(members["nurse"])
    assert api.post(f"/api/v1/patients/{patient.public_id}/screening").status_code == 201


def test_ui_review_flow_records_the_decision(screened, members):
    _, evaluation = screened
    iv = decision(evaluation, "intravenous")
    client = staff_client(members["prescriber"])
    refused = client.post(
        f"/screening/decisions/{iv.public_id}/decide/", {"final_decision": "eligible"}
    )
    assert refused.status_code == 400
    assert b"justification" in refused.content
    done = client.post(
        f"/screening/decisions/{iv.public_id}/decide/",
        {
            "final_decision": "eligible",
            "justification": "Cystitis resolved years ago, no symptoms.",
        },
    )
    assert done.status_code == 302
    iv.refresh_from_db()
    assert iv.final_decision == "eligible"


def test_api_decide_and_read(screened, members):
    patient, evaluation = screened
    iv = decision(evaluation, "intravenous")
    api = api_client(members["prescriber"])
    response = api.post(
        f"/api/v1/screening-decisions/{iv.public_id}/decide",
        {
            "final_decision": "eligible",
            "justification": "Cystitis resolved years ago, no symptoms.",
        },
        content_type="application/json",
    )
    assert response.status_code == 200, response.json()
    assert response.json()["overridden"] is True
    body = api.get(f"/api/v1/patients/{patient.public_id}/screening").json()
    assert body["trd_status"] == "met"
    assert len(body["decisions"]) == 5


def _queries(client: Any, url: str, method: str = "get", data: Any = None) -> int:
    with CaptureQueriesContext(connection) as ctx:
        response = (
            getattr(client, method)(url, data, content_type="application/json")
            if data
            else getattr(client, method)(url)
        )
    assert response.status_code in (200, 422), response.status_code
    return len(ctx.captured_queries)


def test_query_counts_do_not_grow_with_history(prescriber, members):
    from ketaclinic.patients import services as chart

    patient = make_patient(prescriber)
    with scope(organization=prescriber.organization):
        chart_ready_for_screening(prescriber, patient)
        services.screening_evaluate(actor=prescriber, patient=patient)
    ui, api = staff_client(members["prescriber"]), api_client(members["prescriber"])
    urls = [
        (ui, f"/screening/patients/{patient.public_id}/", "get", None),
        (ui, f"/patients/{patient.public_id}/", "get", None),
        (ui, f"/patients/{patient.public_id}/consent/", "get", None),
        (
            api,
            f"/api/v1/patients/{patient.public_id}/treatment-eligibility-check",
            "post",
            {"route": "intravenous", "setting": "clinic"},
        ),
    ]
    [_queries(c, u, m, d) for c, u, m, d in urls]  # warm up: token last-used, sessions
    before = [_queries(c, u, m, d) for c, u, m, d in urls]
    with scope(organization=prescriber.organization):
        for n in range(6):
            chart.medication_add(actor=prescriber, patient=patient, data={"drug_name": f"Drug{n}"})
            services.screening_evaluate(actor=prescriber, patient=patient)
    after = [_queries(c, u, m, d) for c, u, m, d in urls]
    assert after == before
    assert before[0] <= 25, before
    assert before[3] <= 25, before
