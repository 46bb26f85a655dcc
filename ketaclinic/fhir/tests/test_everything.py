"""Patient/{id}/$everything with a treatment history: every resource type the server implements
for the patient (chart, questionnaire responses and their scores, consents, sessions, doses,
adverse events, flowsheet vitals), each valid R4B, exactly what each type's search returns, one
audit event, another organization's patient a 404, and a query count the history does not grow.
The history is built through the services (the session, screening and consent builders)."""

from __future__ import annotations

from collections import Counter
from datetime import timedelta
from typing import Any

import pytest
import time_machine
from django_scopes import scope

from conftest import SESSION_DAY, actor_for, api_client, audit_count, make_patient
from ketaclinic.fhir.everything import compartment_handlers
from ketaclinic.fhir.tests.helpers import valid
from ketaclinic.measures import services as measures
from ketaclinic.patients import services as chart
from ketaclinic.sessions import services as sessions
from ketaclinic.sessions.tests.builders import NORMAL, make_plan, make_treatable, ticked, weigh
from ketaclinic.therapy import services as therapy
from ketaclinic.therapy.tests.builders import signed_visit

pytestmark = pytest.mark.django_db
BASE = "/fhir/r4/"
T0 = SESSION_DAY
PHQ9 = {str(i): 2 for i in range(1, 9)} | {"9": 0}  # total 16
# Token, patient, the audit event (savepoint, chain, insert, update, release): 7; per
# compartment type its search's count and rows: 2 x 10; the Encounters' transitions and reason,
# the doses' reason, the adverse events' doses: 4; the Observation rows of each source: weights,
# heights, chart vitals, survey scores, flowsheet vitals: 5; the therapy visits among the
# Encounters (count and rows): 2; the progress notes' amendments: 1.
# The received JSON kept beside the rows (1) and every resource kept only as received (1).
EVERYTHING_QUERIES = 41
PROCESS_NOTE = "Process note: the locked door again."


