"""Questionnaire, QuestionnaireResponse and the survey Observations derived from scored responses:
search by url and LOINC code, the published PHQ-9 examples, the NLM/LOINC form's shape, the same
validation and safety alerts as the chart, tenancy, audit and pinned query counts."""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Any

import pytest
from django_scopes import scopes_disabled

from conftest import api_client, audit_count
from ketaclinic.fhir.tests.helpers import load, patient_json, post, valid, weight_json
from ketaclinic.measures.models import QuestionnaireResponse, SafetyAlert

pytestmark = pytest.mark.django_db
BASE = "/fhir/r4/"
# Served for every readable type (fhir/history.py), beside the type's own interactions.
HISTORY = {"vread", "history-instance", "history-type"}
LOINC = "http://loinc.org"
# The NLM/LOINC PHQ-9 form's linkIds, in form order: items 1-9, the total, the functional item.
PHQ9_ITEMS = [i["linkId"] for i in load("questionnaires", "lforms-fhir-app", "phq9.json")["item"]]
FREQUENCY = ["LA6568-5", "LA6569-3", "LA6570-1", "LA6571-9"]


@pytest.fixture
def client(members: dict[str, Any]) -> Any:
    return api_client(members["prescriber"])


@pytest.fixture
def patient_id(client: Any) -> str:
    response = post(client, BASE + "Patient", patient_json())
    assert response.status_code == 201, response.content
    return response.json()["id"]


def _search(client: Any, query: str) -> dict[str, Any]:
    response = client.get(BASE + query)
    assert response.status_code == 200, response.content
    return valid(response.json())


def lforms_phq9(patient_id: str, values: list[int], *, ordinal_items: tuple[int, ...] = ()) -> Any:
    """A response shaped like the NLM LHC-Forms PHQ-9 produces: linkIds '/44250-9'..., answers as
    LOINC answer codes without a system (as in the form's answerOption), or ordinal values."""
    items = []
    for index, (link_id, value) in enumerate(zip(PHQ9_ITEMS[:9], values, strict=True)):
        answer: dict[str, Any]
        if index + 1 in ordinal_items:
            answer = {"valueInteger": value}
        else:
            answer = {"valueCoding": {"code": FREQUENCY[value]}}
        items.append({"linkId": link_id, "answer": [answer]})
    return {
        "resourceType": "QuestionnaireResponse",
        "questionnaire": "http://loinc.org/q/44249-1",
        "status": "completed",
        "subject": {"reference": f"Patient/{patient_id}"},
        "authored": "2024-05-02T10:00:00Z",
        "item": items,
    }


def us_core_phq9(patient_id: str) -> dict[str, Any]:
    data = load("fhir-r4-examples", "us-core", "QuestionnaireResponse-phq-9-example.json")
    data["subject"] = {"reference": f"Patient/{patient_id}"}
    data.pop("author", None)  # Practitioner/practitioner-1 is not a resource of this server
    return data


def _responses() -> list[QuestionnaireResponse]:
    with scopes_disabled():
        return list(QuestionnaireResponse.objects.all())


def _alerts() -> list[SafetyAlert]:
    with scopes_disabled():
        return list(SafetyAlert.objects.select_related("response"))


# --- Questionnaire ------------------------------------------------------------------------------


def test_metadata_lists_questionnaire_types() -> None:
    from django.test import Client

    statement = valid(Client().get(BASE + "metadata").json())
    resources = {r["type"]: r for r in statement["rest"][0]["resource"]}
    assert {i["code"] for i in resources["Questionnaire"]["interaction"]} - HISTORY == {
        "read",
        "search-type",
    }
    assert {"url", "code"} <= {p["name"] for p in resources["Questionnaire"]["searchParam"]}
    assert {i["code"] for i in resources["QuestionnaireResponse"]["interaction"]} - HISTORY == {
        "read",
        "create",
        "search-type",
    }
    code_doc = next(p for p in resources["Observation"]["searchParam"] if p["name"] == "code")
    assert "44261-6" in code_doc["documentation"]


