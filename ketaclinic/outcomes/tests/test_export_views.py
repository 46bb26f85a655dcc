"""Research exports on screen: request one, watch its progress bar, download, see the log."""

from __future__ import annotations

import pytest
from django_scopes import scopes_disabled

from conftest import audit_count, staff_client
from ketaclinic.outcomes.models import DataExport

pytestmark = pytest.mark.django_db
FORM = {
    "instrument": "madrs",
    "group_by": "route",
    "induction_days": "28",
    "zip3_table": "zip3-none@1",
}


@pytest.fixture
def exported(settings, tmp_path, members, treated_cohort, django_capture_on_commit_callbacks):
    settings.VAR_DIR = tmp_path
    client = staff_client(members["researcher"])
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post("/outcomes/exports/", FORM)
    assert response.status_code == 302
    return client, response["Location"]


def test_request_then_progress_then_files_then_log(exported) -> None:
    client, location = exported
    page = client.get(location).content.decode()
    assert 'id="export-bar"' in page
    assert 'value="100"' in page
    assert "every 2s" not in page  # done: the bar stops polling
    fragment = client.get(location, headers={"HX-Request": "true"}).content.decode()
    assert "<html" not in fragment
    assert 'id="export-progress"' in fragment
    with scopes_disabled():
        export = DataExport.objects.get()
    before = audit_count(action="outcomes.research_export.downloaded")
    download = client.get(f"/outcomes/exports/{export.public_id}/files/patients.csv")
    assert download.status_code == 200
    assert b"".join(download.streaming_content).startswith(b"patient,sex_at_birth")
    assert audit_count(action="outcomes.research_export.downloaded") == before + 1
    log = client.get("/outcomes/exports/").content.decode()
    assert 'id="disclosure-log"' in log
    assert "instrument MADRS" in log
    assert "safe-harbor@1" in log


def test_a_queued_export_polls_every_two_seconds(members, org_a) -> None:
    with scopes_disabled():
        export = DataExport.objects.create(
            organization=org_a,
            kind="research",
            requested_by=members["researcher"].user,
            requester_role="researcher",
            channel="ui",
            rule_version="safe-harbor@1",
            zip3_table="zip3-none@1",
            progress=40,
        )
    page = staff_client(members["researcher"]).get(f"/outcomes/exports/{export.public_id}/")
    assert 'hx-trigger="every 2s"' in page.content.decode()
    assert 'value="40"' in page.content.decode()


def test_bad_input_is_shown_next_to_the_field_and_nothing_is_queued(members) -> None:
    response = staff_client(members["researcher"]).post(
        "/outcomes/exports/", {**FORM, "induction_days": "2"}
    )
    assert response.status_code == 400
    assert 'id="id_induction_days-error"' in response.content.decode()
    with scopes_disabled():
        assert not DataExport.objects.exists()


@pytest.mark.parametrize("role", ["nurse", "prescriber", "front_desk", "therapist"])
def test_roles_without_research_export_are_refused(members, role) -> None:
    assert staff_client(members[role]).get("/outcomes/exports/").status_code == 403
