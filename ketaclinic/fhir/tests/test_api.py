"""The /fhir/r4/ endpoints through Django's test client: auth, errors, CRUD, search, audit."""

from __future__ import annotations

from typing import Any

import pytest

from conftest import api_client, audit_count
from ketaclinic.fhir.tests.helpers import FHIR, bp_json, patient_json, post, put, valid, weight_json

pytestmark = pytest.mark.django_db
BASE = "/fhir/r4/"


@pytest.fixture
def client(members: dict[str, Any]) -> Any:
    return api_client(members["prescriber"])


@pytest.fixture
def patient_id(client: Any) -> str:
    response = post(client, BASE + "Patient", patient_json())
    assert response.status_code == 201, response.content
    return response.json()["id"]


def test_metadata_lists_exactly_the_registry() -> None:
    from django.test import Client

    from ketaclinic.fhir.registry import HANDLERS

    response = Client().get(BASE + "metadata")
    assert response.status_code == 200
    assert response["Content-Type"].startswith(FHIR)
    statement = valid(response.json())
    resources = {r["type"]: r for r in statement["rest"][0]["resource"]}
    assert set(resources) == set(HANDLERS)
    obs = resources["Observation"]
    assert {i["code"] for i in obs["interaction"]} == {
        *HANDLERS["Observation"].interactions,
        "vread",
        "history-instance",
        "history-type",
    }
    assert {"patient", "code", "date", "category", "_id", "identifier", "_count", "_sort"} <= {
        p["name"] for p in obs["searchParam"]
    }


def test_without_a_token_the_answer_is_401_operation_outcome(org_a: Any) -> None:
    from django.test import Client

    response = Client().get(BASE + "Patient")
    assert response.status_code == 401
    assert response["WWW-Authenticate"] == "Bearer"
    assert valid(response.json())["resourceType"] == "OperationOutcome"


@pytest.mark.parametrize(
    ("body", "content_type", "status"),
    [
        ("{not json", FHIR, 400),
        ("[]", FHIR, 400),
        ('{"resourceType": "Patient", "birthDate": "not a date"}', FHIR, 400),
        ('{"resourceType": "Observation"}', FHIR, 400),
        ('{"resourceType": "Patient"}', "text/plain", 415),
        ('{"resourceType": "Patient", "name": [{"family": "X"}]}', FHIR, 422),
    ],
)
def test_bad_input_is_an_operation_outcome_never_a_500(
    client: Any, body: str, content_type: str, status: int
) -> None:
    response = client.post(BASE + "Patient", data=body, content_type=content_type)
    assert response.status_code == status
    outcome = valid(response.json())
    assert outcome["resourceType"] == "OperationOutcome"
    assert outcome["issue"][0]["diagnostics"]


def test_unknown_type_and_id_are_404(client: Any) -> None:
    assert client.get(BASE + "Substance").status_code == 404
    assert client.get(BASE + "Patient/00000000-0000-0000-0000-000000000000").status_code == 404
    assert client.get(BASE + "Patient/not-a-uuid").status_code == 404


def test_patient_create_read_update_and_json_media_type(client: Any) -> None:
    response = post(client, BASE + "Patient", patient_json(), content_type="application/json")
    assert response.status_code == 201
    created = valid(response.json())
    assert response["Location"].endswith(
        f"/fhir/r4/Patient/{created['id']}/_history/{created['meta']['versionId']}"
    )
    read = valid(client.get(BASE + f"Patient/{created['id']}").json())
    assert read["name"][0]["family"] == "Curie"
    assert read["birthDate"] == "1967-11-07"
    changed = {
        **read,
        "name": [{"use": "official", "family": "Skłodowska-Curie", "given": ["Marie"]}],
    }
    response = put(client, BASE + f"Patient/{created['id']}", changed)
    assert response.status_code == 200, response.content
    assert valid(response.json())["name"][0]["family"] == "Skłodowska-Curie"