def test_questionnaire_search_by_url_and_code(client: Any) -> None:
    everything = _search(client, "Questionnaire?_count=50")
    assert everything["total"] == 13
    by_url = _search(client, "Questionnaire?url=https://ketaclinic.org/fhir/Questionnaire/phq9")
    assert [e["resource"]["id"] for e in by_url["entry"]] == ["phq9"]
    assert _search(client, "Questionnaire?url=https://ketaclinic.org/fhir/Questionnaire/phq9|1")[
        "total"
    ] == (1)
    by_code = _search(client, f"Questionnaire?code={LOINC}|44249-1")
    phq9 = by_code["entry"][0]["resource"]
    assert by_code["total"] == 1
    assert phq9["url"] == "https://ketaclinic.org/fhir/Questionnaire/phq9"
    assert phq9["derivedFrom"] == ["http://loinc.org/q/44249-1"]
    assert phq9["item"][8]["code"][0]["code"] == "44260-8"
    first_option = phq9["item"][0]["answerOption"][0]
    assert first_option["valueCoding"]["code"] == "LA6568-5"
    assert _search(client, "Questionnaire?code=69737-5")["entry"][0]["resource"]["id"] == "gad7"
    assert _search(client, "Questionnaire?code=http://snomed.info/sct|44249-1")["total"] == 0
    assert _search(client, "Questionnaire?url=http://loinc.org/q/44249-1")["total"] == 0
    assert valid(client.get(BASE + "Questionnaire/madrs").json())["item"][9]["linkId"] == "10"
    assert client.get(BASE + "Questionnaire/nope").status_code == 404


# --- QuestionnaireResponse create ---------------------------------------------------------------


def test_us_core_phq9_example_scores_12_with_total_observation(
    client: Any, patient_id: str
) -> None:
    response = post(client, BASE + "QuestionnaireResponse", us_core_phq9(patient_id))
    assert response.status_code == 201, response.content
    created = valid(response.json())
    assert f"QuestionnaireResponse/{created['id']}" in response["Location"]
    # The form as the sender named it (US Core's PHQ-9); scored as this server's phq9.
    assert created["questionnaire"] == us_core_phq9(patient_id)["questionnaire"]
    (stored,) = _responses()
    assert stored.total == Decimal(12)
    assert stored.answers["10"] == 1  # the functional item, kept though not scored
    # The items come back as sent; the server's score is its total Observation (44261-6).
    assert created["item"] == us_core_phq9(patient_id)["item"]
    scores = client.get(BASE + f"Observation?patient={patient_id}&code=44261-6").json()
    assert [e["resource"]["valueQuantity"]["value"] for e in scores["entry"]] == [12]
    assert audit_count(action="fhir.questionnaireresponse.total-mismatch") == 0
    found = _search(client, f"Observation?code={LOINC}|44261-6&patient={patient_id}")
    assert found["total"] == 1
    obs = found["entry"][0]["resource"]
    assert obs["valueQuantity"]["value"] == 12
    assert obs["derivedFrom"] == [{"reference": f"QuestionnaireResponse/{created['id']}"}]
    assert obs["interpretation"][0]["text"] == "Moderate"
    assert _alerts() == []  # item 9 "Not at all"


def test_sdc_example_stated_total_is_flagged_inconsistent(client: Any, patient_id: str) -> None:
    data = load("questionnaires", "hl7-sdc", "questionnaireresponse-sdc-profile-example-PHQ9.json")
    data["subject"] = {"reference": f"Patient/{patient_id}"}
    data.pop("author")
    response = client.post(
        BASE + "QuestionnaireResponse",
        data=json.dumps(data),
        content_type="application/fhir+json",
        headers={"Prefer": "return=OperationOutcome"},
    )
    assert response.status_code == 201, response.content
    outcome = valid(response.json())
    assert outcome["resourceType"] == "OperationOutcome"
    warning = next(i for i in outcome["issue"] if i["severity"] == "warning")
    assert "stated total 13" in warning["diagnostics"]
    assert "inconsistent" in warning["diagnostics"]
    assert warning["expression"] == ["QuestionnaireResponse.repeat(item).where(linkId='H1/TS')"]
    (stored,) = _responses()
    assert stored.total == Decimal(10)  # recomputed from the answers, never the stated 13
    assert audit_count(action="fhir.questionnaireresponse.total-mismatch") == 1
    (alert,) = _alerts()  # the SDC example answers item 9 "Several days"
    assert alert.response_id == stored.pk


def test_sdc_mismatch_is_reported_in_a_transaction_bundle(client: Any, patient_id: str) -> None:
    data = load("questionnaires", "hl7-sdc", "questionnaireresponse-sdc-profile-example-PHQ9.json")
    data["subject"] = {"reference": f"Patient/{patient_id}"}
    data.pop("author")
    bundle = {
        "resourceType": "Bundle",
        "type": "transaction",
        "entry": [
            {"resource": data, "request": {"method": "POST", "url": "QuestionnaireResponse"}}
        ],
    }
    response = post(client, BASE, bundle)
    assert response.status_code == 200, response.content
    entry = valid(response.json())["entry"][0]
    assert entry["response"]["status"].startswith("201")
    assert entry["response"]["outcome"]["issue"][0]["severity"] == "warning"


