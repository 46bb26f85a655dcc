"""PDF reports drawn in the background worker: asking for one writes a job row and answers with
a page whose bar polls every 2 s through the real steps (reading the records, drawing the charts,
laying out the pages, writing the PDF), then offers the PDF; the JSON API and the terminal do the
same through the same service. Identified patient reports stay with the roles that may print
them: a researcher is refused on every route and nothing is written."""

from __future__ import annotations

import io
import re
from datetime import UTC, datetime

import numpy as np
import pytest
from django.core.management import call_command
from django_scopes import scope, scopes_disabled
from PIL import Image

from conftest import actor_for, api_client, audit_count, make_member, make_patient, staff_client
from ketaclinic.outcomes import services
from ketaclinic.outcomes.models import ReportJob
from ketaclinic.outcomes.synthetic import add_histories
from ketaclinic.patients.models import Patient
from tests.pdf import first_page_png, pdf_text

pytestmark = pytest.mark.django_db
REPORTS = "/api/v1/outcomes/reports"
SESSION_BLUE = (0x0B, 0x5C, 0xAD)  # the trajectory's dashed session markers (measures/charts.py)
UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
STEPS = [
    ("Running: reading the records", 5),
    ("Running: drawing the charts", 35),
    ("Running: laying out the pages", 60),
    ("Running: writing the pdf", 85),
]


@pytest.fixture
def treated(settings, tmp_path, prescriber, org_a):
    settings.VAR_DIR = tmp_path
    for index in range(3):
        make_patient(prescriber, mrn=f"P{index:04d}")
    with scopes_disabled():
        patients = list(Patient.objects.filter(organization=org_a).order_by("pk"))
    add_histories(
        organization=org_a,
        recorded_by=prescriber.user,
        patients=patients,
        start=datetime(2025, 1, 6, tzinfo=UTC),
    )
    return patients


def _bar(html: str) -> tuple[str, int]:
    label = re.search(r'<label for="report-bar">([^<]+)</label>', html)
    value = re.search(r'<progress id="report-bar" max="100" value="(\d+)"', html)
    assert label, html
    assert value, html
    return label.group(1), int(value.group(1))


def _visible(html: str) -> str:
    return re.sub(r"<[^>]+>", " ", re.sub(r"<(script|style)\b.*?</\1>", " ", html, flags=re.S))


def _jobs() -> int:
    with scopes_disabled():
        return ReportJob.objects.count()


