"""Treatment sessions over FHIR: Encounter (schedule, read, search, discharge), the flowsheet's
vital-sign Observations, MedicationAdministration and AdverseEvent, each through the sessions
services. The workflow steps FHIR has no resource for (check-in, pre-checks, dose order,
discharge criteria) go through the JSON API, as a client would. Every FHIR response body is
validated with fhir.resources R4B."""

from __future__ import annotations

import json
from datetime import date, datetime, timedelta
from typing import Any

import pytest
from django_scopes import scope

from conftest import SESSION_DAY, actor_for, api_client, audit_count, make_patient
from ketaclinic.consent import services as consent
from ketaclinic.consent.models import ConsentSignature
from ketaclinic.fhir.tests.helpers import post, put, valid, weight_json
from ketaclinic.patients import services as chart
from ketaclinic.sessions import services
from ketaclinic.sessions.models import TreatmentSession
from ketaclinic.sessions.tests.builders import (
    NORMAL,
    make_plan,
    make_treatable,
    session_checked_in,
    session_prechecked,
    ticked,
    weigh,
)

pytestmark = pytest.mark.django_db
T0 = SESSION_DAY
BASE = "/fhir/r4/"
# Served for every readable type (fhir/history.py), beside the type's own interactions.
HISTORY = {"vread", "history-instance", "history-type"}
LOINC = "http://loinc.org"
UCUM = "http://unitsofmeasure.org"
PLAN_SYSTEM = "urn:ketaclinic:treatment-plan"
AE_BASE = "https://ketaclinic.org/fhir/"
ASSESSED = {
    "alert_and_oriented": True,
    "sedation_resolved": True,
    "dissociation_resolved": True,
    "respiratory_depression_resolved": True,
    "clinically_stable": True,
    "escort_present": True,
}
VITAL_SIGNS = {
    "coding": [
        {
            "system": "http://terminology.hl7.org/CodeSystem/observation-category",
            "code": "vital-signs",
        }
    ]
}


# --- request bodies ---------------------------------------------------------------------------


def encounter_json(patient: Any, plan: Any = None, start: datetime = T0) -> dict[str, Any]:
    data: dict[str, Any] = {
        "resourceType": "Encounter",
        "status": "planned",
        "class": {"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": "AMB"},
        "subject": {"reference": f"Patient/{patient.public_id}"},
        "period": {"start": start.isoformat()},
    }
    if plan is not None:
        data["basedOn"] = [{"identifier": {"system": PLAN_SYSTEM, "value": str(plan.public_id)}}]
    return data


def quantity(value: float, unit: str) -> dict[str, Any]:
    return {"value": value, "unit": unit, "system": UCUM, "code": unit}


def session_bp(sid: str, systolic: int, diastolic: int, when: datetime) -> dict[str, Any]:
    return {
        "resourceType": "Observation",
        "status": "final",
        "category": [VITAL_SIGNS],
        "code": {"coding": [{"system": LOINC, "code": "85354-9"}]},
        "encounter": {"reference": f"Encounter/{sid}"},
        "effectiveDateTime": when.isoformat(),
        "component": [
            {
                "code": {"coding": [{"system": LOINC, "code": "8480-6"}]},
                "valueQuantity": quantity(systolic, "mm[Hg]"),
            },
            {
                "code": {"coding": [{"system": LOINC, "code": "8462-4"}]},
                "valueQuantity": quantity(diastolic, "mm[Hg]"),
            },
        ],
    }


def session_vital(sid: str, code: str, value: float, unit: str, when: datetime) -> dict[str, Any]:
    return {
        "resourceType": "Observation",
        "status": "final",
        "category": [VITAL_SIGNS],
        "code": {"coding": [{"system": LOINC, "code": code}]},
        "encounter": {"reference": f"Encounter/{sid}"},
        "effectiveDateTime": when.isoformat(),
        "valueQuantity": quantity(value, unit),
    }


def administration_json(
    sid: str,
    patient: Any,
    mg: float,
    start: datetime,
    end: datetime | None = None,
    rxnorm: str = "6130",
) -> dict[str, Any]:
    """The dose as given (RxNorm ketamine 6130 or esketamine 2057856): completed once it ended,
    in progress until then, as the clinic records it (anything else is refused)."""
    period = {"start": start.isoformat()}
    if end is not None:
        period["end"] = end.isoformat()
    return {
        "resourceType": "MedicationAdministration",
        "status": "completed" if end is not None else "in-progress",
        "contained": [
            {
                "resourceType": "Medication",
                "id": "med",
                "code": {
                    "coding": [
                        {"system": "http://www.nlm.nih.gov/research/umls/rxnorm", "code": rxnorm}
                    ]
                },
                "batch": {"lotNumber": "LOT-F1"},
            }
        ],
        "medicationReference": {"reference": "#med"},
        "subject": {"reference": f"Patient/{patient.public_id}"},
        "context": {"reference": f"Encounter/{sid}"},
        "effectivePeriod": period,
        "dosage": {"dose": quantity(mg, "mg")},
    }


