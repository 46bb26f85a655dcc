"""A wrong weight, height or chart vital sign marked entered-in-error through FHIR: DELETE, or PUT
with status entered-in-error and the rest as recorded. The same service as the chart and the JSON
API marks it: kept for the record, served as entered-in-error, never used for dosing, audited once.
Measurements are not edited, and Observations derived from a session flowsheet or a questionnaire
response are corrected where they come from, not here."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest
from django.test import Client
from django_scopes import scope

from conftest import SESSION_DAY, api_client, audit_count, make_patient
from ketaclinic.fhir.tests.helpers import put, valid
from ketaclinic.measures import services as measures
from ketaclinic.measures.tests.builders import phq9
from ketaclinic.patients import services as chart
from ketaclinic.sessions import services as sessions
from ketaclinic.sessions.tests.builders import NORMAL, session_checked_in, ticked, weigh

pytestmark = pytest.mark.django_db
BASE = "/fhir/r4/"
T0 = SESSION_DAY
MARKED = "patients.weight.entered_in_error"


@pytest.fixture
def nurse(members: dict[str, Any]) -> Client:
    return api_client(members["nurse"])


@pytest.fixture
def typo(prescriber: Any, patient_a: Any, traveller: Any) -> Any:
    """80 kg three days ago, then 80 typed as 108 now (T0)."""
    with scope(organization=prescriber.organization):
        weigh(prescriber, patient_a, kg="80", days_ago=3)
        return weigh(prescriber, patient_a, kg="108")


def url(observation_id: Any) -> str:
    return f"{BASE}Observation/{observation_id}"


def read(client: Client, observation_id: Any) -> dict[str, Any]:
    response = client.get(url(observation_id))
    assert response.status_code == 200, response.content
    return valid(response.json())


def mark(client: Client, observation_id: Any, how: str) -> Any:
    """Mark through FHIR the way a client would: DELETE, or PUT what it read with a new status."""
    if how == "DELETE":
        return client.delete(url(observation_id))
    return put(client, url(observation_id), {**read(client, observation_id), "status": how})


def reload(entry: Any) -> Any:
    with scope(organization=entry.organization):
        entry.refresh_from_db()
    return entry


def diagnostics(response: Any) -> str:
    outcome = valid(response.json())
    assert outcome["resourceType"] == "OperationOutcome"
    return " ".join(issue["diagnostics"] for issue in outcome["issue"])


def marked_events() -> int:
    """Every entered-in-error marking of any chart entry."""
    return audit_count(action__endswith=".entered_in_error")


# --- marking a weight ---------------------------------------------------------------------------


@pytest.mark.parametrize("how", ["DELETE", "entered-in-error"])
def test_a_weight_marked_through_fhir_is_no_longer_used_for_the_dose(
    how: str, nurse: Client, prescriber: Any, patient_a: Any, traveller: Any
) -> None:
    with scope(organization=prescriber.organization):
        session = session_checked_in(prescriber, patient_a, weight=False)
        weigh(prescriber, patient_a, kg="80", days_ago=3)
        typo = weigh(prescriber, patient_a, kg="108")  # 80 typed as 108, today

    response = mark(nurse, typo.public_id, how)
    assert response.status_code == (204 if how == "DELETE" else 200), response.content

    with scope(organization=prescriber.organization):
        precheck = sessions.precheck_record(
            actor=prescriber, session=session, checklist=ticked(session), vitals=NORMAL
        )
        order = sessions.dose_order_sign(actor=prescriber, session=session)
    assert Decimal(precheck.weight["weight_kg"]) == Decimal("80")
    assert order.dose_mg == Decimal("40.0")  # 0.5 mg/kg x 80 kg, not x 108 kg


def test_delete_marks_the_weight_for_the_chart_and_fhir_answers_410(
    nurse: Client, typo: Any, patient_a: Any
) -> None:
    response = nurse.delete(url(typo.public_id))
    assert response.status_code == 204
    assert response.content == b""
    assert nurse.get(url(typo.public_id)).status_code == 410  # deleted for FHIR clients
    assert reload(typo).entered_in_error  # kept for the record in the chart, not erased
    assert audit_count(action=MARKED, patient_id=patient_a.public_id) == 1
    assert audit_count(action=MARKED, detail__reason="FHIR delete") == 1
    assert marked_events() == 1


def test_put_with_status_entered_in_error_marks_the_weight(
    nurse: Client, typo: Any, patient_a: Any
) -> None:
    sent = {**read(nurse, typo.public_id), "status": "entered-in-error"}
    response = put(nurse, url(typo.public_id), sent)
    assert response.status_code == 200, response.content
    returned = valid(response.json())
    assert returned["status"] == "entered-in-error"
    assert returned["valueQuantity"]["value"] == 108
    assert read(nurse, typo.public_id)["status"] == "entered-in-error"
    assert audit_count(action=MARKED, patient_id=patient_a.public_id) == 1
    assert audit_count(action=MARKED, detail__reason="FHIR update") == 1
    assert marked_events() == 1


def test_a_client_may_send_the_resource_back_in_its_own_spelling(nurse: Client, typo: Any) -> None:
    """Same instant in another offset, a whole number, no meta or narrative: still unchanged."""
    sent = read(nurse, typo.public_id)
    sent.pop("meta")
    sent["effectiveDateTime"] = "2026-03-02T16:00:00+01:00"  # T0, when it was weighed
    sent["valueQuantity"] = {**sent["valueQuantity"], "value": 108, "unit": "kilogram"}
    sent["status"] = "entered-in-error"
    sent["note"] = [{"text": "Typed 108 for 80."}]
    response = put(nurse, url(typo.public_id), sent)
    assert response.status_code == 200, response.content
    assert marked_events() == 1


def test_search_serves_a_marked_weight_as_entered_in_error_and_leaves_a_deleted_one_out(
    nurse: Client, typo: Any, patient_a: Any
) -> None:
    assert mark(nurse, typo.public_id, "entered-in-error").status_code == 200
    query = f"{BASE}Observation?patient={patient_a.public_id}&code=29463-7"
    found = valid(nurse.get(query).json())
    statuses = sorted(e["resource"]["status"] for e in found["entry"])
    assert statuses == ["entered-in-error", "final"]
    first = next(e["resource"]["id"] for e in found["entry"] if e["resource"]["status"] == "final")
    assert nurse.delete(url(first)).status_code == 204
    statuses = [e["resource"]["status"] for e in valid(nurse.get(query).json())["entry"]]
    assert statuses == ["entered-in-error"]


@pytest.mark.parametrize(
    ("kind", "action"),
    [
        ("height", "patients.height.entered_in_error"),
        ("bp", "patients.vital_sign.entered_in_error"),
    ],
)
def test_heights_and_chart_vital_signs_are_marked_the_same_way(
    kind: str, action: str, nurse: Client, prescriber: Any, patient_a: Any
) -> None:
    entry: Any
    with scope(organization=prescriber.organization):
        if kind == "height":
            entry = chart.height_record(actor=prescriber, patient=patient_a, value="78")
        else:
            entry = chart.vital_sign_record(
                actor=prescriber,
                patient=patient_a,
                kind="bp",
                value=218,
                value_diastolic=76,
                unit="mm[Hg]",
                code="85354-9",
            )
    response = mark(nurse, entry.public_id, "entered-in-error")
    assert response.status_code == 200, response.content
    assert read(nurse, entry.public_id)["status"] == "entered-in-error"
    assert audit_count(action=action, patient_id=patient_a.public_id) == 1
    assert nurse.delete(url(entry.public_id)).status_code == 409
    assert marked_events() == 1


# --- refusals -----------------------------------------------------------------------------------


def test_a_second_marking_is_a_conflict_and_audited_once(nurse: Client, typo: Any) -> None:
    assert mark(nurse, typo.public_id, "entered-in-error").status_code == 200
    again = mark(nurse, typo.public_id, "DELETE")
    assert again.status_code == 409
    assert valid(again.json())["issue"][0]["code"] == "conflict"
    assert "already marked entered-in-error" in diagnostics(again)
    assert audit_count(action=MARKED) == 1


def test_after_a_delete_a_put_is_410_and_a_second_delete_changes_nothing(
    nurse: Client, typo: Any
) -> None:
    sent = {**read(nurse, typo.public_id), "status": "entered-in-error"}
    assert nurse.delete(url(typo.public_id)).status_code == 204
    assert put(nurse, url(typo.public_id), sent).status_code == 410
    assert nurse.delete(url(typo.public_id)).status_code == 204
    assert audit_count(action=MARKED) == 1


@pytest.mark.parametrize(
    ("change", "where"),
    [
        (
            {"valueQuantity": {"value": 80, "unit": "kg", "system": "http://unitsofmeasure.org"}},
            "value",
        ),
        ({"effectiveDateTime": "2026-03-01T08:00:00Z"}, "effective"),
        ({"code": {"coding": [{"system": "http://loinc.org", "code": "8302-2"}]}}, "code"),
        ({"identifier": [{"system": "urn:other", "value": "w-9"}]}, "identifier"),
    ],
)
@pytest.mark.parametrize("status", ["final", "entered-in-error"])
def test_a_measurement_is_not_edited(
    change: dict[str, Any], where: str, status: str, nurse: Client, typo: Any
) -> None:
    sent = {**read(nurse, typo.public_id), **change, "status": status}
    sent.pop("meta")  # its profile names the weight code
    response = put(nurse, url(typo.public_id), sent)
    assert response.status_code == 422, response.content
    outcome = valid(response.json())
    assert outcome["issue"][0]["code"] == "business-rule"
    text = diagnostics(response)
    assert "POST the correct measurement as a new Observation" in text
    assert any(where in e for i in outcome["issue"] for e in i.get("expression", []))
    assert reload(typo).weight_kg == Decimal("108")
    assert not typo.entered_in_error
    assert marked_events() == 0


def test_a_weight_cannot_move_to_another_patient(nurse: Client, prescriber: Any, typo: Any) -> None:
    other = make_patient(prescriber, mrn="OTHER-1")
    sent = {**read(nurse, typo.public_id), "status": "entered-in-error"}
    sent["subject"] = {"reference": f"Patient/{other.public_id}"}
    response = put(nurse, url(typo.public_id), sent)
    assert response.status_code == 422
    assert "cannot move to another patient" in diagnostics(response)
    assert marked_events() == 0


def test_an_unchanged_put_and_an_unmarking_are_refused(nurse: Client, typo: Any) -> None:
    unchanged = put(nurse, url(typo.public_id), read(nurse, typo.public_id))
    assert unchanged.status_code == 422
    assert "The update changes nothing" in diagnostics(unchanged)

    assert mark(nurse, typo.public_id, "entered-in-error").status_code == 200
    unmark = put(nurse, url(typo.public_id), {**read(nurse, typo.public_id), "status": "final"})
    assert unmark.status_code == 422
    assert "cannot change from entered-in-error to final" in diagnostics(unmark)
    assert read(nurse, typo.public_id)["status"] == "entered-in-error"
    assert marked_events() == 1


def test_an_outsider_gets_404_and_changes_nothing(outsider: Any, nurse: Client, typo: Any) -> None:
    sent = {**read(nurse, typo.public_id), "status": "entered-in-error"}
    other = api_client(outsider)
    for response in (other.delete(url(typo.public_id)), put(other, url(typo.public_id), sent)):
        assert response.status_code == 404
        assert valid(response.json())["issue"][0]["code"] == "not-found"
    assert not reload(typo).entered_in_error
    assert marked_events() == 0


@pytest.mark.parametrize("role", ["therapist", "compliance", "front_desk", "researcher"])
def test_roles_without_clinical_edit_are_refused_403(
    role: str, members: dict[str, Any], nurse: Client, typo: Any
) -> None:
    sent = {**read(nurse, typo.public_id), "status": "entered-in-error"}
    client = api_client(members[role])
    for response in (client.delete(url(typo.public_id)), put(client, url(typo.public_id), sent)):
        assert response.status_code == 403
        assert valid(response.json())["issue"][0]["code"] == "forbidden"
    assert not reload(typo).entered_in_error
    assert marked_events() == 0


# --- Observations derived from elsewhere ----------------------------------------------------------


@pytest.mark.parametrize("how", ["DELETE", "entered-in-error"])
def test_a_session_flowsheet_reading_is_corrected_in_the_session_record(
    how: str, nurse: Client, prescriber: Any, patient_a: Any, traveller: Any
) -> None:
    with scope(organization=prescriber.organization):
        session = session_checked_in(prescriber, patient_a)
        [entry] = sessions.vitals_record(
            actor=prescriber, session=session, samples=[{"taken_at": T0, "heart_rate": 180}]
        )
    observation_id = f"{entry.public_id}.hr"
    assert read(nurse, observation_id)["encounter"]["reference"] == f"Encounter/{session.public_id}"
    response = mark(nurse, observation_id, how)
    assert response.status_code == 422
    text = diagnostics(response)
    assert "flowsheet" in text
    assert "session note" in text
    assert read(nurse, observation_id)["status"] == "final"
    assert marked_events() == 0


@pytest.mark.parametrize("part", ["total", "1"])
@pytest.mark.parametrize("how", ["DELETE", "entered-in-error"])
def test_a_questionnaire_observation_is_corrected_through_its_response(
    part: str, how: str, nurse: Client, prescriber: Any, patient_a: Any
) -> None:
    with scope(organization=prescriber.organization):
        response_row = measures.response_record(
            actor=prescriber, patient=patient_a, instrument_id="phq9", answers=phq9()
        )
    observation_id = f"{response_row.public_id}.{part}"
    assert read(nurse, observation_id)["category"][0]["coding"][0]["code"] == "survey"
    response = mark(nurse, observation_id, how)
    assert response.status_code == 422
    text = diagnostics(response)
    assert f"QuestionnaireResponse/{response_row.public_id}" in text
    assert "Record a correction" in text
    assert read(nurse, observation_id)["status"] == "final"
    assert marked_events() == 0


def test_a_derived_observation_that_does_not_exist_is_404(nurse: Client, typo: Any) -> None:
    for observation_id in (f"{typo.public_id}.hr", f"{typo.public_id}.total"):
        assert nurse.delete(url(observation_id)).status_code == 404


def test_the_capability_statement_lists_update_and_delete_for_observation() -> None:
    statement = valid(Client().get(BASE + "metadata").json())
    resources = {r["type"]: r for r in statement["rest"][0]["resource"]}
    assert {i["code"] for i in resources["Observation"]["interaction"]} == {
        "read",
        "vread",
        "history-instance",
        "history-type",
        "create",
        "search-type",
        "update",
        "delete",
    }