def test_a_progress_report_is_drawn_by_the_worker_step_by_step_then_downloaded(
    members, treated, django_assert_max_num_queries
) -> None:
    patient = treated[0]
    client = staff_client(members["prescriber"])
    form = {"kind": "progress", "patient": str(patient.public_id), "audience": "clinician"}
    with django_assert_max_num_queries(14):
        response = client.post("/outcomes/reports/", form)
    assert response.status_code == 302
    location = response["Location"]
    with django_assert_max_num_queries(9):
        page = client.get(location).content.decode()
    assert _bar(page) == ("Queued", 0)
    assert 'hx-trigger="every 2s"' in page
    text = _visible(page)
    assert patient.full_name in text
    assert "the referring clinician" in text
    assert re.search(r"requested \d{4}-\d{2}-\d{2} \d{2}:\d{2} (CST|CDT)", text), text
    assert not UUID.search(text)
    with scopes_disabled():
        job = ReportJob.objects.select_related("organization", "requested_by", "patient").get()
    assert (job.kind, job.audience, job.patient_id, job.requested_by_id) == (
        "progress",
        "clinician",
        patient.pk,
        members["prescriber"].user_id,
    )
    seen = []

    def poll(percent: int, step: str) -> None:  # what the page's poller gets at each step
        if percent < 100:
            with django_assert_max_num_queries(8):
                fragment = client.get(location, headers={"HX-Request": "true"})
            html = fragment.content.decode()
            assert "<html" not in html
            assert 'hx-trigger="every 2s"' in html
            seen.append(_bar(html))

    services.report_run(job=job, on_progress=poll)
    assert seen == STEPS
    page = client.get(location).content.decode()
    assert _bar(page) == ("Done", 100)
    assert "every 2s" not in page  # done: the bar stops polling
    assert not UUID.search(_visible(page))
    pdf_link = re.search(r'id="report-download" href="([^"]+)"', page)
    assert pdf_link
    before = audit_count(action="outcomes.progress_report.downloaded")
    download = client.get(pdf_link.group(1))
    assert download.status_code == 200
    assert download["Content-Type"] == "application/pdf"
    content = download.getvalue()
    assert content.startswith(b"%PDF")
    text = pdf_text(content)
    for part in ("Progress report for the referring clinician", "PHQ-9", "Response",
                 "Treatment sessions"):  # fmt: skip
        assert part in text
    pixels = np.asarray(
        Image.open(io.BytesIO(first_page_png(content, dpi=100))).convert("RGB"), dtype=int
    )
    markers = int((np.abs(pixels - np.array(SESSION_BLUE)) <= 40).all(axis=-1).sum())
    bands = int((np.abs(pixels - np.array((0xE6, 0xF4, 0xEA))) <= 6).all(axis=-1).sum())
    assert markers > 50, "no session markers drawn on the first page"
    assert bands > 500, "no severity band drawn on the first page"
    # the worker read the chart as the prescriber: one audited read, when it was drawn
    assert audit_count(action="outcomes.progress_report.read") == 1
    assert audit_count(action="outcomes.progress_report.downloaded") == before + 1
    log = client.get("/outcomes/reports/").content.decode()
    assert 'id="report-log"' in log
    assert patient.full_name in log


def test_the_api_queues_a_clinic_report_the_worker_draws_it_and_the_pdf_follows(
    members, treated, django_capture_on_commit_callbacks, django_assert_max_num_queries
) -> None:
    client = api_client(members["clinic_admin"])
    cohort = {"instrument": "madrs", "first_dose_from": "2025-01-01"}
    with django_capture_on_commit_callbacks(execute=True):  # the worker runs it
        queued = client.post(
            REPORTS, {"kind": "clinic", "cohort": cohort}, content_type="application/json"
        )
    assert queued.status_code == 202
    body = queued.json()
    assert (body["kind"], body["status"], body["progress"], body["pdf"]) == (
        "clinic",
        "queued",
        0,
        None,
    )
    assert "first dose from 2025-01-01" in body["cohort"]
    with django_assert_max_num_queries(5):
        done = client.get(f"{REPORTS}/{body['id']}").json()
    assert (done["status"], done["progress"], done["patient"]) == ("done", 100, None)
    assert done["pages"] >= 1
    pdf = client.get(done["pdf"])
    assert pdf.status_code == 200
    content = pdf.getvalue()
    assert content.startswith(b"%PDF")
    assert len(content) == done["bytes"]
    text = pdf_text(content)
    for heading in ("Clinic outcomes report", "Definitions", "Durability of response",
                    "Adverse events per 100 sessions", "first dose from 2025-01-01"):  # fmt: skip
        assert heading in text
    with scopes_disabled():
        assert not any(p.family_name in text for p in Patient.objects.all())  # no one named
    page = np.asarray(Image.open(io.BytesIO(first_page_png(content))).convert("RGB"))
    assert (page != 255).any(axis=-1).mean() > 0.05  # a drawn page, not an empty one
    assert audit_count(action="outcomes.clinic_report.drawn") == 1
    assert audit_count(action="outcomes.clinic_report.downloaded") == 1


def test_a_researcher_never_gets_a_patients_report(members, treated) -> None:
    patient = str(treated[0].public_id)
    researcher = members["researcher"]
    ui = staff_client(researcher).post(
        "/outcomes/reports/", {"kind": "progress", "patient": patient, "audience": "patient"}
    )
    assert ui.status_code == 403
    api = api_client(researcher).post(
        REPORTS, {"kind": "progress", "patient": patient}, content_type="application/json"
    )
    assert api.status_code == 403
    assert "outcomes.report" in api.json()["detail"]
    assert _jobs() == 0
    # the clinic report is aggregates: the researcher may ask for that one
    clinic = api_client(researcher).post(
        REPORTS, {"kind": "clinic"}, content_type="application/json"
    )
    assert clinic.status_code == 202