def adverse_event_json(sid: str, patient: Any, code: str, grade: int, **extra: Any) -> dict:
    data = {
        "resourceType": "AdverseEvent",
        "actuality": "actual",
        "event": {
            "coding": [{"system": AE_BASE + "CodeSystem/ketamine-adverse-event", "code": code}]
        },
        "subject": {"reference": f"Patient/{patient.public_id}"},
        "encounter": {"reference": f"Encounter/{sid}"},
        "severity": {
            "coding": [{"system": AE_BASE + "CodeSystem/ctcae-grade", "code": str(grade)}]
        },
    }
    data.update(extra)
    return data


def depression(actor: Any, patient: Any) -> Any:
    """The diagnosis treated. Recorded before screening: a new condition invalidates a decision."""
    return chart.condition_add(
        actor=actor,
        patient=patient,
        data={
            "code": "F33.1",
            "display": "Major depressive disorder, recurrent, moderate",
            "onset_date": date(2024, 6, 1),
        },
    )


def treatable_with_plan(actor: Any, patient: Any, protocol_id: str) -> tuple[Any, Any]:
    with scope(organization=actor.organization):
        condition = depression(actor, patient)
        make_treatable(actor, patient, protocol_id)
        weigh(actor, patient)
        return make_plan(actor, patient, protocol_id), condition


def outcome_text(response: Any) -> str:
    body = valid(response.json())
    assert body["resourceType"] == "OperationOutcome"
    return " ".join(issue.get("diagnostics", "") for issue in body["issue"])


def checklist_of(sid: str, actor: Any) -> dict[str, bool]:
    with scope(organization=actor.organization):
        return ticked(TreatmentSession.objects.get(public_id=sid))


# --- full sessions ----------------------------------------------------------------------------


