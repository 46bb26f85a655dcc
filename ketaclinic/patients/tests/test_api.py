from datetime import timedelta

import pytest
import time_machine
from django.utils import timezone
from django_scopes import scope

from conftest import api_client, audit_count, make_patient
from ketaclinic.patients import services
from ketaclinic.patients.models import Patient

pytestmark = pytest.mark.django_db

NEW_PATIENT = {
    "given_name": "Kim",
    "family_name": "Lee",
    "birth_date": "1990-01-02",
    "sex_at_birth": "male",
}


@pytest.fixture
def api(members):
    return api_client(members["prescriber"])


def test_create_read_update_a_patient(api, members):
    created = api.post("/api/v1/patients", NEW_PATIENT, content_type="application/json")
    assert created.status_code == 201, created.content
    patient_id = created.json()["id"]
    assert created.json()["mrn"].startswith("KC")
    read = api.get(f"/api/v1/patients/{patient_id}")
    assert read.json()["family_name"] == "Lee"
    patched = api.patch(
        f"/api/v1/patients/{patient_id}", {"pronouns": "he/him"}, content_type="application/json"
    )
    assert patched.status_code == 200
    assert patched.json()["pronouns"] == "he/him"
    assert audit_count(action="patients.patient.updated") == 1


def test_errors_name_the_field_and_write_nothing(api, members):
    before = audit_count()
    bad = dict(NEW_PATIENT, birth_date="2999-01-01")
    response = api.post("/api/v1/patients", bad, content_type="application/json")
    assert response.status_code == 400
    body = response.json()
    assert body["errors"] == [
        {"field": "birth_date", "message": "The date of birth cannot be in the future."}
    ]
    with scope(organization=members["prescriber"].organization):
        assert not Patient.objects.exists()
    assert audit_count() == before


def test_malformed_input_is_a_422_with_field_errors_never_a_500(api):
    response = api.post(
        "/api/v1/patients",
        {"given_name": "", "birth_date": "yesterday", "sex_at_birth": "x"},
        content_type="application/json",
    )
    assert response.status_code == 422
    fields = {e["field"] for e in response.json()["errors"]}
    assert {"given_name", "birth_date", "sex_at_birth", "family_name"} <= fields
    garbage = api.post("/api/v1/patients", "{not json", content_type="application/json")
    assert 400 <= garbage.status_code < 500


def test_a_weight_in_pounds_is_returned_in_kilograms(api, prescriber):
    patient = make_patient(prescriber)
    response = api.post(
        f"/api/v1/patients/{patient.public_id}/weights",
        {"value": "185", "unit": "lb"},
        content_type="application/json",
    )
    assert response.status_code == 201
    assert response.json()["weight_kg"] == "83.91"
    impossible = api.post(
        f"/api/v1/patients/{patient.public_id}/weights",
        {"value": "1800", "unit": "lb"},
        content_type="application/json",
    )
    assert impossible.status_code == 400
    assert impossible.json()["errors"][0]["field"] == "weight"


def test_without_a_valid_token_the_api_answers_401(members):
    from django.test import Client

    assert Client().get("/api/v1/patients").status_code == 401
    bad = Client(headers={"Authorization": "Bearer kc_not-a-real-token"})
    assert bad.get("/api/v1/patients").status_code == 401


def test_an_expired_token_is_refused(members):
    api = api_client(members["prescriber"])
    with time_machine.travel(timezone.now() + timedelta(days=91)):
        assert api.get("/api/v1/patients").status_code == 401


def test_lists_are_paginated(api, prescriber):
    for index in range(7):
        make_patient(prescriber, family_name=f"Page{index}")
    first = api.get("/api/v1/patients?limit=5&offset=0").json()
    second = api.get("/api/v1/patients?limit=5&offset=5").json()
    assert first["count"] == 7
    assert len(first["items"]) == 5
    assert len(second["items"]) == 2
    ids = {p["id"] for p in first["items"]} | {p["id"] for p in second["items"]}
    assert len(ids) == 7
    assert api.get("/api/v1/patients?limit=5000").status_code == 422


def test_reading_a_chart_list_leaves_exactly_one_audit_event(api, prescriber):
    patient = make_patient(prescriber)
    before = audit_count()
    assert api.get(f"/api/v1/patients/{patient.public_id}/conditions").status_code == 200
    assert audit_count() == before + 1
    assert audit_count(action="patients.conditions.read", patient_id=patient.public_id) == 1


def test_deleting_a_condition_marks_it_entered_in_error(api, prescriber):
    patient = make_patient(prescriber)
    created = api.post(
        f"/api/v1/patients/{patient.public_id}/conditions",
        {"code": "F33.1"},
        content_type="application/json",
    ).json()
    assert api.delete(f"/api/v1/conditions/{created['id']}").status_code == 204
    again = api.get(f"/api/v1/conditions/{created['id']}").json()
    assert again["entered_in_error"] is True


@pytest.mark.parametrize("history", [1, 30])
def test_list_query_counts_do_not_grow_with_history(
    api, prescriber, django_assert_max_num_queries, history
):
    patient = make_patient(prescriber)
    with scope(organization=prescriber.organization):
        for _ in range(history):
            services.weight_record(actor=prescriber, patient=patient, value="70")
            services.condition_add(actor=prescriber, patient=patient, data={"code": "F33.1"})
    with django_assert_max_num_queries(12):
        assert api.get(f"/api/v1/patients/{patient.public_id}/weights").status_code == 200
    with django_assert_max_num_queries(12):
        assert api.get(f"/api/v1/patients/{patient.public_id}/conditions").status_code == 200
    with django_assert_max_num_queries(10):
        assert api.get("/api/v1/patients?q=Lovelace").status_code == 200
