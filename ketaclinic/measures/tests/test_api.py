"""JSON API: the same validation as the UI, outcomes, alerts; tenancy, audit and query counts."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django_scopes import scope

from conftest import api_client, audit_count, make_patient
from ketaclinic.measures import selectors
from ketaclinic.measures.models import QuestionnaireResponse, SafetyAlert
from ketaclinic.measures.tests.builders import phq9, phq9_total

pytestmark = pytest.mark.django_db


@pytest.fixture
def patient(prescriber):
    return make_patient(prescriber)


def post(client, patient, body):
    return client.post(
        f"/api/v1/patients/{patient.public_id}/responses", body, content_type="application/json"
    )


def stored(org):
    with scope(organization=org):
        return QuestionnaireResponse.objects.count(), SafetyAlert.objects.count()


def test_post_scores_stores_and_alerts_once_audited(members, patient, org_a):
    before = audit_count(action="measures.response.recorded")
    response = post(
        api_client(members["nurse"]), patient, {"instrument_id": "phq9", "answers": phq9(item9=1)}
    )
    assert response.status_code == 201, response.content
    body = response.json()
    assert body["total"] == "9"
    assert body["rule"] == "phq9@1"
    assert body["severity"] == "mild"
    assert body["alert"] is not None
    assert stored(org_a) == (1, 1)
    assert audit_count(action="measures.response.recorded") == before + 1


@pytest.mark.parametrize(
    ("answers", "field"),
    [
        ({**phq9(), "9": 7}, "answers.9"),
        ({**phq9(), "99": 0}, "answers.99"),
        ({k: v for k, v in phq9().items() if k != "2"}, "answers.2"),
    ],
)
def test_invalid_answers_are_400_with_the_field_and_write_nothing(
    members, patient, org_a, answers, field
):
    client = api_client(members["nurse"])
    before = audit_count()
    response = post(client, patient, {"instrument_id": "phq9", "answers": answers})
    assert response.status_code == 400
    assert response.json()["errors"][0]["field"] == field
    assert stored(org_a) == (0, 0)
    assert audit_count() == before


def test_a_non_integer_answer_is_a_4xx(members, patient, org_a):
    response = post(
        api_client(members["nurse"]),
        patient,
        {"instrument_id": "phq9", "answers": {**phq9(), "1": "lots"}},
    )
    assert response.status_code == 422
    assert stored(org_a) == (0, 0)


def test_an_outsider_gets_404_and_nothing_is_written(outsider, patient, org_a):
    client = api_client(outsider)
    assert post(client, patient, {"instrument_id": "phq9", "answers": phq9()}).status_code == 404
    assert client.get(f"/api/v1/patients/{patient.public_id}/responses").status_code == 404
    assert client.get(f"/api/v1/patients/{patient.public_id}/outcomes/phq9").status_code == 404
    assert stored(org_a) == (0, 0)


def test_list_and_get_are_audited_reads_with_fixed_query_counts(members, prescriber, patient):
    client = api_client(members["prescriber"])
    post(client, patient, {"instrument_id": "phq9", "answers": phq9()})
    url = f"/api/v1/patients/{patient.public_id}/responses"
    with CaptureQueriesContext(connection) as one:
        assert client.get(url).json()["count"] == 1
    for _ in range(5):
        post(client, patient, {"instrument_id": "phq9", "answers": phq9()})
    before = audit_count(action="measures.responses.read")
    with CaptureQueriesContext(connection) as many:
        assert client.get(url).json()["count"] == 6
    assert len(many) == len(one)
    assert audit_count(action="measures.responses.read") == before + 1
    item = client.get(url).json()["items"][0]
    assert client.get(f"/api/v1/responses/{item['id']}").status_code == 200


def test_outcomes_report_baseline_response_and_remission(monkeypatch, members, prescriber, patient):
    client = api_client(members["prescriber"])
    start = datetime.now(UTC) - timedelta(days=20)
    for days, total in ((0, 18), (14, 3)):
        post(
            client,
            patient,
            {
                "instrument_id": "phq9",
                "answers": phq9_total(total),
                "completed_at": (start + timedelta(days=days)).isoformat(),
            },
        )
    monkeypatch.setattr(selectors, "treatment_session_dates", lambda p: [start + timedelta(days=1)])
    body = client.get(f"/api/v1/patients/{patient.public_id}/outcomes/phq9").json()
    assert body["baseline"]["score"] == "18"
    assert body["response"]["met"] is True
    assert body["remission"]["met"] is True
    assert body["response"]["rule"] == "outcome-response@1"
    assert len(body["series"]) == 2


def test_outcomes_without_sessions_say_no_baseline(members, patient):
    client = api_client(members["prescriber"])
    post(client, patient, {"instrument_id": "phq9", "answers": phq9()})
    body = client.get(f"/api/v1/patients/{patient.public_id}/outcomes/phq9").json()
    assert body["baseline"] is None
    assert body["response"]["met"] is None


def test_alerts_list_and_acknowledge(members, patient, org_a):
    nurse = api_client(members["nurse"])
    post(nurse, patient, {"instrument_id": "phq9", "answers": phq9(item9=3)})
    alerts = nurse.get("/api/v1/alerts").json()
    assert len(alerts) == 1
    url = f"/api/v1/alerts/{alerts[0]['id']}/acknowledge"
    assert nurse.post(url, {"note": ""}, content_type="application/json").status_code == 422
    done = nurse.post(url, {"note": "Called; safety plan"}, content_type="application/json")
    assert done.status_code == 200
    assert done.json()["acknowledged_at"]
    again = nurse.post(url, {"note": "again"}, content_type="application/json")
    assert again.status_code == 409
    assert nurse.get("/api/v1/alerts").json() == []


def test_an_outsider_cannot_see_or_acknowledge_alerts(members, outsider, patient):
    post(api_client(members["nurse"]), patient, {"instrument_id": "phq9", "answers": phq9(item9=1)})
    alert_id = api_client(members["nurse"]).get("/api/v1/alerts").json()[0]["id"]
    client = api_client(outsider)
    assert client.get("/api/v1/alerts").json() == []
    response = client.post(
        f"/api/v1/alerts/{alert_id}/acknowledge", {"note": "x"}, content_type="application/json"
    )
    assert response.status_code == 404


def test_a_link_can_be_created_through_the_api(members, patient):
    response = api_client(members["nurse"]).post(
        f"/api/v1/patients/{patient.public_id}/measure-links",
        {"instrument_id": "phq9", "language": "es"},
        content_type="application/json",
    )
    assert response.status_code == 201
    assert "/portal/m/" in response.json()["url"]
    bad = api_client(members["nurse"]).post(
        f"/api/v1/patients/{patient.public_id}/measure-links",
        {"instrument_id": "madrs"},
        content_type="application/json",
    )
    assert bad.status_code == 400