def test_a_full_iv_session_through_fhir(
    prescriber: Any, members: Any, patient_a: Any, traveller: Any
) -> None:
    plan, condition = treatable_with_plan(prescriber, patient_a, "iv-ketamine-induction")
    nurse, doctor = api_client(members["nurse"]), api_client(members["prescriber"])

    made = post(nurse, BASE + "Encounter", encounter_json(patient_a, plan))
    assert made.status_code == 201, made.content
    encounter = valid(made.json())
    sid = encounter["id"]
    assert f"Encounter/{sid}" in made["Location"]
    assert encounter["status"] == "planned"
    assert encounter["class"]["code"] == "AMB"
    assert encounter["basedOn"][0]["identifier"]["value"] == str(plan.public_id)
    assert encounter["serviceType"]["coding"][0]["code"].startswith("iv-ketamine-induction")
    assert encounter["reasonReference"][0]["reference"] == f"Condition/{condition.public_id}"
    assert encounter["period"]["start"] == T0.isoformat()  # as sent, with its offset

    assert nurse.post(f"/api/v1/sessions/{sid}/check-in").status_code == 200
    arrived = valid(nurse.get(BASE + f"Encounter/{sid}").json())
    assert arrived["status"] == "arrived"
    assert [h["status"] for h in arrived["statusHistory"]] == ["planned"]
    pre = nurse.post(
        f"/api/v1/sessions/{sid}/prechecks",
        {"checklist": checklist_of(sid, prescriber), "vitals": NORMAL},
        content_type="application/json",
    )
    assert pre.status_code == 201, pre.json()
    order = doctor.post(f"/api/v1/sessions/{sid}/dose-orders", {}, content_type="application/json")
    assert order.status_code == 201
    assert order.json()["dose_mg"] == "40.0"

    given = post(
        nurse,
        BASE + "MedicationAdministration",
        administration_json(sid, patient_a, 40, T0, T0),
    )
    assert given.status_code == 201, given.content
    administration = valid(given.json())
    assert administration["context"]["reference"] == f"Encounter/{sid}"
    assert administration["reasonReference"][0]["reference"] == f"Condition/{condition.public_id}"
    assert administration["dosage"]["dose"] == {
        "value": 40.0,
        "unit": "mg",
        "system": UCUM,
        "code": "mg",
    }
    assert valid(nurse.get(BASE + f"Encounter/{sid}").json())["status"] == "in-progress"

    traveller.move_to(T0 + timedelta(minutes=30))
    high = post(
        nurse,
        BASE + "Observation",
        session_bp(sid, 185, 95, T0 + timedelta(minutes=30)),
        content_type="application/fhir+json",
    )
    assert high.status_code == 201, high.content
    bp = valid(high.json())
    assert bp["encounter"]["reference"] == f"Encounter/{sid}"
    assert bp["interpretation"][0]["coding"][0]["code"] == "HH"  # the service's critical alert
    assert "systolic 185" in bp["interpretation"][0]["text"]
    with scope(organization=prescriber.organization):
        session = TreatmentSession.objects.get(public_id=sid)
        assert session.last_alert_severity == "critical"  # the floor board sees the alert
    pulse = post(
        nurse,
        BASE + "Observation",
        session_vital(sid, "8867-4", 88, "/min", T0 + timedelta(minutes=31)),
    )
    assert pulse.status_code == 201, pulse.content
    assert "interpretation" not in valid(pulse.json())

    event = post(
        nurse,
        BASE + "AdverseEvent",
        adverse_event_json(
            sid,
            patient_a,
            "blood_pressure_increased",
            3,
            extension=[
                {
                    "url": AE_BASE + "StructureDefinition/adverse-event-action-taken",
                    "valueString": "Labetalol 10 mg IV",
                }
            ],
            date=(T0 + timedelta(minutes=30)).isoformat(),
        ),
    )
    assert event.status_code == 201, event.content
    ae = valid(event.json())
    assert ae["encounter"]["reference"] == f"Encounter/{sid}"
    assert {c["code"] for c in ae["severity"]["coding"]} == {"severe", "3"}
    escalated = {e["url"].rsplit("/", 1)[-1]: e for e in ae["extension"]}
    assert escalated["adverse-event-escalated"]["valueBoolean"] is True  # grade >= 3
    assert escalated["adverse-event-action-taken"]["valueString"] == "Labetalol 10 mg IV"
    assert ae["suspectEntity"][0]["instance"]["reference"] == (
        f"MedicationAdministration/{administration['id']}"
    )

    flowsheet = nurse.get(BASE + f"Observation?encounter=Encounter/{sid}")
    bundle = valid(flowsheet.json())
    # Pre-dose bp, hr, spo2, rr from the pre-checks, then the two posted readings.
    assert bundle["total"] == 6
    assert all(
        e["resource"]["encounter"]["reference"] == f"Encounter/{sid}" for e in bundle["entry"]
    )
    chart_and_session = valid(
        nurse.get(BASE + f"Observation?patient={patient_a.public_id}&code=85354-9").json()
    )
    # The screening blood pressure on the chart (no encounter) and the session's two.
    assert chart_and_session["total"] == 3
    assert sum("encounter" in e["resource"] for e in chart_and_session["entry"]) == 2
    read = valid(nurse.get(BASE + f"Observation/{bp['id']}").json())
    assert read["component"][0]["valueQuantity"]["value"] == 185
    assert (
        valid(nurse.get(BASE + f"AdverseEvent?patient={patient_a.public_id}").json())["total"] == 1
    )

    early = nurse.post(
        f"/api/v1/sessions/{sid}/discharge-checks", ASSESSED, content_type="application/json"
    )
    assert early.json()["ready"] is False
    refused = put(nurse, BASE + f"Encounter/{sid}", {**encounter, "status": "finished"})
    assert refused.status_code == 422
    assert "The patient may not leave yet" in outcome_text(refused)

    traveller.move_to(T0 + timedelta(minutes=125))
    calm = post(nurse, BASE + "Observation", session_bp(sid, 124, 80, T0 + timedelta(minutes=124)))
    assert calm.status_code == 201
    ready = nurse.post(
        f"/api/v1/sessions/{sid}/discharge-checks", ASSESSED, content_type="application/json"
    )
    assert ready.json()["ready"] is True, ready.json()
    discharged = put(nurse, BASE + f"Encounter/{sid}", {**encounter, "status": "finished"})
    assert discharged.status_code == 200, discharged.content
    finished = valid(discharged.json())
    assert finished["status"] == "finished"
    assert finished["period"]["end"] == "2026-03-02T17:05:00Z"
    assert [h["status"] for h in finished["statusHistory"]] == [
        "planned",
        "arrived",
        "in-progress",
    ]
    for query, total in (
        (f"patient={patient_a.public_id}", 1),
        ("status=finished", 1),
        ("status=planned,arrived", 0),
        ("date=2026-03-02", 1),
        ("date=gt2026-03-03", 0),
        (f"_id={sid}", 1),
    ):
        found = valid(nurse.get(BASE + f"Encounter?{query}").json())
        assert found["total"] == total, query
    for action in (
        "sessions.session.scheduled",
        "sessions.vitals.recorded",
        "sessions.dose.administered",
        "sessions.adverse_event.recorded",
        "sessions.session.discharged",
        "fhir.encounter.read",
        "fhir.observation.read",
        "fhir.encounter.searched",
    ):
        assert audit_count(action=action) >= 1, action
    given_list = valid(nurse.get(BASE + f"MedicationAdministration?context=Encounter/{sid}").json())
    assert given_list["entry"][0]["resource"]["reasonReference"][0]["reference"] == (
        f"Condition/{condition.public_id}"
    )


