"""Rewriting the course summaries in the background: the page's progress bar and its JSON twin
follow the job as it runs, and the dashboard reads what it wrote."""

from __future__ import annotations

import re
from datetime import UTC, datetime

import pytest
from django_scopes import scopes_disabled

from conftest import actor_for, api_client, audit_count, make_member, make_patient, staff_client
from ketaclinic.outcomes import services
from ketaclinic.outcomes.models import CourseSummary, SummaryRecompute
from ketaclinic.outcomes.synthetic import add_histories
from ketaclinic.patients.models import Patient

pytestmark = pytest.mark.django_db
RECOMPUTES = "/api/v1/outcomes/recomputes"


def _shown(html: str) -> tuple[str, int]:
    """What the bar says: its label and its value."""
    label = re.search(r'<label for="recompute-bar">([^<]+)</label>', html)
    value = re.search(r'<progress id="recompute-bar" max="100" value="(\d+)"', html)
    assert label, html
    assert value, html
    return label.group(1), int(value.group(1))


@pytest.fixture
def three_treated(prescriber, org_a):
    for index in range(3):
        make_patient(prescriber, mrn=f"R{index:04d}")
    with scopes_disabled():
        patients = list(Patient.objects.filter(organization=org_a).order_by("pk"))
        add_histories(
            organization=org_a,
            recorded_by=prescriber.user,
            patients=patients,
            start=datetime(2025, 1, 6, tzinfo=UTC),
        )
        CourseSummary.objects.all().delete()  # as after an import written straight to the tables
    return patients


def test_the_page_shows_the_rewrite_moving_until_done(members, three_treated) -> None:
    admin = members["clinic_admin"]
    client = staff_client(admin)
    response = client.post("/outcomes/summaries/")
    assert response.status_code == 302
    page = client.get(response["Location"]).content.decode()
    assert _shown(page) == ("Queued", 0)
    assert 'hx-trigger="every 2s"' in page
    with scopes_disabled():
        job = SummaryRecompute.objects.select_related("organization", "requested_by").get()
    seen = []

    def poll(_percent: int) -> None:  # what the page's poller gets between two ranges
        fragment = client.get(response["Location"], headers={"HX-Request": "true"})
        html = fragment.content.decode()
        assert "<html" not in html
        assert 'hx-trigger="every 2s"' in html
        seen.append(_shown(html))

    services.summary_recompute_run(job=job, on_progress=poll, size=1)
    assert len(seen) == 3  # one range of one patient key each
    assert all(label == "Running" for label, _ in seen)
    percents = [value for _, value in seen]
    assert percents == sorted(percents)
    assert 0 < percents[0] < percents[-1] < 100
    page = client.get(response["Location"]).content.decode()
    assert _shown(page) == ("Done", 100)
    assert "every 2s" not in page  # done: the bar stops polling
    with scopes_disabled():
        written = CourseSummary.objects.count()
    assert written > 0
    assert f"{written} course summaries written" in page
    assert audit_count(action="outcomes.summaries.recomputed") == 1
    log = client.get("/outcomes/summaries/").content.decode()
    assert 'id="recompute-log"' in log
    assert f"<td>{written}</td>" in log


def test_the_api_queues_one_rewrite_at_a_time_and_reports_it_done(
    members, three_treated, django_capture_on_commit_callbacks
) -> None:
    client = api_client(members["clinic_admin"])
    queued = client.post(RECOMPUTES)
    assert queued.status_code == 202
    body = queued.json()
    assert (body["status"], body["progress"], body["rows"]) == ("queued", 0, 0)
    again = client.post(RECOMPUTES)
    assert again.status_code == 202
    assert again.json()["id"] == body["id"]
    with scopes_disabled():
        SummaryRecompute.objects.all().delete()
    with django_capture_on_commit_callbacks(execute=True):  # the worker runs it
        started = client.post(RECOMPUTES).json()
    done = client.get(f"{RECOMPUTES}/{started['id']}").json()
    assert (done["status"], done["progress"]) == ("done", 100)
    with scopes_disabled():
        assert done["rows"] == CourseSummary.objects.count() > 0
    assert done["finished_at"] is not None


@pytest.mark.parametrize("role", ["researcher", "prescriber", "compliance"])
def test_roles_without_set_up_cannot_start_or_watch_one(members, role) -> None:
    response = api_client(members[role]).post(RECOMPUTES)
    assert response.status_code == 403
    assert "setup.manage" in response.json()["detail"]
    assert staff_client(members[role]).get("/outcomes/summaries/").status_code == 403


def test_another_clinics_rewrite_is_not_found(members, org_b) -> None:
    other_admin = make_member(org_b, "clinic_admin", username="admin-b")
    job = services.summary_recompute_request(actor=actor_for(other_admin), run_in_background=False)
    response = api_client(members["clinic_admin"]).get(f"{RECOMPUTES}/{job.public_id}")
    assert response.status_code == 404
    assert (
        staff_client(members["clinic_admin"])
        .get(f"/outcomes/summaries/{job.public_id}/")
        .status_code
        == 404
    )
