"""FHIR Bulk Data $export of the demo clinic, end to end without a browser: kick-off, poll,
download the NDJSON, validate every line with fhir.resources, and count against the database."""

from __future__ import annotations

from contextlib import contextmanager
from datetime import UTC, datetime
from io import StringIO
from typing import Any

import orjson
import pytest
from django.core.management import call_command
from django.db import transaction
from django_scopes import scope, scopes_disabled
from fhir.resources.R4B import get_fhir_model_class

from conftest import api_client, audit_count, make_member
from ketaclinic.accounts.actor import Actor
from ketaclinic.accounts.models import Membership
from ketaclinic.demo.generator import build_demo
from ketaclinic.fhir.received import overlay
from ketaclinic.fhir.registry import HANDLERS
from ketaclinic.fhir.search import SearchRequest
from ketaclinic.measures.models import QuestionnaireResponse
from ketaclinic.outcomes.filters import CohortFilters
from ketaclinic.outcomes.selectors import cohort_members
from ketaclinic.outcomes.synthetic import add_histories
from ketaclinic.patients.models import Condition, Patient
from ketaclinic.sessions.models import AdverseEvent, TreatmentSession
from tests.testdata import TEST_DATA

pytestmark = pytest.mark.django_db
BASE = "/fhir/r4/"
SYNTHEA_PATIENT = "Clemente_Kreiger_1484a42d-0eaf-4654-9cbf-6b050a5cd73b.json"
ASYNC: dict[str, Any] = {"HTTP_PREFER": "respond-async", "HTTP_ACCEPT": "application/fhir+json"}


@contextmanager
def built_once(django_db_blocker, build):
    """What `build` writes, kept for the tests of one class and rolled back after the last of
    them. Each test runs in its own savepoint inside it (as Django's TestCase.setUpTestData), so
    none sees another's changes; the xdist group keeps the class on one worker."""
    with django_db_blocker.unblock():
        outer = transaction.atomic()
        outer.__enter__()
        try:
            built = build()
        except BaseException:
            outer.__exit__(None, None, None)
            raise
    try:
        yield built
    finally:
        with django_db_blocker.unblock():
            transaction.set_rollback(True)
            outer.__exit__(None, None, None)


def _compliance_of(organization_id):
    with scopes_disabled():
        compliance = Membership.objects.select_related("user", "organization").get(
            organization_id=organization_id, role="compliance"
        )
    return compliance.organization, compliance


def _demo_with_histories():
    organization = build_demo(patients=30, seed=3).organization
    with scopes_disabled():
        patients = list(Patient.objects.filter(organization=organization))
        prescriber = Membership.objects.get(organization=organization, role="prescriber").user
    add_histories(
        organization=organization,
        recorded_by=prescriber,
        patients=patients,
        start=datetime(2025, 1, 6, tzinfo=UTC),
    )
    return organization.pk


@pytest.fixture(scope="class")
def demo_clinic(django_db_setup, django_db_blocker):
    """The 30-patient demo clinic with months of history (about 10 s of CPU to build)."""
    with built_once(django_db_blocker, _demo_with_histories) as organization_id:
        yield organization_id


@pytest.fixture
def demo(demo_clinic, settings, tmp_path):
    settings.VAR_DIR = tmp_path
    return _compliance_of(demo_clinic)


@pytest.fixture(scope="class")
def two_patient_clinic(django_db_setup, django_db_blocker):
    """A demo clinic of two patients with no histories: enough for refusals and the job's URLs
    (most of build_demo's cost is the clinic itself, not its patients: built once)."""
    with built_once(django_db_blocker, lambda: build_demo(patients=2, seed=3).organization.pk) as (
        organization_id
    ):
        yield organization_id


@pytest.fixture
def small_clinic(two_patient_clinic, settings, tmp_path):
    settings.VAR_DIR = tmp_path
    return _compliance_of(two_patient_clinic)


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


BAD_KICK_OFFS = [
    ("$export", {}, {}, 400),  # no Prefer: respond-async
    ("$export", {"_type": "Spaceship"}, ASYNC, 400),
    ("$export", {"_outputFormat": "text/csv"}, ASYNC, 400),
    ("$export", {"_elements": "id"}, ASYNC, 400),
    ("Group/abc/$export", {}, ASYNC, 404),
]