def test_a_full_esketamine_session_through_fhir(
    prescriber: Any, members: Any, patient_a: Any, traveller: Any
) -> None:
    plan, _ = treatable_with_plan(prescriber, patient_a, "esketamine-trd")
    nurse, doctor = api_client(members["nurse"]), api_client(members["prescriber"])
    made = post(nurse, BASE + "Encounter", encounter_json(patient_a))  # the one active plan
    assert made.status_code == 201, made.content
    encounter = valid(made.json())
    sid = encounter["id"]
    assert encounter["basedOn"][0]["identifier"]["value"] == str(plan.public_id)
    assert nurse.post(f"/api/v1/sessions/{sid}/check-in").status_code == 200
    pre = nurse.post(
        f"/api/v1/sessions/{sid}/prechecks",
        {"checklist": checklist_of(sid, prescriber), "vitals": NORMAL},
        content_type="application/json",
    )
    assert pre.status_code == 201, pre.json()
    order = doctor.post(f"/api/v1/sessions/{sid}/dose-orders", {}, content_type="application/json")
    assert (order.json()["dose_mg"], order.json()["device_count"]) == ("56", 2)
    partial = post(
        nurse,
        BASE + "MedicationAdministration",
        administration_json(sid, patient_a, 42, T0, rxnorm="2057856"),
    )
    assert partial.status_code == 422  # not whole 28 mg devices
    assert "whole 28 mg devices" in outcome_text(partial)
    traveller.move_to(T0 + timedelta(minutes=5))
    given = post(
        nurse,
        BASE + "MedicationAdministration",
        administration_json(sid, patient_a, 56, T0, T0 + timedelta(minutes=5), rxnorm="2057856"),
    )
    assert given.status_code == 201, given.content
    traveller.move_to(T0 + timedelta(minutes=40))
    for body in (
        session_bp(sid, 132, 84, T0 + timedelta(minutes=40)),
        session_vital(sid, "59408-5", 97, "%", T0 + timedelta(minutes=40)),
        session_vital(sid, "9279-1", 14, "/min", T0 + timedelta(minutes=40)),
    ):
        assert post(nurse, BASE + "Observation", body).status_code == 201
    event = post(
        nurse,
        BASE + "AdverseEvent",
        adverse_event_json(
            sid,
            patient_a,
            "dissociation",
            1,
            outcome={
                "coding": [
                    {
                        "system": "http://terminology.hl7.org/CodeSystem/adverse-event-outcome",
                        "code": "recovering",
                    }
                ]
            },
        ),
    )
    assert event.status_code == 201, event.content
    ae = valid(event.json())
    assert [c["code"] for c in ae["outcome"]["coding"]] == ["recovering", "resolving"]
    assert ae["seriousness"]["coding"][0]["code"] == "Non-serious"
    traveller.move_to(T0 + timedelta(minutes=110))
    assert (
        post(
            nurse, BASE + "Observation", session_bp(sid, 124, 80, T0 + timedelta(minutes=110))
        ).status_code
        == 201
    )
    nurse.post(
        f"/api/v1/sessions/{sid}/discharge-checks", ASSESSED, content_type="application/json"
    )
    early = put(nurse, BASE + f"Encounter/{sid}", {**encounter, "status": "finished"})
    assert early.status_code == 422  # esketamine: 120 minutes of observation (§2.1)
    assert "observation_time" in str(early.json()["issue"])
    traveller.move_to(T0 + timedelta(minutes=121))
    nurse.post(
        f"/api/v1/sessions/{sid}/discharge-checks", ASSESSED, content_type="application/json"
    )
    done = put(nurse, BASE + f"Encounter/{sid}", {**encounter, "status": "finished"})
    assert done.status_code == 200, done.content
    assert valid(done.json())["status"] == "finished"
    vitals = valid(nurse.get(BASE + f"Observation?encounter={sid}&code=59408-5").json())
    assert vitals["total"] == 2  # pre-dose and at 40 minutes
    # The reading as the nurse sent it (59408-5); the server's own form adds 2708-6 only when it
    # emits the flowsheet row itself.
    assert {c["code"] for c in vitals["entry"][0]["resource"]["code"]["coding"]} <= {
        "2708-6",
        "59408-5",
    }


# --- hard stops: 422 OperationOutcome ---------------------------------------------------------


