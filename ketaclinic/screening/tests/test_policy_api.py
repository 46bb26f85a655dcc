"""The screening policy, measure schedules and resting vital signs through the JSON API
(regression: these were UI-only actions)."""

from __future__ import annotations

from typing import Any

import pytest
from django_scopes import scope

from conftest import api_client
from ketaclinic.patients import services as chart

pytestmark = pytest.mark.django_db
JSON = "application/json"


def test_the_screening_policy_publishes_a_new_version_and_keeps_label_locks(
    members: Any,
) -> None:
    admin = api_client(members["clinic_admin"])
    current = admin.get("/api/v1/screening/policy")
    assert current.status_code == 200, current.json()
    assert current.json()["data"]["minimum_adequate_trial_weeks"] == 4
    longer = admin.post(
        "/api/v1/screening/policy",
        {"changes": {"minimum_adequate_trial_weeks": 6}, "note": "Six-week trials, per review."},
        content_type=JSON,
    )
    assert longer.status_code == 201, longer.json()
    assert longer.json()["data"]["minimum_adequate_trial_weeks"] == 6
    assert admin.get("/api/v1/screening/policy").json()["data"]["minimum_adequate_trial_weeks"] == 6
    shorter = admin.post(
        "/api/v1/screening/policy",
        {"changes": {"minimum_adequate_trial_weeks": 2}, "note": "Try shorter trials."},
        content_type=JSON,
    )
    assert shorter.status_code == 400
    no_reason = admin.post(
        "/api/v1/screening/policy",
        {"changes": {"minimum_age_years": 21}, "note": " "},
        content_type=JSON,
    )
    assert no_reason.status_code == 400
    assert {e["field"] for e in no_reason.json()["errors"]} == {"note"}
    assert api_client(members["nurse"]).get("/api/v1/screening/policy").status_code == 403


def test_a_measure_schedule_over_the_api(members: Any, patient_a: Any) -> None:
    doctor = api_client(members["prescriber"])
    made = doctor.post(
        f"/api/v1/patients/{patient_a.public_id}/measure-schedules",
        {"instrument_id": "phq9", "cadence": "weekly"},
        content_type=JSON,
    )
    assert made.status_code == 201, made.json()
    assert made.json()["is_active"] is True
    bad = doctor.post(
        f"/api/v1/patients/{patient_a.public_id}/measure-schedules",
        {"instrument_id": "phq9", "cadence": "hourly"},
        content_type=JSON,
    )
    assert bad.status_code == 400
    assert bad.json()["errors"][0]["field"] == "cadence"
    researcher = api_client(members["researcher"]).post(
        f"/api/v1/patients/{patient_a.public_id}/measure-schedules",
        {"instrument_id": "phq9", "cadence": "weekly"},
        content_type=JSON,
    )
    assert researcher.status_code == 403


def test_a_resting_vital_sign_is_marked_entered_in_error(
    prescriber: Any, members: Any, patient_a: Any
) -> None:
    with scope(organization=prescriber.organization):
        reading = chart.vital_sign_record(
            actor=prescriber,
            patient=patient_a,
            kind="bp",
            value=148,
            value_diastolic=92,
            unit="mm[Hg]",
            code="85354-9",
        )
    doctor = api_client(members["prescriber"])
    gone = doctor.delete(f"/api/v1/vitals/{reading.public_id}?reason=wrong+patient")
    assert gone.status_code == 204
    reading.refresh_from_db()
    assert reading.entered_in_error