@pytest.mark.xdist_group("bulk-export-two-patient-clinic")
class TestRefusalsAndTheJobsUrls:
    """On the two-patient demo clinic, built once for the class."""

    def test_bad_kick_offs_answer_an_operation_outcome(self, small_clinic) -> None:
        _, compliance = small_clinic
        client = api_client(compliance)
        for path, params, headers, status in BAD_KICK_OFFS:
            response = client.get(f"{BASE}{path}", params, **headers)
            assert response.status_code == status, (path, params)
            assert response.json()["resourceType"] == "OperationOutcome", (path, params)

    def test_roles_without_bulk_export_are_refused(self, small_clinic) -> None:
        organization, _ = small_clinic
        with scopes_disabled():
            for role in ("nurse", "researcher", "admin"):
                membership = Membership.objects.get(organization=organization, user__username=role)
                response = api_client(membership).get(f"{BASE}$export", **ASYNC)
                assert response.status_code == 403, role

    def test_the_status_url_answers_only_the_clinic_that_asked(
        self, small_clinic, org_b, django_capture_on_commit_callbacks
    ) -> None:
        _, compliance = small_clinic
        location = kick_off(api_client(compliance), "$export", django_capture_on_commit_callbacks)[
            "Content-Location"
        ]
        stranger = api_client(make_member(org_b, "compliance", username="b-compliance"))
        assert stranger.get(location).status_code == 404
        manifest = poll(api_client(compliance), location).json()
        assert stranger.get(manifest["output"][0]["url"]).status_code == 404

    def test_delete_cancels_and_removes_the_files(
        self, small_clinic, django_capture_on_commit_callbacks
    ) -> None:
        _, compliance = small_clinic
        client = api_client(compliance)
        location = kick_off(client, "$export", django_capture_on_commit_callbacks, _type="Patient")[
            "Content-Location"
        ]
        url = poll(client, location).json()["output"][0]["url"]
        assert client.delete(location).status_code == 202
        assert client.get(url).status_code == 404


def _by_id(resources):
    return {(r["resourceType"], r["id"]): r for r in resources}


def _queries_of_an_export(compliance, chunk: int, monkeypatch) -> int:
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from ketaclinic.fhir import bulk_export
    from ketaclinic.outcomes import services

    monkeypatch.setattr(bulk_export, "PATIENTS_PER_CHUNK", chunk)
    actor = Actor(membership=compliance, channel="cli")
    with scope(organization=compliance.organization):
        job = bulk_export.bulk_export_request(actor=actor, level="system", run_in_background=False)
        with CaptureQueriesContext(connection) as queries:
            job = services.data_export_run(export=job)
    assert job.status == "done", job.error
    return len(queries)