def test_revoked_consent_refuses_the_encounter(
    prescriber: Any, members: Any, patient_a: Any, traveller: Any
) -> None:
    plan, _ = treatable_with_plan(prescriber, patient_a, "iv-ketamine-induction")
    with scope(organization=prescriber.organization):
        consent.consent_revoke(
            actor=prescriber,
            signature=ConsentSignature.objects.get(patient=patient_a),
            reason="Patient withdrew consent.",
        )
    response = post(
        api_client(members["nurse"]), BASE + "Encounter", encounter_json(patient_a, plan)
    )
    assert response.status_code == 422
    assert "The consent for Intravenous (clinic) was revoked on" in outcome_text(response)
    assert any(i.get("expression") == ["consent"] for i in response.json()["issue"])
    with scope(organization=prescriber.organization):
        assert not TreatmentSession.objects.exists()


def test_no_current_eligibility_refuses_the_encounter(
    prescriber: Any, members: Any, patient_a: Any, traveller: Any
) -> None:
    plan, _ = treatable_with_plan(prescriber, patient_a, "iv-ketamine-induction")
    with scope(organization=prescriber.organization):
        chart.medication_add(
            actor=prescriber,
            patient=patient_a,
            data={"drug_name": "Lorazepam 1 mg", "status": "active"},
        )
    response = post(
        api_client(members["nurse"]), BASE + "Encounter", encounter_json(patient_a, plan)
    )
    assert response.status_code == 422
    assert "a new medication was added (Lorazepam 1 mg)" in outcome_text(response)


def test_stale_weight_refuses_the_administration(
    prescriber: Any, members: Any, patient_a: Any, traveller: Any
) -> None:
    """The weight was current when the dose was ordered and is 30 days and 5 minutes old when
    the dose is given: the dose is recomputed at administration and refused."""
    nurse = api_client(members["nurse"])
    weighed = T0 - timedelta(days=30) + timedelta(minutes=10)
    assert (
        post(
            nurse,
            BASE + "Observation",
            weight_json(str(patient_a.public_id), 80, "kg", weighed.isoformat()),
        ).status_code
        == 201
    )
    with scope(organization=prescriber.organization):
        session = session_checked_in(prescriber, patient_a, weight=False)
        services.precheck_record(
            actor=prescriber, session=session, checklist=ticked(session), vitals=NORMAL
        )
        services.dose_order_sign(actor=prescriber, session=session)
    traveller.move_to(T0 + timedelta(minutes=15))
    response = post(
        nurse,
        BASE + "MedicationAdministration",
        administration_json(str(session.public_id), patient_a, 40, T0 + timedelta(minutes=15)),
    )
    assert response.status_code == 422
    assert "Weigh the patient again" in outcome_text(response)


def test_blood_pressure_above_the_gate_refuses_the_administration(
    prescriber: Any, members: Any, patient_a: Any, traveller: Any
) -> None:
    """A reading after the pre-checks and before the dose is a pre-dose reading: the dose is
    gated on it."""
    with scope(organization=prescriber.organization):
        session = session_prechecked(prescriber, patient_a)
        services.dose_order_sign(actor=prescriber, session=session)
    sid = str(session.public_id)
    nurse = api_client(members["nurse"])
    traveller.move_to(T0 + timedelta(minutes=5))
    reading = nurse.post(
        BASE + "Observation",
        json.dumps(session_bp(sid, 150, 95, T0 + timedelta(minutes=5))),
        content_type="application/fhir+json",
        headers={"Prefer": "return=OperationOutcome"},
    )
    assert reading.status_code == 201, reading.content
    warnings = [
        i["diagnostics"] for i in valid(reading.json())["issue"] if i["severity"] == "warning"
    ]
    assert warnings == [
        "Warning alert: systolic 150 is above the warning limit 140.",
        "Warning alert: diastolic 95 is above the warning limit 90.",
    ]
    stored = valid(nurse.get(reading["Location"]).json())
    assert stored["note"][0]["text"] == "Pre-dose reading."
    assert [i["coding"][0]["code"] for i in stored["interpretation"]] == ["H", "H"]
    response = post(
        nurse,
        BASE + "MedicationAdministration",
        administration_json(sid, patient_a, 40, T0 + timedelta(minutes=5)),
    )
    assert response.status_code == 422
    assert "BP 150/95 is above the pre-dose gate 140/90." in outcome_text(response)


def test_a_dose_above_the_cap_is_refused_through_fhir(
    prescriber: Any, members: Any, patient_a: Any, traveller: Any
) -> None:
    with scope(organization=prescriber.organization):
        session = session_prechecked(prescriber, patient_a)
        services.dose_order_sign(actor=prescriber, session=session)
    response = post(
        api_client(members["nurse"]),
        BASE + "MedicationAdministration",
        administration_json(str(session.public_id), patient_a, 500, T0),
    )
    assert response.status_code == 422
    assert "is more than the signed order of 40 mg" in outcome_text(response)
    with scope(organization=prescriber.organization):
        session.refresh_from_db()
    assert session.state == "prechecks_passed"


