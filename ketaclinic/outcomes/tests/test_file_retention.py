"""Generated files are deleted after the clinic's keep period (GENERATED_FILES_KEEP_HOURS): the
worker expires finished exports and reports, their pages, the JSON API and the FHIR API then say
the files were deleted and when, the rows stay for the accounting of disclosures, and files no
live job owns (a failed or cancelled export's, a crash's leftovers) are swept."""

from __future__ import annotations

import html
import os
import uuid
from datetime import timedelta
from pathlib import Path

import pytest
from django.core.management import call_command
from django.test import Client
from django_scopes import scope, scopes_disabled

from conftest import actor_for, api_client, audit_count, make_patient, staff_client
from ketaclinic.core import clock
from ketaclinic.outcomes import services
from ketaclinic.outcomes.export_files import export_directory
from ketaclinic.outcomes.file_retention import generated_files_expire
from ketaclinic.outcomes.models import DataExport, ReportJob
from ketaclinic.outcomes.services import report_directory
from ketaclinic.outcomes.tests.conftest import queue_bulk_export
from ketaclinic.outcomes.tests.test_export_views import FORM as RESEARCH_EXPORT_FORM

pytestmark = pytest.mark.django_db
DELETED = "generated_files.deleted"


@pytest.fixture
def var_dir(settings, tmp_path) -> Path:
    settings.VAR_DIR = tmp_path
    settings.GENERATED_FILES_KEEP_HOURS = 72
    return tmp_path


@pytest.fixture
def finished_bulk(var_dir, bulk) -> DataExport:
    with scopes_disabled():
        export = DataExport.objects.select_related("organization", "requested_by").get(pk=bulk.pk)
    export = services.data_export_run(export=export)
    assert export.status == DataExport.Status.DONE
    assert list(export_directory(export).glob("*.ndjson"))
    return export


def _refused(client: Client, url: str) -> str:
    """The words of a 404 download, as the person reads them."""
    download = client.get(url)
    assert download.status_code == 404
    return html.unescape(download.content.decode())


def _reload(export: DataExport) -> DataExport:
    with scopes_disabled():
        return DataExport.objects.get(pk=export.pk)


def test_files_stay_for_the_keep_period_then_go_and_the_row_stays(members, finished_bulk) -> None:
    export = finished_bulk
    directory = export_directory(export)
    assert export.finished_at is not None
    assert generated_files_expire(now=export.finished_at + timedelta(hours=71)) == 0
    assert directory.is_dir()
    name = export.files[0]["name"]
    client = staff_client(members["compliance"])
    assert client.get(f"/outcomes/exports/fhir/{export.public_id}/files/{name}").status_code == 200
    page = client.get(f"/outcomes/exports/fhir/{export.public_id}/").content.decode()
    assert "The files are kept until" in page

    before = audit_count(action=f"outcomes.{DELETED}")
    assert generated_files_expire(now=export.finished_at + timedelta(hours=73)) == 1
    assert not directory.exists()
    expired = _reload(export)
    assert expired.status == DataExport.Status.EXPIRED
    assert expired.files == export.files  # what was disclosed stays on record
    assert audit_count(action=f"outcomes.{DELETED}") == before + 1

    message = _refused(client, f"/outcomes/exports/fhir/{export.public_id}/files/{name}")
    assert "This export's files were deleted 72 hours after it finished" in message
    page = client.get(f"/outcomes/exports/fhir/{export.public_id}/").content.decode()
    assert 'id="bulk-export-deleted"' in page
    assert "Files deleted" in page
    assert f'/files/{name}"' not in page  # no link to a file that is gone

    # Idempotent: a second worker (or the next hour) finds nothing more to do or record.
    assert generated_files_expire(now=export.finished_at + timedelta(hours=74)) == 0
    assert audit_count(action=f"outcomes.{DELETED}") == before + 1


def test_the_fhir_api_says_the_export_files_were_deleted(members, finished_bulk) -> None:
    export = finished_bulk
    fhir = api_client(members["compliance"])
    status_url = f"/fhir/r4/$export-status/{export.public_id}"
    name = export.files[0]["name"]
    assert fhir.get(status_url).status_code == 200
    generated_files_expire(now=export.finished_at + timedelta(hours=73))
    answer = fhir.get(status_url)
    assert answer.status_code == 404
    outcome = answer.json()
    assert outcome["resourceType"] == "OperationOutcome"
    assert "files were deleted 72 hours after it finished" in outcome["issue"][0]["diagnostics"]
    assert fhir.get(f"/fhir/r4/$export-file/{export.public_id}/{name}").status_code == 404


def test_the_worker_deletes_what_is_past_the_keep_period(finished_bulk) -> None:
    with clock.replaying(finished_bulk.finished_at + timedelta(hours=73)):
        call_command("worker", "--once")
    assert _reload(finished_bulk).status == DataExport.Status.EXPIRED
    assert not export_directory(finished_bulk).exists()


