"""The audit trail as JSON and as FHIR AuditEvent for compliance (regression: it was only a CSV
download): filters by patient, user, action and dates, paging, the capability, and every read
of the trail recorded in the trail."""

from __future__ import annotations

from typing import Any

import pytest
from django_scopes import scopes_disabled
from fhir.resources.R4B import get_fhir_model_class

from conftest import api_client, make_member, make_patient
from ketaclinic.accounts.audit import audit_seal
from ketaclinic.accounts.models import AuditEvent

pytestmark = pytest.mark.django_db


def valid(data: dict[str, Any]) -> dict[str, Any]:
    """The JSON is a valid R4B resource (a Bundle: every entry too)."""
    get_fhir_model_class(data["resourceType"]).model_validate(data)
    return data


FHIR = "application/fhir+json"


@pytest.fixture
def trail(prescriber: Any) -> dict[str, Any]:
    first = make_patient(prescriber)
    second = make_patient(prescriber, given_name="Grace", family_name="Hopper")
    audit_seal()  # what the worker does within seconds: the events have their chain hashes
    return {"first": first, "second": second}


def test_compliance_filters_pages_and_is_itself_audited(
    trail: Any, members: Any, prescriber: Any
) -> None:
    officer = api_client(members["compliance"])
    first = trail["first"].public_id
    about_first = officer.get(f"/api/v1/audit-events?patient={first}")
    assert about_first.status_code == 200, about_first.json()
    body = about_first.json()
    assert body["count"] >= 1
    assert {e["patient"] for e in body["items"]} == {str(first)}
    assert body["items"][0]["action"] == "patients.patient.created"
    assert body["items"][0]["user"] == prescriber.user.username
    assert len(body["items"][0]["hash"]) == 64

    by_user = officer.get(f"/api/v1/audit-events?user={prescriber.user.username}&limit=1")
    assert by_user.json()["count"] >= 2
    assert len(by_user.json()["items"]) == 1
    second_page = officer.get(
        f"/api/v1/audit-events?user={prescriber.user.username}&limit=1&offset=1"
    )
    assert second_page.json()["items"][0]["id"] != by_user.json()["items"][0]["id"]

    by_action = officer.get("/api/v1/audit-events?action=patients.patient.created").json()
    assert by_action["count"] == 2
    dated = officer.get("/api/v1/audit-events?start=2000-01-01&end=2000-01-02").json()
    assert dated["count"] == 0
    backwards = officer.get("/api/v1/audit-events?start=2026-01-02&end=2026-01-01")
    assert backwards.status_code == 400
    assert backwards.json()["errors"][0]["field"] == "end"

    one = officer.get(f"/api/v1/audit-events/{body['items'][0]['id']}")
    assert one.status_code == 200
    assert one.json()["action"] == "patients.patient.created"
    with scopes_disabled():
        reads = list(AuditEvent.objects.filter(action="audit.read").order_by("pk"))
    assert reads[0].actor_username == members["compliance"].user.username
    assert reads[0].detail["filters"] == {"patient": str(first)}
    assert reads[0].patient_id == first


def test_only_audit_roles_read_it_and_only_their_clinic(
    trail: Any, members: Any, org_b: Any
) -> None:
    assert api_client(members["nurse"]).get("/api/v1/audit-events").status_code == 403
    other_officer = make_member(org_b, "compliance", username="officer-b")
    stranger = api_client(other_officer).get("/api/v1/audit-events").json()
    first = str(trail["first"].public_id)
    assert all(e["patient"] != first for e in stranger["items"])
    with scopes_disabled():
        theirs = AuditEvent.objects.filter(organization=org_b).count()
    assert stranger["count"] == theirs - 1  # its own read is recorded after the page
    missing = api_client(other_officer).get(f"/fhir/r4/AuditEvent?patient=Patient/{first}")
    assert missing.json()["total"] == 0


def test_fhir_auditevent_read_and_search(trail: Any, members: Any) -> None:
    officer = api_client(members["compliance"])
    first = trail["first"].public_id
    found = officer.get(f"/fhir/r4/AuditEvent?patient=Patient/{first}", HTTP_ACCEPT=FHIR)
    assert found.status_code == 200, found.content
    bundle = valid(found.json())
    assert bundle["total"] >= 1
    event = bundle["entry"][0]["resource"]
    assert event["type"]["code"] == "patients.patient.created"
    assert event["outcome"] == "0"
    patient_entity = next(e for e in event["entity"] if e.get("what", {}).get("reference"))
    assert patient_entity["what"]["reference"] == f"Patient/{first}"
    chain = next(e for e in event["entity"] if e["type"]["code"] == "chain-link")
    assert {d["type"] for d in chain["detail"]} == {"seq", "hash", "prev_hash"}
    read = officer.get(f"/fhir/r4/AuditEvent/{event['id']}", HTTP_ACCEPT=FHIR)
    assert read.status_code == 200
    assert valid(read.json())["id"] == event["id"]
    assert officer.get("/fhir/r4/AuditEvent/999999", HTTP_ACCEPT=FHIR).status_code == 404
    typed = officer.get(
        "/fhir/r4/AuditEvent?type=patients.patient.created&_sort=date", HTTP_ACCEPT=FHIR
    ).json()
    assert typed["total"] == 2
    bad = officer.get("/fhir/r4/AuditEvent?outcome=99", HTTP_ACCEPT=FHIR)
    assert bad.status_code == 400
    assert api_client(members["nurse"]).get("/fhir/r4/AuditEvent").status_code == 403
    with scopes_disabled():
        assert AuditEvent.objects.filter(action="fhir.auditevent.searched").count() >= 2
        assert AuditEvent.objects.filter(action="fhir.auditevent.read").count() == 1
    metadata = officer.get("/fhir/r4/metadata").json()
    types = {r["type"] for r in metadata["rest"][0]["resource"]}
    assert "AuditEvent" in types