# --- Encounter details ------------------------------------------------------------------------


def test_encounter_create_needs_a_plan_and_a_planned_status(
    prescriber: Any, members: Any, patient_a: Any, traveller: Any
) -> None:
    nurse = api_client(members["nurse"])
    with scope(organization=prescriber.organization):
        make_treatable(prescriber, patient_a, "iv-ketamine-induction")
    none = post(nurse, BASE + "Encounter", encounter_json(patient_a))
    assert none.status_code == 422
    assert "no active treatment plan" in outcome_text(none)
    with scope(organization=prescriber.organization):
        make_plan(prescriber, patient_a)
        make_plan(prescriber, patient_a)
    several = post(nurse, BASE + "Encounter", encounter_json(patient_a))
    assert several.status_code == 422
    assert "several active treatment plans" in outcome_text(several)
    other = make_patient(prescriber, given_name="Other")
    with scope(organization=prescriber.organization):
        foreign_plan = make_plan(prescriber, patient_a)
    mismatch = post(nurse, BASE + "Encounter", encounter_json(other, foreign_plan))
    assert mismatch.status_code == 422
    arrived = post(
        nurse, BASE + "Encounter", {**encounter_json(patient_a, foreign_plan), "status": "arrived"}
    )
    assert arrived.status_code == 422
    assert arrived.json()["issue"][0]["expression"] == ["Encounter.status"]
    no_start = encounter_json(patient_a, foreign_plan)
    del no_start["period"]
    assert post(nurse, BASE + "Encounter", no_start).status_code == 400
    with scope(organization=prescriber.organization):
        assert not TreatmentSession.objects.exists()


def test_encounter_update_only_discharges_or_cancels(
    prescriber: Any, members: Any, patient_a: Any, traveller: Any
) -> None:
    with scope(organization=prescriber.organization):
        session = session_checked_in(prescriber, patient_a)
    nurse = api_client(members["nurse"])
    sid = str(session.public_id)
    current = valid(nurse.get(BASE + f"Encounter/{sid}").json())
    same = put(nurse, BASE + f"Encounter/{sid}", current)
    assert same.status_code == 200
    other = make_patient(prescriber, given_name="Other")
    moved = put(
        nurse,
        BASE + f"Encounter/{sid}",
        {**current, "subject": {"reference": f"Patient/{other.public_id}"}},
    )
    assert moved.status_code == 422
    onleave = put(nurse, BASE + f"Encounter/{sid}", {**current, "status": "onleave"})
    assert onleave.status_code == 422
    assert "Only status finished (discharge) or cancelled" in outcome_text(onleave)
    early = put(nurse, BASE + f"Encounter/{sid}", {**current, "status": "finished"})
    assert early.status_code == 409  # no dose yet: discharge is not a move from checked in
    aborts = audit_count(action="sessions.session.aborted")
    unexplained = put(nurse, BASE + f"Encounter/{sid}", {**current, "status": "cancelled"})
    assert unexplained.status_code == 400
    assert "Say why the session is cancelled" in outcome_text(unexplained)
    assert audit_count(action="sessions.session.aborted") == aborts
    why = {"dischargeDisposition": {"text": "Patient unwell before dosing"}}
    aborted = put(
        nurse,
        BASE + f"Encounter/{sid}",
        {**current, "status": "cancelled", "hospitalization": why},
    )
    assert aborted.status_code == 200, aborted.content
    assert audit_count(action="sessions.session.aborted") == aborts + 1
    with scope(organization=prescriber.organization):
        session.refresh_from_db()
    assert (session.state, session.abort_reason) == ("aborted", "Patient unwell before dosing")
    cancelled = valid(nurse.get(BASE + f"Encounter/{sid}").json())
    assert cancelled["status"] == "cancelled"
    assert "Patient unwell" in cancelled["hospitalization"]["dischargeDisposition"]["text"]
    assert valid(nurse.get(BASE + "Encounter?status=cancelled").json())["total"] == 1


def test_a_session_with_a_dose_started_cannot_be_cancelled_through_fhir(
    prescriber: Any, members: Any, patient_a: Any, traveller: Any
) -> None:
    with scope(organization=prescriber.organization):
        session = session_prechecked(prescriber, patient_a)
        services.dose_order_sign(actor=prescriber, session=session)
        services.dose_administer(
            actor=actor_for(members["nurse"]), session=session, dose_mg="40", lot_number="K1"
        )
    nurse = api_client(members["nurse"])
    url = BASE + f"Encounter/{session.public_id}"
    current = valid(nurse.get(url).json())
    why = {"dischargeDisposition": {"text": "Hypertension during infusion"}}
    refused = put(nurse, url, {**current, "status": "cancelled", "hospitalization": why})
    assert refused.status_code == 422
    assert "A dose was started" in outcome_text(refused)
    with scope(organization=prescriber.organization):
        session.refresh_from_db()
    assert session.state != "aborted"


