"""The flowsheet's monitoring records through the JSON API (regression: observations, session
medications and the REMS monitoring form could only be recorded on the staff screens)."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from django_scopes import scope

from conftest import SESSION_DAY, api_client
from ketaclinic.sessions import services
from ketaclinic.sessions.tests.builders import session_prechecked

pytestmark = pytest.mark.django_db
JSON = "application/json"
T0 = SESSION_DAY


@pytest.fixture
def dosed(prescriber: Any, patient_a: Any, traveller: Any) -> Any:
    with scope(organization=prescriber.organization):
        session = session_prechecked(prescriber, patient_a, "esketamine-trd")
        services.dose_order_sign(actor=prescriber, session=session)
        services.dose_administer(
            actor=prescriber, session=session, dose_mg="56", lot_number="SPR-9", ended_at=T0
        )
    traveller.move_to(T0 + timedelta(minutes=40))
    return session


def test_observations_and_session_medications(dosed: Any, members: Any) -> None:
    nurse = api_client(members["nurse"])
    base = f"/api/v1/sessions/{dosed.public_id}"
    cadss = nurse.post(f"{base}/observations", {"kind": "cadss", "score": 12}, content_type=JSON)
    assert cadss.status_code == 201, cadss.json()
    assert cadss.json()["instrument"] == "cadss@1"
    wrong = nurse.post(f"{base}/observations", {"kind": "sedation", "score": 6}, content_type=JSON)
    assert wrong.status_code == 400
    assert wrong.json()["errors"][0]["field"] == "score"
    effects = nurse.post(
        f"{base}/observations",
        {"kind": "side_effects", "data": {"nausea": True, "made_up": True}},
        content_type=JSON,
    )
    assert effects.status_code == 400
    given = nurse.post(
        f"{base}/interventions",
        {"drug_name": "ondansetron", "dose_text": "4 mg", "route": "oral", "reason": "nausea"},
        content_type=JSON,
    )
    assert given.status_code == 201, given.json()
    assert given.json()["drug_name"] == "ondansetron"
    unknown_event = nurse.post(
        f"{base}/interventions",
        {
            "drug_name": "ondansetron",
            "dose_text": "4 mg",
            "route": "oral",
            "reason": "nausea",
            "adverse_event": "00000000-0000-0000-0000-000000000000",
        },
        content_type=JSON,
    )
    assert unknown_event.status_code == 400
    assert unknown_event.json()["errors"][0]["field"] == "adverse_event"


def test_the_rems_form_answers_and_its_submission_date(
    dosed: Any, members: Any, traveller: Any
) -> None:
    nurse = api_client(members["nurse"])
    base = f"/api/v1/sessions/{dosed.public_id}/pmf"
    assert nurse.get(base).status_code == 404  # made at discharge or by the first answers
    answered = nurse.patch(
        base, {"answers": {"concomitant_benzodiazepines": False}}, content_type=JSON
    )
    assert answered.status_code == 200, answered.json()
    assert answered.json()["data"]["concomitant_benzodiazepines"] is False
    form = nurse.get(base)
    assert form.status_code == 200, form.json()
    assert form.json()["submitted_on"] is None
    from_the_record = nurse.patch(base, {"answers": {"lot_number": "X"}}, content_type=JSON)
    assert from_the_record.status_code == 400
    treatment_day = form.json()["treatment_date"]
    future = nurse.post(f"{base}/submitted", {"submitted_on": "2099-01-01"}, content_type=JSON)
    assert future.status_code == 400
    assert future.json()["errors"][0]["message"] == "The date is in the future."
    before = nurse.post(f"{base}/submitted", {"submitted_on": "2020-01-01"}, content_type=JSON)
    assert before.status_code == 400
    assert "before the treatment" in before.json()["errors"][0]["message"]
    incomplete = nurse.post(f"{base}/submitted", {"submitted_on": treatment_day}, content_type=JSON)
    assert incomplete.status_code == 422  # the form is not complete yet: never marked sent
