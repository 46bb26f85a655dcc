"""Staff screens: entering a measure, the chart's measures section, alerts on chart and dashboard."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
import time_machine
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django_scopes import scope

from conftest import audit_count, make_patient, staff_client
from ketaclinic.measures import selectors, services
from ketaclinic.measures.models import QuestionnaireResponse, SafetyAlert
from ketaclinic.measures.tests.builders import phq9, phq9_total

pytestmark = pytest.mark.django_db


@pytest.fixture
def patient(prescriber):
    return make_patient(prescriber)


def record(actor, patient, answers, instrument_id="phq9", **kw):
    with scope(organization=actor.organization):
        return services.response_record(
            actor=actor, patient=patient, instrument_id=instrument_id, answers=answers, **kw
        )


def form_data(answers):
    return {f"item_{k}": str(v) for k, v in answers.items()}


def test_the_form_is_generated_from_the_definition_as_radio_groups(members, patient):
    page = staff_client(members["nurse"]).get(
        f"/measures/patients/{patient.public_id}/new/?instrument=phq9"
    )
    html = page.content.decode()
    assert page.status_code == 200
    assert html.count("<fieldset") == 10  # nine scored items and the difficulty item
    assert html.count('type="radio"') == 40
    assert "<legend>" in html


def test_entering_a_phq9_with_item_9_positive_alerts_the_chart_and_dashboard(members, patient):
    client = staff_client(members["nurse"])
    url = f"/measures/patients/{patient.public_id}/new/?instrument=phq9"
    response = client.post(url, form_data(phq9(item9=2)))
    assert response.status_code == 302
    chart = client.get(f"/patients/{patient.public_id}/measures/").content.decode()
    assert 'id="measure-alert-banner"' in chart
    assert "PHQ-9 item 9" in chart or "item 9" in chart
    assert "<svg" in chart
    dashboard = staff_client(members["prescriber"]).get("/").content.decode()
    assert "Safety alerts" in dashboard
    assert patient.full_name in dashboard


def test_a_wrong_form_names_the_item_and_writes_nothing(members, patient, org_a):
    answers = phq9()
    del answers["4"]
    response = staff_client(members["nurse"]).post(
        f"/measures/patients/{patient.public_id}/new/?instrument=phq9", form_data(answers)
    )
    assert response.status_code == 400
    assert 'id="id_item_4-error"' in response.content.decode()
    with scope(organization=org_a):
        assert not QuestionnaireResponse.objects.exists()


def test_acknowledge_through_htmx_returns_the_alert_fragment(members, prescriber, patient):
    record(prescriber, patient, phq9(item9=1))
    with scope(organization=prescriber.organization):
        alert = SafetyAlert.objects.get()
    client = staff_client(members["therapist"])
    url = f"/measures/alerts/{alert.public_id}/"
    empty = client.post(url, {"note": ""}, HTTP_HX_REQUEST="true")
    assert empty.status_code == 400
    before = audit_count(action="measures.alert.acknowledged")
    done = client.post(
        url, {"note": "Called patient, safety plan reviewed"}, HTTP_HX_REQUEST="true"
    )
    assert done.status_code == 200
    assert b"<html" not in done.content
    assert b"Acknowledged by" in done.content
    assert audit_count(action="measures.alert.acknowledged") == before + 1
    page = client.get(url)
    assert b"<html" in page.content
    assert b"No open safety alerts." in staff_client(members["prescriber"]).get("/").content


def test_alerts_panel_is_a_page_and_a_fragment(members):
    client = staff_client(members["nurse"])
    assert b"<html" in client.get("/measures/alerts/").content
    fragment = client.get("/measures/alerts/", HTTP_HX_REQUEST="true")
    assert b"<html" not in fragment.content
    assert b'id="alerts-panel"' in fragment.content


def test_compliance_sees_alerts_but_cannot_acknowledge(members, prescriber, patient):
    record(prescriber, patient, phq9(item9=1))
    with scope(organization=prescriber.organization):
        alert = SafetyAlert.objects.get()
    client = staff_client(members["compliance"])
    assert b"Acknowledge</button>" not in client.get("/").content
    assert client.post(f"/measures/alerts/{alert.public_id}/", {"note": "x"}).status_code == 403


def _series(prescriber, patient, scores, start):
    for days, total in scores:
        record(prescriber, patient, phq9_total(total), completed_at=start + timedelta(days=days))


@pytest.mark.parametrize(
    ("scores", "session_day", "expect"),
    [
        # baseline 20 on day 0, first session day 1, latest 8: response (60%), no remission
        ([(0, 20), (10, 8)], 1, ["verdict-yes", "-60.0%", "remission-verdict verdict-no"]),
        # exactly 50% reduction counts as response; latest 4 < 5 is remission
        ([(0, 8), (10, 4)], 1, ["response-verdict verdict-yes", "remission-verdict verdict-yes"]),
        # no score before the first session: no baseline, response cannot be told
        ([(5, 20), (10, 8)], 1, ["response-verdict verdict-unknown", "no baseline"]),
        # baseline 0: relative change undefined
        ([(0, 0), (10, 3)], 1, ["response-verdict verdict-unknown", "baseline score is 0"]),
        # no sessions at all (the sessions app does not exist yet)
        ([(0, 20), (10, 4)], None, ["response-verdict verdict-unknown", "session"]),
    ],
)
def test_response_and_remission_edge_cases_are_shown_in_the_chart(
    monkeypatch, members, prescriber, scores, session_day, expect
):
    start = datetime(2026, 1, 5, 9, tzinfo=UTC)
    with time_machine.travel(start + timedelta(days=30), tick=False):
        patient = make_patient(prescriber)
        _series(prescriber, patient, scores, start)
        sessions = [start + timedelta(days=session_day)] if session_day is not None else []
        monkeypatch.setattr(selectors, "treatment_session_dates", lambda p: sessions)
        html = (
            staff_client(members["prescriber"])
            .get(f"/patients/{patient.public_id}/measures/")
            .content.decode()
        )
    for fragment in expect[:-1] if session_day is None else expect:
        assert fragment in html, fragment
    if sessions:
        assert 'class="session"' in html
    assert 'class="band"' in html


def test_the_chart_measures_section_query_count_does_not_grow_with_history(
    members, prescriber, django_assert_max_num_queries
):
    patient = make_patient(prescriber)
    client = staff_client(members["prescriber"])
    url = f"/patients/{patient.public_id}/measures/"
    record(prescriber, patient, phq9())
    client.get(url)
    with CaptureQueriesContext(connection) as one:
        client.get(url)
    for i in range(6):
        record(prescriber, patient, phq9(rest=i % 4))
        record(prescriber, patient, {str(n): 1 for n in range(1, 8)}, "gad7")
    with CaptureQueriesContext(connection) as many:
        client.get(url)
    assert len(many) == len(one)


def test_the_measures_pieces_use_a_pinned_number_of_queries(prescriber, django_assert_num_queries):
    from ketaclinic.measures.templatetags.measures import (
        measures_alert_banner,
        measures_alert_panel,
        measures_section,
    )

    patient = make_patient(prescriber)
    for i in range(4):
        record(prescriber, patient, phq9(item9=i % 2))
    context = {"caps": {"measures.view"}}
    with scope(organization=prescriber.organization):
        # responses (all instruments), recent list, sessions, therapy visits (trajectory markers)
        with django_assert_num_queries(4):
            measures_section(context, patient)
        with django_assert_num_queries(1):
            measures_alert_banner(context, patient)
        with django_assert_num_queries(1):
            measures_alert_panel(context)


def test_dashboard_query_count_is_fixed(members, prescriber):
    client = staff_client(members["prescriber"])
    client.get("/")
    patient = make_patient(prescriber)
    record(prescriber, patient, phq9(item9=1))
    with CaptureQueriesContext(connection) as one:
        client.get("/")
    for n in range(4):
        record(prescriber, make_patient(prescriber, mrn=f"M{n}"), phq9(item9=1))
    with CaptureQueriesContext(connection) as many:
        client.get("/")
    assert len(many) == len(one)


def test_a_correction_is_linked_and_replaces_the_old_score_in_the_trajectory(
    members, prescriber, patient
):
    old = record(prescriber, patient, phq9(rest=2))
    client = staff_client(members["prescriber"])
    url = f"/measures/patients/{patient.public_id}/new/?instrument=phq9&corrects={old.public_id}"
    form = client.get(url).content.decode()
    assert "checked" in form
    response = client.post(url, {**form_data(phq9(rest=1)), "correction_reason": "mis-keyed"})
    assert response.status_code == 302
    with scope(organization=prescriber.organization):
        new = QuestionnaireResponse.objects.get(corrects=old)
        assert [
            r.pk for r in selectors.responses_for_patient(patient, include_corrected=False)
        ] == [new.pk]
    detail = client.get(f"/measures/responses/{new.public_id}/")
    html = detail.content.decode()
    assert "mis-keyed" in html
    # What the clinician reads: the instrument's name and numbered items; the scoring rule's id
    # only inside the disclosure kept for audit, and never a raw language code.
    title = html.split("<title>")[1].split("</title>")[0]
    assert "Patient Health Questionnaire-9" in title
    assert new.rule not in title
    outside_audit = html.split('<details class="for-audit">')[0]
    assert new.rule not in outside_audit
    assert "in English" in outside_audit
    assert "(en)" not in outside_audit


def test_link_page_shows_url_and_inline_qr(members, patient):
    response = staff_client(members["nurse"]).post(
        f"/measures/patients/{patient.public_id}/link/", {"instrument_id": "phq9", "language": "es"}
    )
    html = response.content.decode()
    assert response.status_code == 200
    assert "/portal/m/" in html
    assert "<svg" in html
    assert "<path" in html