def test_put_with_mismatched_id_is_400(client: Any, patient_id: str) -> None:
    response = put(client, BASE + f"Patient/{patient_id}", {**patient_json(), "id": "other"})
    assert response.status_code == 400


def test_weight_in_pounds_is_stored_in_kg(client: Any, patient_id: str) -> None:
    """The chart keeps kg (what dosing reads); the resource comes back as sent, in pounds."""
    from django_scopes import scopes_disabled

    from ketaclinic.patients.models import BodyWeight

    response = post(client, BASE + "Observation", weight_json(patient_id, 185))
    assert response.status_code == 201, response.content
    obs = valid(response.json())
    assert obs["valueQuantity"]["code"] == "[lb_av]"
    assert obs["valueQuantity"]["value"] == 185
    with scopes_disabled():
        row = BodyWeight.objects.get(public_id=obs["id"])
    assert float(row.weight_kg) == pytest.approx(83.91, abs=0.01)


def test_blood_pressure_panel_round_trips(client: Any, patient_id: str) -> None:
    response = post(client, BASE + "Observation", bp_json(patient_id, 131, 84))
    assert response.status_code == 201, response.content
    obs = valid(client.get(BASE + f"Observation/{response.json()['id']}").json())
    values = {c["code"]["coding"][0]["code"]: c["valueQuantity"]["value"] for c in obs["component"]}
    assert values == {"8480-6": 131, "8462-4": 84}
    assert obs["category"][0]["coding"][0]["code"] == "vital-signs"


def test_implausible_vital_is_rejected_with_the_field(client: Any, patient_id: str) -> None:
    response = post(client, BASE + "Observation", bp_json(patient_id, 80, 120))
    assert response.status_code == 400
    assert "diastolic" in response.json()["issue"][-1]["diagnostics"]


def test_observation_the_chart_does_not_hold_is_kept_as_received(
    client: Any, patient_id: str
) -> None:
    """A LOINC code that is not one of the clinic's vital signs (cholesterol) is stored as
    received and found by code; the chart's vital signs are untouched."""
    from django_scopes import scopes_disabled

    from ketaclinic.patients.models import BodyWeight

    data = weight_json(patient_id, 80, "kg")
    data["code"] = {"coding": [{"system": "http://loinc.org", "code": "2093-3"}]}
    response = post(client, BASE + "Observation", data)
    assert response.status_code == 201, response.content
    assert response.json()["code"] == data["code"]
    found = _search(client, f"Observation?patient={patient_id}&code=http://loinc.org|2093-3")
    assert [e["resource"]["id"] for e in found["entry"]] == [response.json()["id"]]
    with scopes_disabled():
        assert not BodyWeight.objects.exists()


def _search(client: Any, query: str) -> dict[str, Any]:
    response = client.get(BASE + query)
    assert response.status_code == 200, response.content
    return valid(response.json())