@pytest.mark.parametrize("role", ["clinic_admin", "nurse", "compliance"])
def test_roles_that_cannot_print_a_patients_report_are_refused(members, treated, role) -> None:
    response = api_client(members[role]).post(
        REPORTS,
        {"kind": "progress", "patient": str(treated[0].public_id)},
        content_type="application/json",
    )
    assert response.status_code == 403
    assert _jobs() == 0


def test_a_prescribers_report_is_not_anothers(members, treated, org_a, org_b) -> None:
    with scope(organization=org_a):
        job = services.report_request(
            actor=actor_for(members["prescriber"]),
            kind="progress",
            patient_id=str(treated[0].public_id),
            run_in_background=False,
        )
    colleague = make_member(org_a, "prescriber", username="colleague")
    outsider = make_member(org_b, "prescriber", username="outsider-b")
    for membership in (colleague, outsider):
        assert api_client(membership).get(f"{REPORTS}/{job.public_id}").status_code == 404
        page = staff_client(membership).get(f"/outcomes/reports/{job.public_id}/")
        assert page.status_code == 404
        pdf = staff_client(membership).get(f"/outcomes/reports/{job.public_id}/pdf")
        assert pdf.status_code == 404


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"kind": "progress"}, "patient"),
        ({"kind": "weekly"}, "kind"),
        ({"kind": "progress", "patient": "P", "audience": "doctor"}, "audience"),
        ({"kind": "clinic", "cohort": {"induction_days": 2}}, "induction_days"),
    ],
)
def test_bad_input_names_the_field_and_writes_nothing(members, body, field) -> None:
    response = api_client(members["prescriber"]).post(
        REPORTS, body, content_type="application/json"
    )
    assert 400 <= response.status_code < 500
    assert field in response.content.decode()
    assert _jobs() == 0


def test_the_form_answers_bad_input_with_400_beside_the_field(members, treated) -> None:
    client = staff_client(members["prescriber"])
    clinic = client.post("/outcomes/reports/", {"kind": "clinic", "instrument": "madrs",
                                                "group_by": "route", "induction_days": "2"})  # fmt: skip
    assert clinic.status_code == 400
    assert 'id="id_induction_days-error"' in clinic.content.decode()
    progress = client.post("/outcomes/reports/", {"kind": "progress", "audience": "patient"})
    assert progress.status_code == 400
    assert 'id="id_patient-error"' in progress.content.decode()
    assert _jobs() == 0


def test_the_command_draws_a_report_with_a_progress_bar(members, treated, tmp_path) -> None:
    out, err = io.StringIO(), io.StringIO()
    target = tmp_path / "clinic.pdf"
    call_command(
        "report", "clinic", "--username", members["prescriber"].user.username,
        "--instrument", "madrs", "--output", str(target), stdout=out, stderr=err,
    )  # fmt: skip
    assert target.read_bytes().startswith(b"%PDF")
    bar = err.getvalue()
    for step in ("Reading the records", "Drawing the charts", "Laying out the pages",
                 "Writing the PDF", "100%"):  # fmt: skip
        assert step in bar
    assert "pages" in out.getvalue()
    with scopes_disabled():
        job = ReportJob.objects.get()
    assert (job.channel, job.status) == ("cli", "done")


def test_the_command_refuses_a_researcher_a_patients_report(members, treated) -> None:
    from django.core.management.base import CommandError

    with pytest.raises(CommandError, match="outcomes.report"):
        call_command(
            "report", "progress", "--username", members["researcher"].user.username,
            "--patient", treated[0].mrn, "--no-progress",
        )  # fmt: skip
    assert _jobs() == 0