def test_another_organization_sees_no_session(
    prescriber: Any, outsider: Any, patient_a: Any, traveller: Any
) -> None:
    with scope(organization=prescriber.organization):
        session = session_prechecked(prescriber, patient_a)
    client = api_client(outsider)
    sid = session.public_id
    assert client.get(BASE + f"Encounter/{sid}").status_code == 404
    assert valid(client.get(BASE + "Encounter").json())["total"] == 0
    assert valid(client.get(BASE + f"Observation?encounter={sid}").json())["total"] == 0
    bp = post(client, BASE + "Observation", session_bp(str(sid), 120, 80, T0))
    assert bp.status_code == 404
    event = post(
        client, BASE + "AdverseEvent", adverse_event_json(str(sid), patient_a, "nausea", 1)
    )
    assert event.status_code == 404


def test_roles_without_session_access_are_refused(
    prescriber: Any, members: Any, patient_a: Any, traveller: Any
) -> None:
    with scope(organization=prescriber.organization):
        session = session_prechecked(prescriber, patient_a)
    desk = api_client(members["front_desk"])
    assert desk.get(BASE + f"Encounter/{session.public_id}").status_code == 403
    therapist = api_client(members["therapist"])  # may view sessions, not run them
    assert therapist.get(BASE + f"Encounter/{session.public_id}").status_code == 200
    bp = post(therapist, BASE + "Observation", session_bp(str(session.public_id), 120, 80, T0))
    assert bp.status_code == 403


# --- Observations: session and chart ----------------------------------------------------------


def test_vitals_without_a_session_encounter_stay_on_the_chart(
    prescriber: Any, members: Any, patient_a: Any, traveller: Any
) -> None:
    nurse = api_client(members["nurse"])
    body = session_bp("x", 128, 82, T0)
    body["subject"] = {"reference": f"Patient/{patient_a.public_id}"}
    body["encounter"] = {"reference": "urn:uuid:7f0e6a8e-3e7b-4c33-9d2b-1a4b5c6d7e8f"}
    made = post(nurse, BASE + "Observation", body)
    assert made.status_code == 201, made.content
    observation = valid(made.json())
    # A chart VitalSign, as before; the outside encounter reference is kept as sent, not lost.
    assert observation["encounter"] == body["encounter"]
    assert (
        valid(nurse.get(BASE + "Observation?encounter=" + observation["id"]).json())["total"] == 0
    )
    with scope(organization=prescriber.organization):
        session = session_checked_in(prescriber, patient_a)
    weight = weight_json(str(patient_a.public_id), 80, "kg", T0.isoformat())
    weight["encounter"] = {"reference": f"Encounter/{session.public_id}"}
    refused = post(nurse, BASE + "Observation", weight)
    assert refused.status_code == 422
    assert "record body weight on the chart" in outcome_text(refused)
    fraction = session_vital(str(session.public_id), "8867-4", 72.5, "/min", T0)
    assert post(nurse, BASE + "Observation", fraction).status_code == 422
    missing = post(nurse, BASE + "Observation", session_bp(str(uuid_zero()), 120, 80, T0))
    assert missing.status_code == 404


def uuid_zero() -> str:
    return "00000000-0000-0000-0000-000000000000"


def test_survey_and_chart_observations_are_unchanged_by_session_vitals(
    prescriber: Any, members: Any, patient_a: Any, traveller: Any
) -> None:
    with scope(organization=prescriber.organization):
        session_prechecked(prescriber, patient_a)
    nurse = api_client(members["nurse"])
    survey = valid(nurse.get(BASE + "Observation?category=survey").json())
    assert all(
        e["resource"]["category"][0]["coding"][0]["code"] == "survey" for e in survey["entry"]
    )
    weights = valid(
        nurse.get(BASE + f"Observation?patient={patient_a.public_id}&code=29463-7").json()
    )
    assert weights["total"] == 1
    assert "encounter" not in weights["entry"][0]["resource"]


def test_the_reason_is_the_current_depression_diagnosis_or_nothing(
    prescriber: Any, members: Any, patient_a: Any, traveller: Any
) -> None:
    with scope(organization=prescriber.organization):
        session = session_prechecked(prescriber, patient_a)
        for code, display, status in (
            ("F31.30", "Bipolar disorder, current episode depressed", "active"),
            ("F32.1", "Major depressive disorder, single episode, moderate", "resolved"),
        ):
            chart.condition_add(
                actor=prescriber,
                patient=patient_a,
                data={"code": code, "display": display, "clinical_status": status},
            )
    nurse = api_client(members["nurse"])
    url = BASE + f"Encounter/{session.public_id}"
    assert "reasonReference" not in valid(nurse.get(url).json())
    with scope(organization=prescriber.organization):
        current = depression(prescriber, patient_a)
    assert valid(nurse.get(url).json())["reasonReference"] == [
        {
            "reference": f"Condition/{current.public_id}",
            "display": "Major depressive disorder, recurrent, moderate",
        }
    ]