def test_observation_search_by_code_date_and_paging(client: Any, patient_id: str) -> None:
    for day in range(1, 6):
        post(
            client,
            BASE + "Observation",
            bp_json(patient_id, 120 + day, 80, when=f"2024-03-0{day}T08:00:00+00:00"),
        )
        post(
            client,
            BASE + "Observation",
            weight_json(patient_id, 80 + day, "kg", when=f"2024-03-0{day}T07:00:00+00:00"),
        )
    everything = _search(client, f"Observation?patient={patient_id}")
    assert everything["total"] == 10
    bp = _search(client, f"Observation?patient={patient_id}&code=http://loinc.org|85354-9")
    assert bp["total"] == 5
    old_code = _search(client, f"Observation?subject=Patient/{patient_id}&code=55284-4")
    assert old_code["total"] == 5
    ranged = _search(
        client, f"Observation?patient={patient_id}&date=ge2024-03-02&date=lt2024-03-04&code=29463-7"
    )
    assert ranged["total"] == 2
    assert _search(client, f"Observation?patient={patient_id}&date=eq2024-03-05")["total"] == 2
    assert _search(client, f"Observation?patient={patient_id}&date=gt2024-03-05")["total"] == 0
    assert _search(client, f"Observation?patient={patient_id}&date=le2024-03-01")["total"] == 2
    assert _search(client, f"Observation?patient={patient_id}&category=laboratory")["total"] == 0
    # Pages of 3 in ascending date order, followed through the next links, see every row once.
    seen: list[tuple[str, str]] = []
    url: str | None = f"Observation?patient={patient_id}&_sort=date&_count=3"
    while url:
        page = _search(client, url)
        seen += [(e["resource"]["effectiveDateTime"], e["resource"]["id"]) for e in page["entry"]]
        url = next(
            (link["url"].split(BASE, 1)[1] for link in page["link"] if link["relation"] == "next"),
            None,
        )
    assert len(seen) == 10
    assert len(set(seen)) == 10
    assert seen == sorted(seen, key=lambda s: s[0])
    second = _search(client, f"Observation?patient={patient_id}&_sort=date&_count=3&_offset=3")
    assert any(link["relation"] == "previous" for link in second["link"])


@pytest.mark.parametrize(
    "query",
    [
        "Observation?foo=1",
        "Observation?_count=x",
        "Observation?date=ge2024-13-99",
        "Observation?_sort=name",
    ],
)
def test_bad_search_is_400(client: Any, query: str) -> None:
    response = client.get(BASE + query, headers={"Prefer": "handling=strict"})
    assert response.status_code == 400
    assert valid(response.json())["resourceType"] == "OperationOutcome"


def test_condition_medication_allergy_crud_and_search(client: Any, patient_id: str) -> None:
    condition = {
        "resourceType": "Condition",
        "identifier": [{"system": "urn:test", "value": "c-1"}],
        "clinicalStatus": {
            "coding": [
                {
                    "system": "http://terminology.hl7.org/CodeSystem/condition-clinical",
                    "code": "active",
                }
            ]
        },
        "code": {
            "coding": [
                {
                    "system": "http://hl7.org/fhir/sid/icd-10-cm",
                    "code": "F33.1",
                    "display": "MDD, recurrent, moderate",
                }
            ]
        },
        "subject": {"reference": f"Patient/{patient_id}"},
        "onsetDateTime": "2019-04",
    }
    response = post(client, BASE + "Condition", condition)
    assert response.status_code == 201, response.content
    created = valid(response.json())
    assert created["onsetDateTime"] == "2019-04"  # as sent: month precision (the chart keeps 04-01)
    assert _search(client, "Condition?identifier=urn:test|c-1")["total"] == 1
    assert (
        _search(
            client,
            f"Condition?patient={patient_id}&code=http://hl7.org/fhir/sid/icd-10-cm|F33.1&onset-date=ge2019",
        )["total"]
        == 1
    )
    update = {
        **created,
        "clinicalStatus": {
            "coding": [
                {
                    "system": "http://terminology.hl7.org/CodeSystem/condition-clinical",
                    "code": "remission",
                }
            ]
        },
    }
    response = put(client, BASE + f"Condition/{created['id']}", update)
    assert response.status_code == 200, response.content
    assert response.json()["clinicalStatus"]["coding"][0]["code"] == "remission"
    assert client.delete(BASE + f"Condition/{created['id']}").status_code == 204
    assert client.get(BASE + f"Condition/{created['id']}").status_code == 410
    assert client.delete(BASE + f"Condition/{created['id']}").status_code == 204

    medication = {
        "resourceType": "MedicationStatement",
        "status": "completed",
        "medicationCodeableConcept": {
            "coding": [
                {
                    "system": "http://www.nlm.nih.gov/research/umls/rxnorm",
                    "code": "36437",
                    "display": "sertraline",
                }
            ]
        },
        "subject": {"reference": f"Patient/{patient_id}"},
        "effectivePeriod": {"start": "2020-01-01", "end": "2020-06-01"},
        "dosage": [{"text": "100 mg daily"}],
    }
    response = post(client, BASE + "MedicationStatement", medication)
    assert response.status_code == 201, response.content
    assert valid(response.json())["dosage"][0]["text"] == "100 mg daily"
    assert (
        _search(client, f"MedicationStatement?patient={patient_id}&code=36437&date=ge2020-01-01")[
            "total"
        ]
        == 1
    )

    allergy = {
        "resourceType": "AllergyIntolerance",
        "code": {"text": "Penicillin"},
        "patient": {"reference": f"Patient/{patient_id}"},
        "criticality": "high",
        "reaction": [{"manifestation": [{"text": "Hives"}], "severity": "moderate"}],
    }
    response = post(client, BASE + "AllergyIntolerance", allergy)
    assert response.status_code == 201, response.content
    allergy_id = valid(response.json())["id"]
    assert (
        _search(client, f"AllergyIntolerance?patient={patient_id}")["entry"][0]["resource"]["id"]
        == allergy_id
    )


