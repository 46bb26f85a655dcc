"""FHIR Bulk Data $export of the demo clinic, end to end without a browser: kick-off, poll,
download the NDJSON, validate every line with fhir.resources, and count against the database."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import orjson
import pytest
from django_scopes import scope, scopes_disabled
from fhir.resources.R4B import get_fhir_model_class

from conftest import api_client, audit_count, make_member
from ketaclinic.accounts.actor import Actor
from ketaclinic.accounts.models import Membership
from ketaclinic.demo.generator import build_demo
from ketaclinic.fhir.registry import HANDLERS
from ketaclinic.fhir.search import SearchRequest
from ketaclinic.measures.models import QuestionnaireResponse
from ketaclinic.outcomes.synthetic import add_histories
from ketaclinic.patients.models import Condition, Patient
from ketaclinic.sessions.models import AdverseEvent, TreatmentSession

pytestmark = pytest.mark.django_db
BASE = "/fhir/r4/"
ASYNC: dict[str, Any] = {"HTTP_PREFER": "respond-async", "HTTP_ACCEPT": "application/fhir+json"}


@pytest.fixture
def demo(settings, tmp_path):
    settings.VAR_DIR = tmp_path
    result = build_demo(patients=30, seed=3)
    organization = result.organization
    with scopes_disabled():
        patients = list(Patient.objects.filter(organization=organization))
        prescriber = Membership.objects.get(organization=organization, role="prescriber").user
        compliance = Membership.objects.select_related("user", "organization").get(
            organization=organization, role="compliance"
        )
    add_histories(
        organization=organization,
        recorded_by=prescriber,
        patients=patients,
        start=datetime(2025, 1, 6, tzinfo=UTC),
    )
    return organization, compliance


def kick_off(client, path, capture, **params):
    with capture(execute=True):
        return client.get(f"{BASE}{path}", params, **ASYNC)


def poll(client, location):
    for _ in range(20):
        response = client.get(location)
        if response.status_code == 200:
            return response
        assert response.status_code == 202
        assert response["X-Progress"].endswith("% done")
    raise AssertionError("the export never finished")


def ndjson(client, url):
    response = client.get(url)
    assert response.status_code == 200
    assert response["Content-Type"] == "application/fhir+ndjson"
    body = b"".join(response.streaming_content)
    return [orjson.loads(line) for line in body.splitlines() if line]


def test_system_export_of_the_demo_clinic(demo, django_capture_on_commit_callbacks) -> None:
    organization, compliance = demo
    client = api_client(compliance)
    before = audit_count(action="fhir.bulk_export.requested")
    response = kick_off(client, "$export", django_capture_on_commit_callbacks)
    assert response.status_code == 202, response.content
    location = response["Content-Location"]
    assert location.startswith("http://testserver/fhir/r4/$export-status/")
    manifest = poll(client, location).json()
    assert manifest["requiresAccessToken"] is True
    assert manifest["error"] == []
    assert manifest["request"].endswith("/fhir/r4/$export")
    counts = {}
    for output in manifest["output"]:
        lines = ndjson(client, output["url"])
        assert len(lines) == output["count"]
        model = get_fhir_model_class(output["type"])
        for line in lines:
            assert line["resourceType"] == output["type"]
            model.model_validate(line)  # every line is a valid R4 resource
        counts[output["type"]] = len(lines)
    with scope(organization=organization):
        assert counts["Patient"] == Patient.objects.count() == 30
        assert counts["Condition"] == Condition.objects.count()
        assert counts["Encounter"] == TreatmentSession.objects.count() > 0
        assert counts["AdverseEvent"] == AdverseEvent.objects.count()
        assert counts["QuestionnaireResponse"] == QuestionnaireResponse.objects.count() > 0
        actor = Actor(membership=compliance, channel="api")
        for resource_type, count in counts.items():
            total = HANDLERS[resource_type].search(actor, SearchRequest(count=0)).total
            assert count == total, resource_type
    assert audit_count(action="fhir.bulk_export.requested") == before + 1
    assert audit_count(action="fhir.bulk_export.downloaded") >= len(manifest["output"])


def test_type_and_since_filter_the_output(demo, django_capture_on_commit_callbacks) -> None:
    _, compliance = demo
    client = api_client(compliance)
    response = kick_off(
        client, "Patient/$export", django_capture_on_commit_callbacks, _type="Patient,Encounter"
    )
    manifest = poll(client, response["Content-Location"]).json()
    assert [o["type"] for o in manifest["output"]] == ["Patient", "Encounter"]
    future = kick_off(
        client,
        "$export",
        django_capture_on_commit_callbacks,
        _type="Condition",
        _since="2100-01-01T00:00:00Z",
    )
    later = poll(client, future["Content-Location"]).json()
    assert later["output"][0]["count"] == 0


@pytest.mark.parametrize(
    ("path", "params", "headers", "status"),
    [
        ("$export", {}, {}, 400),  # no Prefer: respond-async
        ("$export", {"_type": "Spaceship"}, ASYNC, 400),
        ("$export", {"_outputFormat": "text/csv"}, ASYNC, 400),
        ("$export", {"_elements": "id"}, ASYNC, 400),
        ("Group/abc/$export", {}, ASYNC, 404),
    ],
)
def test_bad_kick_offs_answer_an_operation_outcome(demo, path, params, headers, status) -> None:
    _, compliance = demo
    response = api_client(compliance).get(f"{BASE}{path}", params, **headers)
    assert response.status_code == status
    assert response.json()["resourceType"] == "OperationOutcome"


def test_roles_without_bulk_export_are_refused(demo) -> None:
    organization, _ = demo
    with scopes_disabled():
        for role in ("nurse", "researcher", "admin"):
            membership = Membership.objects.get(organization=organization, user__username=role)
            response = api_client(membership).get(f"{BASE}$export", **ASYNC)
            assert response.status_code == 403, role


def test_the_status_url_answers_only_the_clinic_that_asked(
    demo, org_b, django_capture_on_commit_callbacks
) -> None:
    _, compliance = demo
    location = kick_off(api_client(compliance), "$export", django_capture_on_commit_callbacks)[
        "Content-Location"
    ]
    stranger = api_client(make_member(org_b, "compliance", username="b-compliance"))
    assert stranger.get(location).status_code == 404
    manifest = poll(api_client(compliance), location).json()
    assert stranger.get(manifest["output"][0]["url"]).status_code == 404


def test_delete_cancels_and_removes_the_files(demo, django_capture_on_commit_callbacks) -> None:
    _, compliance = demo
    client = api_client(compliance)
    location = kick_off(client, "$export", django_capture_on_commit_callbacks, _type="Patient")[
        "Content-Location"
    ]
    url = poll(client, location).json()["output"][0]["url"]
    assert client.delete(location).status_code == 202
    assert client.get(url).status_code == 404