# --- AdverseEvent details ---------------------------------------------------------------------


def test_adverse_event_input_errors_name_the_element(
    prescriber: Any, members: Any, patient_a: Any, traveller: Any
) -> None:
    with scope(organization=prescriber.organization):
        session = session_prechecked(prescriber, patient_a)
    sid = str(session.public_id)
    nurse = api_client(members["nurse"])
    no_grade = adverse_event_json(sid, patient_a, "nausea", 1)
    no_grade["severity"] = {
        "coding": [
            {
                "system": "http://terminology.hl7.org/CodeSystem/adverse-event-severity",
                "code": "mild",
            }
        ]
    }
    for body, expression in (
        (no_grade, "AdverseEvent.severity"),
        (adverse_event_json(sid, patient_a, "hiccups", 1), "AdverseEvent.event"),
        (
            {**adverse_event_json(sid, patient_a, "nausea", 1), "actuality": "potential"},
            "AdverseEvent.actuality",
        ),
        (
            {
                **adverse_event_json(sid, patient_a, "nausea", 1),
                "subject": {"reference": f"Patient/{make_patient(prescriber).public_id}"},
            },
            "AdverseEvent.subject",
        ),
    ):
        response = post(nurse, BASE + "AdverseEvent", body)
        assert response.status_code == 422, body
        assert response.json()["issue"][0]["expression"] == [expression]
    other = post(nurse, BASE + "AdverseEvent", adverse_event_json(sid, patient_a, "other", 2))
    assert other.status_code == 400  # "other" needs its description
    assert "Describe the event" in outcome_text(other)
    described = adverse_event_json(sid, patient_a, "other", 2)
    described["event"]["text"] = "Jaw stiffness"
    made = post(nurse, BASE + "AdverseEvent", described)
    assert made.status_code == 201, made.content
    body = valid(made.json())
    assert body["event"]["text"] == "Jaw stiffness"
    assert body["seriousness"]["coding"][0]["code"] == "Non-serious"
    assert valid(nurse.get(BASE + f"AdverseEvent/{body['id']}").json())["id"] == body["id"]
    four = post(nurse, BASE + "AdverseEvent", adverse_event_json(sid, patient_a, "nausea", 4))
    assert [c["code"] for c in valid(four.json())["severity"]["coding"]] == ["4"]
    assert valid(nurse.get(BASE + "AdverseEvent?date=2026-03-02").json())["total"] == 2
    assert valid(nurse.get(BASE + f"AdverseEvent?encounter=Encounter/{sid}").json())["total"] == 2


# --- the CapabilityStatement and query counts -------------------------------------------------


def test_the_capability_statement_lists_the_session_resources() -> None:
    from django.test import Client

    statement = valid(Client().get(BASE + "metadata").json())
    resources = {r["type"]: r for r in statement["rest"][0]["resource"]}
    assert {i["code"] for i in resources["Encounter"]["interaction"]} - HISTORY == {
        "read",
        "create",
        "update",
        "search-type",
    }
    assert {"patient", "date", "status", "_id"} <= {
        p["name"] for p in resources["Encounter"]["searchParam"]
    }
    assert {"patient", "date"} <= {p["name"] for p in resources["AdverseEvent"]["searchParam"]}
    assert "encounter" in {p["name"] for p in resources["Observation"]["searchParam"]}


@pytest.mark.parametrize(
    ("url", "queries"),
    # Encounter: 2 more for the therapy visits among them (count and rows).
    # Encounter and Observation: + the count of those kept as received from other systems;
    # Observation: + the received JSON kept beside the chart's rows.
    [("Encounter", 14), ("AdverseEvent", 10), ("Observation?category=vital-signs", 14)],
)
def test_session_searches_have_fixed_query_counts(
    prescriber: Any,
    members: Any,
    traveller: Any,
    django_assert_max_num_queries: Any,
    url: str,
    queries: int,
) -> None:
    """Three patients' sessions cost what one would: the counts do not grow with the page."""
    patients = [make_patient(prescriber, given_name=f"P{i}") for i in range(3)]
    for patient in patients:
        with scope(organization=prescriber.organization):
            depression(prescriber, patient)
            session = session_prechecked(prescriber, patient)
            services.adverse_event_record(
                actor=prescriber, session=session, event_code="nausea", grade=1
            )
    nurse = api_client(members["nurse"])
    with django_assert_max_num_queries(queries):
        response = nurse.get(BASE + url)
    assert response.status_code == 200
    assert valid(response.json())["total"] >= 3