def test_lforms_phq9_with_item9_positive_alerts_and_is_found_by_code(
    client: Any, patient_id: str
) -> None:
    data = lforms_phq9(patient_id, [1, 1, 2, 1, 0, 0, 1, 0, 2], ordinal_items=(3, 4))
    response = post(client, BASE + "QuestionnaireResponse", data)
    assert response.status_code == 201, response.content
    created = valid(response.json())
    (stored,) = _responses()
    assert stored.total == Decimal(8)
    (alert,) = _alerts()
    assert alert.response_id == stored.pk
    assert alert.severity == SafetyAlert.Severity.CRITICAL
    assert alert.rule == "phq9@1:item-9"
    assert audit_count(action="measures.response.recorded", channel="fhir") == 1

    found = _search(client, f"Observation?code={LOINC}|44261-6")
    assert found["total"] == 1
    total = found["entry"][0]["resource"]
    assert total["id"] == f"{created['id']}.total"
    assert total["code"]["coding"][0]["code"] == "44261-6"
    assert total["category"][0]["coding"][0]["code"] == "survey"
    assert total["valueQuantity"]["value"] == 8
    assert total["derivedFrom"][0]["reference"] == f"QuestionnaireResponse/{created['id']}"
    assert len(total["hasMember"]) == 9
    item9 = _search(client, f"Observation?code={LOINC}|44260-8&patient={patient_id}")
    assert item9["total"] == 1
    assert item9["entry"][0]["resource"]["valueCodeableConcept"]["coding"][0]["code"] == (
        "LA6570-1"
    )
    read = valid(client.get(BASE + f"Observation/{created['id']}.total").json())
    assert read["valueQuantity"]["value"] == 8
    assert client.get(BASE + f"Observation/{created['id']}.nope").status_code == 404
    survey = _search(client, f"Observation?patient={patient_id}&category=survey")
    assert survey["total"] == 10  # total + 9 items
    assert _search(client, f"Observation?patient={patient_id}&category=vital-signs")["total"] == 0
    assert _search(client, f"Observation?code={LOINC}|70274-6")["total"] == 0


@pytest.mark.parametrize(
    ("change", "link_id"),
    [
        ("out-of-range", "/44260-8"),
        ("unknown-code", "/44260-8"),
        ("unknown-item", "/99999-9"),
        ("missing-required", "/44260-8"),
    ],
)
def test_invalid_answers_are_4xx_naming_the_item_and_write_nothing(
    client: Any, patient_id: str, change: str, link_id: str
) -> None:
    data = lforms_phq9(patient_id, [1, 1, 1, 1, 1, 1, 1, 1, 3])
    if change == "out-of-range":
        data["item"][8]["answer"] = [{"valueInteger": 5}]
    elif change == "unknown-code":
        data["item"][8]["answer"] = [{"valueCoding": {"system": LOINC, "code": "LA0000-0"}}]
    elif change == "unknown-item":
        data["item"].append({"linkId": "/99999-9", "answer": [{"valueInteger": 1}]})
    else:
        del data["item"][8]
    before = audit_count()
    response = post(client, BASE + "QuestionnaireResponse", data)
    assert 400 <= response.status_code < 500, response.content
    outcome = valid(response.json())
    expressions = [e for issue in outcome["issue"] for e in issue.get("expression", [])]
    assert f"QuestionnaireResponse.repeat(item).where(linkId='{link_id}')" in expressions
    assert _responses() == []
    assert _alerts() == []
    assert audit_count() == before
    if change == "missing-required":
        assert "item 9" in str(outcome)


def test_unknown_questionnaire_and_incomplete_status_are_422(client: Any, patient_id: str) -> None:
    data = lforms_phq9(patient_id, [0] * 9)
    response = post(
        client, BASE + "QuestionnaireResponse", {**data, "questionnaire": "http://x.org/q/1"}
    )
    assert response.status_code == 422
    assert response.json()["issue"][0]["expression"] == ["QuestionnaireResponse.questionnaire"]
    response = post(client, BASE + "QuestionnaireResponse", {**data, "status": "in-progress"})
    assert response.status_code == 422
    assert _responses() == []


def test_our_own_questionnaire_round_trips(client: Any, patient_id: str) -> None:
    """A response to our DAST-10 Questionnaire (answer codes of our own CodeSystem) is scored."""
    questionnaire = _search(client, "Questionnaire?_id=dast10")["entry"][0]["resource"]
    items = [
        {"linkId": i["linkId"], "answer": [{"valueCoding": i["answerOption"][0]["valueCoding"]}]}
        for i in questionnaire["item"]
    ]
    data = {
        "resourceType": "QuestionnaireResponse",
        "questionnaire": questionnaire["url"],
        "status": "completed",
        "subject": {"reference": f"Patient/{patient_id}"},
        "item": items,
    }
    response = post(client, BASE + "QuestionnaireResponse", data)
    assert response.status_code == 201, response.content
    (stored,) = _responses()
    assert stored.instrument_id == "dast10"
    assert stored.total == Decimal(1)  # item 3 is reverse-scored: its first option counts 1
    again = {**data, "item": valid(response.json())["item"]}
    assert post(client, BASE + "QuestionnaireResponse", again).status_code == 201
    found = _search(client, f"Observation?code={LOINC}|82667-7&patient={patient_id}")
    assert found["total"] == 2