def test_the_keep_period_is_the_clinics_setting(settings, finished_bulk) -> None:
    settings.GENERATED_FILES_KEEP_HOURS = 1
    assert generated_files_expire(now=finished_bulk.finished_at + timedelta(minutes=61)) == 1
    assert _reload(finished_bulk).status == DataExport.Status.EXPIRED


def test_files_no_live_job_owns_are_swept_and_others_are_left(
    var_dir, members, org_a, finished_bulk
) -> None:
    queued = queue_bulk_export(members, org_a)
    running_files = export_directory(queued)
    running_files.mkdir(parents=True)
    (running_files / "Patient.ndjson").write_text("{}\n")
    stray = var_dir / "exports" / str(uuid.uuid4())  # a crash's leftover: no job row at all
    stray.mkdir()
    (stray / "Patient.ndjson").write_text("{}\n")
    four_days_ago = (clock.now() - timedelta(hours=96)).timestamp()
    os.utime(stray, (four_days_ago, four_days_ago))
    recent = var_dir / "exports" / str(uuid.uuid4())  # maybe another installation's, just made
    recent.mkdir()
    not_a_job = var_dir / "exports" / "README"
    not_a_job.mkdir()
    with scopes_disabled():
        DataExport.objects.filter(pk=finished_bulk.pk).update(
            status=DataExport.Status.FAILED, error="cancelled by the client", files=[]
        )
    assert generated_files_expire() == 2  # the failed export's and the stray directory
    assert not export_directory(finished_bulk).exists()
    assert not stray.exists()
    assert recent.is_dir()
    assert running_files.is_dir()  # its job may still be writing it
    assert not_a_job.is_dir()  # not named like a job: not ours to delete


def test_a_report_pdf_is_deleted_and_its_page_and_api_say_when(
    var_dir, members, prescriber, org_a
) -> None:
    patient = make_patient(prescriber, mrn="R0100")
    with scope(organization=org_a):
        job = services.report_request(
            actor=actor_for(members["prescriber"]),
            kind="progress",
            patient_id=str(patient.public_id),
            run_in_background=False,
        )
    with scopes_disabled():
        job = ReportJob.objects.select_related("organization", "requested_by", "patient").get(
            pk=job.pk
        )
    job = services.report_run(job=job)
    assert job.status == ReportJob.Status.DONE
    assert job.finished_at is not None
    pdf = report_directory(job) / job.file_name
    assert pdf.is_file()
    client = staff_client(members["prescriber"])
    assert client.get(f"/outcomes/reports/{job.public_id}/pdf").status_code == 200

    assert generated_files_expire(now=job.finished_at + timedelta(hours=73)) == 1
    assert not pdf.exists()
    message = _refused(client, f"/outcomes/reports/{job.public_id}/pdf")
    assert "This report's PDF was deleted 72 hours after it finished" in message
    page = client.get(f"/outcomes/reports/{job.public_id}/").content.decode()
    assert 'id="report-deleted"' in page
    assert 'id="report-download"' not in page
    body = api_client(members["prescriber"]).get(f"/api/v1/outcomes/reports/{job.public_id}")
    assert body.status_code == 200
    assert body.json()["status"] == "expired"
    assert body.json()["pdf"] is None
    deleted_at = (job.finished_at + timedelta(hours=72)).isoformat()
    assert body.json()["files_deleted_at"] == deleted_at


def test_a_research_export_says_its_files_were_deleted_on_screen_and_in_the_api(
    var_dir, members, treated_cohort, django_capture_on_commit_callbacks
) -> None:
    client = staff_client(members["researcher"])
    with django_capture_on_commit_callbacks(execute=True):
        location = client.post("/outcomes/exports/", RESEARCH_EXPORT_FORM)["Location"]
    with scopes_disabled():
        export = DataExport.objects.get()
    assert export.status == DataExport.Status.DONE
    assert export.finished_at is not None
    api = api_client(members["researcher"])
    answer = api.get(f"/api/v1/research/exports/{export.public_id}").json()
    assert answer["files"]
    assert answer["files_deleted_at"] == (export.finished_at + timedelta(hours=72)).isoformat()

    generated_files_expire(now=export.finished_at + timedelta(hours=73))
    page = client.get(location).content.decode()
    assert 'id="export-deleted"' in page
    assert "patients.csv" in page  # what was exported is still named
    assert 'id="export-files"' not in page
    assert client.get(f"/outcomes/exports/{export.public_id}/files/patients.csv").status_code == 404
    answer = api.get(f"/api/v1/research/exports/{export.public_id}").json()
    assert answer["status"] == "expired"
    assert answer["files"] == []