def test_observation_update_only_marks_entered_in_error(client: Any, patient_id: str) -> None:
    # Measurements are not edited (test_observation_entered_in_error.py covers the marking).
    created = post(client, BASE + "Observation", weight_json(patient_id, 80, "kg")).json()
    response = put(client, BASE + f"Observation/{created['id']}", created)
    assert response.status_code == 422
    assert "changes nothing" in valid(response.json())["issue"][0]["diagnostics"]


def test_every_read_search_and_write_leaves_one_audit_event(client: Any, patient_id: str) -> None:
    before = audit_count(channel="fhir")
    created = post(client, BASE + "Observation", weight_json(patient_id, 80, "kg")).json()
    assert audit_count(channel="fhir") == before + 1
    assert audit_count(action="patients.weight.recorded", channel="fhir") == 1
    client.get(BASE + f"Observation/{created['id']}")
    assert audit_count(action="fhir.observation.read", patient_id=patient_id) == 1
    client.get(BASE + f"Observation?patient={patient_id}")
    assert audit_count(action="fhir.observation.searched", patient_id=patient_id) == 1
    client.get(BASE + f"Patient/{patient_id}")
    assert audit_count(action="fhir.patient.read", patient_id=patient_id) == 1
    client.get(BASE + f"Patient/{patient_id}/$everything")
    assert audit_count(action="fhir.patient.everything", patient_id=patient_id) == 1
    assert audit_count(channel="fhir") == before + 5


def test_search_query_count_does_not_grow_with_history(
    client: Any, patient_id: str, django_assert_max_num_queries: Any
) -> None:
    for day in range(1, 8):
        post(
            client,
            BASE + "Observation",
            bp_json(patient_id, 120, 80, when=f"2024-02-0{day}T08:00:00+00:00"),
        )
        post(
            client,
            BASE + "Observation",
            weight_json(patient_id, 80, "kg", when=f"2024-02-0{day}T07:00:00+00:00"),
        )
    # +2: the received JSON kept beside the page's rows (one query), Observations kept only as
    # received (count; their rows only when there are some).
    with django_assert_max_num_queries(14):
        assert (
            client.get(BASE + f"Observation?patient={patient_id}&_count=50").json()["total"] == 14
        )
    with django_assert_max_num_queries(11):
        assert client.get(BASE + f"Condition?patient={patient_id}").status_code == 200
    # Token, patient, audit (5); per patient type its search's count and rows (2 x 10); the
    # therapy visits among the Encounters (count and rows, 2); the weight and blood-pressure
    # rows; the received JSON kept beside the rows, and every resource kept as received (2).
    # Sessions, therapy and scores: test_everything.py.
    with django_assert_max_num_queries(33):
        assert client.get(BASE + f"Patient/{patient_id}/$everything").status_code == 200