@pytest.mark.xdist_group("bulk-export-demo-clinic")
class TestTheDemoClinic:
    """Exports counted against the demo clinic with histories, built once for the class (the
    xdist group keeps the class on one worker, so it is built once per run)."""

    def test_system_export_of_the_demo_clinic(
        self, demo, django_capture_on_commit_callbacks
    ) -> None:
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

    def test_type_and_since_filter_the_output(
        self, demo, django_capture_on_commit_callbacks
    ) -> None:
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

    def test_every_line_is_what_a_search_of_that_type_returns(
        self, demo, django_capture_on_commit_callbacks
    ) -> None:
        """The export reads plain rows chunk by chunk; each line must still be exactly the resource
        the type's own search returns (kept JSON laid over, received resources included), here with
        an imported Synthea record beside the demo clinic's own."""
        organization, compliance = demo
        call_command(
            "import_fhir",
            str(TEST_DATA / "synthea-r4" / "smart-generated-sample-data-R4" / SYNTHEA_PATIENT),
            username="prescriber",
            no_progress=True,
            stdout=StringIO(),
        )
        client = api_client(compliance)
        location = kick_off(client, "$export", django_capture_on_commit_callbacks)[
            "Content-Location"
        ]
        manifest = poll(client, location).json()
        exported = {o["type"]: _by_id(ndjson(client, o["url"])) for o in manifest["output"]}
        actor = Actor(membership=compliance, channel="api")
        with scope(organization=organization):
            everyone = [str(p) for p in Patient.objects.values_list("public_id", flat=True)]
            for resource_type, lines in exported.items():
                params = {} if resource_type == "Questionnaire" else {"patient": [everyone]}
                page = HANDLERS[resource_type].search(
                    actor, SearchRequest(params=params, count=10**9)
                )
                assert lines == _by_id(overlay(page.resources)), resource_type
        assert len(exported["Procedure"]) > 0  # kept only as received
        assert any(
            "identifier" in r and len(r["identifier"]) > 1 for r in exported["Patient"].values()
        )

    def test_a_saved_cohort_is_a_group_whose_members_export(
        self, demo, org_b, django_capture_on_commit_callbacks
    ) -> None:
        organization, compliance = demo
        with scopes_disabled():
            prescriber = Membership.objects.get(organization=organization, role="prescriber")
        saved = api_client(prescriber).post(
            "/api/v1/outcomes/groups",
            {"name": "IV ketamine", "route": "intravenous", "instrument": "phq9"},
            content_type="application/json",
        )
        assert saved.status_code == 201, saved.content
        group_id = saved.json()["id"]
        again = api_client(prescriber).post(
            "/api/v1/outcomes/groups", {"name": "IV ketamine"}, content_type="application/json"
        )
        assert again.status_code == 400
        assert again.json()["errors"][0]["field"] == "name"

        client = api_client(compliance)
        group = client.get(f"{BASE}Group/{group_id}").json()
        get_fhir_model_class("Group").model_validate(group)
        with scope(organization=organization):
            expected = {
                str(p)
                for p in Patient.objects.filter(
                    pk__in=[
                        m.patient_key for m in cohort_members(CohortFilters(route="intravenous"))
                    ]
                ).values_list("public_id", flat=True)
            }
            everyone = Patient.objects.count()
        members = {m["entity"]["reference"].removeprefix("Patient/") for m in group["member"]}
        assert members == expected
        assert 0 < group["quantity"] == len(members) < everyone
        assert group["characteristic"][0]["valueCodeableConcept"]["text"] == "intravenous"
        found = client.get(f"{BASE}Group", {"name": "iv keta"}).json()
        assert [e["resource"]["id"] for e in found["entry"]] == [group_id]
        assert "member" not in found["entry"][0]["resource"]  # subsetted: read for the members

        response = kick_off(client, f"Group/{group_id}/$export", django_capture_on_commit_callbacks)
        assert response.status_code == 202, response.content
        manifest = poll(client, response["Content-Location"]).json()
        lines = {o["type"]: ndjson(client, o["url"]) for o in manifest["output"]}
        assert {r["id"] for r in lines["Patient"]} == members
        assert lines["Encounter"]
        assert {
            r["subject"]["reference"].removeprefix("Patient/") for r in lines["Encounter"]
        } <= members
        actor = Actor(membership=compliance, channel="api")
        with scope(organization=organization):
            for resource_type, exported in lines.items():
                if resource_type == "Patient":
                    continue
                search = SearchRequest(params={"patient": [sorted(members)]}, count=10**9)
                page = HANDLERS[resource_type].search(actor, search)
                assert _by_id(exported) == _by_id(overlay(page.resources)), resource_type

        stranger = api_client(make_member(org_b, "compliance", username="b-compliance"))
        assert stranger.get(f"{BASE}Group/{group_id}").status_code == 404
        assert stranger.get(f"{BASE}Group/{group_id}/$export", **ASYNC).status_code == 404

    def test_an_export_costs_a_fixed_number_of_queries_per_chunk_of_patients(
        self, demo, monkeypatch
    ) -> None:
        """Every type reads its rows for a chunk of patients at once: the query count follows the
        number of chunks, never the number of resources (30 patients with months of history)."""
        _, compliance = demo
        one_chunk = _queries_of_an_export(compliance, 30, monkeypatch)
        three_chunks = _queries_of_an_export(compliance, 10, monkeypatch)
        assert one_chunk <= 90
        assert three_chunks <= 3 * one_chunk
