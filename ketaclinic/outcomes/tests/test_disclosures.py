"""Accounting of disclosures per patient (issue 12 item 3): who saw or received what, when, as a
screen, a CSV download and a JSON API route for compliance. Before: there was none."""

from __future__ import annotations

import csv
import io
import uuid
from typing import Any

import pytest
from django_scopes import scope

from conftest import api_client, audit_count, make_patient, staff_client
from ketaclinic.messaging.models import Message
from ketaclinic.outcomes.models import DataExport

pytestmark = pytest.mark.django_db


def test_compliance_sees_who_read_the_chart_exports_and_messages(
    members: dict[str, Any], prescriber: Any, django_assert_max_num_queries: Any
) -> None:
    patient = make_patient(prescriber)
    other = make_patient(prescriber, given_name="Grace", family_name="Hopper")
    nurse = members["nurse"]
    staff_client(nurse).get(f"/patients/{patient.public_id}/")  # a nurse reads the chart
    api_client(members["therapist"]).get(f"/fhir/r4/Patient/{patient.public_id}")
    staff_client(nurse).get(f"/patients/{other.public_id}/")  # not this patient's
    organization = prescriber.organization
    with scope(organization=organization):
        Message.objects.create(
            organization=organization,
            patient=patient,
            kind="appointment.reminder",
            channel="email",
            to_address="ada@example.org",
            status="sent",
            sent_at=patient.created_at,
        )
        DataExport.objects.create(
            organization=organization,
            kind=DataExport.Kind.FHIR_BULK,
            requested_by=members["compliance"].user,
            requester_role="compliance",
            channel="fhir",
            rule_version="fhir-bulk@1",
            status=DataExport.Status.DONE,
            finished_at=patient.created_at,
        )
    compliance = api_client(members["compliance"])
    before = audit_count(action="audit.disclosures.read")
    with django_assert_max_num_queries(12):
        response = compliance.get(f"/api/v1/patients/{patient.public_id}/disclosures")
    assert response.status_code == 200, response.content
    assert audit_count(action="audit.disclosures.read") == before + 1
    items = response.json()["items"]
    readers = {(i["who"], i["channel"]) for i in items if i["kind"] == "access"}
    assert (nurse.user.username, "ui") in readers
    assert (members["therapist"].user.username, "fhir") in readers
    assert any(i["kind"] == "message" and "ada@example.org" in i["what"] for i in items)
    assert any(
        i["kind"] == "export" and i["who"] == members["compliance"].user.username for i in items
    )
    times = [i["at"] for i in items]
    assert times == sorted(times, reverse=True)

    page = staff_client(members["compliance"]).get(
        f"/outcomes/patients/{patient.public_id}/disclosures/"
    )
    assert page.status_code == 200
    assert nurse.user.username.encode() in page.content
    download = staff_client(members["compliance"]).get(
        f"/outcomes/patients/{patient.public_id}/disclosures/?format=csv"
    )
    assert download["Content-Type"] == "text/csv"
    rows = list(csv.DictReader(io.StringIO(download.content.decode())))
    assert any(r["who"] == nurse.user.username and r["kind"] == "access" for r in rows)
    assert not any("Hopper" in r["what"] for r in rows)


def test_only_audit_readers_see_it_and_a_foreign_patient_is_404(
    members: dict[str, Any], prescriber: Any, outsider: Any
) -> None:
    patient = make_patient(prescriber)
    url = f"/api/v1/patients/{patient.public_id}/disclosures"
    assert api_client(members["nurse"]).get(url).status_code == 403
    assert api_client(members["clinic_admin"]).get(url).status_code == 200
    assert api_client(outsider).get(url).status_code in (403, 404)
    random = f"/api/v1/patients/{uuid.uuid4()}/disclosures"
    before = audit_count(outcome="denied")
    assert api_client(members["compliance"]).get(random).status_code == 404
    assert audit_count(outcome="denied") == before + 1
