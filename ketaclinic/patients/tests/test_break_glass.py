"""Break-glass access to a patient outside one's assignment, for every clinical role (issue 12
item 2): a reason, a time limit, an alert to compliance, and audit events. Before: only a
psychotherapy note could be read by breaking the glass, and nothing kept a clinician to their
patients."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
import time_machine
from django_scopes import scope

from conftest import actor_for, api_client, audit_count, make_patient, staff_client
from ketaclinic.core import clock
from ketaclinic.patients import access

pytestmark = pytest.mark.django_db
REASON = "Covering the on-call nurse: patient called in with chest pain after the session"


@pytest.fixture
def kept(members: dict[str, Any]) -> dict[str, Any]:
    admin = api_client(members["clinic_admin"])
    response = admin.put(
        "/api/v1/setup/care-team-policy", {"care_team_only": True}, content_type="application/json"
    )
    assert response.status_code == 200, response.content
    return members


@pytest.mark.parametrize("role", ["prescriber", "nurse", "therapist"])
def test_a_clinician_outside_the_care_team_breaks_the_glass_for_a_while(
    kept: dict[str, Any], prescriber: Any, role: str
) -> None:
    patient = make_patient(prescriber)
    client = api_client(kept[role])
    chart = f"/api/v1/patients/{patient.public_id}"
    before = audit_count(action="patients.patient.outside_assignment", outcome="denied")
    assert client.get(chart).status_code == 403
    assert audit_count(action="patients.patient.outside_assignment") == before + 1

    short = client.post(
        f"{chart}/break-glass", {"reason": "need it"}, content_type="application/json"
    )
    assert short.status_code == 400
    assert short.json()["errors"][0]["field"] == "reason"
    opened = client.post(
        f"{chart}/break-glass", {"reason": REASON, "minutes": 30}, content_type="application/json"
    )
    assert opened.status_code == 201, opened.content
    assert audit_count(action="patients.break_glass.opened", patient_id=patient.public_id) == 1
    assert client.get(chart).status_code == 200
    with time_machine.travel(clock.now() + timedelta(minutes=31)):
        assert client.get(chart).status_code == 403  # the access lapsed on its own


def test_compliance_is_alerted_on_today_and_reviews(kept: dict[str, Any], prescriber: Any) -> None:
    patient = make_patient(prescriber)
    nurse = staff_client(kept["nurse"])
    refused = nurse.get(f"/patients/{patient.public_id}/")
    assert refused.status_code == 403
    assert f"/patients/{patient.public_id}/break-glass/".encode() in refused.content
    form = nurse.post(
        f"/patients/{patient.public_id}/break-glass/", {"reason": REASON, "minutes": "60"}
    )
    assert form.status_code == 302
    assert nurse.get(f"/patients/{patient.public_id}/").status_code == 200

    compliance = staff_client(kept["compliance"])
    today = compliance.get("/").content.decode()
    assert "Access to review" in today
    assert "outside their care team" in today
    assert "chest pain" in today
    api = api_client(kept["compliance"])
    waiting = api.get("/api/v1/break-glass?unreviewed=true").json()
    assert [w["user"] for w in waiting] == [kept["nurse"].user.username]
    reviewed = api.post(
        f"/api/v1/break-glass/{waiting[0]['id']}/review",
        {"note": "confirmed with the on-call roster"},
        content_type="application/json",
    )
    assert reviewed.status_code == 200
    assert "outside their care team" not in compliance.get("/").content.decode()
    assert audit_count(action="patients.break_glass.reviewed") == 1
    # The accounting of disclosures names the access and its reason.
    items = api.get(f"/api/v1/patients/{patient.public_id}/disclosures").json()["items"]
    assert any(i["kind"] == "break-glass" and "chest pain" in i["what"] for i in items)


def test_the_care_team_opens_charts_without_breaking_glass(
    kept: dict[str, Any], prescriber: Any
) -> None:
    patient = make_patient(prescriber)
    nurse = kept["nurse"]
    assert api_client(nurse).get(f"/api/v1/patients/{patient.public_id}").status_code == 403
    added = api_client(kept["prescriber"]).post(
        f"/api/v1/patients/{patient.public_id}/care-team",
        {"username": nurse.user.username},
        content_type="application/json",
    )
    assert added.status_code == 201, added.content
    assert api_client(nurse).get(f"/api/v1/patients/{patient.public_id}").status_code == 200
    prescriber_api = api_client(kept["prescriber"])
    team = prescriber_api.get(f"/api/v1/patients/{patient.public_id}/care-team").json()
    assert [m["username"] for m in team] == [nurse.user.username]
    removed = prescriber_api.delete(
        f"/api/v1/patients/{patient.public_id}/care-team/{nurse.user.username}"
    )
    assert removed.status_code == 204
    assert audit_count(action="patients.care_team.removed") == 1
    assert api_client(nurse).get(f"/api/v1/patients/{patient.public_id}").status_code == 403
    prescriber_api.post(
        f"/api/v1/patients/{patient.public_id}/care-team",
        {"username": nurse.user.username},
        content_type="application/json",
    )
    # Oversight roles are not kept to care teams; the front desk cannot break the glass.
    assert (
        api_client(kept["compliance"]).get(f"/api/v1/patients/{patient.public_id}").status_code
        == 200
    )
    desk = api_client(kept["front_desk"]).post(
        f"/api/v1/patients/{patient.public_id}/break-glass",
        {"reason": REASON},
        content_type="application/json",
    )
    assert desk.status_code == 403


def test_without_the_policy_nothing_changes(members: dict[str, Any], prescriber: Any) -> None:
    patient = make_patient(prescriber)
    with scope(organization=prescriber.organization):
        assert not access.kept_to_care_team(actor_for(members["nurse"]))
    assert (
        api_client(members["nurse"]).get(f"/api/v1/patients/{patient.public_id}").status_code == 200
    )


def test_a_session_reached_by_its_own_id_is_kept_to_the_care_team_too(
    kept: dict[str, Any], prescriber: Any, patient_a: Any, traveller: Any
) -> None:
    """The session's screens and its JSON API check the patient's assignment as the chart does:
    a nurse outside the care team is refused until they break the glass."""
    from ketaclinic.sessions.models import VitalsEntry
    from ketaclinic.sessions.tests.builders import session_checked_in

    with scope(organization=prescriber.organization):
        access.care_team_add(
            actor=prescriber, patient_id=patient_a.public_id, username=prescriber.user.username
        )
        session = session_checked_in(prescriber, patient_a)
    nurse = api_client(kept["nurse"])
    screen = staff_client(kept["nurse"])
    session_url = f"/api/v1/sessions/{session.public_id}"
    assert nurse.get(session_url).status_code == 403
    assert screen.get(f"/sessions/{session.public_id}/").status_code == 403
    sample = {"systolic": 122, "diastolic": 78, "heart_rate": 72, "spo2": 98}
    vitals = nurse.post(
        f"{session_url}/vitals", {"samples": [sample]}, content_type="application/json"
    )
    assert vitals.status_code == 403
    with scope(organization=prescriber.organization):
        assert not VitalsEntry.objects.filter(session=session).exists()
    opened = nurse.post(
        f"/api/v1/patients/{patient_a.public_id}/break-glass",
        {"reason": REASON},
        content_type="application/json",
    )
    assert opened.status_code == 201, opened.content
    assert nurse.get(session_url).status_code == 200
    assert screen.get(f"/sessions/{session.public_id}/").status_code == 200
