"""The treatment gate refuses, naming exactly what is missing, through the UI, the JSON API and
FHIR (Encounter create schedules a session).

One table: each case builds a chart, then both interfaces are asked the same question
(intravenous, in clinic) and must refuse with the case's reason (or agree for the last case).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest
import time_machine
from django_scopes import scope

from conftest import actor_for, api_client, make_patient, staff_client
from ketaclinic.consent import services as consent
from ketaclinic.consent.models import ConsentTemplate
from ketaclinic.core import clock
from ketaclinic.core.errors import SafetyStop
from ketaclinic.patients import services as chart
from ketaclinic.screening.gates import (
    screening_route_for,
    treatment_gate_check,
    treatment_gate_require,
)
from ketaclinic.screening.tests.helpers import chart_ready_for_screening, screen_and_decide

pytestmark = pytest.mark.django_db


def sign(actor: Any, patient: Any, route: str) -> Any:
    template = ConsentTemplate.objects.get(kind="treatment", route=route)
    version = template.versions.latest("version")
    return consent.consent_sign(
        actor=actor,
        patient=patient,
        template_version=version,
        witness=actor.user,
        signature=consent.SignatureInput(
            printed_name=patient.full_name,
            acknowledged=[a["key"] for a in version.acknowledgements],
        ),
    )


def ready(actor: Any, patient: Any) -> None:
    chart_ready_for_screening(actor, patient)
    screen_and_decide(actor, patient)


def case_ok(actor: Any, admin: Any, patient: Any) -> None:
    ready(actor, patient)
    sign(actor, patient, "intravenous")


def case_no_decision(actor: Any, admin: Any, patient: Any) -> None:
    chart_ready_for_screening(actor, patient)
    sign(actor, patient, "intravenous")


def case_expired(actor: Any, admin: Any, patient: Any) -> None:
    case_ok(actor, admin, patient)


def case_new_medication(actor: Any, admin: Any, patient: Any) -> None:
    case_ok(actor, admin, patient)
    chart.medication_add(
        actor=actor, patient=patient, data={"drug_name": "Lorazepam 1 mg", "status": "active"}
    )


def case_ineligible(actor: Any, admin: Any, patient: Any) -> None:
    chart_ready_for_screening(actor, patient, pregnant=True)
    screen_and_decide(actor, patient, decision="ineligible")
    sign(actor, patient, "intravenous")


def case_missing_consent(actor: Any, admin: Any, patient: Any) -> None:
    ready(actor, patient)


def case_revoked(actor: Any, admin: Any, patient: Any) -> None:
    ready(actor, patient)
    signature = sign(actor, patient, "intravenous")
    consent.consent_revoke(actor=actor, signature=signature, reason="Patient changed their mind.")


def case_old_version(actor: Any, admin: Any, patient: Any) -> None:
    case_ok(actor, admin, patient)
    template = ConsentTemplate.objects.get(kind="treatment", route="intravenous")
    consent.consent_template_update(
        actor=admin, template=template, data={"body": template.body + "\n\nUpdated wording."}
    )
    consent.consent_template_publish(actor=admin, template=template)


def case_other_route(actor: Any, admin: Any, patient: Any) -> None:
    ready(actor, patient)
    sign(actor, patient, "intramuscular")


CASES: list[tuple[str, Callable[..., None], int, str]] = [
    ("ok", case_ok, 0, ""),
    ("no decision", case_no_decision, 0, "No screening decision for Intravenous (clinic)"),
    (
        "expired decision",
        case_expired,
        40,
        "The screening decision for Intravenous (clinic) expired on",
    ),
    (
        "invalidated by a new medication",
        case_new_medication,
        0,
        "no longer applies because a new medication was added (Lorazepam 1 mg)",
    ),
    ("ineligible route", case_ineligible, 0, "Intravenous (clinic) is ineligible for this patient"),
    ("missing consent", case_missing_consent, 0, "No signed consent for Intravenous (clinic)."),
    ("revoked consent", case_revoked, 0, "The consent for Intravenous (clinic) was revoked on"),
    (
        "consent of an old version",
        case_old_version,
        0,
        "was signed for version 1; version 2 is current, so the patient must consent again",
    ),
    (
        "consent for another route",
        case_other_route,
        0,
        "the consent on file is for Intramuscular (clinic)",
    ),
]


@pytest.fixture
def setup_case(members: dict[str, Any], prescriber: Any) -> Callable[..., Any]:
    admin = actor_for(members["clinic_admin"])

    def build(builder: Callable[..., None]) -> Any:
        patient = make_patient(prescriber)
        with scope(organization=prescriber.organization):
            consent.consent_templates_seed_defaults(organization=prescriber.organization)
            builder(prescriber, admin, patient)
        return patient

    return build


@pytest.mark.parametrize(
    ("name", "builder", "days_later", "reason"), CASES, ids=[c[0] for c in CASES]
)
def test_json_api_gate(setup_case, members, name, builder, days_later, reason):
    patient = setup_case(builder)
    with time_machine.travel(clock.now() + timedelta(days=days_later), tick=False):
        client = api_client(members["nurse"])
        response = client.post(
            f"/api/v1/patients/{patient.public_id}/treatment-eligibility-check",
            {"route": "intravenous", "setting": "clinic"},
            content_type="application/json",
        )
    body = response.json()
    if not reason:
        assert response.status_code == 200, body
        assert body["ok"] is True
        return
    assert response.status_code == 422, body
    assert reason in body["detail"]
    assert any(reason in e["message"] for e in body["errors"]), body["errors"]
    assert {e["field"] for e in body["errors"]} <= {"screening", "consent"}


@pytest.mark.parametrize(
    ("name", "builder", "days_later", "reason"), CASES, ids=[c[0] for c in CASES]
)
def test_ui_gate(setup_case, members, name, builder, days_later, reason):
    patient = setup_case(builder)
    with time_machine.travel(clock.now() + timedelta(days=days_later), tick=False):
        client = staff_client(members["prescriber"])
        response = client.post(
            f"/screening/patients/{patient.public_id}/eligibility-check/",
            {"route": "intravenous", "setting": "clinic"},
        )
    html = response.content.decode()
    if not reason:
        assert response.status_code == 200
        assert "Treatment may go ahead" in html
        return
    assert response.status_code == 422
    from django.utils.html import escape

    assert escape(reason) in html


@pytest.mark.parametrize(
    ("name", "builder", "days_later", "reason"), CASES, ids=[c[0] for c in CASES]
)
def test_service_gate_require(setup_case, prescriber, name, builder, days_later, reason):
    patient = setup_case(builder)
    at = clock.now() + timedelta(days=days_later)
    with scope(organization=prescriber.organization):
        if not reason:
            treatment_gate_require(patient=patient, route="intravenous", setting="clinic", at=at)
            return
        with pytest.raises(SafetyStop) as stop:
            treatment_gate_require(patient=patient, route="intravenous", setting="clinic", at=at)
    assert reason in stop.value.detail
    assert stop.value.status == 422


def test_gate_names_several_missing_pieces_at_once(setup_case, prescriber):
    patient = setup_case(lambda *a: None)
    with scope(organization=prescriber.organization):
        status = treatment_gate_check(
            patient=patient, route="intravenous", setting="clinic", at=clock.now()
        )
    assert not status.ok
    assert [e.field for e in status.errors] == ["screening", "consent"]


def test_gate_refuses_a_route_in_the_wrong_setting(setup_case, prescriber):
    patient = setup_case(case_ok)
    with scope(organization=prescriber.organization):
        status = treatment_gate_check(
            patient=patient, route="intravenous", setting="home", at=clock.now()
        )
    assert status.missing == ["Intravenous (clinic) is given in clinic."]


def test_a_routine_blood_pressure_in_the_same_band_does_not_undo_the_screening(
    setup_case, prescriber
):
    patient = setup_case(case_ok)
    with scope(organization=prescriber.organization):
        chart.vital_sign_record(
            actor=prescriber,
            patient=patient,
            kind="bp",
            value=122,
            value_diastolic=78,
            unit="mm[Hg]",
            code="85354-9",
        )
        assert treatment_gate_check(
            patient=patient, route="intravenous", setting="clinic", at=clock.now()
        ).ok
        chart.vital_sign_record(
            actor=prescriber,
            patient=patient,
            kind="bp",
            value=150,
            value_diastolic=95,
            unit="mm[Hg]",
            code="85354-9",
        )
        status = treatment_gate_check(
            patient=patient, route="intravenous", setting="clinic", at=clock.now()
        )
    assert not status.ok
    assert "a new blood pressure (150/95 mmHg" in status.missing[0]


@pytest.mark.parametrize(
    ("change", "said"),
    [
        ("condition", "a new condition was added (Bipolar disorder)"),
        ("pregnancy", "pregnancy status changed"),
    ],
)
def test_other_changed_inputs_are_named(setup_case, prescriber, change, said):
    from ketaclinic.screening.services import intake_record

    patient = setup_case(case_ok)
    with scope(organization=prescriber.organization):
        if change == "condition":
            chart.condition_add(
                actor=prescriber,
                patient=patient,
                data={"code": "F31.9", "display": "Bipolar disorder"},
            )
        else:
            intake_record(actor=prescriber, patient=patient, data={"pregnant": True})
        status = treatment_gate_check(
            patient=patient, route="intravenous", setting="clinic", at=clock.now()
        )
    assert said in status.missing[0]


@pytest.mark.parametrize(
    ("drug", "route", "setting", "expected"),
    [
        ("racemic-ketamine", "intravenous", "clinic", "intravenous"),
        ("racemic-ketamine", "intramuscular", "clinic", "intramuscular"),
        ("racemic-ketamine", "sublingual", "clinic", "sublingual_oral_in_clinic"),
        ("racemic-ketamine", "oral", "clinic", "sublingual_oral_in_clinic"),
        ("racemic-ketamine", "sublingual", "home", "sublingual_at_home"),
        ("racemic-ketamine", "oral", "home", "sublingual_at_home"),
        ("esketamine", "intranasal", "clinic", "intranasal_esketamine"),
        ("esketamine", "intranasal", "home", None),
        ("racemic-ketamine", "intravenous", "home", None),
        ("racemic-ketamine", "intranasal", "clinic", None),
        ("esketamine", "intravenous", "clinic", None),
    ],
)
def test_screening_route_for_protocol_catalog(drug, route, setting, expected):
    from ketaclinic.protocols.catalog import Drug, Route, Setting

    result = screening_route_for(Drug(drug), Route(route), Setting(setting))
    assert (result.value if result else None) == expected


def plan_made_earlier(actor: Any, patient: Any) -> Any:
    """An active IV plan for the patient, as prescribed before the chart changed. plan_create
    checks the same gate and would refuse most cases, so the row is written directly: what is
    under test is the gate at scheduling."""
    from datetime import date

    from ketaclinic.protocols import selectors as protocol_selectors
    from ketaclinic.protocols import services as protocols
    from ketaclinic.protocols.models import TreatmentPlan

    protocols.protocol_catalog_seed(organization=actor.organization)
    protocol = protocol_selectors.protocol_published("iv-ketamine-induction")
    assert protocol is not None
    template = protocol.template
    return TreatmentPlan.objects.create(
        organization=actor.organization,
        patient=patient,
        recorded_by=actor.user,
        protocol=protocol,
        protocol_key=protocol.key,
        prescriber=actor.user,
        phase=template.phases[0].name if template.phases else "",
        current_amount=template.dose.starting_amount,
        concentration_mg_per_ml=10,
        start_date=date.today(),
    )


@pytest.mark.parametrize(
    ("name", "builder", "days_later", "reason"), CASES, ids=[c[0] for c in CASES]
)
def test_fhir_gate(setup_case, members, prescriber, name, builder, days_later, reason):
    patient = setup_case(builder)
    with scope(organization=prescriber.organization):
        plan = plan_made_earlier(prescriber, patient)
    with time_machine.travel(clock.now() + timedelta(days=days_later), tick=False):
        client = api_client(members["nurse"])
        response = client.post(
            "/fhir/r4/Encounter",
            {
                "resourceType": "Encounter",
                "status": "planned",
                "class": {
                    "system": "http://terminology.hl7.org/CodeSystem/v3-ActCode",
                    "code": "AMB",
                },
                "subject": {"reference": f"Patient/{patient.public_id}"},
                "basedOn": [
                    {
                        "identifier": {
                            "system": "urn:ketaclinic:treatment-plan",
                            "value": str(plan.public_id),
                        }
                    }
                ],
                "period": {"start": clock.now().isoformat()},
            },
            content_type="application/fhir+json",
        )
    body = response.json()
    if not reason:
        assert response.status_code == 201, body
        assert body["resourceType"] == "Encounter"
        assert body["status"] == "planned"
        return
    assert response.status_code == 422, body
    assert body["resourceType"] == "OperationOutcome"
    assert any(reason in issue["diagnostics"] for issue in body["issue"]), body["issue"]
    assert {e for issue in body["issue"] for e in issue.get("expression", [])} <= {
        "screening",
        "consent",
    }