def test_outgoing_resources_are_emitted_once_without_absent_elements(settings):
    """Production builds the JSON once (no model round trip); the suite validates every shape."""
    from ketaclinic.fhir.common import emit

    settings.FHIR_VALIDATE_OUTGOING = False
    sent = emit(
        {"resourceType": "Patient", "id": "p1", "gender": None, "name": [{"text": "A"}], "link": []}
    )
    assert sent == {"resourceType": "Patient", "id": "p1", "name": [{"text": "A"}]}
    settings.FHIR_VALIDATE_OUTGOING = True
    with pytest.raises(ValueError):  # an invalid shape fails the test that emitted it
        emit({"resourceType": "Patient", "id": "p1", "birthDate": "yesterday"})
    with pytest.raises(AssertionError, match="canonical form"):  # not canonical R4B JSON
        emit({"resourceType": "Patient", "id": "p1", "active": "true"})


def test_search_counts_only_when_asked(client: Any, patient_id: str) -> None:
    """Bundle.total: counted for _total=accurate, given free on the last page, else left out."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    for day in range(1, 5):
        post(
            client,
            BASE + "Observation",
            bp_json(patient_id, 120, 80, when=f"2024-02-0{day}T08:00:00+00:00"),
        )
    query = f"Observation?patient={patient_id}&_count=2"
    with CaptureQueriesContext(connection) as plain:
        first = _search(client, query)
    assert "total" not in first
    assert len(first["entry"]) == 2
    assert any(link["relation"] == "next" for link in first["link"])
    with CaptureQueriesContext(connection) as counted:
        assert _search(client, query + "&_total=accurate")["total"] == 4
    assert len(counted.captured_queries) > len(plain.captured_queries)  # counting runs only now
    last = _search(client, query + "&_offset=2")
    assert last["total"] == 4
    assert not any(link["relation"] == "next" for link in last["link"])
    assert _search(client, query.replace("_count=2", "_count=0"))["total"] == 4
    refused = client.get(BASE + query + "&_total=sometimes")
    assert refused.status_code == 400
    assert "_total" in refused.json()["issue"][0]["diagnostics"]


def test_a_date_past_the_last_day_is_a_400_not_a_500(client: Any, patient_id: str) -> None:
    response = client.get(BASE + f"Observation?patient={patient_id}&date=9999-12-31")
    assert response.status_code == 400
    assert "date" in response.json()["issue"][0]["diagnostics"]


def test_a_moment_in_the_last_second_of_9999_is_a_400_not_a_500(client: Any) -> None:
    # Found by the FHIR fuzz test: the one-second window after it passes datetime's last year.
    response = client.get(BASE + "SupplyDelivery", {"date": "9999-12-31T23:59:59+14:00"})
    assert response.status_code == 400
    assert "date" in response.json()["issue"][0]["diagnostics"]


@pytest.mark.parametrize(
    ("body", "expression", "words"),
    [
        (
            lambda pid: bp_json(pid, 80, 95),
            "Observation.component.where(code.coding.code = '8462-4').valueQuantity.value",
            "diastolic",
        ),
        (
            lambda pid: bp_json(pid, 400, 80),
            "Observation.component.where(code.coding.code = '8480-6').valueQuantity.value",
            "",
        ),
        (lambda pid: weight_json(pid, 900, "kg"), "Observation.valueQuantity.value", "weight"),
    ],
    ids=["diastolic above systolic", "systolic out of range", "weight out of range"],
)
def test_a_refused_vital_sign_points_at_the_element_sent(
    client: Any, patient_id: str, body: Any, expression: str, words: str
) -> None:
    response = post(client, "/fhir/r4/Observation", body(patient_id))
    assert response.status_code == 400, response.content
    issue = valid(response.json())["issue"][0]
    assert issue["expression"] == [expression]
    assert words in issue["diagnostics"].lower()
    assert "_" not in issue["diagnostics"]  # no service field name (value_diastolic) shown