# --- read, search, tenancy, audit, query counts -------------------------------------------------


def test_response_read_and_search_by_patient(client: Any, patient_id: str) -> None:
    first = post(client, BASE + "QuestionnaireResponse", us_core_phq9(patient_id)).json()
    other = post(client, BASE + "Patient", patient_json(birthDate="1970-01-01")).json()["id"]
    post(client, BASE + "QuestionnaireResponse", lforms_phq9(other, [0] * 9))
    read = valid(client.get(BASE + f"QuestionnaireResponse/{first['id']}").json())
    assert read["subject"]["reference"] == f"Patient/{patient_id}"
    mine = _search(client, f"QuestionnaireResponse?patient={patient_id}")
    assert [e["resource"]["id"] for e in mine["entry"]] == [first["id"]]
    assert _search(client, "QuestionnaireResponse?questionnaire=http://loinc.org/q/44249-1")[
        "total"
    ] == (2)
    assert _search(client, "QuestionnaireResponse?questionnaire=Questionnaire/gad7")["total"] == 0
    assert _search(client, "QuestionnaireResponse?authored=ge2024-05-01")["total"] == 1


def test_outsider_gets_404_and_sees_nothing(
    client: Any, patient_id: str, outsider: Any, members: dict[str, Any]
) -> None:
    created = post(client, BASE + "QuestionnaireResponse", us_core_phq9(patient_id)).json()
    other = api_client(outsider)
    assert other.get(BASE + f"QuestionnaireResponse/{created['id']}").status_code == 404
    assert other.get(BASE + f"Observation/{created['id']}.total").status_code == 404
    assert post(other, BASE + "QuestionnaireResponse", us_core_phq9(patient_id)).status_code == (
        404
    )
    assert _search(other, f"QuestionnaireResponse?patient={patient_id}")["total"] == 0
    assert _search(other, f"Observation?code={LOINC}|44261-6")["total"] == 0
    assert len(_responses()) == 1
    front_desk = api_client(members["front_desk"])
    assert front_desk.get(BASE + f"QuestionnaireResponse/{created['id']}").status_code == 403


def test_every_read_search_and_write_leaves_one_audit_event(client: Any, patient_id: str) -> None:
    before = audit_count(channel="fhir")
    created = post(client, BASE + "QuestionnaireResponse", us_core_phq9(patient_id)).json()
    assert audit_count(channel="fhir") == before + 1
    assert audit_count(action="measures.response.recorded", channel="fhir") == 1
    client.get(BASE + f"QuestionnaireResponse/{created['id']}")
    assert audit_count(action="fhir.questionnaireresponse.read", patient_id=patient_id) == 1
    client.get(BASE + f"QuestionnaireResponse?patient={patient_id}")
    assert audit_count(action="fhir.questionnaireresponse.searched", patient_id=patient_id) == 1
    client.get(BASE + f"Observation/{created['id']}.total")
    assert audit_count(action="fhir.observation.read", patient_id=patient_id) == 1
    client.get(BASE + "Questionnaire?code=44249-1")
    assert audit_count(channel="fhir") == before + 5


def test_observation_search_query_count_is_pinned(
    client: Any, patient_id: str, django_assert_max_num_queries: Any
) -> None:
    for day in range(1, 7):
        data = lforms_phq9(patient_id, [day % 4] * 8 + [0])
        data["authored"] = f"2024-04-0{day}T10:00:00Z"
        assert post(client, BASE + "QuestionnaireResponse", data).status_code == 201
        post(client, BASE + "Observation", weight_json(patient_id, 80, "kg", f"2024-04-0{day}"))
    # token, union count, union page, one load per table (weights, responses), audit; the
    # received JSON beside the rows, the count of Observations kept only as received
    with django_assert_max_num_queries(14):
        page = client.get(BASE + f"Observation?patient={patient_id}&_count=200").json()
    assert page["total"] == 6 + 6 * 10
    with django_assert_max_num_queries(12):
        found = client.get(BASE + f"Observation?code={LOINC}|44261-6&_sort=date").json()
    assert [e["resource"]["valueQuantity"]["value"] for e in found["entry"]] == [
        8,
        16,
        24,
        0,
        8,
        16,
    ]
    with django_assert_max_num_queries(11):  # + the received JSON kept beside the rows
        assert _search(client, f"QuestionnaireResponse?patient={patient_id}")["total"] == 6