def history(prescriber: Any, nurse: Any, patient: Any, *, sessions_: int, responses: int) -> None:
    """A treated patient: screened, consented (the builders), `sessions_` dosed IV sessions three a
    week, each with its flowsheet, an adverse event and an end, a height, and `responses`
    PHQ-9s."""
    with scope(organization=prescriber.organization):
        chart.condition_add(
            actor=prescriber,
            patient=patient,
            data={"code": "F33.1", "display": "Major depressive disorder, recurrent, moderate"},
        )
        chart.allergy_add(actor=prescriber, patient=patient, data={"substance": "penicillin"})
        make_treatable(prescriber, patient, "iv-ketamine-induction")
        weigh(prescriber, patient)
        plan = make_plan(prescriber, patient)
        for number in range(sessions_):
            # Monday, Wednesday, Friday: at most three doses a week, 40 h apart (session policy).
            day = T0 + timedelta(days=7 * (number // 3) + 2 * (number % 3))
            with time_machine.travel(day, tick=False):
                session = sessions.session_schedule(
                    actor=nurse, plan=plan, scheduled_at=day, chair=1
                )
                sessions.session_check_in(actor=nurse, session=session)
                sessions.precheck_record(
                    actor=nurse, session=session, checklist=ticked(session), vitals=NORMAL
                )
                order = sessions.dose_order_sign(actor=prescriber, session=session)
                sessions.dose_administer(
                    actor=nurse, session=session, dose_mg=order.dose_mg, lot_number="KET-1"
                )
                sessions.adverse_event_record(
                    actor=nurse, session=session, event_code="nausea", grade=1
                )
                sessions.session_abort(
                    actor=nurse, session=session, reason="Patient asked to stop."
                )
                # An integration visit after each session, with a psychotherapy note that no
                # FHIR read may carry (45 CFR 164.501).
                visit = signed_visit(prescriber, patient, "integration")
                therapy.process_note_write(actor=prescriber, visit=visit, text=PROCESS_NOTE)
        chart.height_record(actor=nurse, patient=patient, value="172")
        for number in range(responses):
            measures.response_record(
                actor=prescriber,
                patient=patient,
                instrument_id="phq9",
                answers=PHQ9,
                completed_at=T0 - timedelta(days=number + 1),
            )


def base64_decoded(bundle: dict[str, Any]) -> str:
    """Every attachment's text, decoded (progress notes travel base64 in DocumentReference)."""
    import base64

    return " ".join(
        base64.b64decode(content["attachment"]["data"]).decode()
        for entry in bundle["entry"]
        for content in entry["resource"].get("content", [])
        if "data" in content.get("attachment", {})
    )


def _ids(bundle: dict[str, Any], resource_type: str) -> list[str]:
    return [
        e["resource"]["id"]
        for e in bundle["entry"]
        if e["resource"]["resourceType"] == resource_type
    ]


def _references(data: Any) -> set[str]:
    """Every literal reference in a resource ("Type/id"; contained "#..." left out)."""
    found = set()
    if isinstance(data, dict):
        for key, value in data.items():
            if key == "reference" and isinstance(value, str) and not value.startswith("#"):
                found.add(value)
            else:
                found |= _references(value)
    elif isinstance(data, list):
        for value in data:
            found |= _references(value)
    return found


def test_everything_holds_the_whole_record_each_type_as_its_search_returns_it(
    prescriber: Any, members: Any, patient_a: Any, traveller: Any
) -> None:
    nurse = actor_for(members["nurse"])
    history(prescriber, nurse, patient_a, sessions_=2, responses=2)
    with scope(organization=prescriber.organization):
        first = measures.response_record(
            actor=prescriber,
            patient=patient_a,
            instrument_id="phq9",
            answers=PHQ9,
            completed_at=T0 - timedelta(days=10),
        )
        measures.response_record(  # corrects the first: its scores give way to the correction's
            actor=prescriber,
            patient=patient_a,
            instrument_id="phq9",
            answers=PHQ9 | {"1": 3},
            completed_at=T0 - timedelta(days=10),
            corrects=first,
            correction_reason="Item 1 was read back wrongly.",
        )
        typo = weigh(prescriber, patient_a, kg="108")
        chart.entry_mark_entered_in_error(actor=prescriber, entry=typo, reason="Typed 108 for 80.")
    client = api_client(members["prescriber"])
    pid = str(patient_a.public_id)
    fhir_events = audit_count(channel="fhir")

    response = client.get(BASE + f"Patient/{pid}/$everything")

    assert response.status_code == 200, response.content
    bundle = valid(response.json())
    assert audit_count(action="fhir.patient.everything", patient_id=pid) == 1
    assert audit_count(channel="fhir") == fhir_events + 1  # the searches inside audit nothing
    for entry in bundle["entry"]:
        valid(entry["resource"])
    assert bundle["total"] == len(bundle["entry"])
    assert bundle["entry"][0]["resource"]["id"] == pid
    assert bundle["entry"][0]["search"]["mode"] == "match"
    types = Counter(e["resource"]["resourceType"] for e in bundle["entry"])
    assert {name: types[name] for name in types if name != "Observation"} == {
        "Patient": 1,
        "Condition": 1,
        "MedicationStatement": 2,  # the two failed antidepressant trials screening needs
        "AllergyIntolerance": 1,
        "Encounter": 4,  # two sessions, two integration visits
        "DocumentReference": 2,  # the visits' signed progress notes
        "MedicationAdministration": 2,
        "AdverseEvent": 2,
        "QuestionnaireResponse": 4,  # the original of a correction is kept, as in search
        "Consent": 1,
    }
    # Every type of the compartment that holds something for this patient (types kept only as
    # received from other systems, such as MedicationRequest, hold nothing here).
    from ketaclinic.fhir.received_handlers import GenericHandler

    assert set(types) == {"Patient"} | {
        h.type for h in compartment_handlers() if type(h) is not GenericHandler
    }
    assert "Questionnaire" not in types  # the instrument library is no one's record
    assert PROCESS_NOTE not in str(bundle)  # psychotherapy notes are not part of the record
    assert "locked door" not in base64_decoded(bundle)

    observations = [
        e["resource"] for e in bundle["entry"] if e["resource"]["resourceType"] == "Observation"
    ]
    flowsheet = [o for o in observations if "encounter" in o]
    assert len(flowsheet) == 2 * 4  # each session's pre-dose bp, heart rate, SpO2, resp. rate
    assert {o["encounter"]["reference"] for o in flowsheet} == {
        f"Encounter/{e['resource']['id']}"
        for e in bundle["entry"]
        if e["resource"]["resourceType"] == "Encounter"
        and "partOf" not in e["resource"]
        and e["resource"].get("serviceType", {}).get("text") != "Ketamine-assisted psychotherapy"
    }
    surveys = [o for o in observations if o["category"][0]["coding"][0]["code"] == "survey"]
    totals = [o for o in surveys if o["id"].endswith(".total")]
    assert len(totals) == 3  # two responses and the correction; the corrected one left out
    assert str(first.public_id) not in {o["id"].split(".")[0] for o in surveys}
    weights = [o for o in observations if o["code"]["coding"][0]["code"] == "29463-7"]
    assert sorted(o["status"] for o in weights) == ["entered-in-error", "final"]
    assert {e["search"]["mode"] for e in bundle["entry"][1:]} == {"include"}

    for handler in compartment_handlers():
        found = client.get(BASE + f"{handler.type}?patient={pid}&_count=200")
        assert found.status_code == 200, found.content
        assert sorted(e["resource"]["id"] for e in found.json()["entry"]) == sorted(
            _ids(bundle, handler.type)
        ), handler.type

    held = {f"{e['resource']['resourceType']}/{e['resource']['id']}" for e in bundle["entry"]}
    assert _references([e["resource"] for e in bundle["entry"]]) <= held  # nothing dangles


def test_another_organization_gets_404_and_no_record_of_the_patient(
    prescriber: Any, members: Any, outsider: Any, patient_a: Any, traveller: Any
) -> None:
    history(prescriber, actor_for(members["nurse"]), patient_a, sessions_=1, responses=1)
    pid = str(patient_a.public_id)
    response = api_client(outsider).get(BASE + f"Patient/{pid}/$everything")
    assert response.status_code == 404
    assert valid(response.json())["resourceType"] == "OperationOutcome"
    assert audit_count(action="fhir.patient.everything", patient_id=pid) == 0
    refused = api_client(members["front_desk"]).get(BASE + f"Patient/{pid}/$everything")
    assert refused.status_code == 403  # demographics only: no clinical record


def test_the_query_count_does_not_grow_with_the_history(
    prescriber: Any, members: Any, traveller: Any, django_assert_max_num_queries: Any
) -> None:
    """2 sessions and 2 responses cost what 6 and 6 do: each type is loaded in one batch."""
    nurse = actor_for(members["nurse"])
    client = api_client(members["prescriber"])
    client.get(BASE + "metadata")  # the token's last use is written once, not per request
    counts, sizes = [], []
    for number in (2, 6):
        patient = make_patient(prescriber, given_name=f"History{number}")
        history(prescriber, nurse, patient, sessions_=number, responses=number)
        with django_assert_max_num_queries(EVERYTHING_QUERIES) as captured:
            response = client.get(BASE + f"Patient/{patient.public_id}/$everything")
        assert response.status_code == 200, response.content
        counts.append(len(captured))
        sizes.append(valid(response.json())["total"])
    assert counts[0] == counts[1]
    # Four more sessions (encounter, dose, adverse event, 4 flowsheet vitals, the integration
    # visit's Encounter and progress note) and four more PHQ-9s (the response, its total and 9
    # item scores): all of it in the same queries.
    assert sizes[1] - sizes[0] == 4 * (1 + 1 + 1 + 4 + 2) + 4 * (1 + 1 + 9)
