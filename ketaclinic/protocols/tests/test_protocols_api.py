"""Protocols, the session safety policy and plan changes through the JSON API (regression: only
the staff screens could clone, edit, publish, change a policy, move a phase or titrate)."""

from __future__ import annotations

from typing import Any

import pytest
from django_scopes import scope

from conftest import api_client
from ketaclinic.sessions.tests.builders import make_plan, make_treatable, weigh

pytestmark = pytest.mark.django_db
JSON = "application/json"


def test_clone_edit_publish_and_a_published_version_never_changes(members: Any) -> None:
    admin = api_client(members["clinic_admin"])
    assert admin.post("/api/v1/protocols/catalog").status_code == 200
    protocols = admin.get("/api/v1/protocols").json()
    source = next(p for p in protocols if p["protocol_id"] == "iv-ketamine-induction")
    assert source["status"] == "published"
    refused = admin.patch(
        f"/api/v1/protocols/{source['id']}",
        {"changes": {"title": "Edited"}},
        content_type=JSON,
    )
    assert refused.status_code == 409
    draft = admin.post(
        f"/api/v1/protocols/{source['id']}/clone", {"note": "lower cap"}, content_type=JSON
    )
    assert draft.status_code == 201, draft.json()
    assert draft.json()["status"] == "draft"
    assert draft.json()["version"] == source["version"] + 1
    edited = admin.patch(
        f"/api/v1/protocols/{draft.json()['id']}",
        {"changes": {"title": "IV ketamine (clinic)"}},
        content_type=JSON,
    )
    assert edited.status_code == 200, edited.json()
    unknown = admin.patch(
        f"/api/v1/protocols/{draft.json()['id']}",
        {"changes": {"not_a_field": 1}},
        content_type=JSON,
    )
    assert unknown.status_code == 400
    published = admin.post(f"/api/v1/protocols/{draft.json()['id']}/publish")
    assert published.status_code == 200, published.json()
    assert published.json()["status"] == "published"
    assert admin.post(f"/api/v1/protocols/{draft.json()['id']}/publish").status_code == 409
    nurse = api_client(members["nurse"])
    assert (
        nurse.post(f"/api/v1/protocols/{source['id']}/clone", {}, content_type=JSON).status_code
        == 403
    )


def test_the_safety_policy_is_published_as_a_new_version(members: Any) -> None:
    admin = api_client(members["clinic_admin"])
    current = admin.get("/api/v1/safety-policy")
    assert current.status_code == 200, current.json()
    version = current.json()["version"]
    longer = admin.post(
        "/api/v1/safety-policy",
        {"changes": {"minimum_observation_minutes_racemic": 150}, "note": "clinic review"},
        content_type=JSON,
    )
    assert longer.status_code == 201, longer.json()
    assert longer.json()["version"] == version + 1
    assert (
        admin.get("/api/v1/safety-policy").json()["data"]["minimum_observation_minutes_racemic"]
        == 150
    )
    unknown = admin.post(
        "/api/v1/safety-policy", {"changes": {"no_such_field": 1}}, content_type=JSON
    )
    assert unknown.status_code in (400, 422)
    nurse = api_client(members["nurse"])
    assert (
        nurse.post("/api/v1/safety-policy", {"changes": {}}, content_type=JSON).status_code == 403
    )


def test_phase_change_and_titration_over_the_api(
    prescriber: Any, members: Any, patient_a: Any, traveller: Any
) -> None:
    with scope(organization=prescriber.organization):
        make_treatable(prescriber, patient_a, "iv-ketamine-induction")
        weigh(prescriber, patient_a)
        plan = make_plan(prescriber, patient_a)
    doctor = api_client(members["prescriber"])
    same = doctor.post(
        f"/api/v1/plans/{plan.public_id}/phase",
        {"to_phase": plan.phase, "reason": "no change"},
        content_type=JSON,
    )
    assert same.status_code == 409
    unknown = doctor.post(
        f"/api/v1/plans/{plan.public_id}/phase", {"to_phase": "nowhere"}, content_type=JSON
    )
    assert unknown.status_code == 400
    assert unknown.json()["errors"][0]["field"] == "to_phase"
    titrated = doctor.post(
        f"/api/v1/plans/{plan.public_id}/titrations",
        {
            "direction": "increase",
            "reason": "Partial response after four sessions, well tolerated.",
            "sessions_at_current_amount": 4,
        },
        content_type=JSON,
    )
    # The same rule as the plan screen: an induction protocol's dose is fixed.
    assert titrated.status_code == 422, titrated.json()
    assert "not titrated" in titrated.json()["detail"]
    nurse = api_client(members["nurse"])
    assert (
        nurse.post(
            f"/api/v1/plans/{plan.public_id}/phase", {"to_phase": "x"}, content_type=JSON
        ).status_code
        == 403
    )
