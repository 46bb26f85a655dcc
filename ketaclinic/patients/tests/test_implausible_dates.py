"""Issue 10: a clinical time before the patient was born (a typed year, a default date in a feed)
is refused with a field error and stores nothing, through the JSON API like any other path."""

from __future__ import annotations

from typing import Any

import pytest
from django_scopes import scope

from conftest import api_client
from ketaclinic.measures.models import QuestionnaireResponse
from ketaclinic.patients.models import BodyWeight, MedicationStatement

pytestmark = pytest.mark.django_db


def test_a_weight_dated_before_birth_is_refused(
    members: Any, patient_a: Any, prescriber: Any
) -> None:
    nurse = api_client(members["nurse"])
    answer = nurse.post(
        f"/api/v1/patients/{patient_a.public_id}/weights",
        {"value": "80", "unit": "kg", "measured_at": "1920-03-02T15:00:00Z"},
        content_type="application/json",
    )
    assert answer.status_code == 400, answer.json()
    assert answer.json()["errors"][0]["field"] == "measured_at"
    assert (
        "before the patient's date of birth (1985-12-10)" in answer.json()["errors"][0]["message"]
    )
    with scope(organization=prescriber.organization):
        assert not BodyWeight.objects.filter(patient=patient_a).exists()


def test_a_questionnaire_completed_before_birth_is_refused(
    members: Any, patient_a: Any, prescriber: Any
) -> None:
    answers = {str(i): 0 for i in range(1, 10)}
    answer = api_client(members["nurse"]).post(
        f"/api/v1/patients/{patient_a.public_id}/responses",
        {"instrument_id": "phq9", "answers": answers, "completed_at": "1980-01-01T12:00:00Z"},
        content_type="application/json",
    )
    assert answer.status_code == 400, answer.json()
    assert answer.json()["errors"][0]["field"] == "completed_at"
    with scope(organization=prescriber.organization):
        assert not QuestionnaireResponse.objects.filter(patient=patient_a).exists()


def test_a_medication_started_before_birth_is_refused(patient_a: Any, prescriber: Any) -> None:
    from datetime import date

    from ketaclinic.core.errors import ValidationFailed
    from ketaclinic.patients import services

    with scope(organization=prescriber.organization):
        with pytest.raises(ValidationFailed) as refused:
            services.medication_add(
                actor=prescriber,
                patient=patient_a,
                data={"drug_name": "sertraline", "start_date": date(1970, 1, 1)},
            )
        assert refused.value.errors[0].field == "start_date"
        assert not MedicationStatement.objects.filter(patient=patient_a).exists()
